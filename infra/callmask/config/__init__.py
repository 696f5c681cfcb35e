"""Stack configuration: the stack files and the engine's config read into one validated LineSettings, and the
allowed destinations they describe."""

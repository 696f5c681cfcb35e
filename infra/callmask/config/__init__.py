"""Stack configuration: stack files and the engine's config read into one validated LineSettings."""

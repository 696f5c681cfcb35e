"""The `callmask` command: a thin dispatcher (main) over one module per command family, and the demo."""

from callmask.cli.main import main

__all__ = ["main"]

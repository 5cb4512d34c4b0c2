"""The administrators' command line (`outlook-sync`): may import every layer below it."""

from core.cli.main import main

__all__ = ["main"]

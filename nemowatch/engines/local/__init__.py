"""The local engine: edits on this machine with FFmpeg (see `engine.LocalEngine`)."""

from nemowatch.engines.local.engine import LocalEngine

__all__ = ["LocalEngine"]

"""Making the engine a config names (the daemon, `process` and `credits` use it)."""

from __future__ import annotations

import structlog

from nemowatch.config import Config
from nemowatch.engines.base import Engine

log = structlog.get_logger("nemowatch.engines")


def make_engine(config: Config) -> Engine:
    """The engine the config names."""
    if config.engine == "nemo":
        from nemowatch.engines.nemo import NemoEngine

        return NemoEngine(config.nemo, state_dir=config.state_dir)
    from nemowatch.engines.local import LocalEngine

    # built-in music moods are generated once and reused from here
    engine = LocalEngine(ffmpeg=config.ffmpeg, cache_dir=config.state_dir / "cache")
    # Chosen now, so that an FFmpeg that cannot do the work stops us before any job starts.
    choice = engine.choice
    for skipped in choice.skipped:
        version = skipped.capabilities.version if skipped.capabilities else None
        log.warning(
            "ffmpeg.skipped",
            path=str(skipped.path),
            version=version,
            missing=skipped.capabilities.missing() if skipped.capabilities else None,
            problem=skipped.problem,
        )
    log.info(
        "ffmpeg.chosen",
        path=str(choice.ffmpeg.path),
        version=choice.ffmpeg.version,
        origin=choice.origin,
        reason=choice.reason,
        older_forms=choice.ffmpeg.older_forms() or None,
    )
    return engine

"""What the NemoVideo engine keeps across steps (and restarts), typed.

The pipeline stores `Session.data`, `Media.data`, `Render.data` and `RenderStatus.data`
as JSON in the ledger. The engine reads and writes them only through these models:
`dump()` gives the plain JSON dict kept there, `load(data)` reads one back (keys an older
nemowatch wrote are accepted; unknown ones ignored), so only `engine.py` and `render.py`'s
entry points touch the dicts. The key names are the ledger's format: keep them stable
(the pipeline reads a render's `format`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

from pydantic import BaseModel, ConfigDict


class Kept(BaseModel):
    """Base: frozen, unknown keys ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    def dump(self) -> dict[str, Any]:
        """The plain JSON dict kept in the ledger."""
        return self.model_dump(mode="json")

    @classmethod
    def load(cls, data: Mapping[str, Any]) -> Self:
        """What `dump` wrote (or an older nemowatch did)."""
        return cls.model_validate(dict(data))


class NemoSessionState(Kept):
    """`Session.data`: the NemoVideo session a job edits in."""

    session_id: str | None = None
    task_id: str | None = None
    user_id: str | None = None
    job_id: str | None = None


class NemoMediaState(Kept):
    """`Media.data`: what the upload answer said about the file beyond `Media`'s fields."""

    file_type: str | None = None
    cdn_url: str | None = None
    hash: str | None = None
    session_state_applied: bool | None = None


class NemoRenderState(Kept):
    """`Render.data`: enough to find the render again after a restart (its id is
    `render_<job_id>_<n>`) and the export settings it was submitted with."""

    job_id: str
    session_id: str
    format: str
    quality: str
    n: int


class NemoRenderProgress(Kept):
    """`RenderStatus.data`: the video's URL when a poll showed it, else the /download path
    to try once polls kept saying `completed` without one."""

    url: str | None = None
    download: str | None = None

    def dump(self) -> dict[str, Any]:
        """Only what is known: `{}` while the render runs."""
        return self.model_dump(mode="json", exclude_none=True)

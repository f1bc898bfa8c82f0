"""The local engine's state between steps, typed. It crosses the engine seam (and sits in
the ledger) as JSON with the keys version 0.2.0 wrote, so a job a restarted daemon resumes
reads back what an earlier version left.

The instructions are read once per set (`reading`): planning the draft and choosing the
export both use the same reading.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from nemowatch.engines.base import Job, JSONObject, Render, Session
from nemowatch.language import Interpretation, interpret_all
from nemowatch.rules import EditSpec, ExportSpec


@lru_cache(maxsize=64)
def reading(instructions: tuple[str, ...]) -> Interpretation:
    """What a job's instructions ask for, read once however often it is asked."""
    return interpret_all(instructions)


@dataclass(frozen=True)
class LocalSession:
    """One job's edit: where its file and scratch folder are, and what it asks for."""

    job_id: str
    source: Path
    work_dir: Path
    instructions: tuple[str, ...]
    edit: EditSpec  # only the fields the rule sets: they win over the text, the rest must not
    export: ExportSpec  # likewise
    # several outputs per rule: the aspects they ask for besides the edit's (captions fit all)
    aspects: tuple[str, ...] = ()

    @classmethod
    def of_job(cls, job: Job) -> LocalSession:
        return cls(
            job_id=job.id,
            source=job.source,
            work_dir=job.work_dir,
            instructions=tuple(job.instructions),
            edit=EditSpec.model_validate(job.edit.model_dump(exclude_unset=True)),
            export=ExportSpec.model_validate(job.export.model_dump(exclude_unset=True)),
            aspects=tuple(frame.aspect for frame in job.frames if frame.aspect),
        )

    @classmethod
    def of(cls, session: Session) -> LocalSession:
        data = session.data
        return cls(
            job_id=str(data["job_id"]),
            source=Path(str(data["source"])),
            work_dir=Path(str(data["work_dir"])),
            instructions=tuple(str(text) for text in _list(data.get("instructions"))),
            edit=EditSpec.model_validate(data.get("edit") or {}),
            export=ExportSpec.model_validate(data.get("export") or {}),
            aspects=tuple(str(aspect) for aspect in _list(data.get("aspects"))),
        )

    def session(self) -> Session:
        return Session(id=f"local-{self.job_id}", data=self.dump())

    def dump(self) -> JSONObject:
        data: JSONObject = {
            "job_id": self.job_id,
            "source": str(self.source),
            "instructions": list(self.instructions),
            "edit": self.edit.model_dump(mode="json", exclude_unset=True),
            "export": self.export.model_dump(mode="json", exclude_unset=True),
            "work_dir": str(self.work_dir),
        }
        if self.aspects:  # only then: a session of one output keeps the keys it always had
            data["aspects"] = list(self.aspects)
        return data

    @property
    def reading(self) -> Interpretation:
        return reading(self.instructions)

    def edit_spec(self) -> EditSpec:
        """The edit asked for: the instructions' reading, overridden by the rule's `edit`."""
        return self.reading.edit.merged(self.edit)

    def export_spec(self, spec: ExportSpec) -> ExportSpec:
        """`spec` with what the instructions say about the export (e.g. "export 1080p")
        where `spec` leaves a field unset."""
        return spec.merged(dict(self.reading.export))


@dataclass(frozen=True)
class LocalRender:
    """A finished render in the job's work folder, and what its loudness pass did."""

    job_id: str
    path: Path
    format: str
    duration_ms: int
    loudness: str
    loudness_detail: str
    measured: Mapping[str, float] = field(default_factory=dict)
    subtitles: Path | None = None  # soft captions' .srt, to publish beside the result
    width: int | None = None  # the result's frame (verified before it is published)
    height: int | None = None
    # smart rendering: {"used": bool, "reason": why not, "copied_s", "encoded_s"}
    smart: JSONObject = field(default_factory=dict)

    @classmethod
    def of(cls, render: Render) -> LocalRender:
        data = render.data
        measured = data.get("measured")
        return cls(
            job_id=render.id.removeprefix("local-"),
            path=Path(str(data["path"])),
            format=str(data.get("format") or render.format or ""),
            duration_ms=_int(data.get("duration_ms")),
            loudness=str(data.get("loudness") or ""),
            loudness_detail=str(data.get("loudness_detail") or ""),
            measured=(
                {
                    str(key): float(value)
                    for key, value in measured.items()
                    if isinstance(value, int | float)
                }
                if isinstance(measured, dict)
                else {}
            ),
            subtitles=Path(render.subtitles) if render.subtitles else None,
            width=render.width,
            height=render.height,
            smart=dict(smart) if isinstance(smart := data.get("smart"), dict) else {},
        )

    def render(self) -> Render:
        return Render(
            id=f"local-{self.job_id}",
            format=self.format,
            data=self.dump(),
            subtitles=str(self.subtitles) if self.subtitles is not None else None,
            width=self.width,
            height=self.height,
        )

    def dump(self) -> JSONObject:
        return {
            "path": str(self.path),
            "format": self.format,
            "duration_ms": self.duration_ms,
            "loudness": self.loudness,
            "loudness_detail": self.loudness_detail,
            "measured": dict(self.measured),
            **({"smart": dict(self.smart)} if self.smart else {}),
        }


def _int(value: object) -> int:
    return round(value) if isinstance(value, int | float) else 0


def _list(value: object) -> list[object]:
    return list(value) if isinstance(value, list | tuple) else []

"""Hand the cut to an editor: a finished job's timelines (timelines.py) published beside
its first output, linking the source at its final place.

When: once the source is where it stays (archived under done/, put back, or left by
`nemowatch process`), and before the ledger records where it went (`Disposal` calls
`publish` just before it records `disposed`). The archive's name is only known once the
file is moved there (a name taken that day gives "talk (2).mp4"), so the timelines wait
for the move instead of guessing it; and a job killed between the move and the record is
disposed again at the next start (`Recovery`: the ledger's `undisposed`), which publishes
the timelines still missing.

Each timeline is published as an output is (`outbox.publish`: a hidden name in the
outbox, written and read back through its adapter, then linked under its final name, the
rule's `on_conflict` applying), and recorded in the job's `published` as "timeline
<format>", so `jobs` lists it and a resumed job writes only the missing ones.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path, PurePosixPath

import structlog

from nemowatch import outbox
from nemowatch.cloudcut import Uploaded
from nemowatch.config import Rule
from nemowatch.config.sidecars import combine, read_sidecar
from nemowatch.engines.base import Draft
from nemowatch.errors import MediaError, NemowatchError
from nemowatch.language import interpret_all
from nemowatch.ledger import JobRecord, Ledger

log = structlog.get_logger("nemowatch.pipeline")

PREFIX = "timeline "  # a timeline's name among a job's published outputs


def wanted(
    rule: Rule,
    record: JobRecord | None = None,
    *,
    batch_folder: Path | None = None,
    revision_file: Path | None = None,
) -> tuple[str, ...]:
    """The formats a job asks for: its `export.timelines` (a sidecar's over the rule's),
    else its instructions' ("export a Premiere timeline"). Its sidecars are read where
    they went with their source, a batch's instructions.txt in `batch_folder` (where the
    folder went) or where it was claimed, a revision's files (the first job's sidecars,
    the earlier revisions', then its own at `revision_file`, where it went) where they
    were kept; one that cannot be read any more counts for nothing."""
    sidecars = []
    engine = record.engine if record is not None else "local"
    batch = record.batch if record is not None else None
    if batch is not None and batch.instructions is not None:
        for folder in (batch_folder, batch.claimed):
            if folder is not None and (folder / batch.instructions).is_file():
                with contextlib.suppress(OSError, NemowatchError):
                    sidecars.append(
                        read_sidecar(folder / batch.instructions, rule=rule, engine=engine)
                    )
                break
    places: list[Path | None] = []
    if record is not None:
        places += [Path(item.get("disposed") or item["claimed"]) for item in record.sidecars]
        if record.revision is not None:
            places += [*record.revision.earlier, revision_file]
    for where in places:
        with contextlib.suppress(OSError, NemowatchError):
            if where is None:
                continue
            sidecars.append(read_sidecar(where, rule=rule, engine=engine))
    instructions, _, export = combine(rule, tuple(sidecars))
    if export.timelines:
        return tuple(export.timelines)
    found = interpret_all(instructions).export.get("timelines")
    return tuple(str(name) for name in found) if isinstance(found, tuple) else ()


def is_timeline(name: str) -> bool:
    return name.startswith(PREFIX)


def publish(
    ledger: Ledger,
    record: JobRecord,
    rule: Rule,
    source: Path,
    *,
    after_each: Callable[[], None] | None = None,
) -> tuple[JobRecord, dict[str, list[str]]]:
    """Publish the timelines `rule` asks for that `record` has not published yet, linking
    `source` (where it stays; for a revision, where its revision file went: the timelines
    link the source it edits, the first job's). Returns the record as the ledger now has
    it, and what each format left out (of all wanted, published now or before), for the report.

    `after_each` runs after each timeline is recorded (the crash tests' hook)."""
    record = ledger.get(record.id)  # as the ledger has it: where the sidecars went
    if record.revision is not None:  # `source` is where its revision file went
        formats = wanted(rule, record, revision_file=source)
        source = record.revision.source  # what it edits: the first job's source, kept
    else:
        formats = wanted(rule, record, batch_folder=source if source.is_dir() else None)
    first = next((Path(path) for name, path in record.published.items() if path and not
                  is_timeline(name)), record.output)  # fmt: skip
    if not formats or record.draft is None or first is None:
        return record, {}
    from nemowatch import timelines  # the local engine and PyAV: only when one is wanted

    missing = timelines.missing_package(formats)
    if missing is not None:  # asked by a sidecar on a machine without the extra
        raise MediaError(
            f"timelines ({', '.join(formats)}) need {missing}", hint=timelines.INSTALL_HINT
        )
    draft = Draft.from_json(record.draft)
    uploaded = Uploaded.of_media(record.media)  # how a nemo job's draft names its source
    left: dict[str, list[str]] = {}
    failed: list[str] = []
    for fmt in formats:
        temp = None
        try:
            built = timelines.build(draft, fmt, source=source, render=first, uploaded=uploaded)
            extra = [] if source.exists() else [f"the source: it is no longer at {source}"]
            left[fmt] = [*extra, *built.left_out]
            name = PREFIX + fmt
            if name in record.published:
                continue  # published by an earlier run
            final = first.with_suffix(timelines.FORMATS[fmt][1])
            relative = PurePosixPath(final.relative_to(rule.outbox)) if final.is_relative_to(
                rule.outbox) else PurePosixPath(final.name)  # fmt: skip
            temp = outbox.temp_path(rule.outbox, relative, outbox.temp_owner(record))
            published = outbox.already_published(temp, final) if temp.exists() else None
            if published is None:
                timelines.write(built, fmt, temp)
                published = outbox.publish(temp, final, rule.on_conflict)
        except Exception as error:  # one format's failure is that format's alone
            if temp is not None:
                with contextlib.suppress(OSError):
                    temp.unlink(missing_ok=True)
            log.warning(
                "outbox.timeline_not_written",
                format=fmt,
                error=str(error) or type(error).__name__,
                exc_info=not isinstance(error, OSError | NemowatchError),  # a bug: its trace
            )
            failed.append(f"{fmt}: {error}")
            continue  # the other formats are still written
        pairs = [*record.published.items(), (name, str(published) if published else None)]
        record = ledger.update(record.id, published=pairs)
        temp.unlink(missing_ok=True)  # only now: it told a restart the timeline was published
        log.info("outbox.timeline", format=fmt, output=str(published) if published else None)
        if after_each is not None:
            after_each()
    if failed:
        raise MediaError("; ".join(failed), hint="the video and the other timelines are published")
    return record, left

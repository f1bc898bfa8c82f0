"""The footage a job edits: the source itself when it is a video, else a video made of it
(a photo's shot, an animation's clip, a sound file's audiogram; see `inputs.py`).

Made once per job, in its work folder, under a name of its own and then renamed, so a half
written file is never taken for footage; made again when it is missing (a job resumed
after its work folder was emptied).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from nemowatch.engines.base import Draft
from nemowatch.engines.formats import is_footage_name
from nemowatch.engines.local import batch, inputs
from nemowatch.engines.local.ffmpeg import run_ffmpeg
from nemowatch.engines.local.timeline import output_size
from nemowatch.errors import EngineError, MediaError
from nemowatch.files import folder_entries
from nemowatch.intake import judge_folder
from nemowatch.probe import MediaKind, Probe, kind_of, probe
from nemowatch.rules import EditSpec, ExportSpec

_HEAD_BYTES = 1 << 18  # a JPEG's EXIF header is within its first 64 KiB; read a little more
_PHOTO_HINT = (
    "check that the picture opens in an image viewer, then save or export it again (as JPEG"
    " or PNG) and drop the new copy into the inbox"
)
_SOUND_HINT = (
    "check that the file plays, then export it again (as MP3, M4A or WAV) and drop the new"
    " copy into the inbox"
)
_ANIMATION_HINT = (
    "check that the animation plays in a browser; an animated WebP needs FFmpeg 8 or newer"
    " (`nemowatch doctor` shows the one in use): convert it to GIF or MP4 otherwise"
)


@dataclass(frozen=True)
class Footage:
    """What a job edits, and what it was made from."""

    path: Path  # the source itself (a video), or the footage made of it
    kind: MediaKind  # the source's kind
    parts: tuple[batch.Part, ...] = ()  # a combined batch: its files, in the order they play
    soundtrack: str | None = None  # ... and the one played under them all

    def parted(self, draft: Draft) -> Draft:
        """`draft` of this footage with its parts (a combined batch's files: its timelines
        link each), or as it is."""
        return batch.with_parts(draft, self.parts, self.soundtrack)


async def footage_of(
    source: Path,
    *,
    work_dir: Path,
    edit: EditSpec,
    export: ExportSpec,
    ffmpeg: Path,
) -> Footage:
    """The video the edit works on. Raises `MediaError` naming the file when it cannot be
    read as what it is."""
    if source.is_dir() and not source.is_symlink():  # a batch's folder (`batch: combine`)
        return await _combined(source, work_dir=work_dir, edit=edit, export=export, ffmpeg=ffmpeg)
    facts = await asyncio.to_thread(probe, source)
    kind = await asyncio.to_thread(kind_of, source, facts)
    original_name = dropped_name(source)
    if kind is MediaKind.VIDEO:
        return Footage(source, kind)
    target = work_dir / inputs.FOOTAGE_NAME
    if target.is_file():
        return Footage(target, kind)
    # written under a name of its own, then renamed: a half-written file is never footage
    partial = work_dir / f".footage.{uuid.uuid4().hex}.partial.mkv"
    if kind is MediaKind.PHOTO:
        arguments = await asyncio.to_thread(_photo_arguments, source, partial, facts, edit)
        hint = _PHOTO_HINT
        what = "a photo"
    elif kind is MediaKind.ANIMATION:
        arguments = inputs.animation_arguments(source, partial)
        hint = _ANIMATION_HINT
        what = "an animation"
    else:
        cover = await _cover(source, original_name, facts, work_dir, edit, ffmpeg)
        width, height = output_size(*inputs.AUDIOGRAM_SIZE, edit.aspect, export)
        seconds = (facts.audio.duration if facts.audio else None) or facts.duration
        arguments = inputs.audiogram_arguments(
            source,
            partial,
            size=inputs.audiogram_size((width, height)),
            seconds=seconds,
            settings=edit.audiogram,
            cover=cover,
        )
        hint = _SOUND_HINT
        what = "a sound file"
    try:
        await run_ffmpeg(arguments, ffmpeg=ffmpeg)
        os.replace(partial, target)
    except EngineError as exc:
        if exc.retryable:
            raise  # killed from outside, or the disk is full: not the file's fault
        raise MediaError(
            f"{original_name} could not be made into a video ({what} that FFmpeg cannot"
            f" decode): {_first_line(str(exc))}",
            hint=hint,
        ) from exc
    except OSError as exc:
        raise EngineError(f"could not write the footage {target}: {exc}") from exc
    finally:
        partial.unlink(missing_ok=True)
    return Footage(target, kind)


async def _combined(
    folder: Path, *, work_dir: Path, edit: EditSpec, export: ExportSpec, ffmpeg: Path
) -> Footage:
    """A folder's files joined into one video (see `batch.py`)."""
    target = work_dir / inputs.FOOTAGE_NAME
    if target.is_file():
        return _with_parts(Footage(target, MediaKind.VIDEO), work_dir)
    shown = dropped_name(folder)
    names = await asyncio.to_thread(_batch_files, folder)
    found: list[tuple[Path, Probe, MediaKind]] = []
    for name in names:
        path = folder / name
        try:
            facts = await asyncio.to_thread(probe, path)
            found.append((path, facts, await asyncio.to_thread(kind_of, path, facts)))
        except MediaError as error:
            raise MediaError(f"in the batch {shown}: {error}", hint=error.hint) from error
    if not found:
        raise MediaError(
            f"the batch {shown} holds no video, photo or sound file to join",
            hint="put the files in the folder, then move it back into the inbox",
        )
    sounds = [item for item in found if item[2] is MediaKind.SOUND]
    pictures = [item for item in found if item[2] is not MediaKind.SOUND]
    if len(sounds) > 1:
        raise MediaError(
            f"the batch {shown} holds {len(sounds)} sound files"
            f" ({', '.join(path.name for path, _, _ in sounds)}); a combined batch takes one,"
            " as its soundtrack",
            hint="keep one sound file in the folder (or use batch: each, a video of each"
            " file), then move the folder back into the inbox",
        )
    if not pictures:  # one sound file alone: its audiogram
        return await footage_of(
            sounds[0][0], work_dir=work_dir, edit=edit, export=export, ffmpeg=ffmpeg
        )
    soundtrack = sounds[0] if sounds else None
    shot = batch.photo_seconds(
        sum(1 for item in pictures if item[2] is MediaKind.PHOTO),
        videos_seconds=sum(
            _seconds(facts) for _, facts, kind in pictures if kind is not MediaKind.PHOTO
        ),
        soundtrack=_seconds(soundtrack[1]) if soundtrack else None,
        longest=edit.max_duration,
        still=edit.still.duration,
    )
    shot_edit = edit.model_copy(update={"still": edit.still.model_copy(update={"duration": shot})})
    pieces: list[batch.Piece] = []
    parts = [
        batch.Part(path.name, shot if kind is MediaKind.PHOTO else _seconds(facts),
                   still=kind is MediaKind.PHOTO)
        for path, facts, kind in pictures
    ]  # fmt: skip
    soundtrack_name = soundtrack[0].name if soundtrack else None
    partial = work_dir / f".footage.{uuid.uuid4().hex}.partial.mkv"
    made: list[Path] = [partial]
    try:
        for index, (path, facts, kind) in enumerate(pictures):
            if kind is MediaKind.PHOTO:
                still = work_dir / f".shot-{index}.{uuid.uuid4().hex}.partial.mkv"
                made.append(still)
                arguments = await asyncio.to_thread(_photo_arguments, path, still, facts, shot_edit)
                await _run_for(arguments, ffmpeg, f"{shown}/{path.name}", "a photo", _PHOTO_HINT)
                pieces.append(batch.Piece(still, shot, has_audio=False))
            else:
                pieces.append(batch.Piece(path, _seconds(facts), facts.audio is not None))
        arguments = batch.combine_arguments(
            pieces,
            partial,
            size=_frame(pictures[0][1]),
            soundtrack=soundtrack[0] if soundtrack else None,
        )
        await _run_for(arguments, ffmpeg, shown, "a batch", _BATCH_HINT)
        # before the footage: footage found made has its parts beside it
        listed = batch.parts_metadata(parts, soundtrack_name)
        (work_dir / _PARTS_NAME).write_text(json.dumps(listed), encoding="utf-8")
        os.replace(partial, target)
    except OSError as exc:
        raise EngineError(f"could not write the footage {target}: {exc}") from exc
    finally:
        for path in made:
            path.unlink(missing_ok=True)
    return Footage(target, MediaKind.VIDEO, tuple(parts), soundtrack_name)


_PARTS_NAME = "footage.parts.json"  # beside a combined batch's footage: what it joins


def _with_parts(footage: Footage, work_dir: Path) -> Footage:
    """Footage made before, with the parts written beside it (none when unreadable)."""
    try:
        listed = json.loads((work_dir / _PARTS_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return footage
    parts, soundtrack = batch.parts_of(listed if isinstance(listed, dict) else {})
    return Footage(footage.path, footage.kind, parts, soundtrack)


_BATCH_HINT = (
    "check that each file in the folder plays, replace any that does not, then move the"
    " folder back into the inbox"
)


async def _run_for(arguments: list[str], ffmpeg: Path, name: str, what: str, hint: str) -> None:
    """Run FFmpeg on a file of a batch; its failure is the file's (MediaError naming it)."""
    try:
        await run_ffmpeg(arguments, ffmpeg=ffmpeg)
    except EngineError as exc:
        if exc.retryable:
            raise
        raise MediaError(
            f"{name} could not be made into a video ({what} that FFmpeg cannot decode):"
            f" {_first_line(str(exc))}",
            hint=hint,
        ) from exc


def _batch_files(folder: Path) -> tuple[str, ...]:
    """The files of a batch's folder to join, in name order: those of a kind the engine
    reads, by their extension (not its instructions.txt, nor a note or a PDF: those go
    with the folder as they are)."""
    entries = folder_entries(folder) or []
    return tuple(name for name in judge_folder(entries, ()).files if is_footage_name(name))


def _seconds(facts: Probe) -> float:
    picture = facts.video
    seconds = (picture.duration if picture else None) or facts.duration
    if picture is None and facts.audio is not None:
        seconds = facts.audio.duration or seconds
    return float(seconds or 0.0)


def _frame(facts: Probe) -> tuple[int, int]:
    """The combined video's frame: the first picture's shape, at most PHOTO_MAX_SIDE."""
    picture = facts.video
    assert picture is not None
    return inputs.photo_size(picture.width or 1280, picture.height or 720)


def _photo_arguments(source: Path, target: Path, facts: Probe, edit: EditSpec) -> list[str]:
    """A photo's arguments (reads the file: its EXIF header and its digest)."""
    assert facts.video is not None  # a photo has a picture
    try:
        data = source.read_bytes()
    except OSError as exc:
        raise MediaError(f"cannot read {source.name}: {exc.strerror or exc}") from exc
    orientation = inputs.exif_orientation(data[:_HEAD_BYTES]) if facts.video.codec == "mjpeg" else 1
    width, height = facts.video.width, facts.video.height
    if not (width and height):
        raise MediaError(f"{source.name} states no picture size", hint=_PHOTO_HINT)
    size = inputs.photo_size(*inputs.upright_size(width, height, orientation))
    return inputs.photo_arguments(
        source,
        target,
        size=size,
        orientation=orientation,
        still=edit.still,
        motion=inputs.motion_for(hashlib.sha256(data).digest()),
    )


async def _cover(
    source: Path,
    original_name: str,
    facts: Probe,
    work_dir: Path,
    edit: EditSpec,
    ffmpeg: Path,
) -> Path | None:
    """The audiogram's background picture: the rule's, the embedded one, or one beside."""
    named = edit.audiogram.cover
    if named is not None:
        path = Path(named).expanduser()
        if not path.is_file():
            raise MediaError(
                f"there is no cover picture at {path.absolute()} (the rule's audiogram.cover)",
                hint="put the picture there, or change the rule's `audiogram.cover`",
            )
        return path.absolute()
    if any(stream.kind == "image" for stream in facts.streams):
        target = work_dir / inputs.COVER_NAME
        if target.is_file():
            return target
        partial = work_dir / f".cover.{uuid.uuid4().hex}.partial.png"
        try:
            await run_ffmpeg(inputs.cover_arguments(source, partial), ffmpeg=ffmpeg)
            os.replace(partial, target)
            return target
        except EngineError as exc:
            if exc.retryable:
                raise
            # an unreadable cover is no reason to fail the sound: fall back below
        finally:
            partial.unlink(missing_ok=True)
    return await asyncio.to_thread(inputs.cover_beside, source, original_name)


def dropped_name(source: Path) -> str:
    """The name the file was dropped under (a claimed file is `processing/<job>__<name>`)."""
    if source.parent.name == "processing" and "__" in source.name:
        return source.name.split("__", 1)[1]
    return source.name


def _first_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else text

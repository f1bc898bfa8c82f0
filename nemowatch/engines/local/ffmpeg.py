"""Finding an FFmpeg binary that can do our work, and running it.

The one place the local engine starts processes: errors of the operating system and
FFmpeg's exit status are translated into `EngineError` here.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import imageio_ffmpeg  # type: ignore[import-untyped]

from nemowatch.errors import EngineError

ENVIRONMENT_VARIABLE = "NEMOWATCH_FFMPEG"
REQUIRED_ENCODERS = ("libx264", "aac")
REQUIRED_FILTERS = ("drawtext", "loudnorm", "silencedetect", "sidechaincompress")
STDERR_TAIL_LINES = 20

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
_DETECTION_TIMEOUT = 20.0  # seconds for `ffmpeg -encoders` and friends


def find_ffmpeg(
    explicit: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> Path:
    """The FFmpeg binary to use: `explicit` > $NEMOWATCH_FFMPEG > detection.

    Detection takes a system `ffmpeg` on PATH when it has every encoder and filter we
    need, else the binary bundled with the imageio-ffmpeg wheel. Its answer is cached.
    """
    environ = os.environ if environ is None else environ
    chosen = explicit or environ.get(ENVIRONMENT_VARIABLE)
    if chosen:
        found = shutil.which(os.fspath(chosen), path=environ.get("PATH"))
        if found is None:
            source = "the given path" if explicit else f"${ENVIRONMENT_VARIABLE}"
            raise EngineError(
                f"ffmpeg not found at {os.fspath(chosen)!r} ({source})",
                hint="point it at an executable ffmpeg, or unset it to use the bundled one",
            )
        return Path(found)
    return _detect(environ.get("PATH"))


def missing_features(encoders_listing: str, filters_listing: str) -> list[str]:
    """What of REQUIRED_ENCODERS and REQUIRED_FILTERS the `-encoders`/`-filters` output lacks."""
    encoders = _listed_names(encoders_listing)
    filters = _listed_names(filters_listing)
    missing = [name for name in REQUIRED_ENCODERS if name not in encoders]
    missing += [name for name in REQUIRED_FILTERS if name not in filters]
    return missing


def parse_major_version(version_output: str) -> int | None:
    """FFmpeg's major version from `ffmpeg -version`; None for builds from git master."""
    match = re.search(r"ffmpeg version n?(\d+)\.", version_output)
    return int(match.group(1)) if match else None


@functools.cache
def major_version(ffmpeg: Path) -> int | None:
    """The major version of the binary `ffmpeg` (None: unknown, assume recent)."""
    return parse_major_version(_capture(ffmpeg, "-version"))


async def run_ffmpeg(arguments: Sequence[str], *, ffmpeg: Path) -> str:
    """Run `ffmpeg` with `arguments` and return what it wrote to stderr.

    Raises `EngineError` with the exit status and the last lines of stderr when it fails.
    If the awaiting task is cancelled, the process is killed before the cancellation
    propagates; on Linux it is also killed when the daemon dies (even by SIGKILL).
    """
    try:
        process = await asyncio.create_subprocess_exec(
            os.fspath(ffmpeg),
            *arguments,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=_die_with_parent(),
        )
    except OSError as exc:
        raise EngineError(f"could not start ffmpeg ({ffmpeg}): {exc.strerror or exc}") from exc
    try:
        _, stderr_bytes = await process.communicate()
    except BaseException:
        # Cancelled (daemon stopping, job abandoned): an orphaned encoder would keep
        # burning CPU and writing a file nobody will read.
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        raise
    stderr = stderr_bytes.decode("utf-8", errors="replace")
    if process.returncode != 0:
        raise _failure(process.returncode, stderr, output=arguments[-1] if arguments else None)
    return stderr


def stderr_tail(stderr: str, lines: int = STDERR_TAIL_LINES) -> str:
    """The last `lines` non-blank lines of FFmpeg's stderr."""
    kept = [line.rstrip() for line in stderr.splitlines() if line.strip()]
    return "\n".join(kept[-lines:])


def _failure(returncode: int | None, stderr: str, *, output: str | None = None) -> EngineError:
    tail = stderr_tail(stderr) or "(ffmpeg wrote nothing to stderr)"
    full = _disk_full(returncode, stderr, output)
    if full is not None:
        return full
    if returncode is not None and returncode < 0:
        # Killed by a signal from outside (out of memory, an operator): worth another try.
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return EngineError(f"ffmpeg was killed by {name}:\n{tail}", retryable=True)
    return EngineError(f"ffmpeg exited with status {returncode}:\n{tail}")


def _disk_full(returncode: int | None, stderr: str, output: str | None) -> EngineError | None:
    """The failure as "no room to write", when it is one: the disk (or quota) is full, or
    the file outgrew the size limit set for nemowatch (SIGXFSZ kills the encoder)."""
    if returncode == -signal.SIGXFSZ:
        reason = "the file reached the file-size limit set for nemowatch (ulimit -f)"
    elif "No space left on device" in stderr or "Disk quota exceeded" in stderr:
        reason = "no space left on the disk"
    else:
        return None
    where = f" {output}" if output and os.path.isabs(output) else ""
    return EngineError(
        f"ffmpeg could not finish writing{where}: {reason}",
        retryable=True,
        hint="free some disk space (or raise the file-size limit, e.g. LimitFSIZE= in the"
        " service), then move the file back into the inbox",
    )


@functools.cache
def _detect(search_path: str | None) -> Path:
    system = shutil.which("ffmpeg", path=search_path)
    if system is not None and _is_capable(Path(system)):
        return Path(system)
    try:
        return Path(imageio_ffmpeg.get_ffmpeg_exe())
    except RuntimeError as exc:
        raise EngineError(
            "no usable ffmpeg: the system has none with "
            f"{', '.join(REQUIRED_ENCODERS + REQUIRED_FILTERS)}, and the bundled one is missing",
            hint=f"install ffmpeg, reinstall nemowatch, or set ${ENVIRONMENT_VARIABLE}",
        ) from exc


def _is_capable(ffmpeg: Path) -> bool:
    try:
        encoders = _capture(ffmpeg, "-encoders")
        filters = _capture(ffmpeg, "-filters")
    except EngineError:
        return False
    return not missing_features(encoders, filters)


def _capture(ffmpeg: Path, option: str) -> str:
    try:
        completed = subprocess.run(
            [os.fspath(ffmpeg), "-hide_banner", option],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=_DETECTION_TIMEOUT,
            check=True,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise EngineError(f"could not run {ffmpeg} {option}: {exc}") from exc
    return completed.stdout.decode("utf-8", errors="replace")


def _listed_names(listing: str) -> set[str]:
    # Lines look like " V....D libx264   libx264 H.264 ..." (encoders) or
    # " T. drawtext   V->V   Draw text ..." (filters): flags, then the name.
    names = set()
    for line in listing.splitlines():
        fields = line.split()
        if len(fields) >= 2 and not fields[0].startswith("="):
            names.add(fields[1])
    return names


def _die_with_parent() -> Callable[[], None] | None:
    """A preexec function that makes the child die with us, or None where unsupported."""
    libc = _libc()
    if libc is None:
        return None
    prctl = libc.prctl
    parent = os.getpid()

    def preexec() -> None:
        # Runs in the child between fork and exec: no imports, no allocation-heavy work.
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the request took effect
            os.kill(os.getpid(), signal.SIGKILL)

    return preexec


@functools.cache
def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None

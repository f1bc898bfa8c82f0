"""Finding an FFmpeg binary that can do our work, and running it.

The one place the local engine starts processes: errors of the operating system and
FFmpeg's exit status are translated into `EngineError` here.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import imageio_ffmpeg  # type: ignore[import-untyped]

from nemowatch.errors import EngineError

ENVIRONMENT_VARIABLE = "NEMOWATCH_FFMPEG"
REQUIRED_ENCODERS = ("libx264", "aac", "libvpx-vp9", "libopus", "gif")
# Every option the graph builders give each filter (tests/unit/test_ffmpeg_capabilities.py
# builds real graphs and checks that each filter and option they use is listed here).
# Filters used without named options are listed with none.
REQUIRED_FILTER_OPTIONS: dict[str, tuple[str, ...]] = {
    "aevalsrc": ("exprs", "s", "d", "c"),
    "afade": ("t", "st", "d"),
    "afftdn": ("nr", "nf", "tn"),
    "aformat": ("sample_fmts", "channel_layouts"),
    "aloop": ("loop", "size"),
    "alimiter": ("limit", "attack", "release", "level", "latency"),
    "amix": ("inputs", "duration", "dropout_transition", "normalize"),
    "anull": (),
    "anullsink": (),
    "areverse": (),
    "apad": ("whole_dur",),
    "aresample": (),
    "asplit": (),
    "asetnsamples": ("n", "p"),
    "asetpts": (),
    "astats": ("metadata", "reset", "measure_perchannel", "measure_overall"),
    "atempo": (),
    "atrim": ("start", "end"),
    "ametadata": ("mode", "key"),
    "biquad": ("b0", "b1", "b2", "a0", "a1", "a2"),
    "boxblur": (),
    "colorchannelmixer": ("aa",),
    "colortemperature": ("temperature",),
    "concat": ("n", "v", "a"),
    "crop": (),
    "eq": ("brightness", "contrast", "saturation"),
    "ebur128": ("metadata", "peak", "framelog"),
    "drawtext": (
        "fontfile",
        "textfile",
        "expansion",
        "fontsize",
        "fontcolor",
        "borderw",
        "bordercolor",
        "shadowx",
        "shadowy",
        "shadowcolor",
        "line_spacing",
        "x",
        "y",
    ),
    "fade": ("t", "st", "d"),
    "format": (),
    "fps": (),
    "highpass": ("f",),
    "hqdn3d": (),
    "loop": ("loop", "size"),
    "lowpass": ("f",),
    "metadata": ("mode", "key"),
    "overlay": ("x", "y"),
    "pad": ("color",),
    "palettegen": ("max_colors", "stats_mode"),
    "pan": (),
    "paletteuse": ("new", "dither", "bayer_scale"),
    "reverse": (),
    "scale": ("w", "h", "flags", "force_original_aspect_ratio", "force_divisible_by"),
    "select": (),
    "setpts": (),
    "setsar": (),
    "silencedetect": ("n", "d"),
    "split": (),
    "trim": ("start", "end"),
    "volume": ("eval", "volume"),
    "vstack": ("inputs",),
    # photos and sound files made into footage (inputs.py)
    "color": ("c", "s", "r"),
    "hflip": (),
    "sidedata": ("mode", "type"),
    "showfreqs": ("s", "rate", "mode", "ascale", "fscale", "colors"),
    "showwaves": ("s", "mode", "rate", "scale", "draw", "colors"),
    "transpose": ("dir",),
    "vflip": (),
    "zoompan": ("z", "x", "y", "d", "s", "fps"),
}
# Options of the ffmpeg command itself that every run may be given (`-progress pipe:1
# -stats_period 0.2` report a render's progress; -stats_period arrived in FFmpeg 4.4).
# (-noautorotate: a photo is turned upright by its EXIF header, by the builders themselves)
REQUIRED_GLOBAL_OPTIONS = ("progress", "stats_period", "autorotate")
# Options the builders use when the binary has them, with an older form otherwise.
# drawtext's text_align (FFmpeg 6.1) centres each line of a text: without it, every line
# is drawn by a drawtext of its own.
OPTIONAL_FILTER_OPTIONS: dict[str, tuple[str, ...]] = {"drawtext": ("text_align",)}
STDERR_TAIL_LINES = 20
# A progress report on stdout, five times a second (-stats_period: FFmpeg 4.4 and later).
PROGRESS_ARGUMENTS = ("-progress", "pipe:1", "-stats_period", "0.2")

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
_DETECTION_TIMEOUT = 20.0  # seconds for `ffmpeg -encoders` and friends


@dataclass(frozen=True)
class Capabilities:
    """What one FFmpeg binary can do, as far as the local engine cares."""

    path: Path
    version: str  # as `-version` prints it: "5.1.9-0+deb12u1", "n9.0.2-17-g2a571b6068-..."
    encoders: frozenset[str]
    filters: frozenset[str]
    options: Mapping[str, frozenset[str]]  # filter -> its option names (the filters we use)
    global_options: frozenset[str] = frozenset()  # of the ffmpeg command: "progress", ...

    @property
    def major(self) -> int | None:
        """The major version; None for builds from git master (assumed recent)."""
        return parse_major_version(f"ffmpeg version {self.version} ")

    @property
    def text_align(self) -> bool:
        """drawtext can centre each line of a text (`text_align`, FFmpeg 6.1)."""
        return "text_align" in self.options.get("drawtext", frozenset())

    @property
    def option_files(self) -> bool:
        """`-/filter_complex FILE` reads an option's value from a file (FFmpeg 7); older
        binaries have `-filter_complex_script FILE` instead."""
        return self.major is None or self.major >= 7

    def missing(self) -> list[str]:
        """What the builders need and this binary lacks: `libx264`, `drawtext`,
        `drawtext:textfile` (an empty list: it can do everything)."""
        missing = [name for name in REQUIRED_ENCODERS if name not in self.encoders]
        missing += [
            f"-{name}" for name in REQUIRED_GLOBAL_OPTIONS if name not in self.global_options
        ]
        for name, options in REQUIRED_FILTER_OPTIONS.items():
            if name not in self.filters:
                missing.append(name)
                continue
            known = self.options.get(name, frozenset())
            missing += [f"{name}:{option}" for option in options if option not in known]
        return missing

    def older_forms(self) -> list[str]:
        """Optional options this binary lacks (the builders emit an older form instead)."""
        return [
            f"{name}:{option}"
            for name, options in OPTIONAL_FILTER_OPTIONS.items()
            for option in options
            if option not in self.options.get(name, frozenset())
        ]


@dataclass(frozen=True)
class Candidate:
    """One FFmpeg binary that could be used, and the verdict on it."""

    path: Path
    origin: str  # "setting", "$NEMOWATCH_FFMPEG", "system" or "bundled"
    capabilities: Capabilities | None  # None: it could not be run
    problem: str | None  # why it cannot be used (None: usable)

    @property
    def usable(self) -> bool:
        return self.problem is None


@dataclass(frozen=True)
class Choice:
    """The FFmpeg the local engine uses, why, and the candidates passed over before it."""

    ffmpeg: Capabilities
    origin: str
    reason: str
    skipped: tuple[Candidate, ...] = ()


def find_ffmpeg(
    explicit: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> Path:
    """The path of the FFmpeg binary to use (see `choose_ffmpeg`)."""
    return choose_ffmpeg(explicit, environ=environ).ffmpeg.path


def choose_ffmpeg(
    explicit: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> Choice:
    """The FFmpeg binary to use: `explicit` > $NEMOWATCH_FFMPEG > the system's `ffmpeg` >
    the binary bundled with the imageio-ffmpeg wheel.

    An explicit or environment choice must be able to do everything (else `EngineError`
    says what it lacks); otherwise the first capable candidate wins and the others before
    it are returned as skipped, each with its reason.
    """
    environ = os.environ if environ is None else environ
    pinned = explicit or environ.get(ENVIRONMENT_VARIABLE)
    if pinned:
        origin = "setting" if explicit else f"${ENVIRONMENT_VARIABLE}"
        named_by = "the config's ffmpeg: setting" if explicit else origin
        candidate = _pinned_candidate(
            os.fspath(pinned), origin, environ.get("PATH"), cache=capability_cache(environ)
        )
        if candidate.capabilities is None or candidate.problem is not None:
            raise EngineError(
                f"the ffmpeg chosen by {named_by} ({candidate.path}) cannot be used:"
                f" {candidate.problem}",
                hint="point it at an FFmpeg 5.1 or newer built with libx264, libvpx, libopus"
                " and libfreetype, or unset it to let nemowatch choose (`nemowatch doctor`)",
            )
        return Choice(candidate.capabilities, origin, f"chosen by {origin}")
    skipped: list[Candidate] = []
    for candidate in detected_candidates(environ.get("PATH"), cache=capability_cache(environ)):
        if candidate.usable and candidate.capabilities is not None:
            reason = (
                "the system's ffmpeg has everything needed"
                if candidate.origin == "system"
                else "the bundled ffmpeg (the system has no capable one)"
            )
            return Choice(candidate.capabilities, candidate.origin, reason, tuple(skipped))
        skipped.append(candidate)
    reasons = "; ".join(f"{item.path}: {item.problem}" for item in skipped) or "none found"
    raise EngineError(
        f"no usable ffmpeg ({reasons})",
        hint=f"install ffmpeg 5.1 or newer, reinstall nemowatch, or set ${ENVIRONMENT_VARIABLE}",
    )


def capability_cache(environ: Mapping[str, str]) -> Path | None:
    """Where what each FFmpeg binary can do is kept between runs: $XDG_CACHE_HOME (or
    ~/.cache)/nemowatch/ffmpeg. Probing one takes a dozen runs of it (about 0.6 s of CPU),
    and every daemon start, `process` and `doctor` chooses again."""
    base = environ.get("XDG_CACHE_HOME") or (
        os.path.join(environ["HOME"], ".cache") if environ.get("HOME") else None
    )
    return Path(base) / "nemowatch" / "ffmpeg" if base else None


def detected_candidates(search_path: str | None, *, cache: Path | None = None) -> list[Candidate]:
    """The system's `ffmpeg` on `search_path` (if any) and the bundled one, probed (what
    a binary can do is read from `cache` when it was probed before)."""
    candidates = []
    system = shutil.which("ffmpeg", path=search_path)
    if system is not None:
        candidates.append(_candidate(Path(system), "system", cache))
    try:
        bundled = Path(imageio_ffmpeg.get_ffmpeg_exe())
    except RuntimeError as exc:
        candidates.append(Candidate(Path("imageio-ffmpeg"), "bundled", None, f"missing: {exc}"))
    else:
        if system is None or bundled.resolve() != Path(system).resolve():
            candidates.append(_candidate(bundled, "bundled", cache))
    return candidates


def probe_ffmpeg(ffmpeg: Path, *, cache: Path | None = None) -> Capabilities:
    """Run `ffmpeg` to learn its version, encoders, filters and our filters' options.

    Cached by path, inode, modification time and size, in the process and in `cache` (a
    folder) when given: a binary replaced by an upgrade is probed again, and so is every
    binary when this version of nemowatch asks about other filters. Raises `EngineError`
    when it cannot be run.
    """
    try:
        status = ffmpeg.stat()
    except OSError as exc:
        raise EngineError(f"cannot run {ffmpeg}: {exc.strerror or exc}") from exc
    identity = f"{ffmpeg}|{status.st_ino}|{status.st_mtime_ns}|{status.st_size}|{_ASKED}"
    kept = _read_kept(cache, identity) if cache is not None else None
    if kept is not None and kept.path == ffmpeg:
        return kept
    capabilities = _probe(ffmpeg, status.st_mtime_ns, status.st_size)
    if cache is not None:
        _keep(cache, identity, capabilities)
    return capabilities


# What this version asks of a binary: a cached probe made with other questions is stale.
_ASKED = hashlib.sha256(
    json.dumps(
        [REQUIRED_FILTER_OPTIONS, OPTIONAL_FILTER_OPTIONS, REQUIRED_GLOBAL_OPTIONS],
        sort_keys=True,
        default=list,
    ).encode()
).hexdigest()[:16]


def _kept_path(cache: Path, identity: str) -> Path:
    return cache / (hashlib.sha256(identity.encode()).hexdigest()[:32] + ".json")


def _read_kept(cache: Path, identity: str) -> Capabilities | None:
    try:
        data = json.loads(_kept_path(cache, identity).read_text(encoding="utf-8"))
        if data.get("identity") != identity:
            return None
        return Capabilities(
            path=Path(data["path"]),
            version=str(data["version"]),
            encoders=frozenset(data["encoders"]),
            filters=frozenset(data["filters"]),
            options={name: frozenset(names) for name, names in data["options"].items()},
            global_options=frozenset(data["global_options"]),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # not kept, or unreadable: probe again


def _keep(cache: Path, identity: str, capabilities: Capabilities) -> None:
    data = {
        "identity": identity,
        "path": str(capabilities.path),
        "version": capabilities.version,
        "encoders": sorted(capabilities.encoders),
        "filters": sorted(capabilities.filters),
        "options": {name: sorted(names) for name, names in capabilities.options.items()},
        "global_options": sorted(capabilities.global_options),
    }
    path = _kept_path(cache, identity)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        cache.mkdir(parents=True, exist_ok=True)
        temporary.write_text(json.dumps(data), encoding="utf-8")
        os.replace(temporary, path)
    except OSError:
        temporary.unlink(missing_ok=True)  # a read-only home: probe each time instead


def parse_version(version_output: str) -> str:
    """The version string of `ffmpeg -version`'s first line ("" when unrecognised)."""
    match = re.search(r"ffmpeg version (\S+)", version_output)
    return match.group(1) if match else ""


def parse_filter_options(help_output: str) -> frozenset[str]:
    """The option names of `ffmpeg -h filter=NAME` (lines "   name   <type>  ...")."""
    return frozenset().union(*parse_help_sections(help_output).values())


def parse_global_options(help_output: str) -> frozenset[str]:
    """The ffmpeg command's own options in `ffmpeg -h full` (lines "-name <arg>  what")."""
    return frozenset(re.findall(r"^-([A-Za-z_][A-Za-z0-9_:]*)", help_output, flags=re.MULTILINE))


def parse_help_sections(help_output: str) -> dict[str, frozenset[str]]:
    """Option names by class, from `ffmpeg -h full` or `-h filter=NAME`: each class's
    "<class> AVOptions:" line, then its options ("   name   <type>  ..."; the deeper
    indented lines under an option are its named values)."""
    sections: dict[str, set[str]] = {}
    current: set[str] = set()
    for line in help_output.splitlines():
        header = re.match(r"^(\S.*) AVOptions:\s*$", line)
        if header:
            current = sections.setdefault(header.group(1), set())
            continue
        option = re.match(r"^ {2,3}([A-Za-z_][A-Za-z0-9_]*)\s+\[?<", line)
        if option:
            current.add(option.group(1))
    return {name: frozenset(options) for name, options in sections.items()}


def parse_major_version(version_output: str) -> int | None:
    """FFmpeg's major version from `ffmpeg -version`; None for builds from git master."""
    match = re.search(r"ffmpeg version n?(\d+)\.", version_output)
    return int(match.group(1)) if match else None


async def run_ffmpeg(
    arguments: Sequence[str],
    *,
    ffmpeg: Path,
    progress: Callable[[float], None] | None = None,
) -> str:
    """Run `ffmpeg` with `arguments` and return what it wrote to stderr.

    With `progress`, it is called with the seconds of output written so far, several
    times a second (FFmpeg's `-progress` report on a pipe).
    Raises `EngineError` with the exit status and the last lines of stderr when it fails.
    If the awaiting task is cancelled, the process is killed before the cancellation
    propagates; on Linux it is also killed when the daemon dies (even by SIGKILL).
    """
    if progress is not None:
        arguments = [*PROGRESS_ARGUMENTS, *arguments]
    try:
        process = await asyncio.create_subprocess_exec(
            os.fspath(ffmpeg),
            *arguments,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if progress is not None else subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=_die_with_parent(),
        )
    except OSError as exc:
        raise EngineError(f"could not start ffmpeg ({ffmpeg}): {exc.strerror or exc}") from exc
    stderr_task: asyncio.Future[bytes] | None = None
    try:
        if progress is not None:
            assert process.stdout is not None and process.stderr is not None
            stderr_task = asyncio.ensure_future(process.stderr.read())
            async for line in process.stdout:
                seconds = parse_progress_line(line.decode("ascii", errors="replace"))
                if seconds is not None:
                    progress(seconds)
            stderr_bytes = await stderr_task
            await process.wait()
        else:
            _, stderr_bytes = await process.communicate()
    except BaseException:
        # Cancelled (daemon stopping, job abandoned): an orphaned encoder would keep
        # burning CPU and writing a file nobody will read.
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        if stderr_task is not None:
            stderr_task.cancel()
        await process.wait()
        raise
    stderr = stderr_bytes.decode("utf-8", errors="replace")
    if process.returncode != 0:
        raise _failure(process.returncode, stderr, output=arguments[-1] if arguments else None)
    return stderr


def parse_progress_line(line: str) -> float | None:
    """The seconds of output from one line of FFmpeg's `-progress` report (`out_time_us=`;
    None for the other keys and for "N/A", which FFmpeg writes before the first frame)."""
    key, _, value = line.strip().partition("=")
    if key != "out_time_us":
        return None
    try:
        return max(0.0, int(value) / 1_000_000)
    except ValueError:
        return None


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


def _pinned_candidate(
    chosen: str, origin: str, search_path: str | None, *, cache: Path | None = None
) -> Candidate:
    found = shutil.which(chosen, path=search_path)
    if found is None:
        return Candidate(Path(chosen), origin, None, "not found, or not executable")
    return _candidate(Path(found), origin, cache)


def _candidate(path: Path, origin: str, cache: Path | None = None) -> Candidate:
    try:
        capabilities = probe_ffmpeg(path, cache=cache)
    except EngineError as exc:
        return Candidate(path, origin, None, str(exc))
    missing = capabilities.missing()
    problem = (
        f"version {capabilities.version or '?'} lacks {', '.join(missing)}" if missing else None
    )
    return Candidate(path, origin, capabilities, problem)


@functools.cache
def _probe(ffmpeg: Path, mtime_ns: int, size: int) -> Capabilities:
    del mtime_ns, size  # the cache's key: a changed binary is probed again
    filters = frozenset(_listed_names(_capture(ffmpeg, "-filters")))
    named = {
        name
        for table in (REQUIRED_FILTER_OPTIONS, OPTIONAL_FILTER_OPTIONS)
        for name, options in table.items()
        if options
    }
    # One run lists the options of every filter, under "<class> AVOptions:"; the few whose
    # class is named otherwise ("scale(2ref)", "(h|v)stack") are asked for one by one.
    full_help = _capture(ffmpeg, "-h", "full")
    sections = parse_help_sections(full_help)
    options = {
        name: sections.get(name) or parse_filter_options(_capture(ffmpeg, "-h", f"filter={name}"))
        for name in sorted(named & filters)
    }
    return Capabilities(
        path=ffmpeg,
        version=parse_version(_capture(ffmpeg, "-version")),
        encoders=frozenset(_listed_names(_capture(ffmpeg, "-encoders"))),
        filters=filters,
        options=options,
        global_options=parse_global_options(full_help),
    )


def _capture(ffmpeg: Path, *options: str) -> str:
    try:
        completed = subprocess.run(
            [os.fspath(ffmpeg), "-hide_banner", *options],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=_DETECTION_TIMEOUT,
            check=True,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise EngineError(f"could not run {ffmpeg} {' '.join(options)}: {exc}") from exc
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

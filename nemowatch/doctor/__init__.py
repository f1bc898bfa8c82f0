"""`nemowatch doctor`: what this machine gives nemowatch, one finding per check.

Each check looks and returns `Finding`s; the command line only prints them. Looking changes
nothing, with one exception: to prove that a folder is writable, a hidden temporary file
(or, for a folder not made yet, a temporary folder beside where it will be) is created and
removed at once. The ledger is opened read-only and never created.

A finding is `ok` (works), a `note` (works, but worth knowing: an older FFmpeg form, an
inbox that is polled, no config yet) or a `problem` (something nemowatch needs does not
work; `fix` says what to do). `doctor` exits 1 when there is a problem, else 0.
The finding types live in `doctor.findings`, the inotify check in `doctor.inotify`.

What is needed depends on the engine: the local engine (the default, and what is assumed
without a config) needs a capable FFmpeg and the title font; `engine: nemo` needs neither,
so their trouble is only a note there. PyAV is needed by both (outputs are verified with
it). The inotify limits are notes: past them, inboxes are polled, which is slower but works.
"""

from __future__ import annotations

import json
import os
import platform
import sqlite3
import stat
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from nemowatch import __version__
from nemowatch.config import (
    Config,
    Rule,
    default_config_path,
    format_size,
    load_config,
)
from nemowatch.doctor.findings import Finding, Machine, Status
from nemowatch.doctor.inotify import inotify_finding
from nemowatch.errors import ConfigError, EngineError
from nemowatch.ledgerfile import ledger_expected
from nemowatch.mounts import POLLING_REASON, filesystem_type, needs_polling
from nemowatch.watch import inbox_watches

__all__ = [
    "Finding",
    "Machine",
    "Status",
    "diagnose",
    "examine",
    "ffmpeg_findings",
    "findings_json",
    "folder_finding",
    "format_findings",
    "has_problems",
    "inotify_finding",
    "ledger_finding",
    "nemo_token_finding",
    "read_config",
]

MINIMUM_PYTHON = (3, 11)
LEDGER_FILE = "ledger.sqlite3"  # in state_dir; see Ledger.in_state_dir
# Free space below which a folder is a problem (a render does not fit) or worth a note.
TOO_LITTLE_SPACE = 100 * 10**6
LITTLE_SPACE = 10**9
# free space below each limit, and what it means (the first that applies is said)
_SPACE = (
    (TOO_LITTLE_SPACE, Status.PROBLEM, "renders and outputs need room to be written"),
    (LITTLE_SPACE, Status.NOTE, "a long video may not fit"),
)
# What the local engine does instead when the chosen FFmpeg lacks an optional option.
OLDER_FORMS = {
    "drawtext:text_align": "titles are drawn line by line, each line centred by a drawtext "
    "of its own (FFmpeg 6.1 centres every line in one)",
}


# ---- running and showing the checks ------------------------------------------------------


def diagnose(config_path: Path | None, machine: Machine) -> list[Finding]:
    """Every check, for the config at `config_path` (else the default one, if any)."""
    config, finding = read_config(config_path, machine.environ)
    return examine(config, machine, config_finding=finding)


def read_config(path: Path | None, environ: Mapping[str, str]) -> tuple[Config | None, Finding]:
    """The config at `path` (else the default one, if there is one) and the finding on it."""
    if path is None:
        path = default_config_path()
        if not path.exists():
            return None, Finding(
                "config",
                Status.NOTE,
                f"no config file ({path} does not exist, and no --config was given):"
                " only the machine was checked",
                fix="write one with `nemowatch init DIR`, then run"
                " `nemowatch doctor --config DIR/config.yaml`",
                facts={"path": str(path), "found": False},
            )
    try:
        config = load_config(path, environ=environ)
    except ConfigError as error:
        return None, Finding(
            "config",
            Status.PROBLEM,
            f"{path} cannot be used:\n{error}",
            fix=f"fix what is listed (`nemowatch check --config {path}` lists it too)",
            facts={"path": str(path), "found": path.exists(), "valid": False},
        )
    rules = len(config.rules)
    return config, Finding(
        "config",
        Status.OK,
        f"{config.source}: {rules} rule{'s' if rules != 1 else ''}, engine {config.engine}",
        facts={"path": str(config.source), "found": True, "valid": True, "engine": config.engine},
    )


def examine(
    config: Config | None, machine: Machine, *, config_finding: Finding | None = None
) -> list[Finding]:
    """Every check: the machine's first, then those of `config` (when there is one)."""
    local = config is None or config.engine == "local"
    findings = [python_finding(), nemowatch_finding(), pyav_finding()]
    explicit = config.ffmpeg if config is not None else None
    findings += ffmpeg_findings(machine.environ, needed=local, explicit=explicit)
    findings.append(font_finding(needed=local))
    findings.append(speech_finding(machine.environ, needed=local and _hears(config)))
    findings.append(apprise_finding())
    findings.append(timelines_finding())
    if config_finding is not None:
        findings.append(config_finding)
    if config is None:
        return findings
    findings.append(folder_finding("state_dir", config.state_dir, (), machine))
    if config.ledger is not None:
        from nemowatch.doctor.fleet import fleet_ledger_finding

        findings.append(fleet_ledger_finding(config))
    else:
        findings.append(ledger_finding(config.state_dir))
    watches = {watch.inbox: watch.poll for watch in inbox_watches(config.rules)}
    for inbox, rules in _folders(config.rules, "inbox").items():
        findings.append(folder_finding("inbox", inbox, rules, machine, poll=watches[inbox]))
    for outbox, rules in _folders(config.rules, "outbox").items():
        findings.append(folder_finding("outbox", outbox, rules, machine))
    findings.append(inotify_finding(config, machine))
    if config.engine == "nemo":
        findings.append(nemo_token_finding(config.state_dir, machine.environ))
    return findings


def has_problems(findings: Iterable[Finding]) -> bool:
    return any(finding.status is Status.PROBLEM for finding in findings)


_MARKS = {Status.OK: "ok", Status.NOTE: "note", Status.PROBLEM: "PROBLEM"}


def format_findings(findings: Sequence[Finding]) -> str:
    """One line per finding, its what-to-do indented beneath, and a summary line (pure)."""
    lines = []
    for finding in findings:
        mark = _MARKS[finding.status]
        detail = finding.detail.replace("\n", "\n" + " " * 10)
        lines.append(f"{mark:<8}  {finding.name}: {detail}")
        if finding.fix and finding.status is not Status.OK:
            lines.append(f"{'':<8}  what to do: {finding.fix}")
    problems = [finding.name for finding in findings if finding.status is Status.PROBLEM]
    if problems:
        lines.append(
            f"{len(problems)} problem{'s' if len(problems) != 1 else ''}: " + ", ".join(problems)
        )
    else:
        lines.append("everything nemowatch needs works here")
    return "\n".join(lines)


def findings_json(findings: Sequence[Finding]) -> str:
    """The findings for machines: {"ok": bool, "checks": [...]} (pure)."""
    payload = {
        "ok": not has_problems(findings),
        "checks": [
            {
                "name": finding.name,
                "status": finding.status.value,
                "detail": finding.detail,
                "fix": finding.fix,
                "facts": dict(finding.facts),
            }
            for finding in findings
        ],
    }
    return json.dumps(payload, indent=2)


# ---- the program and its parts -----------------------------------------------------------


def python_finding() -> Finding:
    version = platform.python_version()
    facts = {"version": version, "executable": sys.executable}
    if sys.version_info[:2] < MINIMUM_PYTHON:
        return Finding(
            "python",
            Status.PROBLEM,
            f"{version} ({sys.executable}) is older than 3.11",
            fix="install nemowatch into a virtual environment made by Python 3.11 or newer",
            facts=facts,
        )
    return Finding("python", Status.OK, f"{version} ({sys.executable})", facts=facts)


def nemowatch_finding() -> Finding:
    where = Path(__file__).resolve().parent
    return Finding(
        "nemowatch",
        Status.OK,
        f"{__version__} ({where})",
        facts={"version": __version__, "package": str(where)},
    )


def pyav_finding() -> Finding:
    try:
        import av
    except ImportError as error:
        return Finding(
            "pyav",
            Status.PROBLEM,
            f"cannot be imported: {error}",
            fix="reinstall nemowatch (`pip install` brings PyAV, the `av` package)",
        )
    version = str(getattr(av, "__version__", "?"))
    return Finding("pyav", Status.OK, f"{version} imported", facts={"version": version})


def _hears(config: Config | None) -> bool:
    """Whether a rule of `config` asks for captions or filler cuts."""
    from nemowatch.language import interpret_all

    for rule in config.rules if config is not None else ():
        read = interpret_all(rule.instructions).edit
        for name in ("captions", "remove_fillers"):
            source = rule.edit if name in rule.edit.model_fields_set else read
            if getattr(source, name) is not None:
                return True
    return False


def speech_finding(environ: Mapping[str, str], *, needed: bool) -> Finding:
    """Speech to text (the captions extra): whether it is installed, and which model."""
    from nemowatch.engines.local.speech import INSTALL_HINT, availability

    status = availability(environ)
    if status.ready:
        return Finding("speech to text", Status.OK, status.detail, facts={"ready": True})
    return Finding(
        "speech to text",
        Status.PROBLEM if needed else Status.NOTE,
        f"{status.detail}: captions and filler cuts are not available"
        + (" (a rule asks for them)" if needed else ""),
        fix=status.hint or INSTALL_HINT,
        facts={"ready": False},
    )


def apprise_finding() -> Finding:
    """Apprise (the notify extra), which `notify: urls:` sends through. A config naming
    such URLs without it is refused, by its own finding, with the same fix."""
    from nemowatch.config.notify import APPRISE_INSTALL, apprise_installed

    if apprise_installed():
        detail = "Apprise is installed: notify urls (Slack, ntfy, email, ...) can be used"
        return Finding("notifications", Status.OK, detail, facts={"apprise": True})
    return Finding(
        "notifications",
        Status.NOTE,
        "Apprise is not installed: notify urls cannot be used (the signed webhook can)",
        fix=APPRISE_INSTALL,
        facts={"apprise": False},
    )


def timelines_finding() -> Finding:
    """OpenTimelineIO and its adapters (the timelines extra), which `export: timelines`
    writes through. A rule asking for timelines without them is refused by `check`."""
    from nemowatch import timelines

    missing = timelines.missing_package()
    if missing is None:
        detail = "OpenTimelineIO is installed: timelines for editors can be written"
        return Finding("timelines", Status.OK, detail, facts={"timelines": True})
    return Finding(
        "timelines",
        Status.NOTE,
        f"{missing} is not installed: timelines for editors (export: timelines) cannot be written",
        fix=timelines.INSTALL_HINT,
        facts={"timelines": False},
    )


def font_finding(*, needed: bool) -> Finding:
    """The title font the local engine draws with, inside the package."""
    try:
        from nemowatch.engines.local.engine import FONT
    except ImportError as error:
        return Finding(
            "font",
            Status.PROBLEM if needed else Status.NOTE,
            f"the local engine cannot be imported to find it: {error}",
            fix="reinstall nemowatch",
        )
    font = resources.files("nemowatch").joinpath(FONT)
    if font.is_file():
        return Finding("font", Status.OK, f"{font} present", facts={"path": str(font)})
    return Finding(
        "font",
        Status.PROBLEM if needed else Status.NOTE,
        f"{font} is missing: the local engine cannot draw titles",
        fix="reinstall nemowatch (the font is part of the package)",
        facts={"path": str(font)},
    )


def ffmpeg_findings(
    environ: Mapping[str, str], *, needed: bool, explicit: str | None = None
) -> list[Finding]:
    """Each FFmpeg found with its verdict, then the one chosen and why (or why none can be),
    as the daemon chooses: the config's `ffmpeg:` setting (`explicit`) first."""
    from nemowatch.engines.local.ffmpeg import (
        ENVIRONMENT_VARIABLE,
        capability_cache,
        choose_ffmpeg,
        detected_candidates,
    )

    pinned = explicit or environ.get(ENVIRONMENT_VARIABLE)
    pinned_by = "the config's ffmpeg: setting" if explicit else f"${ENVIRONMENT_VARIABLE}"
    findings = []
    for candidate in detected_candidates(environ.get("PATH"), cache=capability_cache(environ)):
        name = f"ffmpeg ({candidate.origin})"
        capabilities = candidate.capabilities
        version = capabilities.version if capabilities is not None else None
        facts = {
            "path": str(candidate.path),
            "origin": candidate.origin,
            "version": version,
            "usable": candidate.usable,
            "missing": capabilities.missing() if capabilities is not None else None,
            "older_forms": capabilities.older_forms() if capabilities is not None else None,
        }
        if candidate.usable:
            detail = f"{candidate.path}, version {version or '?'}: can do everything needed"
            if pinned:
                detail += f" (not used: {pinned_by} names the binary)"
            findings.append(Finding(name, Status.OK, detail, facts=facts))
        else:
            detail = f"{candidate.path}: cannot be used: {candidate.problem}"
            findings.append(Finding(name, Status.NOTE, detail, facts=facts))
    try:
        choice = choose_ffmpeg(explicit, environ=environ)
    except EngineError as error:
        status = Status.PROBLEM if needed else Status.NOTE
        detail = str(error) if needed else f"{error} (engine: nemo does not need it)"
        findings.append(Finding("ffmpeg", status, detail, fix=error.hint))
        return findings
    chosen = choice.ffmpeg
    older = chosen.older_forms()
    findings.append(
        Finding(
            "ffmpeg",
            Status.OK,
            f"using {chosen.path}, version {chosen.version or '?'} ({choice.reason})",
            facts={
                "path": str(chosen.path),
                "version": chosen.version,
                "origin": choice.origin,
                "reason": choice.reason,
                "older_forms": older,
            },
        )
    )
    for form in older:
        instead = OLDER_FORMS.get(form, "an older form is used instead")
        findings.append(
            Finding(
                "ffmpeg",
                Status.NOTE,
                f"version {chosen.version or '?'} has no {form}: {instead}",
                facts={"option": form},
            )
        )
    return findings


# ---- folders -------------------------------------------------------------------------------


def _folders(rules: Sequence[Rule], role: str) -> dict[Path, list[str]]:
    """Each distinct inbox (or outbox) and the names of the rules that use it, in rule order."""
    found: dict[Path, list[str]] = {}
    for rule in rules:
        found.setdefault(getattr(rule, role), []).append(rule.name)
    return found


def folder_finding(
    role: str,
    folder: Path,
    rules: Sequence[str],
    machine: Machine,
    *,
    poll: bool = False,
) -> Finding:
    """Whether `folder` is (or can be made) a writable folder, on what, with how much room;
    for an inbox, whether it will be watched by events or polled."""
    used_by = f" (rule{'s' if len(rules) > 1 else ''} {', '.join(rules)})" if rules else ""
    name = f"{role} {folder}{used_by}"
    facts: dict[str, Any] = {"role": role, "path": str(folder), "rules": list(rules)}
    existing = _existing_ancestor(folder)
    facts["exists"] = existing == folder
    if existing is None:
        return Finding(
            name,
            Status.PROBLEM,
            "cannot be looked at: no part of the path exists",
            fix="check the path in the config",
            facts=facts,
        )
    trouble, state = _writability(folder, existing)
    fstype = filesystem_type(Path(os.path.realpath(folder)), machine.mountinfo)
    facts["filesystem"] = fstype
    parts = [state, fstype or "filesystem unknown"]
    free = _free_space(existing)
    facts["free_bytes"] = free
    if free is not None:
        parts.append(f"{format_size(free)} free")
    if role == "inbox":
        polled = poll or needs_polling(fstype)
        facts["watched_by"] = "polling" if polled else "events"
        if poll:
            parts.append("polled (the rule asks for it: poll: true)")
        elif polled:
            parts.append(f"polled ({POLLING_REASON})")
        else:
            parts.append("watched by events (inotify)")
    detail = ", ".join(parts)
    if trouble is not None:
        return Finding(name, Status.PROBLEM, trouble, fix=_fix_writing(role), facts=facts)
    for below, status, why in _SPACE:
        if free is not None and free < below:
            return Finding(
                name, status, detail, fix=f"free some disk space there: {why}", facts=facts
            )
    return Finding(name, Status.OK, detail, facts=facts)


def _existing_ancestor(folder: Path) -> Path | None:
    """`folder` itself if something is there, else its nearest ancestor that exists."""
    for candidate in (folder, *folder.parents):
        if os.path.lexists(candidate):
            return candidate
    return None


def _writability(folder: Path, existing: Path) -> tuple[str | None, str]:
    """(what is wrong, or None; how it stands) — found by really creating something."""
    if existing == folder:
        if not folder.is_dir():
            return f"is not a folder (a {_kind(folder)} is there): nothing can be written in it", ""
        if not os.access(folder, os.R_OK | os.X_OK):
            return "cannot be read by this user: its files would never be seen", ""
        refused = _try_file(folder)
        if refused is not None:
            return f"is not writable: {refused}", ""
        return None, "writable"
    if not existing.is_dir():
        return (
            f"cannot be created: {existing} is a {_kind(existing)}, not a folder",
            "",
        )
    refused = _try_folder(existing)
    if refused is not None:
        return f"does not exist, and cannot be created in {existing}: {refused}", ""
    return None, "does not exist yet; nemowatch creates it when it starts"


def _kind(path: Path) -> str:
    try:
        mode = path.lstat().st_mode
    except OSError:
        return "thing that cannot be looked at"
    if stat.S_ISLNK(mode):
        return "broken symbolic link" if not path.exists() else "symbolic link"
    return "regular file" if stat.S_ISREG(mode) else "special file"


def _try_file(folder: Path) -> str | None:
    """None when a file can be created in `folder` (it is removed again), else why not."""
    try:
        descriptor, name = tempfile.mkstemp(prefix=".nemowatch-doctor-", dir=folder)
    except OSError as error:
        return error.strerror or str(error)
    os.close(descriptor)
    os.unlink(name)
    return None


def _try_folder(parent: Path) -> str | None:
    """None when a folder can be created in `parent` (it is removed again), else why not."""
    try:
        made = tempfile.mkdtemp(prefix=".nemowatch-doctor-", dir=parent)
    except OSError as error:
        return error.strerror or str(error)
    os.rmdir(made)
    return None


def _fix_writing(role: str) -> str:
    what = {
        "inbox": "people drop files here and nemowatch moves them",
        "outbox": "finished videos are written here",
        "state_dir": "the job ledger and scratch space live here",
    }[role]
    return (
        f"make it a folder the user nemowatch runs as can write to ({what}), or point the"
        " config elsewhere; under the systemd service, list it in ReadWritePaths="
        " (docs/systemd.md)"
    )


def _free_space(folder: Path) -> int | None:
    try:
        status = os.statvfs(folder if folder.is_dir() else folder.parent)
    except OSError:
        return None
    return status.f_bavail * status.f_frsize


# ---- the ledger ------------------------------------------------------------------------------


def ledger_finding(state_dir: Path) -> Finding:
    """The job ledger opens and passes SQLite's integrity check; opened read-only, never made."""
    path = state_dir / LEDGER_FILE
    facts: dict[str, Any] = {"path": str(path), "exists": path.exists()}
    if not path.exists() and ledger_expected(state_dir):
        return Finding(
            "ledger",
            Status.PROBLEM,
            f"{path} is missing, but a daemon ran on this state directory",
            fix="put it back if you can; else `nemowatch ledger recover` rebuilds it from the"
            " folders (the daemon does not start without it)",
            facts=facts,
        )
    if not path.exists():
        return Finding(
            "ledger",
            Status.OK,
            f"{path} does not exist yet: it is created on the first run",
            facts=facts,
        )
    try:
        database = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True, timeout=10.0)
        try:
            verdict = [row[0] for row in database.execute("PRAGMA integrity_check")]
            jobs = database.execute("SELECT count(*) FROM jobs").fetchone()[0]
        finally:
            database.close()
    except sqlite3.Error as error:
        return Finding(
            "ledger",
            Status.PROBLEM,
            f"{path} cannot be read: {error}",
            fix="if it is damaged: stop nemowatch, then `nemowatch ledger recover` moves it"
            " aside and rebuilds it from what can be read and from the folders",
            facts=facts,
        )
    facts["jobs"] = jobs
    if verdict != ["ok"]:
        return Finding(
            "ledger",
            Status.PROBLEM,
            f"{path} fails SQLite's integrity check: {'; '.join(verdict[:5])}",
            fix="stop nemowatch, then `nemowatch ledger recover` moves it aside and rebuilds it"
            " from what can be read and from the folders (`nemowatch ledger check` reports)",
            facts=facts,
        )
    return Finding(
        "ledger", Status.OK, f"{path}: intact, {jobs} job{'s' if jobs != 1 else ''}", facts=facts
    )


# ---- the NemoVideo token ---------------------------------------------------------------------


def nemo_token_finding(state_dir: Path, environ: Mapping[str, str]) -> Finding:
    """Whether `engine: nemo` has a token to present. The token itself is never shown, nor
    any part of it, nor its length."""
    from nemowatch.engines.nemo.auth import ENV_TOKEN, TOKEN_FILE, parse_time

    if (environ.get(ENV_TOKEN) or "").strip():
        return Finding(
            "nemo token",
            Status.OK,
            f"a token is present in ${ENV_TOKEN}",
            facts={"source": "environment"},
        )
    path = state_dir / TOKEN_FILE
    facts: dict[str, Any] = {"source": None, "path": str(path)}
    anonymous = (
        f"an anonymous token is requested from NemoVideo at the first job (network needed),"
        f" or set ${ENV_TOKEN} to a token from your account"
    )
    try:
        mode = path.stat().st_mode
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Finding(
            "nemo token",
            Status.NOTE,
            f"no token yet (no ${ENV_TOKEN}, no {path})",
            fix=anonymous,
            facts=facts,
        )
    except (OSError, ValueError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not valid JSON"
        return Finding(
            "nemo token",
            Status.NOTE,
            f"{path} cannot be read ({reason}): it will be replaced by a new anonymous token",
            fix=f"fix or remove {path}, or set ${ENV_TOKEN}",
            facts=facts,
        )
    token = data.get("token") if isinstance(data, dict) else None
    if not isinstance(token, str) or not token:
        return Finding(
            "nemo token", Status.NOTE, f"no token kept in {path} yet", fix=anonymous, facts=facts
        )
    facts["source"] = "file"
    expires = parse_time(data.get("expires_at"))
    facts["expires_at"] = expires.isoformat() if expires else None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        return Finding(
            "nemo token",
            Status.NOTE,
            f"an anonymous token is kept in {path}, but other users can read the file",
            fix=f"chmod 600 {path} (nemowatch also does so the next time it reads it)",
            facts=facts,
        )
    if expires is not None and expires <= datetime.now(UTC):
        return Finding(
            "nemo token",
            Status.NOTE,
            f"the anonymous token kept in {path} expired at {expires:%Y-%m-%d %H:%M} UTC:"
            " a new one is requested at the next job (network needed)",
            facts=facts,
        )
    until = f", valid until {expires:%Y-%m-%d %H:%M} UTC" if expires else ""
    return Finding(
        "nemo token", Status.OK, f"an anonymous token is kept in {path}{until}", facts=facts
    )

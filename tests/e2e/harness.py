"""The daemon as a subprocess, watching temporary folders, with its JSON log captured."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

DEADLINE = 60.0  # seconds any one wait may take before the test fails


def wait_for(
    condition: Callable[[], Any], timeout: float = DEADLINE, interval: float = 0.1, what: str = ""
) -> Any:
    """Poll `condition` until it returns something truthy, or fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what or condition}")
        time.sleep(interval)


def write_config(folder: Path, rules: list[dict[str, Any]], **settings: Any) -> Path:
    """A config file in `folder` with fast settle and scan times suited to tests."""
    config: dict[str, Any] = {
        "engine": "local",
        "state_dir": str(folder / "state"),
        "concurrency": 2,
        "scan_interval": 2,
        "grace_period": 5,
        **settings,
        "rules": rules,
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def rule(folder: Path, name: str = "clips", **fields: Any) -> dict[str, Any]:
    return {
        "name": name,
        "inbox": str(folder / "inbox" / name),
        "outbox": str(folder / "outbox" / name),
        "settle_seconds": 0.5,
        "export": {"format": "mp4", "resolution": "source", "quality": "low"},
        **fields,
    }


class Daemon:
    """`nemowatch run` in a child process."""

    def __init__(
        self,
        config: Path,
        log: Path,
        env: dict[str, str] | None = None,
        prefix: Sequence[str] = (),
    ) -> None:
        self.config = config
        self.log = log
        self.env = env or {}
        self.prefix = list(prefix)  # a command to run it through (setpriv, prlimit)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Daemon:
        """Start the daemon and wait until it says `daemon.started`."""
        self.spawn()
        wait_for(lambda: self.saw("daemon.started") or not self.running, what="daemon.started")
        assert self.running, self.output()
        return self

    def spawn(self) -> Daemon:
        """Start the process without waiting for it to come up (to kill it during start)."""
        # never the runner's own token: only one a test gives (`env`)
        inherited = {key: value for key, value in os.environ.items() if key != "NEMO_TOKEN"}
        environment = {**inherited, "PYTHONUNBUFFERED": "1", **self.env}
        with self.log.open("ab") as handle:
            self.process = subprocess.Popen(
                [
                    *self.prefix,
                    sys.executable,
                    "-m",
                    "nemowatch.cli",
                    "run",
                    "--config",
                    str(self.config),
                    "--log-format",
                    "json",
                ],
                stdout=handle,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=environment,
            )
        return self

    def peak_memory(self) -> int:
        """The process's peak resident memory so far (VmHWM), in bytes."""
        assert self.process is not None
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        line = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
        return int(line.split()[1]) * 1024

    def events(self) -> Iterator[dict[str, Any]]:
        if not self.log.exists():
            return
        for line in self.log.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    continue

    def saw(self, event: str, **fields: Any) -> list[dict[str, Any]]:
        return [
            entry
            for entry in self.events()
            if entry.get("event") == event
            and all(entry.get(key) == value for key, value in fields.items())
        ]

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 30.0) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""


def ledger_states(state_dir: Path) -> dict[str, str]:
    """job id -> state, read straight from the daemon's SQLite ledger."""
    path = state_dir / "ledger.sqlite3"
    if not path.exists():
        return {}
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
        return dict(db.execute("SELECT id, state FROM jobs").fetchall())


def files(folder: Path, pattern: str = "*") -> list[Path]:
    return (
        sorted(path for path in folder.rglob(pattern) if path.is_file()) if folder.exists() else []
    )


def ledger_jobs(state_dir: Path) -> list[dict[str, Any]]:
    """Every job row of the daemon's SQLite ledger, as a dict, oldest first."""
    path = state_dir / "ledger.sqlite3"
    if not path.exists():
        return []
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
        db.row_factory = sqlite3.Row
        rows = db.execute("SELECT * FROM jobs ORDER BY created_at").fetchall()
    return [dict(row) for row in rows]


def processes_mentioning(text: str) -> list[int]:
    """Process ids (other than this one) whose command line contains `text`: a daemon or
    an FFmpeg left running on a test's folder."""
    needle = text.encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue  # exited meanwhile, or not ours to read
    return found


# ---- dropping files into a watched inbox ------------------------------------------------------
#
# A file written straight into a watched inbox races the daemon: under load the writer can
# stall longer than a rule's settle time, and the daemon claims a file that is half made,
# or claims it before the test has read what it wrote. People's tools avoid this the same
# way: they make the file elsewhere on the same disk and rename it in. So do the tests.

Content = Path | bytes | Callable[[Path], object]  # a file to copy, bytes, or a maker


def staging_for(target: Path) -> Path:
    """Where to make a file meant for `target` (a path directly in an inbox): the same name
    in a folder beside the inbox, on the same filesystem and watched by no rule."""
    inbox = target.parent
    staging = inbox.with_name(f"{inbox.name}.staging")
    staging.mkdir(parents=True, exist_ok=True)
    return staging / target.name


def move_in(staged: Path, target: Path) -> None:
    """Rename a staged file (or folder, link or FIFO) into place: it appears whole, at once."""
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staged, target)


def stage(target: Path, content: Content) -> Path:
    """Make `content` at the staging path for `target`; the staged path."""
    staged = staging_for(target)
    if isinstance(content, Path):
        shutil.copyfile(content, staged)
    elif isinstance(content, bytes):
        staged.write_bytes(content)
    else:
        content(staged)
    return staged


def drop(target: Path, content: Content) -> Path:
    """Put `content` at `target` in a watched inbox the way people drop files: made whole
    beside the inbox, then renamed in. Returns `target`."""
    move_in(stage(target, content), target)
    return target


def drop_at_once(contents: Mapping[Path, Content]) -> None:
    """Stage every file first, then rename each into place (the keys) one right after the
    other: the files appear whole, all within a moment."""
    staged = [(stage(target, content), target) for target, content in contents.items()]
    for path, target in staged:
        move_in(path, target)


def nemowatch(config: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    """`nemowatch ARGUMENTS --config CONFIG`, run as a user runs it, its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "nemowatch.cli", *arguments, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (for a daemon's web page)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])

"""Housekeeping: when the daemon looks again at its config files and the operators' requests.

It runs when rung: SIGHUP, a config or rule file written (the doorbell, `watch.Doorbell`),
an operator command (`nemowatch pause`, `resume`, `scan` ring the bell after writing the
ledger's control table), and at each reconciliation scan, the backstop for every doorbell.
Only where the doorbell cannot be watched (no inotify instance or watch left) does it poll,
every HOUSEKEEPING seconds. So an idle daemon sleeps between its scans.

Each round: make sure the ledger is still the file at its path (`ledger_lost`: deleted or
replaced, the daemon must stop, since nothing it does could be recorded), reload the config
if a file of it changed or SIGHUP asked (`reloaded`: only a valid config replaces the
running rules), then apply the operators' requests (pause, resume, rescan) from the
ledger's control table. Deleting or replacing the ledger rings the doorbell too.
"""

from __future__ import annotations

import asyncio
import contextlib
from enum import StrEnum
from pathlib import Path

import structlog

from nemowatch.config import Config, load_config
from nemowatch.daemon.pauses import Pauses
from nemowatch.errors import ConfigError
from nemowatch.ledger import Ledger
from nemowatch.rulepause import paused_rules
from nemowatch.watch import Doorbell, Doorbells

log = structlog.get_logger("nemowatch.daemon")

HOUSEKEEPING = 2.0  # seconds between looks where the doorbell cannot be watched

Signature = tuple[tuple[str, int, int], ...]


def config_signature(config: Config) -> Signature:
    """(path, mtime_ns, size) of the config file and every rule file, including rule files
    added to `rules_dir` since; (path, -1, -1) for one that cannot be looked at."""
    files: list[Path] = []
    if config.source is not None:
        files.append(config.source)
    files.extend(config.rule_files)
    if config.rules_dir is not None and config.rules_dir.is_dir():
        files.extend(config.rules_dir.glob("*.y*ml"))
    signature = []
    for path in sorted(set(files)):
        try:
            stat = path.stat()
        except OSError:
            signature.append((str(path), -1, -1))
        else:
            signature.append((str(path), stat.st_mtime_ns, stat.st_size))
    return tuple(signature)


def reloaded(current: Config) -> Config | None:
    """`current` with what may change while running read again from its file: the rules,
    where they come from, `scan_interval` and `grace_period`. None (logged) when there is
    no file or what it says now is invalid: the running rules stay in force."""
    if current.source is None:
        return None
    try:
        config = load_config(current.source)
    except ConfigError as error:
        log.error(
            "config.invalid",
            problems=[str(problem) for problem in error.problems],
            hint="the previous rules stay in force until the file is fixed",
        )
        return None
    for setting in ("state_dir", "engine", "concurrency"):
        if getattr(config, setting) != getattr(current, setting):
            log.warning("config.restart_needed", setting=setting)
    return current.model_copy(
        update={
            "rules": config.rules,
            "rule_files": config.rule_files,
            "rules_dir": config.rules_dir,
            "scan_interval": config.scan_interval,
            "grace_period": config.grace_period,
        }
    )


class Reload(StrEnum):
    """Why the config is to be loaded again."""

    SIGNAL = "signal"  # SIGHUP: systemd is told RELOADING=1, then READY=1
    EDITED = "edited"  # a config or rule file changed


class Housekeeping:
    """The doorbell, the config files' signature and the operators' control table."""

    def __init__(self, config: Config, ledger: Ledger, pauses: Pauses) -> None:
        self._config = config
        self._ledger = ledger
        self._pauses = pauses
        self._signature = config_signature(config)
        self._rung = asyncio.Event()
        self._reload_requested = asyncio.Event()
        self._scan_seen = 0.0  # the latest rescan request from the ledger that was served
        self._doorbell: Doorbell | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def listening(self) -> bool:
        """Whether the doorbell is watched (else housekeeping polls)."""
        return self._doorbell is not None

    def ring(self) -> None:
        """Run housekeeping now. On the loop's thread."""
        self._rung.set()

    def request_reload(self) -> None:
        """Load the config again at once (SIGHUP)."""
        self._reload_requested.set()
        self._rung.set()

    async def next_round(self) -> Reload | None:
        """Wait until it is time for housekeeping; whether (and why) to reload first."""
        interval = None if self.listening else HOUSEKEEPING
        with contextlib.suppress(TimeoutError):  # not wait_for: see WorkerPool.freed
            async with asyncio.timeout(interval):
                await self._rung.wait()
        self._rung.clear()
        signature = config_signature(self._config)
        if self._reload_requested.is_set():
            self._reload_requested.clear()
            self._signature = signature
            return Reload.SIGNAL
        if signature != self._signature:
            self._signature = signature
            return Reload.EDITED
        return None

    def ledger_lost(self) -> bool:
        """Whether the ledger's path no longer holds the file the daemon opened (logged)."""
        why = self._ledger.lost()
        if why is None:
            return False
        log.error(
            "ledger.lost",
            ledger=str(self._ledger.path),
            why=why,
            hint="the daemon stops: nothing it did could be recorded. Put the ledger back, "
            "or run `nemowatch ledger recover` (it rebuilds one from the folders), then "
            "start it again",
        )
        return True

    def read_control(self) -> bool:
        """Apply the operators' pause or resume (of all, or of single rules); True if they
        asked for a rescan since."""
        control = self._ledger.control()
        self._pauses.by_operator(control.paused)
        self._pauses.rules_by_operator(paused_rules(self._ledger))
        if control.scan_requested > self._scan_seen:
            self._scan_seen = control.scan_requested
            return True
        return False

    def listen(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Watch the doorbells of the config; False (logged) when they cannot be watched,
        and housekeeping polls instead."""
        self._loop = loop
        doorbell = Doorbell(Doorbells.of(self._config), self.ring, loop)
        try:
            doorbell.start()
        except OSError as error:
            log.warning(
                "daemon.doorbell_unavailable",
                error=str(error),
                fallback=f"config files and operator commands are looked at every "
                f"{HOUSEKEEPING:g} s instead",
            )
            return False
        self._doorbell = doorbell
        return True

    def stop_listening(self) -> None:
        doorbell, self._doorbell = self._doorbell, None
        if doorbell is not None:
            doorbell.stop()

    def reconfigure(self, config: Config) -> None:
        """Follow a reloaded config: its files' signature, and its doorbells (the rule
        files may have moved)."""
        self._config = config
        self._signature = config_signature(config)
        if self._doorbell is not None and self._loop is not None:
            self.stop_listening()
            self.listen(self._loop)

"""Sidecars waiting in an inbox (`clip.txt` beside `clip.mp4`): part of intake.

A sidecar is never a job of its own. It settles as a file does (unchanged for its rule's
settle window) and is claimed with its video, by the video's claim (`beside`): a video
whose sidecar is still changing waits for it. A sidecar that has settled with no video
beside it (nor a copy of one under a temporary name) waits `grace` seconds more, and is
then reported: moved to failed/ beside an error.json that says which video it waited for.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePath

import structlog

from nemowatch.config import Rule
from nemowatch.daemon.refusals import refuse
from nemowatch.intake import Snapshot, Verdict, companions, is_sidecar_name

log = structlog.get_logger("nemowatch.daemon")

STILL_MEMORY = 10_000  # settled sidecars remembered (their video is there, or kept)


@dataclass
class _Watch:
    rule: Rule
    snapshot: Snapshot
    stable_since: float
    alone_since: float | None = None  # settled, and no video beside it since then


class Sidecars:
    """The sidecars being watched, and those known to have settled."""

    def __init__(
        self,
        look: Callable[[Path], Snapshot | None],
        *,
        verdict: Callable[[Path], Verdict],
        clock: Callable[[], float],
        now: Callable[[], datetime],
        grace: float,
        taken: Callable[[Path], str | None] = lambda path: None,
    ) -> None:
        """`taken(sidecar)`: the id of a job that took a video of the sidecar's name from its
        folder before the sidecar came, if any (said in the report: the likely mistake)."""
        self._look = look
        self._taken = taken
        self._verdict = verdict  # what intake makes of a path (is it a video a rule takes)
        self._clock = clock
        self._now = now
        self.grace = grace
        self._watching: dict[Path, _Watch] = {}
        self._still: dict[Path, Snapshot] = {}

    @property
    def waiting(self) -> int:
        """Sidecars being watched (settling, or alone and waiting for a video)."""
        return len(self._watching)

    def offer(self, path: Path, rule: Rule, now: float) -> bool:
        """A sidecar seen (an event, a scan); True while it is watched."""
        snap = self._look(path)
        if snap is None:
            self.forget(path)
            return False
        if self._still.get(path) == snap:
            return False  # settled, with its video beside it: the video takes it
        watch = self._watching.get(path)
        if watch is None or watch.snapshot != snap:
            self._watching[path] = _Watch(rule, snap, now)
        return True

    def forget(self, path: Path) -> None:
        """Stop watching `path` (claimed with its video, reported, or gone)."""
        self._watching.pop(path, None)
        self._still.pop(path, None)

    def beside(self, video: Path, rule: Rule) -> list[tuple[Path, Snapshot]] | None:
        """The settled sidecars of `video` (with their snapshots, to claim them by), or
        None when one of them has not settled yet: the video waits for it."""
        try:
            names = os.listdir(video.parent)
        except OSError:
            return []  # the claim finds out what is wrong with the folder
        stem = PurePath(video.name).stem
        now = self._clock()
        found = []
        # the stem first, a string compare: the rest of the names of a full inbox cost
        # nothing more (a thousand files dropped at once were a million name checks)
        near = sorted(name for name in names if name.startswith(stem) and name != video.name)
        for name in near:
            if not is_sidecar_name(name) or PurePath(name).stem != stem:
                continue
            path = video.parent / name
            if self._verdict(path) is not Verdict.SIDECAR:
                continue  # a file a rule takes as its own (`match: "*.txt"`), or ignored
            snap = self._look(path)
            if snap is None:
                continue  # gone, or not a regular file
            watch = self._watching.get(path)
            settled = self._still.get(path) == snap or (
                watch is not None
                and watch.snapshot == snap
                and now - watch.stable_since >= rule.settle_seconds
            )
            if not settled:
                if watch is None or watch.snapshot != snap:
                    self._watching[path] = _Watch(rule, snap, now)
                log.info("intake.waiting_for_sidecar", path=str(video), sidecar=name)
                return None
            found.append((path, snap))
        return found

    def recheck(self, now: float) -> None:
        """Look again at the watched sidecars: settled, with a video (then left to it), or
        alone past the grace time (then reported)."""
        for path, watch in list(self._watching.items()):
            snap = self._look(path)
            if snap is None:
                self.forget(path)
                continue
            if snap != watch.snapshot:
                self._watching[path] = _Watch(watch.rule, snap, now)
                continue
            if now - watch.stable_since < watch.rule.settle_seconds:
                continue
            if self._has_video(path):
                del self._watching[path]
                if len(self._still) >= STILL_MEMORY:
                    self._still.clear()
                self._still[path] = snap
                continue
            if watch.alone_since is None:
                watch.alone_since = now
                log.info("sidecar.alone", path=str(path), grace=self.grace)
            if now - watch.alone_since >= self.grace:
                self.forget(path)
                self._report(path, watch.rule)

    def _has_video(self, path: Path) -> bool:
        """Whether a video a rule takes is beside the sidecar, or a copy of one is being
        made (a temporary name): then the sidecar is not alone."""
        try:
            names = os.listdir(path.parent)
        except OSError:
            return False
        for name in companions(path.name, names):
            verdict = self._verdict(path.parent / name)
            if verdict in (Verdict.TAKE, Verdict.IGNORED):  # IGNORED: a partial copy
                return True
        return False

    def _report(self, path: Path, rule: Rule) -> None:
        """A sidecar alone: to failed/, beside an error.json naming the video it awaited."""
        stem = PurePath(path.name).stem
        patterns = ", ".join(rule.match)
        error = (
            f"no video named {stem}.* came beside {path.name} within {self.grace:g} s of it"
            " (a sidecar holds instructions for the video of its name)"
        )
        hint = (
            f"drop the video (e.g. {stem}.mp4) into the inbox with the sidecar, or rename"
            " the sidecar after its video"
        )
        job = self._taken(path)
        if job is not None:
            error = f"its video was taken by job {job} before {path.name} came"
            hint = (
                f"drop a sidecar before or with its video, or within the rule's settle_seconds"
                f" ({rule.settle_seconds:g} s) after it; to edit that video again, move it and"
                " the sidecar into the inbox together"
            )
        report = {
            "sidecar": str(path),
            "rule": rule.name,
            "failed_at": self._now().astimezone().isoformat(timespec="seconds"),
            "step": "intake",
            "error": error,
            "waiting_for": f"{stem}.* ({patterns})",
            **({"taken_by": job} if job is not None else {}),
            "hint": hint,
            "retryable": False,
            "how_to_retry": "move the sidecar back into the inbox together with its video",
            "retry_with": f"move {path.name} from {rule.inbox / 'failed'}/ back into"
            f" {path.parent}/ with its video",
        }
        refuse(
            path,
            rule,
            report,
            kind="sidecar",
            event="sidecar.reported",
            waiting_for=report["waiting_for"],
        )

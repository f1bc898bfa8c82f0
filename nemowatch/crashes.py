"""Crashes as evidence against a job: when nemowatch stops trying a file.

A stop is not the file's fault. A graceful stop (SIGTERM, SIGINT, `systemctl restart`)
interrupts the running jobs at a checkpoint and costs them nothing. A crash (SIGKILL, the
OOM killer, a segfault in a decoder, the machine losing power) is found at the next start:
a job the ledger still marks `in_flight` was running when the process died, because every
run that ends any other way (done, failed, stopped, waiting for credits) clears the mark.
Each such job is charged with the crash (`Ledger.count_crash`), and with having been alone
when it was the only job running. The count is of crashes in a row at the same point: a
run that got the job past the checkpoint it began at (`JobRecord.checkpoint`: a step done,
an instruction confirmed, a render submitted) before the crash starts a new row, since a
file that crashes the daemon crashes it where it did before.

The verdict, for a limit N (the config's `max_attempts`, 5 by default):

- fewer than N crashes in a row: nothing to suspect; the job resumes as usual;
- N crashes or more, and alone in at least one of them: it is failed as crashing the daemon;
- N crashes or more, never alone: it was in company each time, so any of the others may be
  to blame. It is run alone once (crash isolation: no other job runs beside it); if that
  crashes too, it has crashed alone, and is failed.
"""

from __future__ import annotations

from enum import StrEnum

from nemowatch.errors import EngineError


class Verdict(StrEnum):
    CLEAR = "clear"  # too few crashes to suspect it: run as usual
    ISOLATE = "isolate"  # running during `limit` crashes, never alone: run it alone
    CRASHES_DAEMON = "crashes the daemon"  # fail it: trying again would crash it again


def verdict(crashes: int, alone: bool, limit: int) -> Verdict:
    """What to do with a job that was running during `crashes` crashes of the daemon
    (`alone`: it was the only job running in one of them)."""
    if crashes < limit:
        return Verdict.CLEAR
    return Verdict.CRASHES_DAEMON if alone else Verdict.ISOLATE


def failure(crashes: int) -> EngineError:
    """The error a job that crashes the daemon fails with, with what to do about it."""
    return EngineError(
        f"this file crashed the daemon: nemowatch died {crashes} times while working on it,"
        " at least once with no other job running",
        retryable=True,  # the cause may be the machine (memory) or a bug fixed since
        hint="nemowatch stopped trying it so that the other files get done. The daemon's"
        " log (journalctl) says how the process ended; `nemowatch process FILE --config F`"
        " on the file in failed/ edits it alone in the foreground, and `nemowatch retry`"
        " puts it back once the cause is fixed. If it crashes `nemowatch process` too,"
        " please report it with the file",
    )

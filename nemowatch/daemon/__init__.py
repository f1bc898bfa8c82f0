"""The daemon: startup and recovery, watching, claiming, workers, reload, stop.

Startup: open the ledger, charge the jobs a crash left running with it (a graceful stop
costs nothing; see `nemowatch.crashes`), finish or undo claims a kill interrupted, resume
unfinished jobs, remove our own partial results from the outboxes, start the watchers,
queue a full scan.
A claim is written to the ledger before the file is renamed into processing/, so a file
there that the ledger does not know belongs to another nemowatch sharing the inbox: it is
left alone (and logged), which is what lets two daemons share folders. Running: events
and periodic scans feed the settle tracker; settled files are claimed and queued; N
workers drive jobs through the pipeline. SIGHUP (or an edit to a rule file) reloads the
config, keeping the old rules if the new ones are invalid. SIGTERM/SIGINT: stop taking
files, give running jobs `grace_period` seconds, leave the rest checkpointed for resume.

Under systemd (`Type=notify`) it says how it is: READY=1 once the config is valid, the ledger
open, the watches in place and the first scan queued; STATUS= kept current; RELOADING=1 on
SIGHUP; STOPPING=1 on SIGTERM; WATCHDOG=1 only while the watcher threads and the scheduler
are healthy, so a hung daemon is restarted.

New work can be held back for three reasons, each its own pause: an operator's
`nemowatch pause` (read from the ledger), no credits left (nemo), or a rule's inbox that
disappeared (an unmounted share) — that one holds only the rules on that inbox.

The parts, each usable without a running daemon:

- `lifecycle.Daemon`: starts, runs and stops the parts below, and reloads the config;
- `intake.Intake`: candidates in, claimed jobs out (settle, claim, and what they remember);
- `recovery.Recovery`: what a starting daemon does with what the last run left behind;
- `pauses.Pauses`: the three pauses, and `poll_credits`, which lifts the credits pause;
- `housekeeping.Housekeeping`: the doorbell (`watch.Doorbell`), the config files'
  signature (reload on edit), the operators' control table, and whether the ledger is
  still the file at its path (deleted or replaced: the daemon stops at once, exit 66);
- `workers.WorkerPool`: N workers over one queue of job ids (a job suspected of crashing
  the daemon runs alone).
"""

from nemowatch.daemon.lifecycle import Daemon

__all__ = ["Daemon"]

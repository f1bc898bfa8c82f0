"""The command line: run, check, process, explain, status, jobs, retry, pause, resume,
credits, init, doctor, ledger check|recover.

`jobs`, `retry`, `pause` and `resume` work while the daemon runs: they talk to it through
the ledger (see nemowatch/operator.py). Only `run`, `process` and `pause` (before a first
run) create a ledger, never where a daemon ran (`ledgerfile.ledger_expected`).

Exit status: 0 ok, 1 a job or command failed, 2 usage, and the error's `exit_status`
(errors.py: 65 damaged ledger, 66 ledger lost, 72/73 state_dir, 74 I/O, 78 invalid config).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from nemowatch import __version__, logs
from nemowatch.config import (
    EX_CONFIG,
    Config,
    check_report,
    example_config,
    load_config,
    load_default_config,
)
from nemowatch.config.schema import schema_text, write_beside
from nemowatch.engines.base import Credits
from nemowatch.errors import EX_DATAERR, EX_NOINPUT, ConfigError, NemowatchError
from nemowatch.intake import NOT_TAKEN, Verdict, shown
from nemowatch.ledger import (
    RUNNING,
    JobRecord,
    JobState,
    ledger_path,
    new_job_id,
)
from nemowatch.ledgerfile import ledger_expected
from nemowatch.ledgers.opening import open_ledger
from nemowatch.terminal import ProgressLine
from nemowatch.views import has_ledger

if TYPE_CHECKING:
    from nemowatch.operator import Unmatched


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    handler = COMMANDS[args.command]
    try:
        return handler(args)
    except ConfigError as error:
        print(f"nemowatch: {error}", file=sys.stderr)
        return EX_CONFIG
    except NemowatchError as error:
        _print_error(error)
        return error.exit_status
    except KeyboardInterrupt:
        return 130


def _print_error(error: NemowatchError) -> None:
    print(f"nemowatch: {error}", file=sys.stderr)
    if error.hint:
        print(f"  hint: {error.hint}", file=sys.stderr)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nemowatch",
        description="Watch folders, edit videos: footage dropped in an inbox comes out "
        "finished in the outbox.",
    )
    parser.add_argument("--version", action="version", version=f"nemowatch {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def with_config(sub: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sub.add_argument(
            "--config",
            "-c",
            type=Path,
            default=None,
            help="config file (default: $NEMOWATCH_CONFIG, else ~/.config/nemowatch/config.yaml)",
        )
        return sub

    run = with_config(commands.add_parser("run", help="run the daemon in the foreground"))
    run.add_argument("--log-format", choices=("auto", "console", "json"), default="auto")
    run.add_argument("--http", metavar="HOST:PORT", help="serve the web page (docs/http.md)")
    with_config(commands.add_parser("check", help="validate the config and rules, then exit"))
    process = with_config(
        commands.add_parser("process", help="process one file now, without the daemon")
    )
    process.add_argument("file", type=Path)
    process.add_argument(
        "--rule",
        default=None,
        help="the rule whose edit to apply (default: the one rule whose inbox or patterns "
        "take the file)",
    )
    explain = with_config(
        commands.add_parser("explain", help="show what a rule would do to a file (no render)")
    )
    explain.add_argument("file", type=Path)
    explain.add_argument("--rule", default=None, help="the rule to use (default: by inbox)")
    explain.add_argument("--picture", type=Path, help="also draw the timeline as SVG to this file")
    explain.add_argument(
        "--timeline", type=Path, help="also write the edit for an editor (.otio .fcpxml .xml .edl"
        " .kdenlive: the format from the extension)",
    )  # fmt: skip
    schema = commands.add_parser("schema", help="print the JSON Schema of config files")
    schema.add_argument("--rule-file", action="store_true", help="of rule files (rules_dir)")
    status = with_config(commands.add_parser("status", help="jobs in the ledger, by state"))
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.add_argument("--limit", type=int, default=10, help="recent jobs to list")
    jobs = with_config(commands.add_parser("jobs", help="list jobs, newest first"))
    jobs.add_argument("--state", default=None, help="only jobs in this state (or: queued, running)")
    jobs.add_argument("--rule", default=None, help="only jobs of this rule")
    jobs.add_argument("--limit", type=_count, default=50, help="jobs to list (0: all)")
    jobs.add_argument("--json", action="store_true", help="machine-readable output")
    retry = with_config(
        commands.add_parser(
            "retry", help="send failed jobs' sources back to their inboxes to be done again"
        )
    )
    retry.add_argument(
        "targets",
        nargs="*",
        metavar="JOB|PATH",
        help="a job id (or its start), or a failed file: in failed/, its original path, "
        "or its .error.json",
    )
    retry.add_argument("--failed", action="store_true", help="every failed job not retried yet")
    retry.add_argument("--rule", default=None, help="with --failed: only this rule's jobs")
    pause = with_config(
        commands.add_parser("pause", help="start no new jobs (the daemon keeps watching)")
    )
    pause.add_argument("--rule", default=None, help="only this rule's new jobs")
    resume = with_config(commands.add_parser("resume", help="start new jobs again after `pause`"))
    resume.add_argument("--rule", default=None, help="only this rule (after `pause --rule`)")
    with_config(commands.add_parser("credits", help="the NemoVideo credit balance"))
    init = commands.add_parser(
        "init", help="write DIR/config.yaml (the complete, commented example) and its folders"
    )
    init.add_argument("directory", type=Path)
    doctor = with_config(
        commands.add_parser(
            "doctor",
            help="check what this machine gives nemowatch: Python, FFmpeg, PyAV, folders,"
            " inotify limits, the ledger, the token (exit 1 on a problem)",
        )
    )
    doctor.add_argument("--json", action="store_true", help="machine-readable output")
    ledger = commands.add_parser("ledger", help="check or rebuild the job ledger")
    ledger_commands = ledger.add_subparsers(dest="action", metavar="ACTION", required=True)
    with_config(ledger_commands.add_parser("check", help="report what is wrong with it"))
    with_config(
        ledger_commands.add_parser(
            "recover",
            help="move a damaged (or lost) ledger aside and rebuild it from what can be read "
            "and from the folders (the daemon stopped; nothing is deleted)",
        )
    )
    migrate = with_config(ledger_commands.add_parser("migrate", help="copy it to PostgreSQL"))
    migrate.add_argument("--to", required=True, metavar="URL", help="postgresql://user@host/db")
    return parser


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more, got {value}")
    return value


def _config(args: argparse.Namespace) -> Config:
    if args.config is not None:
        return load_config(args.config)
    return load_default_config()


def cmd_run(args: argparse.Namespace) -> int:
    from nemowatch.alerts import Alerts
    from nemowatch.daemon import Daemon
    from nemowatch.daemon.companions import Companion

    config = _config(args)
    companions: list[Companion] = [Alerts()]
    if config.ledger is not None:  # a node of a fleet (docs/fleet.md)
        from nemowatch.daemon.fleet import Fleet

        companions.append(Fleet(config.fleet))
    if args.http is not None or config.http is not None:  # metrics only where served
        from nemowatch.metrics import Metrics
        from nemowatch.web.server import web_page

        metrics = Metrics()  # refused before anything starts: a page that may not be served
        companions += [metrics, web_page(config, args.http, metrics=metrics)]
    json_logs = {"auto": None, "console": False, "json": True}[args.log_format]
    folders = [folder for rule in config.rules for folder in (rule.inbox, rule.outbox)]
    logs.configure(config.log_level, json=json_logs, folders=folders)
    try:
        return asyncio.run(Daemon(config, companions=companions).run())
    except NemowatchError as error:
        # in the log too: under systemd it is where people look (`journalctl -u nemowatch`)
        logs.get_logger().error(
            "daemon.cannot_run", error=str(error), hint=error.hint, exit_status=error.exit_status
        )
        return error.exit_status


def cmd_check(args: argparse.Namespace) -> int:
    config = _config(args)
    for warning in check_report(config):
        print(f"warning: {warning}")
    rules = len(config.rules)
    print(f"{config.source}: ok ({rules} rule{'s' if rules != 1 else ''}, engine {config.engine})")
    if not ledger_path(config.state_dir).is_file() and ledger_expected(config.state_dir):
        print(
            f"warning: the job ledger in {config.state_dir} is missing, but a daemon ran "
            "there: the daemon will not start without it (`nemowatch ledger recover`)"
        )
    elif not ledger_path(config.state_dir).is_file():
        print(
            f"note: no job ledger in {config.state_dir} yet; the daemon creates it when it "
            "first runs"
        )
    return 0


def cmd_process(args: argparse.Namespace) -> int:
    from nemowatch.daemon.batches import folder_batch
    from nemowatch.engines.factory import make_engine
    from nemowatch.explain import choose_rule
    from nemowatch.files import sidecars_of
    from nemowatch.pipeline import Pipeline

    config = _config(args)
    logs.configure(config.log_level)
    source = args.file.resolve()
    if not (source.is_file() or source.is_dir()):
        print(f"nemowatch: {args.file}: no such file", file=sys.stderr)
        return 1
    try:
        rule = choose_rule(config, source, args.rule)
        batch = folder_batch(source, rule, new_job_id()) if source.is_dir() else None
    except LookupError as error:
        print(f"nemowatch: {error}", file=sys.stderr)
        return 2
    # the file was named explicitly: process it even if it was done before, leave it in place
    rule = rule.model_copy(update={"reprocess_duplicates": True})
    with ProgressLine(sys.stderr, source.name) as line:
        if line.live:
            # through the live line: printed above it
            logs.configure(config.log_level, folders=[source.parent, rule.outbox])
        ledger = open_ledger(config, daemon=True)
        engine = make_engine(config)
        pipeline = Pipeline(
            engine,
            ledger,
            state_dir=config.state_dir,
            max_attempts=config.max_attempts,
            dispose_sources=False,
            observer=line,
        )
        record = ledger.create(
            job_id=new_job_id(),
            rule=rule.name,
            engine=engine.name,
            source=source,
            claimed=source,
            # `clip.txt` / `clip.yaml` beside it: its instructions too, as the daemon reads them
            sidecars=[{"source": str(side), "claimed": str(side)} for side in sidecars_of(source)],
            batch=batch,
        )

        async def go() -> JobRecord:
            try:
                return await pipeline.run(record.id, rule)
            finally:
                await engine.close()

        try:
            result = asyncio.run(go())
        finally:
            ledger.close()
    if result.state is JobState.DONE:
        outputs = result.outputs  # several outputs: one a line
        print("\n".join(str(output) for output in outputs) if outputs else result.output)
        for warning in result.warnings:  # done, but not all as asked: said last, not lost
            print(f"nemowatch: {source.name}: warning: {warning}", file=sys.stderr)
        return 0
    print(f"nemowatch: {source.name}: {result.error}", file=sys.stderr)
    return 1


def cmd_explain(args: argparse.Namespace) -> int:
    from nemowatch import explain

    config = _config(args)
    logs.configure("warning")
    source = args.file.resolve()
    if not source.is_file():
        print(f"nemowatch: {args.file}: no such file", file=sys.stderr)
        return 1
    try:
        rule = explain.choose_rule(config, source, args.rule)
    except LookupError as error:
        print(f"nemowatch: {error}", file=sys.stderr)
        return 2
    if config.engine == "nemo":  # the cloud plans: what is sent where
        print(explain.describe_routing(source, rule))
        if args.timeline is not None:  # no plan here: the cloud makes it
            why = "the nemo engine plans in the cloud; set export: timelines on the rule"
            print(f"nemowatch: --timeline: {why} to get one beside the output", file=sys.stderr)
            return 1
        return 0
    plan = asyncio.run(explain.plan_for(config, source, rule))
    print(explain.describe(source, rule, plan))
    if args.picture is not None:
        explain.write_picture(args.picture, plan, source, ffmpeg=config.ffmpeg)
        print(f"picture: {args.picture}")
    if args.timeline is not None:
        left_out = explain.write_timeline(args.timeline, plan, source)
        print(f"timeline: {args.timeline}" + "".join(f"\n  left out: {i}" for i in left_out))
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    print(schema_text(rule_file=args.rule_file), end="")
    return 0


def cmd_credits(args: argparse.Namespace) -> int:
    from nemowatch.engines.factory import make_engine

    config = _config(args)
    logs.configure("warning")
    engine = make_engine(config)

    async def balance() -> Credits | None:
        try:
            return await engine.credits()
        finally:
            await engine.close()

    credits = asyncio.run(balance())
    if credits is None:
        print(f"the {engine.name} engine needs no credits")
        return 0
    total = f", total {credits.total:g}" if credits.total is not None else ""
    print(f"available {credits.available:g} credits (frozen {credits.frozen:g}{total})")
    if credits.anonymous and credits.user_id:
        print(
            "anonymous account: register to keep your work and get more credits: "
            f"https://nemovideo.com/register?bind={credits.user_id}"
        )
    return 0


_NO_JOBS_YET = "no jobs yet: the job ledger is made when the daemon (`nemowatch run`) first runs"


def cmd_status(args: argparse.Namespace) -> int:
    from nemowatch import liveness, operator, views

    config = _config(args)
    status = views.Status()
    if has_ledger(config):
        with open_ledger(config, existing=True) as ledger:
            status = views.read_status(ledger, args.limit, config.fleet.lease)
    elif not args.json:
        print(_NO_JOBS_YET)
    daemon = liveness.check(config.state_dir)
    unmatched = operator.unmatched_files(config.rules)
    if args.json:
        print(json.dumps(views.status_json(status, daemon, unmatched), indent=2))
        return 0
    control = status.control
    if control.paused:
        since = _local(control.paused_at) if control.paused_at else "a while"
        print(f"paused since {since}: no new jobs start until `nemowatch resume`")
    for name, since_epoch in status.paused_rules.items():
        print(f"rule {name} paused since {_local(since_epoch)}: `nemowatch resume --rule {name}`")
    if daemon.running:
        print(f"daemon: running (pid {daemon.pid})" if daemon.pid else "daemon: running")
    else:
        here = " on this machine (the fleet's nodes are below)" if status.nodes else ""
        print(f"daemon: not running{here}; `nemowatch run` starts it (files wait in the inboxes)")
    print(", ".join(f"{name}: {count}" for name, count in status.summary.items()))
    for line in [*views.node_lines(status), *_unmatched_lines(unmatched)]:
        print(line)
    for record in status.recent:
        print(_job_line(record, node=bool(status.nodes)))
    return 0


SHOWN_NAMES = 3  # unmatched files named in `status`, per inbox


def _unmatched_lines(unmatched: list[Unmatched]) -> list[str]:
    """ "3 files in inbox/reels match no rule (a.txt, b.doc, c.mkv): ...", per inbox."""
    groups: dict[tuple[Path, Verdict], list[Path]] = {}
    for item in unmatched:
        groups.setdefault((item.path.parent, item.verdict), []).append(item.path)
    lines = []
    for (inbox, verdict), paths in groups.items():
        count = len(paths)
        names = ", ".join(shown(Path(path.name)) for path in paths[:SHOWN_NAMES])
        if count > SHOWN_NAMES:
            names += f" and {count - SHOWN_NAMES} more"
        files = f"{count} file{'s' if count != 1 else ''} in {_shown(inbox)}"
        if verdict is Verdict.BAD_NAME:
            hint = NOT_TAKEN[verdict][1]
            have = "has a name that is" if count == 1 else "have names that are"
            lines.append(f"{files} {have} not UTF-8 ({names}): {hint}")
        else:
            match = "matches" if count == 1 else "match"
            lines.append(
                f"{files} {match} no rule ({names}): they wait there until renamed, or until "
                "a rule's `match` accepts them"
            )
    return lines


def _job_line(record: JobRecord, *, node: bool = False) -> str:
    """One job: `a1b2c3d4e5f6  rendering 42 % reels        clip.mp4 -> ...`; a job done
    with warnings says how many (`done with 2 warnings`)."""
    doing = record.state.value
    if record.state is JobState.DONE and record.warnings:
        count = len(record.warnings)
        doing = f"done with {count} warning{'s' if count != 1 else ''}"
    if record.state in RUNNING and record.stage:
        doing = record.stage
        if record.percent is not None:
            doing += f" {int(record.percent)} %"  # floored: 100 % only when it is done
    line = f"{record.id}  {doing:<11} {record.rule:<12} {record.source.name}"
    if node and record.node:  # in a fleet: which daemon works on it
        line += f"  @{record.node}"
    if record.retried:
        line += "  [retried]"
    if record.revision is not None:  # a revision: the version it makes, of which job
        line += f"  [v{record.revision.version} of {record.revision.of}]"
    elif record.batch is not None:
        line += f"  [in {record.batch.folder.name}/]"
    if record.outputs:  # several outputs per rule: all, as published so far
        line += " -> " + ", ".join(str(output) for output in record.outputs)
    elif record.state in (JobState.FAILED, JobState.SKIPPED, JobState.RETURNED) and record.error:
        line += f"  ({record.error})"
    return line


def cmd_jobs(args: argparse.Namespace) -> int:
    from nemowatch.operator import states_named
    from nemowatch.views import jobs_json

    states = None
    if args.state is not None:
        try:
            states = states_named(args.state)
        except ValueError as error:
            print(f"nemowatch: {error}", file=sys.stderr)
            return 2
    config = _config(args)
    if not has_ledger(config):
        print("[]" if args.json else _NO_JOBS_YET)
        return 0
    with open_ledger(config, existing=True) as ledger:
        records = ledger.jobs(states, limit=args.limit or None, rule=args.rule)
        fleet = ledger.is_shared
    if args.json:
        print(json.dumps(jobs_json(records), indent=2))
        return 0
    if not records:
        print("no jobs" + (f" in state {args.state}" if args.state else ""))
    for record in records:
        print(_job_line(record, node=fleet))
    return 0


def cmd_retry(args: argparse.Namespace) -> int:
    from nemowatch import operator

    if bool(args.targets) == bool(args.failed):
        print("nemowatch retry: give JOB or PATH arguments, or --failed", file=sys.stderr)
        return 2
    if args.rule is not None and not args.failed:
        print("nemowatch retry: --rule goes with --failed", file=sys.stderr)
        return 2
    config = _config(args)
    if args.failed and not has_ledger(config):
        print("no failed jobs to retry" + (f" for rule {args.rule}" if args.rule else ""))
        return 0
    ledger = open_ledger(config, existing=True)  # never a new one: nothing to retry
    problems = 0
    requeued = 0
    try:
        if args.failed:
            # oldest first: of two failures of one name, the older gets the name back
            records = ledger.jobs(JobState.FAILED, limit=None, rule=args.rule, retried=False)
            records.reverse()
            if not records:
                print("no failed jobs to retry" + (f" for rule {args.rule}" if args.rule else ""))
        else:
            records = []
            for target in args.targets:
                try:
                    record = operator.find_job(ledger, target)
                except NemowatchError as error:
                    _print_error(error)
                    problems += 1
                    continue
                if all(record.id != earlier.id for earlier in records):
                    records.append(record)  # a file and its .error.json are one job
        for record in records:
            try:
                result = operator.retry_job(ledger, config, record)
            except NemowatchError as error:
                _print_error(error)
                problems += 1
                continue
            requeued += 1
            if result.moved_from is not None:
                print(
                    f"requeued {record.id}: {_shown(result.moved_from)} -> {_shown(result.source)}"
                )
            else:
                print(f"requeued {record.id}: {_shown(result.source)} (kept in the inbox)")
    finally:
        ledger.close()
    if requeued:
        them = "them" if requeued > 1 else "it"
        print(
            f"a running daemon takes {them} again now; if none is running, {them} "
            f"wait{'' if requeued > 1 else 's'} in the inbox until `nemowatch run` starts"
        )
    return 1 if problems else 0


def cmd_pause(args: argparse.Namespace) -> int:
    config = _config(args)
    if args.rule is not None:
        return _pause_rule(config, args.rule, True)
    # a pause before the first start holds from it; never where a ledger was lost
    with open_ledger(config) as ledger:
        before = ledger.control()
        control = ledger.set_paused(True)
    since = _local(control.paused_at) if control.paused_at else "now"
    print(
        f"{'already ' if before.paused else ''}paused since {since}: new jobs won't start; "
        "running jobs finish; files keep arriving in the inboxes and are picked up after "
        "`nemowatch resume`"
    )
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    config = _config(args)
    if args.rule is not None:
        return _pause_rule(config, args.rule, False)
    if not has_ledger(config):
        print("not paused; nothing to resume")
        return 0
    with open_ledger(config, existing=True) as ledger:
        before = ledger.control()
        ledger.set_paused(False)
        ledger.request_scan()  # take what arrived during the pause without waiting for a scan
    if not before.paused:
        print("not paused; nothing to resume")
        return 0
    print(
        "resumed: a running daemon starts new jobs again, beginning with the files that "
        "waited in the inboxes"
    )
    return 0


def _pause_rule(config: Config, name: str, paused: bool) -> int:
    from nemowatch.rulepause import pause_rule

    if name not in (names := [rule.name for rule in config.rules]):
        print(f"nemowatch: no rule {name!r} (rules: {', '.join(names)})", file=sys.stderr)
        return 2
    if not paused and not has_ledger(config):
        print(f"rule {name} is not paused; nothing to resume")
        return 0
    with open_ledger(config) as ledger:
        changed = pause_rule(ledger, name, paused, time.time())
    if paused:
        inbox = config.rules[names.index(name)].inbox
        print(f"{'' if changed else 'already '}paused rule {name}: its new files wait in {inbox}")
    else:
        print(f"resumed rule {name}" if changed else f"rule {name} is not paused")
    return 0


def _shown(path: Path) -> str:
    """A path relative to the current folder when it is inside it, else absolute."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _local(epoch: float) -> str:
    return datetime.fromtimestamp(epoch).astimezone().isoformat(sep=" ", timespec="seconds")


def cmd_init(args: argparse.Namespace) -> int:
    directory: Path = args.directory
    config_path = directory / "config.yaml"
    refusal = (
        f"nemowatch: {config_path} exists; not overwriting it (edit it, or init another folder)"
    )
    if config_path.exists():
        print(refusal, file=sys.stderr)
        return 1
    for folder in ("inbox", "outbox", "state"):
        (directory / folder).mkdir(parents=True, exist_ok=True)
    try:
        # "x": never over a config, even one written since the look above
        with config_path.open("x", encoding="utf-8") as file:
            file.write(example_config(config_path.absolute()))
    except FileExistsError:
        print(refusal, file=sys.stderr)
        return 1
    load_config(config_path)  # what init writes must always load
    schema = write_beside(config_path)  # the config's first line names it, for editors
    print(f"wrote {config_path}: the complete example, every setting explained")
    print(f"wrote {schema}: its JSON Schema, for editors to complete and check it")
    print(f"check it with: nemowatch check --config {config_path}")
    print(f"start it with: nemowatch run --config {config_path}")
    print(f"then drop a video into {directory / 'inbox'}")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from nemowatch import doctor

    findings = doctor.diagnose(args.config, doctor.Machine.this_one())
    if args.json:
        print(doctor.findings_json(findings))
    else:
        print(doctor.format_findings(findings))
    return 1 if doctor.has_problems(findings) else 0


def cmd_ledger(args: argparse.Namespace) -> int:
    from nemowatch import salvage

    config = _config(args)
    if args.action == "check":
        report = salvage.check(config.state_dir)
        for line in salvage.describe_report(report):
            print(line)
        if report.exists:
            return 0 if report.sound else EX_DATAERR
        return EX_NOINPUT if report.expected else 0
    if args.action == "migrate":
        from nemowatch.ledgers import migrate

        lines = migrate.describe(migrate.migrate(config, args.to))
    else:
        lines = salvage.describe_recovered(salvage.recover(config))
    print("\n".join(lines))
    return 0


COMMANDS = {
    "run": cmd_run,
    "check": cmd_check,
    "process": cmd_process,
    "explain": cmd_explain,
    "schema": cmd_schema,
    "credits": cmd_credits,
    "status": cmd_status,
    "jobs": cmd_jobs,
    "retry": cmd_retry,
    "pause": cmd_pause,
    "resume": cmd_resume,
    "init": cmd_init,
    "doctor": cmd_doctor,
    "ledger": cmd_ledger,
}


if __name__ == "__main__":
    sys.exit(main())

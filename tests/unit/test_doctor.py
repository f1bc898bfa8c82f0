"""doctor's checks one by one, on real folders and files, with the kernel's tables (the mount
table, the inotify limits) given as the parameters they are."""

from __future__ import annotations

import json
import os
from pathlib import Path

from nemowatch.config import Config, load_config
from nemowatch.doctor import (
    Finding,
    Machine,
    Status,
    ffmpeg_findings,
    folder_finding,
    format_findings,
    inotify_finding,
    nemo_token_finding,
)
from nemowatch.mounts import POLLING_REASON, read_mountinfo
from tests.fakes.ffmpeg import DRAWTEXT_5_1, fake_ffmpeg


def config_for(folder: Path, **rule_fields: object) -> Config:
    fields = "".join(f"    {key}: {json.dumps(value)}\n" for key, value in rule_fields.items())
    path = folder / "config.yaml"
    path.write_text(
        f"state_dir: {folder / 'state'}\nrules:\n  - name: clips\n"
        f"    inbox: {folder / 'inbox'}\n    outbox: {folder / 'outbox'}\n{fields}",
        encoding="utf-8",
    )
    return load_config(path)


def limits(folder: Path, *, watches: int, instances: int) -> Path:
    folder.mkdir()
    (folder / "max_user_watches").write_text(f"{watches}\n")
    (folder / "max_user_instances").write_text(f"{instances}\n")
    return folder


def machine(
    *, mountinfo: str | None = None, inotify_limits: Path = Path("/proc/sys/fs/inotify")
) -> Machine:
    """This machine, but for what a test gives."""
    return Machine(
        environ={},
        mountinfo=read_mountinfo() if mountinfo is None else mountinfo,
        inotify_limits=inotify_limits,
    )


def test_too_few_inotify_watches_for_a_recursive_inbox_is_a_note_with_the_sysctl(
    tmp_path: Path,
) -> None:
    config = config_for(tmp_path, recursive=True)
    for name in ("a", "b", "c/d"):
        (tmp_path / "inbox" / name).mkdir(parents=True)
    small = limits(tmp_path / "inotify", watches=3, instances=10**6)

    finding = inotify_finding(config, machine(inotify_limits=small))

    assert finding.status is Status.NOTE
    assert finding.facts["watches_needed"] > 3  # counting stops past the limit
    assert "some inboxes will be polled" in finding.detail
    assert finding.fix is not None and "fs.inotify.max_user_watches=" in finding.fix


def test_too_few_inotify_instances_means_every_inbox_is_polled(tmp_path: Path) -> None:
    config = config_for(tmp_path)
    one = limits(tmp_path / "inotify", watches=10**6, instances=1)

    finding = inotify_finding(config, machine(inotify_limits=one))

    assert finding.status is Status.NOTE
    assert "every inbox will be polled" in finding.detail
    assert finding.fix is not None and "fs.inotify.max_user_instances=" in finding.fix


def test_generous_inotify_limits_are_ok_and_every_watched_folder_is_counted(
    tmp_path: Path,
) -> None:
    config = config_for(tmp_path, recursive=True)
    for name in ("a", "b", "c/d"):
        (tmp_path / "inbox" / name).mkdir(parents=True)
    plenty = limits(tmp_path / "inotify", watches=10**7, instances=10**6)

    finding = inotify_finding(config, machine(inotify_limits=plenty))

    assert finding.status is Status.OK, finding.detail
    # the inbox and its 4 folders; the doorbells: the config's folder, the bell and the
    # state directory (the ledger deleted or replaced)
    assert finding.facts["watches_needed"] == 1 + 4 + 3


def test_without_inotify_limits_to_read_it_is_a_note(tmp_path: Path) -> None:
    config = config_for(tmp_path)

    finding = inotify_finding(config, machine(inotify_limits=tmp_path / "none"))

    assert finding.status is Status.NOTE


def test_an_inbox_on_a_network_share_is_polled_and_takes_no_inotify_watch(
    tmp_path: Path,
) -> None:
    config = config_for(tmp_path, recursive=True)
    (tmp_path / "inbox" / "deep").mkdir(parents=True)
    share = f"{read_mountinfo()}99 1 0:99 / {tmp_path / 'inbox'} rw - nfs4 nas:/video rw\n"
    plenty = limits(tmp_path / "inotify", watches=10**7, instances=10**6)
    on_share = machine(mountinfo=share, inotify_limits=plenty)

    inbox = folder_finding("inbox", tmp_path / "inbox", ["clips"], on_share)
    inotify = inotify_finding(config, on_share)

    assert inbox.status is Status.OK
    assert inbox.facts["filesystem"] == "nfs4"
    assert inbox.facts["watched_by"] == "polling"
    assert POLLING_REASON in inbox.detail
    # only the doorbells: the config's folder, the operators' bell and the state directory
    assert inotify.facts["watches_needed"] == 3


def test_a_rule_that_asks_for_polling_is_polled(tmp_path: Path) -> None:
    (tmp_path / "inbox").mkdir()

    finding = folder_finding("inbox", tmp_path / "inbox", ["clips"], machine(), poll=True)

    assert finding.facts["watched_by"] == "polling"
    assert "poll: true" in finding.detail


def test_a_folder_that_does_not_exist_yet_but_can_be_made_is_ok_and_is_not_made(
    tmp_path: Path,
) -> None:
    outbox = tmp_path / "not" / "yet"

    finding = folder_finding("outbox", outbox, ["clips"], machine())

    assert finding.status is Status.OK
    assert "creates it when it starts" in finding.detail
    assert list(tmp_path.iterdir()) == []  # the probe folder was removed, nothing was made


def test_a_folder_on_a_filesystem_nobody_can_write_is_a_problem(tmp_path: Path) -> None:
    # /proc takes no new files, not even from root (the tests run as root)
    finding = folder_finding("outbox", Path("/proc/nemowatch-outbox"), ["clips"], machine())

    assert finding.status is Status.PROBLEM
    assert "cannot be created in /proc" in finding.detail
    assert finding.fix is not None and "ReadWritePaths=" in finding.fix


def test_a_pinned_ffmpeg_that_cannot_be_used_is_only_a_note_for_engine_nemo(
    tmp_path: Path,
) -> None:
    lacking = DRAWTEXT_5_1.replace("   textfile ", "   textfilx ")
    fake = fake_ffmpeg(tmp_path, version="5.1.9", drawtext_help=lacking)
    environ = {"PATH": os.environ.get("PATH", ""), "NEMOWATCH_FFMPEG": str(fake)}

    needed = ffmpeg_findings(environ, needed=True)[-1]
    not_needed = ffmpeg_findings(environ, needed=False)[-1]

    assert (needed.name, needed.status) == ("ffmpeg", Status.PROBLEM)
    assert "drawtext:textfile" in needed.detail
    assert (not_needed.name, not_needed.status) == ("ffmpeg", Status.NOTE)
    assert "engine: nemo does not need it" in not_needed.detail


def test_a_kept_token_readable_by_others_is_a_note_that_never_shows_it(tmp_path: Path) -> None:
    kept = tmp_path / "nemo-auth.json"
    kept.write_text(json.dumps({"client_id": "c", "token": "sekrit-token-value"}))
    kept.chmod(0o644)

    finding = nemo_token_finding(tmp_path, {})

    assert finding.status is Status.NOTE
    assert finding.fix == f"chmod 600 {kept} (nemowatch also does so the next time it reads it)"
    assert "sekrit" not in repr(finding)
    assert kept.stat().st_mode & 0o777 == 0o644  # doctor only looks


def test_an_expired_kept_token_is_a_note(tmp_path: Path) -> None:
    kept = tmp_path / "nemo-auth.json"
    kept.write_text(json.dumps({"client_id": "c", "token": "t", "expires_at": "2001-01-01"}))
    kept.chmod(0o600)

    finding = nemo_token_finding(tmp_path, {})

    assert finding.status is Status.NOTE
    assert "expired at 2001-01-01" in finding.detail


def test_problems_are_marked_and_followed_by_what_to_do() -> None:
    findings = [
        Finding("python", Status.OK, "3.11.7", fix="never shown for ok"),
        Finding("ffmpeg", Status.NOTE, "no text_align"),
        Finding("outbox /x", Status.PROBLEM, "is not a folder", fix="make it one"),
    ]

    assert format_findings(findings).splitlines() == [
        "ok        python: 3.11.7",
        "note      ffmpeg: no text_align",
        "PROBLEM   outbox /x: is not a folder",
        "          what to do: make it one",
        "1 problem: outbox /x",
    ]


def test_doctor_says_whether_timelines_for_editors_can_be_written(monkeypatch) -> None:
    from nemowatch import timelines
    from nemowatch.doctor import timelines_finding

    assert timelines_finding().status is Status.OK  # the dev extra installs them
    # as if the FCP X adapter were not installed: its module is one that does not exist
    monkeypatch.setitem(timelines._PLUGINS, "fcpx_xml", "nemowatch_no_such_adapter")
    missing = timelines_finding()
    assert missing.status is Status.NOTE
    assert "nemowatch_no_such_adapter is not installed" in missing.detail
    assert missing.fix == "install the timelines extra: pip install 'nemowatch[timelines]'"

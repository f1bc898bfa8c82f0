"""The nemo engine's workflows with the daemon running, against the fake NemoVideo
server (issue 13): a folder is one session with an upload and a render per file, and a
revision goes on in its job's session with one more render. (Apart from
test_nemo_daemon.py so that pytest-xdist can run the two files side by side.)"""

# ruff: noqa: F811 (the `fake` fixture comes from test_nemo_daemon.py)

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.e2e.harness import Daemon, drop, files, wait_for
from tests.e2e.test_nemo_daemon import INSTRUCTIONS, fake, nemo_config  # noqa: F401
from tests.fakes.nemo_server import FakeNemo

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_a_folder_of_videos_is_one_session_with_an_upload_and_a_render_each(
    tmp_path: Path, fake: FakeNemo, clips
) -> None:
    config = nemo_config(tmp_path, fake)
    inbox, outbox = tmp_path / "inbox" / "clips", tmp_path / "outbox" / "clips"
    staged = tmp_path / "staging" / "trip"
    staged.mkdir(parents=True)
    for name, clip in (
        ("a.mp4", clips.basic),
        ("b.mp4", clips.silences),
        ("c.mp4", clips.no_audio),
    ):
        shutil.copyfile(clip, staged / name)
    daemon = Daemon(config, tmp_path / "daemon.log").start()
    try:
        inbox.mkdir(parents=True, exist_ok=True)
        staged.rename(inbox / "trip")  # a folder dropped whole: `batch: each` by default
        outputs = wait_for(
            lambda: len(files(outbox, "*.mp4")) == 3 and files(outbox, "*.mp4"),
            timeout=120,
            what="three outputs",
        )
        wait_for(lambda: list((inbox / "done").glob("*/trip/c.mp4")), what="the folder archived")
    finally:
        assert daemon.stop() == 0
    assert [path.name for path in outputs] == ["a.mp4", "b.mp4", "c.mp4"]
    books = fake.books
    assert len(books.sessions) == 1
    (session,) = books.uploads
    assert len(books.uploads[session]) == 3
    assert len(books.accepted_renders(session)) == 3
    assert len(daemon.saw("session.shared")) == 2


def test_a_revision_goes_on_in_the_same_session_with_one_more_render(
    tmp_path: Path, fake: FakeNemo, clips
) -> None:
    config = nemo_config(tmp_path, fake)
    inbox, outbox = tmp_path / "inbox" / "clips", tmp_path / "outbox" / "clips"
    daemon = Daemon(config, tmp_path / "daemon.log").start()
    try:
        drop(inbox / "talk.mp4", clips.silences)
        [first] = wait_for(lambda: files(outbox, "talk.mp4"), what="talk.mp4")
        wait_for(lambda: files(inbox / "done", "talk.mp4"), what="archived")
        before = first.read_bytes()
        drop(inbox / "talk.revise.txt", b"make the music quieter\n")
        wait_for((outbox / "talk v2.mp4").is_file, timeout=120, what="talk v2.mp4")
    finally:
        assert daemon.stop() == 0
    assert first.read_bytes() == before
    books = fake.books
    assert len(books.sessions) == 1
    (session,) = books.uploads
    assert len(books.uploads[session]) == 1  # the source is in the session already
    assert books.applied_instructions(session) == [*INSTRUCTIONS, "make the music quieter"]
    assert len(books.accepted_renders(session)) == 2
    assert daemon.saw("session.continued")

"""The bad-input corpus: every way a file, a name or a config can be wrong, and the end each
must reach. Whatever comes in, the daemon keeps running, every error names the file and
says what to do, and no file is lost or overwritten.

Files are dropped into ONE running daemon (`corpus`, below), between a good clip before
and a good clip after; each case is then checked on its own. Races that a daemon cannot be
made to lose on purpose (a file deleted or replaced between settle and claim) drive the
real intake functions on real files. Config cases run `nemowatch check` and `run`.

The tests run as root, and root ignores file modes: the corpus daemon is started without
capabilities (setpriv), so an unreadable file and an unwritable outbox are real to it.
"""

from __future__ import annotations

import contextlib
import ctypes
import enum
import errno
import hashlib
import json
import os
import shlex
import shutil
import stat
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from nemowatch.files import claim, snapshot
from nemowatch.intake import SettleTracker, shown
from nemowatch.outbox import unwritable
from nemowatch.probe import probe
from tests.e2e.harness import (
    Daemon,
    drop,
    files,
    ledger_states,
    move_in,
    rule,
    staging_for,
    wait_for,
    write_config,
)
from tests.media import TOOL_FFMPEG, Clips, write_random_bytes

pytestmark = pytest.mark.e2e

# Started without any capability, root is bound by file modes like anyone else.
NO_CAPABILITIES = (
    ["setpriv", "--inh-caps=-all", "--bounding-set=-all", "--ambient-caps=-all", "--"]
    if os.geteuid() == 0
    else []
)
THREE_HOURS = 3 * 3600
SCAN_INTERVAL = 1.0


# ---- making bad files ------------------------------------------------------------------------


def ffmpeg(*arguments: str) -> None:
    subprocess.run(
        [str(TOOL_FFMPEG), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *arguments],
        check=True,
        capture_output=True,
    )


def cut_short_mp4(source: Path, target: Path) -> None:
    """An MP4 whose index (at the front) describes all of it, with the data cut off at 40%:
    a copy that stopped early. Its header still says 3 s."""
    whole = target.with_name(".whole.mp4")
    ffmpeg("-i", str(source), "-c", "copy", "-movflags", "+faststart", str(whole))
    data = whole.read_bytes()
    whole.unlink()
    target.write_bytes(data[: len(data) * 4 // 10])


def three_hour_avi(source: Path, target: Path) -> None:
    """A 3 s AVI whose headers (main header, each stream header) say it lasts 3 hours."""
    whole = target.with_name(".whole.avi")
    ffmpeg("-i", str(source), "-c", "copy", str(whole))
    data = bytearray(whole.read_bytes())
    whole.unlink()
    main = data.find(b"avih") + 8  # dwMicroSecPerFrame, ..., dwTotalFrames at +16
    (frame_microseconds,) = struct.unpack_from("<I", data, main)
    struct.pack_into("<I", data, main + 16, THREE_HOURS * 1_000_000 // frame_microseconds)
    header = data.find(b"strh")
    while header >= 0:
        body = header + 8  # fccType, fccHandler, flags, priority+language, initial frames,
        scale, rate = struct.unpack_from("<II", data, body + 20)  # then dwScale, dwRate,
        struct.pack_into("<I", data, body + 32, THREE_HOURS * rate // scale)  # dwLength
        header = data.find(b"strh", header + 4)
    target.write_bytes(bytes(data))


def three_hour_mkv(source: Path, target: Path) -> None:
    """A 3 s Matroska file whose segment info says it lasts 3 hours."""
    whole = target.with_name(".whole.mkv")
    ffmpeg("-i", str(source), "-c", "copy", str(whole))
    data = bytearray(whole.read_bytes())
    whole.unlink()
    element = data.find(b"\x44\x89")  # Duration, a float in milliseconds
    length = data[element + 2] & 0x7F
    layout = ">d" if length == 8 else ">f"
    struct.pack_into(layout, data, element + 3, THREE_HOURS * 1000.0)
    target.write_bytes(bytes(data))


def audio_only(target: Path) -> None:
    ffmpeg("-f", "lavfi", "-i", "sine=duration=2", "-c:a", "aac", str(target))


def still_image(target: Path, codec: str) -> None:
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x120", "-frames:v", "1", "-c:v", codec,
           "-f", "image2pipe", str(target))  # fmt: skip


def corrupt_photo(target: Path) -> None:
    """A JPEG whose headers are fine and whose picture data is noise."""
    whole = target.with_name(".whole.jpg")
    still_image(whole, "mjpeg")
    data = whole.read_bytes()
    whole.unlink()
    target.write_bytes(data[: len(data) // 3] + bytes(range(256)) * 8)


def cover_only(target: Path) -> None:
    """An M4A that holds its cover picture and no sound."""
    picture = target.with_name(".cover.png")
    still_image(picture, "png")
    ffmpeg("-i", str(picture), "-map", "0:v", "-c:v", "png", "-disposition:v", "attached_pic",
           "-f", "mp4", str(target))  # fmt: skip
    picture.unlink()


def padded_mp4(source: Path, target: Path, size: int) -> None:
    """A perfectly good MP4, made `size` bytes long by a `free` box (padding players skip)."""
    data = source.read_bytes()
    padding = size - len(data)
    target.write_bytes(data + struct.pack(">I4s", padding, b"free") + bytes(padding - 8))


# ---- proving that nothing opened a path ------------------------------------------------------

_IN_ACCESS, _IN_OPEN = 0x1, 0x20


class OpenWatch:
    """Whether anything opens or reads a path, as inotify reports it (IN_OPEN, IN_ACCESS):
    the proof that a symlink's target or a FIFO was never read."""

    def __init__(self, path: Path) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self._fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self._fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        if libc.inotify_add_watch(self._fd, os.fsencode(path), _IN_OPEN | _IN_ACCESS) < 0:
            raise OSError(ctypes.get_errno(), f"inotify_add_watch {path}")
        self.opened = False

    def check(self) -> bool:
        """Whether it was opened since the watch began (reading the events once)."""
        with contextlib.suppress(BlockingIOError):  # nothing to read: no event
            self.opened = self.opened or bool(os.read(self._fd, 4096))
        return self.opened

    def close(self) -> None:
        os.close(self._fd)


# ---- the corpus ------------------------------------------------------------------------------


class End(enum.Enum):
    DONE = "done"  # edited: the output in the outbox, the source in done/
    FAILED = "failed"  # the source in failed/ beside <name>.error.json
    LEFT = "left"  # never claimed: still in the inbox exactly as dropped


@dataclass(frozen=True)
class Where:
    """The folders of the corpus daemon, and the clips its cases are made of."""

    inbox: Path
    outbox: Path
    outside: Path  # a folder outside every inbox
    clips: Clips


Maker = Callable[[Path, Where], "Path | None"]  # writes the entry; returns a path to watch


@dataclass(frozen=True)
class Case:
    id: str
    name: str  # as dropped; os.fsdecode() of raw bytes for names that are not UTF-8
    make: Maker
    end: End
    mentions: tuple[str, ...] = ()  # FAILED: words of the error; LEFT: the log event, once
    hint: str = ""  # FAILED: words of the hint
    rule: str = "corpus"
    output: str | None = None  # DONE: the output's name, when not "<stem>.mp4"
    sound: bool = True  # DONE: the output has sound (a photo's has none)


def distinct(index: int) -> Maker:
    """A good clip of its own (byte-identical files would be skipped as duplicates)."""

    def make(target: Path, where: Where) -> None:
        shutil.copyfile(where.clips.distinct(12)[index], target)

    return make


def empty(target: Path, where: Where) -> None:
    target.write_bytes(b"")


def truncated(target: Path, where: Where) -> None:
    data = where.clips.basic.read_bytes()  # the index (moov) is at the end: cut away
    target.write_bytes(data[: len(data) // 2])


def random_bytes(seed: int) -> Maker:
    def make(target: Path, where: Where) -> None:
        write_random_bytes(target, size=50_000, seed=seed)

    return make


def unreadable(target: Path, where: Where) -> None:
    shutil.copyfile(where.clips.distinct(12)[9], target)
    target.chmod(0)


def name_taken(target: Path, where: Where) -> None:
    shutil.copyfile(where.clips.distinct(12)[10], target)
    (where.outbox / "taken.mp4").write_bytes(b"an earlier output, to be kept")


def symlink_out(target: Path, where: Where) -> Path:
    outside = where.outside / "elsewhere.mp4"
    shutil.copyfile(where.clips.distinct(12)[11], outside)
    target.symlink_to(outside)
    return outside


def fifo(target: Path, where: Where) -> Path:
    os.mkfifo(target)
    return target


def folder(target: Path, where: Where) -> None:
    # a folder is a batch of its files (test_batches.py); an empty one waits for them
    target.mkdir()


def text(content: str) -> Maker:
    def make(target: Path, where: Where) -> None:
        target.write_text(content, encoding="utf-8")

    return make


CASES = [
    Case("zero-byte-file", "empty.mp4", empty, End.FAILED, ("empty.mp4", "empty, 0 bytes")),
    Case("truncated-mp4", "truncated.mp4", truncated, End.FAILED,
         ("truncated.mp4", "not a readable video")),
    Case("mp4-cut-short-after-its-index", "cut-short.mp4",
         lambda target, where: cut_short_mp4(where.clips.basic, target), End.FAILED,
         ("cut-short.mp4", "says it lasts 0:00:03.0", "so it is truncated or corrupt")),
    Case("random-bytes-named-mov", "random.mov", random_bytes(1), End.FAILED,
         ("random.mov", "not a readable video")),
    # what a file is comes from its content, not its name (issue 13)
    Case("audio-only-file-named-mp4", "voice.mp4", lambda target, where: audio_only(target),
         End.DONE),
    Case("image-named-jpg", "photo.jpg", lambda target, where: still_image(target, "mjpeg"),
         End.DONE, sound=False),
    Case("image-named-mp4", "still.mp4", lambda target, where: still_image(target, "png"),
         End.DONE, sound=False),
    Case("corrupt-photo", "broken.jpg", lambda target, where: corrupt_photo(target),
         End.FAILED, ("broken.jpg", "not a readable photo"), "opens in an image viewer"),
    Case("sound-file-without-sound", "cover-only.m4a", lambda target, where: cover_only(target),
         End.FAILED, ("cover-only.m4a", "holds no sound and no picture"),
         "export the recording again"),
    Case("avi-header-claims-3-hours", "three-hours.avi",
         lambda target, where: three_hour_avi(where.clips.basic, target), End.FAILED,
         ("three-hours.avi", "says it lasts 3:00:00.0", "data ends at 0:00:03"),
         "copy or export the original again"),
    Case("mkv-header-claims-3-hours", "three-hours.mkv",
         lambda target, where: three_hour_mkv(where.clips.basic, target), End.FAILED,
         ("three-hours.mkv", "says it lasts 3:00:00.0", "data ends at 0:00:03")),
    Case("file-over-max-size", "too-big.mp4",
         lambda target, where: padded_mp4(where.clips.basic, target, 1_300_000), End.FAILED,
         ("too-big.mp4", "1.3 MB (1300000 bytes)", "max_size of 1 MB"),
         "raise the rule's max_size"),
    Case("unsupported-extension", "notes.txt", text("shopping list"), End.FAILED,
         ("notes.txt", "not a readable video, photo or sound file")),
    Case("file-without-read-permission", "secret.mp4", unreadable, End.FAILED,
         ("secret.mp4", "permission denied"), "read access to the file"),
    Case("outbox-without-write-permission", "blocked.mp4", distinct(8), End.FAILED,
         ("blocked.mp4", "outbox", "permission denied"), "write access to", rule="locked"),
    Case("bad-file-named-with-quotes-and-newline", "it's \"bad\"\n.mov", random_bytes(2),
         End.FAILED, ("it's \"bad\"\n.mov", "not a readable video")),
    Case("name-with-newline", "new\nline.mp4", distinct(2), End.DONE),
    Case("name-with-quotes", "it's \"quoted\".mp4", distinct(3), End.DONE),
    Case("name-with-emoji", "🎬 take 1.mp4", distinct(4), End.DONE),
    Case("name-with-invalid-utf8", os.fsdecode(b"caf\xe9 latin-1.mp4"), distinct(5), End.LEFT,
         ("file.bad_name",)),
    Case("output-name-already-taken", "taken.mp4", name_taken, End.DONE,
         output="taken (2).mp4"),
    Case("no-rule-matches", "report.pdf", text("%PDF-1.4"), End.LEFT, ("file.no_rule",)),
    Case("symlink-to-a-file-outside", "link.mp4", symlink_out, End.LEFT),
    Case("fifo", "pipe.mp4", fifo, End.LEFT),
    Case("empty-folder-named-like-a-video", "folder.mp4", folder, End.LEFT, ("batch.empty",)),
    Case("hidden-file", ".hidden.mp4", distinct(6), End.LEFT),
    Case("partial-download", "clip.mp4.part", distinct(7), End.LEFT),
]  # fmt: skip
BEFORE = Case("good-clip-before", "good-before.mp4", distinct(0), End.DONE)
AFTER = Case("good-clip-after", "good-after.mp4", distinct(1), End.DONE)
ALL_CASES = [BEFORE, *CASES, AFTER]


@dataclass
class Dropped:
    """One case as dropped: where, its identity then, and what watched it."""

    case: Case
    path: Path
    digest: str | None  # SHA-256 of a regular file's bytes
    identity: tuple[int, ...]  # lstat: inode, mode, size, mtime
    watch: OpenWatch | None = None
    watched: Path | None = None
    watched_digest: str | None = None


@dataclass
class Corpus:
    """The corpus daemon's run, for the tests to examine."""

    root: Path
    inbox: dict[str, Path]
    outbox: dict[str, Path]
    dropped: dict[str, Dropped]
    events: list[dict[str, Any]]
    alive_after_corpus: bool = False
    exit_status: int | None = None
    states: dict[str, str] = field(default_factory=dict)


def digest_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def identity(path: Path) -> tuple[int, ...]:
    status = os.lstat(path)
    return (status.st_ino, status.st_mode, status.st_size, status.st_mtime_ns)


def drop_case(case: Case, inbox: Path, where: Where) -> Dropped:
    """Make the case beside the inbox, note what it is, then rename it in: the daemon may
    take it the moment it appears, so everything about it is read before."""
    path = inbox / case.name
    staged = staging_for(path)
    watched = case.make(staged, where)
    dropped = Dropped(
        case,
        path,
        digest_of(staged) if stat.S_ISREG(os.lstat(staged).st_mode) else None,
        identity(staged),  # a rename keeps all of it
    )
    if watched is not None:
        dropped.watched = path if watched == staged else watched
        if watched.is_file():
            dropped.watched_digest = digest_of(watched)
        dropped.watch = OpenWatch(watched)  # after our own reads; it follows the inode
    move_in(staged, path)
    return dropped


def reached(dropped: Dropped, corpus: Corpus) -> bool:
    """Whether a case has come to an end (which end is checked by its test)."""
    case = dropped.case
    inbox = corpus.inbox[case.rule]
    if case.end is End.DONE:
        return bool(files(inbox / "done", case.name))
    if case.end is End.FAILED:
        return (inbox / "failed" / f"{case.name}.error.json").exists()
    return True  # LEFT: there is nothing to wait for but time (see the fixture)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory, clips: Clips) -> Corpus:
    root = tmp_path_factory.mktemp("bad-input")
    outside = root / "outside"
    outside.mkdir()
    corpus_rule = rule(
        root,
        name="corpus",
        match=["*.mp4", "*.mov", "*.mkv", "*.avi", "*.jpg", "*.m4a", "*.txt"],
        max_size="1MB",
        settle_seconds=0.3,
    )
    locked_rule = rule(root, name="locked", settle_seconds=0.3)
    config = write_config(root, [corpus_rule, locked_rule], scan_interval=SCAN_INTERVAL)
    inbox = {name: root / "inbox" / name for name in ("corpus", "locked")}
    outbox = {name: root / "outbox" / name for name in ("corpus", "locked")}
    for folder_path in (*inbox.values(), *outbox.values()):
        folder_path.mkdir(parents=True)
    outbox["locked"].chmod(0o555)
    where = {
        name: Where(inbox[name], outbox[name], outside, clips) for name in ("corpus", "locked")
    }
    clips.distinct(12)  # made before the clock starts
    daemon = Daemon(config, root / "daemon.log", prefix=NO_CAPABILITIES).start()
    result = Corpus(root, inbox, outbox, {}, [])
    try:
        result.dropped[BEFORE.id] = drop_case(BEFORE, inbox["corpus"], where["corpus"])
        wait_for(lambda: reached(result.dropped[BEFORE.id], result), what="the first good clip")
        for case in CASES:
            result.dropped[case.id] = drop_case(case, inbox[case.rule], where[case.rule])
        result.dropped[AFTER.id] = drop_case(AFTER, inbox["corpus"], where["corpus"])
        wait_for(
            lambda: all(reached(dropped, result) for dropped in result.dropped.values()),
            what="every case to reach its end: "
            + ", ".join(d.case.id for d in result.dropped.values() if not reached(d, result)),
        )
        # Two more scans of every inbox: whatever the daemon would do to the files it
        # leaves alone, it has had every chance to do by now.
        time.sleep(2 * SCAN_INTERVAL + 0.5)
        result.alive_after_corpus = daemon.running
    finally:
        result.exit_status = daemon.stop()
        outbox["locked"].chmod(0o755)
        result.events = list(daemon.events())
        result.states = ledger_states(root / "state")
    return result


def error_report(corpus: Corpus, case: Case) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(
        (corpus.inbox[case.rule] / "failed" / f"{case.name}.error.json").read_text("utf-8")
    )
    return report


@pytest.mark.parametrize("case", ALL_CASES, ids=[case.id for case in ALL_CASES])
def test_each_bad_input_reaches_its_end_and_nothing_else(corpus: Corpus, case: Case) -> None:
    dropped = corpus.dropped[case.id]
    inbox, outbox = corpus.inbox[case.rule], corpus.outbox[case.rule]
    claimed = [e for e in corpus.events if e["event"] == "job.claimed"]
    claims = [e for e in claimed if e.get("source") == str(dropped.path)]
    if case.end is End.FAILED:
        assert len(claims) == 1
        kept = inbox / "failed" / case.name
        assert digest_of(kept) == dropped.digest  # the source, unchanged, beside its report
        assert not dropped.path.exists()
        report = error_report(corpus, case)
        for words in case.mentions:
            assert words in report["error"], (words, report)
        assert report["hint"] and case.hint in report["hint"]
        # the command it gives puts the file back, whatever its name holds
        advice, _, command = report["how_to_retry"].partition(": ")
        assert advice.startswith("fix the cause")
        assert shlex.split(command) == ["mv", str(kept), f"{inbox}/"]
        assert report["file"] == str(kept) and report["source"] == str(dropped.path)
        assert isinstance(report["retryable"], bool)
        failures = [e for e in corpus.events if e["event"] == "job.failed"]
        assert [e["source"] for e in failures].count(str(dropped.path)) == 1
        assert not [path for path in files(outbox) if path.stem == dropped.path.stem]
    elif case.end is End.DONE:
        assert len(claims) == 1
        archived = files(inbox / "done", case.name)
        assert len(archived) == 1 and digest_of(archived[0]) == dropped.digest
        output = outbox / (case.output or f"{dropped.path.stem}.mp4")
        result = probe(output)
        assert result.video is not None and (result.audio is not None) == case.sound
        assert not dropped.path.exists()
    else:
        assert not claims, claims
        assert identity(dropped.path) == dropped.identity  # not moved, renamed or touched
        if dropped.digest is not None:
            assert digest_of(dropped.path) == dropped.digest
        mentions = [e for e in corpus.events if e.get("path") == shown(dropped.path)]
        assert [e["event"] for e in mentions] == list(case.mentions)
    if dropped.watch is not None:
        assert not dropped.watch.check(), f"{dropped.watched} was opened"
        dropped.watch.close()
        assert dropped.watched is not None
        if dropped.watched_digest is not None:
            assert digest_of(dropped.watched) == dropped.watched_digest


def test_the_daemon_outlived_the_whole_corpus_and_stopped_cleanly(corpus: Corpus) -> None:
    assert corpus.alive_after_corpus
    assert corpus.exit_status == 0
    ended = ("job.crashed", "daemon.crashed", "daemon.task_ended")
    assert not [e for e in corpus.events if e["event"] in ended]
    assert not [e for e in corpus.events if e.get("level") in ("critical", "exception")]


def test_no_dropped_file_was_lost_and_nothing_was_overwritten(corpus: Corpus) -> None:
    for name in ("corpus", "locked"):
        inbox, outbox = corpus.inbox[name], corpus.outbox[name]
        assert not files(inbox / "processing")  # every claimed file went on
        assert not [path for path in outbox.rglob(".*")]  # no partial results
        assert not files(corpus.root / "state" / "work")
    # every regular file dropped is exactly once somewhere, with the bytes it had
    everywhere = [
        path
        for folder_path in (*corpus.inbox.values(), corpus.root / "outside")
        for path in folder_path.rglob("*")
        if stat.S_ISREG(os.lstat(path).st_mode) and not path.name.endswith(".error.json")
    ]
    by_digest: dict[str, list[Path]] = {}
    for path in everywhere:
        by_digest.setdefault(digest_of(path), []).append(path)
    for dropped in corpus.dropped.values():
        if dropped.digest is not None:
            assert len(by_digest.get(dropped.digest, [])) == 1, dropped.case.id
    assert (corpus.outbox["corpus"] / "taken.mp4").read_bytes() == (
        b"an earlier output, to be kept"
    )
    assert set(corpus.states.values()) == {"done", "failed"}


# ---- races between settle and claim, on the real intake functions ----------------------------


def settled_snapshot(path: Path) -> Any:
    tracker = SettleTracker()
    tracker.observe(path, snapshot(path), 0.0, settle_seconds=0.5)
    tracker.observe(path, snapshot(path), 1.0, settle_seconds=0.5)
    ((settled_path, settled),) = tracker.settled_snapshots(1.0)
    assert settled_path == path
    return settled


def test_a_file_deleted_between_settle_and_claim_is_not_claimed(tmp_path: Path, clips) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    path = inbox / "gone.mp4"
    shutil.copyfile(clips.basic, path)
    settled = settled_snapshot(path)
    path.unlink()
    assert claim(path, inbox, "job1", expected=settled) is None
    assert not files(inbox)


def test_a_file_replaced_between_settle_and_claim_is_left_to_settle_again(
    tmp_path: Path, clips
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    path = inbox / "replaced.mp4"
    shutil.copyfile(clips.basic, path)
    settled = settled_snapshot(path)
    replacement = tmp_path / "new.mp4"
    replacement.write_bytes(b"the start of a new copy")  # still being written
    replacement.rename(path)  # rename-into-place: a new inode under the same name
    assert claim(path, inbox, "job1", expected=settled) is None
    assert path.read_bytes() == b"the start of a new copy"
    assert not files(inbox / "processing")
    # written to in place (same inode) counts as changed too
    settled = settled_snapshot(path)
    with path.open("ab") as handle:
        handle.write(b" and more")
    assert claim(path, inbox, "job2", expected=settled) is None
    assert path.read_bytes() == b"the start of a new copy and more"


# ---- config mistakes: refused with file and line, nothing touched ----------------------------


@dataclass(frozen=True)
class ConfigCase:
    id: str
    rules: str  # the rules: block, from line 3 of config.yaml
    line: int  # where the problem is reported
    mentions: str


CONFIG_CASES = [
    ConfigCase(
        "invalid-yaml",
        "rules:\n  - name: a\n    inbox: {root}/inbox\n    outbox: [{root}/outbox\n"
        "    settle_seconds: 1\n",
        7,
        "invalid YAML",
    ),
    ConfigCase(
        "unknown-key",
        "rules:\n  - name: a\n    inbox: {root}/inbox\n    outbox: {root}/outbox\n"
        "    colour: blue\n",
        7,
        'unknown key "colour"',
    ),
    ConfigCase(
        "two-rules-on-one-inbox",
        "rules:\n  - name: a\n    inbox: {root}/inbox\n    outbox: {root}/outbox/a\n"
        "  - name: b\n    inbox: {root}/inbox\n    outbox: {root}/outbox/b\n"
        '    match: "*.mp4"\n',
        10,
        "watches the same inbox",
    ),
    ConfigCase(
        "output-template-leaving-the-outbox",
        "rules:\n  - name: a\n    inbox: {root}/inbox\n    outbox: {root}/outbox\n"
        '    outputs: "../{{stem}}.mp4"\n',
        7,
        "leads out of the outbox",
    ),
    ConfigCase(
        "max-size-that-is-not-a-size",
        "rules:\n  - name: a\n    inbox: {root}/inbox\n    outbox: {root}/outbox\n"
        "    max_size: lots\n",
        7,
        'expected a size such as 500MB, 2GB or 2GiB, or a number of bytes, got "lots"',
    ),
    ConfigCase(
        "music-that-is-neither-a-mood-nor-a-file",
        "rules:\n  - name: a\n    inbox: {root}/inbox\n    outbox: {root}/outbox\n"
        "    edit: {{music: jazz}}\n",
        7,
        '"jazz" is not a built-in mood (lofi, upbeat, calm)',
    ),
]


def nemowatch(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nemowatch.cli", *arguments],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize("case", CONFIG_CASES, ids=[case.id for case in CONFIG_CASES])
def test_a_bad_config_is_refused_by_check_and_run_with_file_and_line(
    tmp_path: Path, case: ConfigCase
) -> None:
    config = tmp_path / "config.yaml"
    text = "engine: local\nstate_dir: {root}/state\n" + case.rules
    config.write_text(text.format(root=tmp_path), encoding="utf-8")
    for command in ("check", "run"):
        result = nemowatch(command, "--config", str(config))
        assert result.returncode == 78, (command, result.stderr)
        located = [line for line in result.stderr.splitlines() if f"{config}:{case.line}:" in line]
        assert located and case.mentions in located[0], (command, result.stderr)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["config.yaml"]  # nothing made


def test_a_config_edited_into_invalid_yaml_while_running_keeps_the_old_rules(
    tmp_path: Path, clips
) -> None:
    config = write_config(tmp_path, [rule(tmp_path, outputs="{stem}-old-rule.mp4")])
    daemon = Daemon(config, tmp_path / "daemon.log").start()
    inbox, outbox = tmp_path / "inbox" / "clips", tmp_path / "outbox" / "clips"
    try:
        lines = config.read_text(encoding="utf-8").splitlines()
        lines.append("scan_interval: 2: 3")  # a slip of the keyboard, saved
        config.write_text("\n".join(lines) + "\n", encoding="utf-8")
        invalid = wait_for(lambda: daemon.saw("config.invalid"), what="config.invalid")
        problems = invalid[0]["problems"]
        assert any(f"{config}:{len(lines)}: invalid YAML" in problem for problem in problems), (
            problems
        )
        assert invalid[0]["hint"]
        drop(inbox / "after-the-edit.mp4", clips.basic)
        wait_for(lambda: files(outbox, "after-the-edit-old-rule.mp4"), what="the old rule's output")
        assert daemon.running
    finally:
        assert daemon.stop() == 0


# ---- an outbox that fills up -----------------------------------------------------------------


def test_a_full_disk_fails_the_job_clearly_and_the_daemon_carries_on(
    tmp_path: Path, clips: Clips
) -> None:
    # The file-size limit stands in for a full disk: a write past it fails with EFBIG, and
    # FFmpeg, for which it is SIGXFSZ, dies. It is above what the log and the ledger reach
    # here and below the size of the noisy clip's edit (about 1.9 MB).
    limit = 1_000_000
    noisy = tmp_path / "noisy.mp4"
    ffmpeg("-f", "lavfi", "-i", "nullsrc=size=320x240:rate=25:duration=2,geq=random(1)*255:128:128",
           "-f", "lavfi", "-i", "sine=duration=2", "-c:v", "libx264", "-preset", "ultrafast",
           "-c:a", "aac", "-shortest", str(noisy))  # fmt: skip
    export = {"format": "mp4", "resolution": "source", "quality": "high"}
    config = write_config(tmp_path, [rule(tmp_path, export=export)])
    prefix = ["prlimit", f"--fsize={limit}:{limit}", "--"]
    daemon = Daemon(config, tmp_path / "daemon.log", prefix=prefix).start()
    inbox, outbox = tmp_path / "inbox" / "clips", tmp_path / "outbox" / "clips"
    try:
        drop(inbox / "noisy.mp4", noisy)
        report_path = inbox / "failed" / "noisy.mp4.error.json"
        wait_for(report_path.exists, what="the error report")
        report = json.loads(report_path.read_text("utf-8"))
        assert "could not finish writing" in report["error"]
        assert "file-size limit" in report["error"]
        assert "free some disk space" in report["hint"]
        assert report["retryable"] is True  # once there is room, trying again helps
        assert report["source"] == str(inbox / "noisy.mp4")
        assert digest_of(inbox / "failed" / "noisy.mp4") == digest_of(noisy)
        assert not files(outbox) and not list(outbox.rglob(".*"))  # nothing partial
        assert not files(tmp_path / "state" / "work")
        # still running, still working
        drop(inbox / "small.mp4", clips.basic)
        wait_for(lambda: files(outbox, "small.mp4"), what="a small file after the big one")
        assert daemon.running
    finally:
        assert daemon.stop() == 0


@pytest.mark.parametrize(
    ("code", "reason", "hint"),
    [
        (errno.EACCES, "permission denied", "write access to"),
        (errno.EROFS, "read-only file system", "write access to"),
        (errno.ENOSPC, "no space left on the disk", "free some space in"),
        (errno.EFBIG, "file-size limit", "free some space in"),
    ],
)
def test_an_outbox_that_cannot_take_the_result_is_named_with_what_to_do(
    code: int, reason: str, hint: str
) -> None:
    # Where the outbox is on another disk than the state folder, the result is copied in,
    # and these are the ways that copy fails.
    error = unwritable(OSError(code, os.strerror(code)), Path("/srv/outbox"), "talk.mp4")
    assert str(error).startswith("cannot write the result of talk.mp4 to the outbox /srv/outbox: ")
    assert reason in str(error)
    assert error.hint is not None and f"{hint} /srv/outbox" in error.hint
    assert "move the file back into the inbox" in error.hint
    assert error.retryable

"""Batches, decided purely: which rule takes a folder, how long its photos show, its
record in the ledger, and `check` refusing `batch: combine` under the nemo engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from nemowatch.config import BatchMode, Rule, load_config
from nemowatch.engines.local.batch import MIN_SHOT, photo_seconds
from nemowatch.errors import ConfigError, LedgerError
from nemowatch.intake import folder_rule
from nemowatch.jobs import Batch
from nemowatch.ledger import Ledger, NewJob


def rule(name: str, inbox: Path, **fields: object) -> Rule:
    return Rule.model_validate({"name": name, "inbox": inbox, "outbox": "/out", **fields})


def test_the_first_flat_rule_whose_match_takes_one_of_the_files_takes_the_folder() -> None:
    inbox = Path("/in")
    photos = rule("photos", inbox, match=["*.jpg"])
    videos = rule("videos", inbox, match=["*.mp4"])
    deep = rule("deep", inbox, recursive=True)
    rules = [deep, photos, videos]
    assert folder_rule(inbox / "trip", rules, ["a.mp4", "notes.txt"]) is videos
    assert folder_rule(inbox / "trip", rules, ["a.jpg", "a.mp4"]) is photos
    assert folder_rule(inbox / "trip", rules, ["notes.pdf"]) is None
    assert folder_rule(inbox / "trip", rules, []) is photos  # empty: said in its inbox
    for not_a_batch in ("processing", "done", "failed", ".hidden", "x.part"):
        assert folder_rule(inbox / not_a_batch, rules, ["a.mp4"]) is None
    assert folder_rule(inbox / "trip" / "deeper", rules, ["a.mp4"]) is None
    assert folder_rule(inbox / "trip", [deep], ["a.mp4"]) is None  # recursive: file by file


@pytest.mark.parametrize(
    ("photos", "videos", "soundtrack", "longest", "expected"),
    [
        (6, 0.0, 9.0, None, 1.5),  # the music's length, shared
        (6, 0.0, 9.0, 4.0, 4.0 / 6),  # the rule's duration, shorter: shared
        (2, 0.0, 9.0, 4.0, 2.0),  # the rule's duration, shared
        (4, 3.0, 11.0, None, 2.0),  # what the videos leave of it
        (2, 0.0, None, None, 5.0),  # no music: the rule's still duration
        (3, 10.0, 9.0, None, 5.0),  # nothing left of it: the still duration
        (30, 0.0, 9.0, None, MIN_SHOT),  # never a flash: 0.3 s is too short
    ],
)
def test_photos_share_the_soundtrack_or_the_rules_duration(
    photos: int, videos: float, soundtrack: float | None, longest: float | None, expected: float
) -> None:
    seconds = photo_seconds(
        photos, videos_seconds=videos, soundtrack=soundtrack, longest=longest, still=5.0
    )
    assert seconds == pytest.approx(expected)


def test_a_batch_goes_through_the_ledger_whole(tmp_path: Path) -> None:
    batch = Batch(
        id="b1",
        mode=BatchMode.EACH.value,
        folder=tmp_path / "inbox" / "trip",
        claimed=tmp_path / "inbox" / "processing" / "b1__trip",
        files=("a.mp4", "b.mp4"),
        instructions="instructions.txt",
        identity=(10, 20, 30),
    )
    assert Batch.from_json(batch.as_json()) == batch
    with Ledger.in_state_dir(tmp_path / "state") as ledger:
        new = [
            NewJob(job_id=f"j{name}", rule="clips", engine="local", source=batch.folder / name,
                   claimed=batch.claimed / name, batch=batch)
            for name in batch.files
        ]  # fmt: skip
        records = ledger.create_all(new)
        assert [record.batch for record in records] == [batch, batch]
        assert [record.id for record in ledger.batch_jobs("b1")] == ["ja.mp4", "jb.mp4"]
        assert ledger.knows_batch(batch.folder, (10, 20, 30))
        assert not ledger.knows_batch(batch.folder, (10, 20, 31))
        assert batch.claimed in ledger.claimed_paths()
        with pytest.raises(LedgerError):  # one of them taken already: none is written
            ledger.create_all([NewJob(job_id="jnew", rule="clips", engine="local",
                                      source=Path("/x"), claimed=None), new[0]])  # fmt: skip
        assert not ledger.exists("jnew")


def test_check_refuses_combine_under_the_nemo_engine(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "engine: nemo\nrules:\n  - name: trips\n    inbox: in\n    outbox: out\n"
        "    batch: combine\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    (problem,) = caught.value.problems
    assert (problem.line, problem.path) == (6, "rules[0].batch")
    assert "batch: each" in problem.message and "engine: local" in problem.message
    path.write_text(path.read_text().replace("engine: nemo", "engine: local"), encoding="utf-8")
    assert load_config(path).rules[0].batch is BatchMode.COMBINE

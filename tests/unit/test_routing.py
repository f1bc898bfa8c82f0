"""The cloud engine's routing of instructions, clause by clause, in English and Chinese:
what goes to the chat (a paid turn), what is an export setting, what is not an edit, and
what there is nothing to do for; with `check` and `explain` saying so."""

from __future__ import annotations

from pathlib import Path

import pytest

from nemowatch.config import check_report, load_config
from nemowatch.explain import describe_routing
from nemowatch.language.routing import Route, route

CHAT, EXPORT, DROP, NOTHING = Route.CHAT, Route.EXPORT, Route.NOT_AN_EDIT, Route.NOTHING


@pytest.mark.parametrize(
    ("instruction", "chat", "export", "routes"),
    [
        ("cut out silences", "cut out silences", {}, [CHAT]),
        ("export 1080p", None, {"resolution": "1080p"}, [EXPORT]),
        ("export as webm", None, {"format": "webm"}, [EXPORT]),
        ("render in high quality", None, {"quality": "high"}, [EXPORT]),
        ("send me the video", None, {}, [EXPORT]),
        ("download it", None, {}, [EXPORT]),
        ("check my credits", None, {}, [DROP]),
        ("how much balance do I have left", None, {}, [DROP]),
        ("show tracks", None, {}, [DROP]),
        ("what's the status", None, {}, [DROP]),
        ("upload the file", None, {}, [NOTHING]),
        (
            "cut out silences and export 1080p",
            "cut out silences",
            {"resolution": "1080p"},
            [CHAT, EXPORT],
        ),
        ("make it vertical and send me the video", "make it vertical", {}, [CHAT, EXPORT]),
        # an edit that says "export" is still an edit: the chat makes the reel
        ("export a 60-second highlight reel", "export a 60-second highlight reel", {}, [CHAT]),
        ("导出1080p", None, {"resolution": "1080p"}, [EXPORT]),
        ("去掉静音，然后导出1080p", "去掉静音", {"resolution": "1080p"}, [CHAT, EXPORT]),
        ("查看积分", None, {}, [DROP]),
        ("我的余额还有多少", None, {}, [DROP]),
        ("查看状态", None, {}, [DROP]),
        ("上传视频", None, {}, [NOTHING]),
        ("加上背景音乐", "加上背景音乐", {}, [CHAT]),
    ],
)
def test_each_clause_goes_where_the_services_table_says(
    instruction: str, chat: str | None, export: dict[str, str], routes: list[Route]
) -> None:
    routing = route(instruction)
    assert routing.chat == chat
    assert {key: str(value) for key, value in routing.export.items()} == export
    assert [clause.route for clause in routing.clauses] == routes


def test_check_warns_about_what_the_nemo_engine_leaves_out_and_explain_shows_each_route(
    tmp_path: Path,
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "engine: nemo\nrules:\n  - name: talks\n    inbox: in\n    outbox: out\n"
        "    instructions: [cut out silences and export 1080p, check my credits]\n",
        encoding="utf-8",
    )
    loaded = load_config(config)

    warnings = check_report(loaded)
    explained = describe_routing(tmp_path / "talk.mp4", loaded.rules[0])

    [credits] = [warning for warning in warnings if "check my credits" in warning]
    assert "instructions[1]" in credits and "nemowatch credits" in credits
    assert '"cut out silences" → chat' in explained
    assert '"export 1080p" → export settings (resolution 1080p)' in explained
    assert '"check my credits" → not an edit, not sent' in explained

"""What the cloud engine does with each clause of an instruction, as the service's own
routing table says (issue 14), before any chat turn is paid for:

- **export settings**: "export 1080p", "render in high quality", "导出1080p", "send me the
  video": the render's settings (format, quality, resolution, fps), never a chat turn;
- **not an edit**: "check my credits", "balance", "状态", "show tracks": dropped (`check`
  says so); `nemowatch credits` and `nemowatch status` answer them;
- **nothing to do**: "upload the file", "上传": nemowatch uploads every source itself;
- **chat**: everything else, sent as written.

Clause by clause: "cut out silences and export 1080p" sends "cut out silences" and takes
1080p as an export setting. Pure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from nemowatch.language.clauses import split_clauses
from nemowatch.language.instructions import interpret


class Route(StrEnum):
    CHAT = "chat"
    EXPORT = "export settings"
    NOT_AN_EDIT = "not an edit"
    NOTHING = "nothing to do"


_CREDITS = re.compile(r"\b(credits?|balance|top[ -]?up)\b|积分|余额|点数", re.IGNORECASE)
_STATUS = re.compile(
    r"\bstatus\b|\bshow\s+(me\s+)?(the\s+)?(tracks?|timeline|state)\b|状态|进度|查看轨道",
    re.IGNORECASE,
)
_UPLOAD = re.compile(r"^\W*(please\s+)?(re-?)?upload\b|^\W*(请)?(重新)?上传", re.IGNORECASE)
_EXPORT_ONLY = re.compile(
    r"^\W*(please\s+)?(export|render|download|save|send)(\s+(me|it|the|this|video|file|result|"
    r"now|please|them|all|my|final|edited|version|to|as|mp4|mov))*\W*$|^\W*(请)?(导出|下载|渲染|保存)"
    r"(视频|成片|一下|吧)?\W*$",
    re.IGNORECASE,
)
_CJK = re.compile(r"[\u3400-\u9fff]")


@dataclass(frozen=True)
class Routed:
    """One clause and where it goes."""

    text: str
    route: Route
    export: dict[str, Any] = field(default_factory=dict)  # EXPORT: the settings it names
    reason: str = ""  # NOT_AN_EDIT, NOTHING: why it is not sent


@dataclass(frozen=True)
class Routing:
    """An instruction, routed: the text to send to the chat (None: no chat turn), the
    export settings it names, and each clause's route (for `check` and `explain`)."""

    instruction: str
    clauses: tuple[Routed, ...]
    chat: str | None
    export: dict[str, Any]

    @property
    def dropped(self) -> list[Routed]:
        return [clause for clause in self.clauses if clause.route is Route.NOT_AN_EDIT]


def route_clause(clause: str) -> Routed:
    """Where one clause goes."""
    if _CREDITS.search(clause):
        return Routed(clause, Route.NOT_AN_EDIT, reason="`nemowatch credits` shows the balance")
    if _STATUS.search(clause):
        return Routed(
            clause, Route.NOT_AN_EDIT, reason="`nemowatch status` and `jobs` show how it goes"
        )
    if _UPLOAD.search(clause):
        return Routed(clause, Route.NOTHING, reason="nemowatch uploads every source itself")
    reading = interpret(clause)
    if reading.edit.model_fields_set:
        return Routed(clause, Route.CHAT)  # an edit, whatever its words ("export a reel")
    if reading.export:
        return Routed(clause, Route.EXPORT, export=dict(reading.export))
    if _EXPORT_ONLY.match(clause):
        return Routed(clause, Route.EXPORT)  # "send me the video": the render happens anyway
    return Routed(clause, Route.CHAT)


def route(instruction: str) -> Routing:
    """Where each clause of `instruction` goes. An instruction all of whose clauses go to
    the chat is sent as written; otherwise its chat clauses are sent, joined."""
    clauses = tuple(route_clause(clause) for clause in split_clauses(instruction) or [instruction])
    chats = [clause.text for clause in clauses if clause.route is Route.CHAT]
    export: dict[str, Any] = {}
    for clause in clauses:
        export.update(clause.export)
    if len(chats) == len(clauses):
        chat: str | None = instruction
    elif chats:
        chat = ("，" if _CJK.search(instruction) else "; ").join(chats)
    else:
        chat = None
    return Routing(instruction, clauses, chat, export)

"""The agent talks as if a GUI existed ("click Export", "open the panel", "drag the clip").

nemowatch has no GUI and its user has nothing to click, so such sentences are never shown
as instructions: a hint to export becomes "the draft is ready to export" (the daemon
exports by itself), any other GUI direction becomes a debug log line. Pure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

READY_TO_EXPORT = "The draft is ready to export."

_GUI_NOUNS = (
    r"(?:panel|menu|tab|sidebar|side\s+bar|toolbar|tool\s+bar|window|dialog|button|icon"
    r"|settings|editor|library|inspector|player|canvas|dropdown|drop-down|pop-?up"
    r"|timeline|time\s+line|preview(?:\s+(?:window|pane|area))?)"
)
_GUI = re.compile(
    "|".join(
        (
            r"\b(?:double[- ]?|right[- ]?)?click(?:s|ed|ing)?\b",
            r"\btap(?:ping)?\s+(?:on\s+)?(?:the\s+)?\S",
            r"\b(?:press|hit|select|choose|use|toggle)\s+(?:on\s+)?(?:the\s+)?"
            r"[\"“'‘]?[\w\s-]{0,30}?[\"”'’]?\s*" + _GUI_NOUNS + r"\b",
            r"\b(?:press|hit)\s+(?:the\s+)?[\"“'‘]?export\b",
            r"\bdrag(?:s|ged|ging)?\b",
            r"\bdrop\s+(?:it|them|the|your|this|that|a|an)\b",
            r"\b(?:scroll|hover)\s+(?:down|up|over|to)\b",
            r"\b(?:open|close|expand|collapse|go\s+to|navigate\s+to|switch\s+to|head\s+to"
            r"|head\s+over\s+to|find)\s+(?:the\s+|your\s+)?(?:[\w-]+\s+){0,2}" + _GUI_NOUNS + r"\b",
            r"\b(?:in|on|from|at)\s+the\s+(?:[\w-]+\s+){0,2}" + _GUI_NOUNS + r"\b",
            r"\b(?:top|bottom|upper|lower)[- ](?:right|left)\b",
            r"\bpreview\s+(?:it|the\s+\w+|your\s+\w+)\s+(?:in|on)\b",
            r"\b(?:check|see|view|look\s+at|watch)\s+(?:it\s+in\s+)?(?:the\s+)?(?:timeline|preview)\b",
            # the agent telling its user to export: the daemon exports by itself
            r"\byou\s+can\s+(?:now\s+)?(?:export|download)\b",
            r"^\W*(?:now\s+)?(?:go\s+ahead\s+and\s+)?(?:export|download)\s+(?:it|the|your)\b",
            r"点击|单击|双击|拖动|拖拽|拖到|面板|按钮|菜单|打开|预览|时间线|时间轴",
            r"请导出|可以导出|导出视频|导出成片|下载视频",
        )
    ),
    re.IGNORECASE,
)
_EXPORT = re.compile(r"\bexport|\bdownload|\brender|导出|下载", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+|(?<=[。！？])")


@dataclass(frozen=True)
class Spoken:
    """An agent's text, made fit for a person who has no GUI."""

    shown: str  # what may be shown ("" when nothing is left)
    export_ready: bool = False  # the text told someone to export: the draft is ready
    gui: tuple[str, ...] = ()  # the sentences left out, for the debug log


def is_gui_speak(sentence: str) -> bool:
    return _GUI.search(sentence) is not None


def without_gui_speak(text: str) -> Spoken:
    """`text` without GUI directions, line by line and sentence by sentence."""
    kept_lines: list[str] = []
    dropped: list[str] = []
    export_ready = False
    for line in text.splitlines():
        kept: list[str] = []
        for sentence in _SENTENCE_END.split(line):
            if not sentence.strip():
                continue
            if is_gui_speak(sentence):
                dropped.append(sentence.strip())
                export_ready = export_ready or _EXPORT.search(sentence) is not None
            else:
                kept.append(sentence.strip())
        if kept:
            indent = line[: len(line) - len(line.lstrip())]
            kept_lines.append(indent + " ".join(kept))
    shown = "\n".join(kept_lines).strip()
    if _only_punctuation(shown):
        shown = ""
    return Spoken(shown=shown, export_ready=export_ready, gui=tuple(dropped))


def _only_punctuation(text: str) -> bool:
    return not any(character.isalnum() for character in text)

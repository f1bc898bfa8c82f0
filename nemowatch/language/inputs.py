"""Phrases about photos and sound files: how long a photo is shown and whether it moves,
and how a sound file's wave is drawn. Pure."""

from __future__ import annotations

import re

from nemowatch.language.clauses import Clause
from nemowatch.language.numbers import duration_text, seconds
from nemowatch.language.readings import Handler, Reading, group, rules
from nemowatch.rules import EditSpec

_PHOTO = r"(?:photos?|pictures?|images?|stills?|pics?|slides?|shots?)"
_ZH_PHOTO = r"(?:照片|图片|相片|图|每张图|每张照片|每张图片|每一张)"


def _still_length(found: re.Match[str], clause: Clause, edit: EditSpec) -> Reading | None:
    length = seconds(found["length"])
    if length <= 0:
        return None
    still = {**edit.still.model_dump(exclude_unset=True), "duration": length}
    return Reading(
        f"show each photo for {duration_text(length)}",
        {"still": still},
        claims=(("photo length", f"{length:g}"),),
    )


def _motion(on: bool) -> Handler:
    def handler(found: re.Match[str], clause: Clause, edit: EditSpec) -> Reading | None:
        still = {**edit.still.model_dump(exclude_unset=True), "motion": on}
        description = (
            "move slowly over each photo (pan and zoom)" if on else "hold each photo still"
        )
        return Reading(description, {"still": still}, claims=(("photo motion", str(on)),))

    return handler


def _wave(found: re.Match[str], clause: Clause, edit: EditSpec) -> Reading | None:
    style = "spectrum" if group(found, "spectrum") else "waveform"
    audiogram = {**edit.audiogram.model_dump(exclude_unset=True), "style": style}
    return Reading(
        f"draw a sound file's {style} over its cover", {"audiogram": audiogram},
        claims=(("audiogram", style),),
    )  # fmt: skip


# Phrasings about photos and sound files, in the order they are tried.
GRAMMAR = (
    *rules(
        _still_length,
        rf"(?:show|display|hold|keep|play)(?: each| every| the| all(?: the)?)? {_PHOTO}"
        r"(?: (?:on screen|up))?(?: for)? <dur:length>(?: each| apiece)?",
        rf"(?:each|every) {_PHOTO}(?: (?:lasts|for|shows for|stays for|on screen for))? "
        r"<dur:length>",
        rf"{_PHOTO} (?:for )?<dur:length> each",
        rf"<dur:length> (?:per|a|each|for each|for every) {_PHOTO}",
        rf"{_ZH_PHOTO}(?:停留|显示|展示|持续|播放|停)?<dur:length>",
        rf"{_ZH_PHOTO}(?:各|都)?(?:停留|显示|展示|持续|播放)<dur:length>",
    ),
    *rules(
        _motion(False),
        r"(?:no|without|skip|disable|turn off)(?: the)? (?:ken burns|pan(?: and|/| &) ?zoom"
        r"|zoom(?:ing)?|panning|motion|movement)(?: effect)?(?: on the " + _PHOTO + r")?",
        rf"(?:keep|hold) (?:the |each |every |all (?:the )?)?{_PHOTO} (?:still|static|steady)",
        rf"(?:static|still) {_PHOTO}",
        rf"{_ZH_PHOTO}(?:不要|别)(?:动|缩放|移动|推拉)",
        r"(?:不要|关闭|去掉)(?:缩放|推拉|运镜|动态)(?:效果)?",
    ),
    *rules(
        _motion(True),
        r"(?:add|use|with|apply)(?: an?| the)? (?:ken burns|slow zoom|pan(?: and|/| &) ?zoom)"
        rf"(?: effect)?(?: (?:on|to) the {_PHOTO})?",
        r"(?:slowly )?(?:zoom|pan)(?: slowly)? (?:in(?:to)? |across |over )?(?:the |each )?"
        + _PHOTO,
        rf"{_ZH_PHOTO}(?:加|添加|用)?(?:缓慢)?(?:缩放|推拉|运镜|动态)(?:效果)?",
    ),
    *rules(
        _wave,
        r"(?:show|draw|add|with|use|display|animate)(?: an?| the)?(?: (?:audio|sound))?"
        r" (?:(?P<spectrum>spectrum|frequency bars|equali[sz]er(?: bars)?)|waveform|wave|waves)"
        r"(?: (?:visuali[sz]er|visuali[sz]ation|animation))?",
        r"(?:as )?an? (?:audio |sound )?(?:(?P<spectrum>spectrum)|waveform) video",
        r"(?:显示|加|添加|做成|用)?(?:音频|声音)?(?:(?P<spectrum>频谱)|声波|波形)(?:图|动画|效果)?",
    ),
)

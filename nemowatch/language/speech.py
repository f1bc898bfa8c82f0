"""Phrases about the words spoken: captions (subtitles) and cutting filler words. Pure.

A caption clause is a verb, the object (captions, subtitles, 字幕) and modifiers in any
order around it: how they are shown ("burned in", "soft", "as an srt file", 硬/软/外挂),
their language ("english", 中文) and place ("at the top", 放在顶部). A modifier this
table does not know makes the whole clause not understood, never half-read.
"""

from __future__ import annotations

import re

from nemowatch.language.clauses import Clause
from nemowatch.language.readings import OptionReader, Reading, group, read_options, rules
from nemowatch.rules import EditSpec

_LANGUAGES = {
    "english": "en", "英文": "en", "英语": "en",
    "chinese": "zh", "mandarin": "zh", "中文": "zh", "汉语": "zh", "普通话": "zh", "简体中文": "zh",
}  # fmt: skip
_PLACES = {
    "top": "top", "bottom": "bottom", "middle": "center", "center": "center", "centre": "center",
    "顶部": "top", "上方": "top", "上面": "top", "顶端": "top", "底部": "bottom", "下方": "bottom",
    "下面": "bottom", "底端": "bottom", "中间": "center", "正中": "center", "中央": "center",
}  # fmt: skip


def _option(
    pattern: str, values: dict[str, object] | None = None, *, whole_words: bool = True
) -> tuple[re.Pattern[str], OptionReader]:
    """One modifier: `pattern` (after any spaces) sets `values` (or its named groups');
    `whole_words`: it must end where a word ends ("a" is not the start of "at")."""
    compiled = re.compile(r"\s*(?:" + pattern + r")" + (r"(?!\w)" if whole_words else ""))

    def read(found: re.Match[str]) -> dict[str, object]:
        read_values: dict[str, object] = dict(values or {})
        if (language := group(found, "language")) is not None:
            read_values["language"] = _LANGUAGES[language]
        if (place := group(found, "place")) is not None:
            read_values["position"] = _PLACES[place]
        return read_values

    return compiled, read


_LANGUAGE = "(?P<language>" + "|".join(sorted(_LANGUAGES, key=len, reverse=True)) + ")"
_PLACE = "(?P<place>" + "|".join(sorted(_PLACES, key=len, reverse=True)) + ")"
_THE_VIDEO = r"(?:the |this |my |our )?(?:video|clip|footage|vid|reel|recording)"
_THE_SPEECH = r"(?:the |what'?s )?(?:speech|audio|voice|voices|dialogue|talking|narration|said)"

_CAPTION_OPTIONS = [
    _option(
        r"auto(?:matic(?:ally)?|-?generated)?|ai|styled|animated|word-by-word|word-timed"
        r"|dynamic|readable|nice|live|accurate|video|some|the|a|an"
    ),
    _option(
        r"burn(?:ed|t)?(?:-| )?in(?:to (?:the )?(?:video|picture|image))?|hard(?:-| )?coded|hard"
        r"|open|baked(?:-| )in|on(?:-| )screen|onscreen|permanent|embedded in the picture",
        {"burn": True},
    ),
    _option(
        r"soft|closed|separate|selectable|toggleable|optional|cc"
        r"|(?:as|in|on) (?:an? )?(?:separate |soft |selectable )?(?:subtitle |caption )?"
        r"(?:track|file|stream)|(?:as (?:an? )?|plus (?:an? )?|with (?:an? )?|and (?:an? )?)?"
        r"\.?srt(?: file)?|(?:that|which) (?:viewers )?can (?:be )?turn(?:ed)? (?:on|off)",
        {"burn": False},
    ),
    _option(rf"(?:in |into )?{_LANGUAGE}"),
    _option(rf"(?:(?:at|on|to|in) the )?{_PLACE}(?: of the (?:screen|frame|video|picture))?"),
    _option(rf"(?:to|for|on|in|onto|over) (?:{_THE_VIDEO}|it|this)"),
    _option(rf"(?:from|for|of|to match) {_THE_SPEECH}"),
    _option(r"(?:with|using) (?:whisper|speech(?:-| )to(?:-| )text|ai)"),
]
_ZH_CAPTION_OPTIONS = [
    _option(
        r"自动|智能|识别|生成|配上|加上|添加|加|配|做|上|个|一个|一下|的|视频|语音|语音识别|同步",
        whole_words=False,
    ),
    _option(r"硬|烧录|烧进|烧入|内嵌|嵌入|压制", {"burn": True}, whole_words=False),
    _option(r"软|外挂|单独|独立|可关闭|srt(?:文件)?|文件", {"burn": False}, whole_words=False),
    _option(_LANGUAGE, whole_words=False),
    _option(rf"(?:放在|放到|在|位于|显示在)?(?:画面|屏幕|视频)?的?{_PLACE}", whole_words=False),
]
_KIND = r"(?:captions?|subtitles?|subs|cc|caption track|subtitle track)"
_VERB = (
    r"(?:add|put|include|generate|create|make|insert|show|turn on|enable|use|with|i want"
    r"|(?:i )?need|i'd like|burn(?: in)?|hardcode|embed|overlay|put on|slap on|throw on"
    r"|auto(?:-| )?generate|give it)"
)


def _captions(found: re.Match[str], clause: Clause, edit: EditSpec) -> Reading | None:
    options = _CAPTION_OPTIONS
    text = " ".join(part for part in (group(found, "before"), group(found, "after")) if part)
    if group(found, "zh") is not None:
        options = _ZH_CAPTION_OPTIONS
        text = (group(found, "before") or "") + (group(found, "after") or "")
    values = read_options(text, options)
    if values is None:
        return None
    if (group(found, "verb") or "").startswith(("burn", "hardcode", "embed")):
        values.setdefault("burn", True)
    earlier = edit.captions.model_dump(exclude_unset=True) if edit.captions else {}
    style = {**earlier, **values}
    return Reading(_describe_captions(style), {"captions": style}, claims=_claims(values))


def _soft_captions(found: re.Match[str], clause: Clause, edit: EditSpec) -> Reading | None:
    earlier = edit.captions.model_dump(exclude_unset=True) if edit.captions else {}
    style = {**earlier, "burn": False}
    return Reading(_describe_captions(style), {"captions": style}, claims=_claims({"burn": False}))


def _describe_captions(style: dict[str, object]) -> str:
    language = {"en": "English", "zh": "Chinese"}.get(str(style.get("language")), "")
    heard = f"{language} speech" if language else "the speech (language detected)"
    place = f", at the {style['position']}" if "position" in style else ""
    if style.get("burn", True):
        return f"add captions of {heard}, burned in{place} (speech to text, offline)"
    return f"add captions of {heard} as a subtitle track and an .srt file (speech to text, offline)"


def _claims(values: dict[str, object]) -> tuple[tuple[str, str], ...]:
    claims = []
    if "burn" in values:
        claims.append(("captions", "burned in" if values["burn"] else "subtitle track"))
    if "language" in values:
        claims.append(("caption language", str(values["language"])))
    return tuple(claims)


def _fillers(found: re.Match[str], clause: Clause, edit: EditSpec) -> Reading | None:
    return Reading(
        'cut filler words ("um", "uh", "er", "ah", "hmm", 嗯, 呃, 那个) found by speech to text',
        {"remove_fillers": {}},
    )


def _pauses_and_fillers(found: re.Match[str], clause: Clause, edit: EditSpec) -> Reading | None:
    fillers = _fillers(found, clause, edit)
    assert fillers is not None
    cut = edit.cut_silences.model_dump(exclude_unset=True) if edit.cut_silences else {}
    return Reading(
        f"cut silences and {fillers.description}",
        {"cut_silences": cut, **fillers.edit},
    )


_FILLER = (
    r"(?:filler(?:-| )?words?|fillers|filler sounds|hesitations?|hesitation sounds"
    r"|verbal (?:fillers|tics|crutches|pauses)|disfluencies|ums?|umms?|uhs?|uhms?|ahs?|ers?"
    r"|erms?|hmms?|mms?|likes|you knows)"
)
_QUOTED_FILLER = rf"(?:\"|')?{_FILLER}(?:\"|')?"
_FILLERS = rf"(?:{_QUOTED_FILLER}(?:(?:,? and|,|/| or| &|) {_QUOTED_FILLER})*)"
_REMOVE = (
    r"(?:remove|cut|delete|drop|strip|trim|edit|cut out|take out|get rid of|eliminate|lose|kill"
    r"|filter out|clean up|clean out|scrub|zap|nuke|skip)"
)
_ZH_FILLER = r"(?:口头禅|语气词|填充词|口癖|赘词|废话词|停顿词|嗯啊|嗯嗯啊啊|嗯嗯|嗯|呃|额|那个)"
_ZH_REMOVE = r"(?:去掉|去除|删掉|删除|剪掉|剪去|剪除|移除|清除|消除|过滤掉?|干掉|拿掉|不要)"

# Phrasings of captions and filler cuts, in the order they are tried.
GRAMMAR = (
    *rules(
        _captions,
        rf"(?:(?P<verb>{_VERB}) )?(?P<before>(?:[\w.'-]+ ){{0,4}}?){_KIND}(?: (?P<after>.+))?",
        rf"(?P<verb>caption|subtitle|transcribe) (?:it|{_THE_VIDEO}|{_THE_SPEECH})"
        rf"(?: (?:into|as|to|with) {_KIND})?(?: (?P<after>.+))?",
        r"(?P<zh>(?P<before>.{0,12}?)(?:字幕|字幕条|字幕轨道?))(?P<after>.{0,16})",
    ),
    *rules(
        _soft_captions,
        r"(?:add|export|create|generate|make|give me|write|save|include|output|with|plus)"
        r"(?: an?)? \.?srt(?: file| subtitles?| subtitle file)?(?: too| as well| alongside)?",
        r"(?:生成|导出|输出|另存|加|附带|附上)(?:一个)?srt(?:字幕)?(?:文件)?",
    ),
    *rules(
        _fillers,
        rf"{_REMOVE}(?: out)? (?:all |any )?(?:of )?(?:the |my |those |these )?"
        r"(?:annoying |unnecessary |extra |verbal |awkward |spoken )?"
        rf"{_FILLERS}(?: (?:like|such as) {_FILLERS})?"
        rf"(?: (?:from|in) {_THE_SPEECH}| (?:from|in) {_THE_VIDEO})?",
        rf"(?:no|without) (?:more )?{_FILLERS}",
        # the rest of a list cut by a comma or "and": "remove pauses and ums"
        _FILLERS,
        rf"(?:视频里|说话时?|讲话中?)?的?{_ZH_REMOVE}(?:所有|全部|多余|视频里|说话中|讲话中|说话时|讲话时)?的?"
        rf"{_ZH_FILLER}(?:(?:和|跟|、)?{_ZH_FILLER})*",
        rf"{_ZH_FILLER}(?:(?:和|跟|、)?{_ZH_FILLER})*(?:都|全部|全)?{_ZH_REMOVE}",
    ),
    *rules(
        _pauses_and_fillers,
        rf"{_ZH_REMOVE}(?:所有|全部|多余)?的?(?:停顿|静音|空白|沉默|冷场)(?:和|跟|以及|还有)"
        rf"{_ZH_FILLER}(?:(?:和|跟|、)?{_ZH_FILLER})*",
    ),
)

"""Phrases about the picture: the frame's shape (aspect and fit), titles and text. Pure."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import ValidationError

from nemowatch.language.clauses import Clause
from nemowatch.language.numbers import compile_pattern, duration_text, seconds
from nemowatch.language.readings import Handler, OptionReader, Reading, group, read_options, rules
from nemowatch.rules import EditSpec, TextOverlay

# ---- aspect and fit --------------------------------------------------------------------------

ASPECTS = {
    "9:16": "9:16",
    "vertical": "9:16",
    "portrait": "9:16",
    "竖屏": "9:16",
    "竖版": "9:16",
    "竖向": "9:16",
    "16:9": "16:9",
    "horizontal": "16:9",
    "landscape": "16:9",
    "widescreen": "16:9",
    "横屏": "16:9",
    "横版": "16:9",
    "横向": "16:9",
    "1:1": "1:1",
    "square": "1:1",
    "方形": "1:1",
    "正方形": "1:1",
    "4:5": "4:5",
    "4:5 portrait": "4:5",
    "portrait 4:5": "4:5",
}
# "instagram" alone is left out on purpose: its feed is square, its reels vertical.
PLATFORMS = {
    "tiktok": "9:16",
    "reels": "9:16",
    "instagram reels": "9:16",
    "ig reels": "9:16",
    "ig stories": "9:16",
    "shorts": "9:16",
    "youtube shorts": "9:16",
    "stories": "9:16",
    "instagram stories": "9:16",
    "instagram feed": "1:1",
    "the instagram feed": "1:1",
    "youtube": "16:9",
    "抖音": "9:16",
    "快手": "9:16",
    "视频号": "9:16",
}
_PLATFORM_NAMES = {  # as `explain` names them
    "tiktok": "TikTok", "reels": "Instagram Reels", "instagram reels": "Instagram Reels",
    "ig reels": "Instagram Reels", "shorts": "YouTube Shorts", "youtube shorts": "YouTube Shorts",
    "stories": "Instagram Stories", "instagram stories": "Instagram Stories",
    "ig stories": "Instagram Stories", "抖音": "抖音", "快手": "快手", "视频号": "视频号",
}  # fmt: skip
_PLATFORM_WORD = (
    r"tiktok|(?:instagram |ig )?reels|(?:youtube )?shorts|(?:instagram |ig )?stories"
    r"|(?:the )?instagram feed|youtube"
)
PLATFORM_WORDS = rf"(?P<platform>{_PLATFORM_WORD})"
# Every word that names a frame shape, the longest first: "4:5 portrait" before "portrait".
_SHAPE_WORD = re.compile(
    "|".join(re.escape(word) for word in sorted([*ASPECTS, *PLATFORMS], key=len, reverse=True))
)
_FIT_TAIL = (
    r"(?: (?P<fit>with (?:a )?(?:blurred|blurry|blur) (?:background|sides|edges)|with black bars"
    r"|with (?:letterboxing|letterbox|padding)|(?:cropped|crop) to fill|by cropping|letterboxed"
    r"|padded))?"
)
_FIT_WORDS = {
    "blur": "with a blurred background",
    "crop": "cropped to fill",
    "pad": "with black bars",
}
_Fit = Literal["crop", "blur", "pad"]


def _fit_of(text: str) -> _Fit:
    if "blur" in text or "模糊" in text:
        return "blur"
    if "crop" in text or "裁" in text:
        return "crop"
    return "pad"  # black bars, letterbox, padding, 黑边


def _aspect(found: re.Match[str], clause: Clause, edit: EditSpec) -> Reading | None:
    # "vertical 9:16 for TikTok": a ratio, a name and a platform may all say it, in any
    # order; the shapes must agree ("vertical 16:9" is not understood).
    # With a shape named, a platform is only a remark ("square for TikTok" is square).
    words = _SHAPE_WORD.findall(found[0])
    shapes = {ASPECTS[word] for word in words if word in ASPECTS}
    shapes = shapes or {PLATFORMS[word] for word in words}
    if len(shapes) != 1:
        return None
    (aspect,) = shapes
    updates: dict[str, object] = {"aspect": aspect}
    claims = [("aspect", aspect)]
    # "crop to 9:16" and "9:16 with black bars" say how, too
    verb = group(found, "verb")
    how = group(found, "fit") or (verb if verb in ("crop", "pad", "letterbox") else None)
    fit = _fit_of(how) if how else edit.fit
    if how:
        updates["fit"] = fit
        claims.append(("fit", fit))
    description = f"reframe to {aspect} {_FIT_WORDS[fit]}"
    if aspect == "9:16":
        # vertical video: titles and captions keep clear of the apps' buttons and captions
        platform = next((_PLATFORM_NAMES[word] for word in words if word in _PLATFORM_NAMES), None)
        named = platform if platform else "the apps"
        description += f"; titles and captions inside the safe zones of {named}"
    return Reading(description, updates, claims=tuple(claims))


def _fit(found: re.Match[str], clause: Clause, edit: EditSpec) -> Reading | None:
    fit = _fit_of(found.string)
    return Reading(
        f"fill a new frame shape {_FIT_WORDS[fit]}", {"fit": fit}, claims=(("fit", fit),)
    )


# ---- titles and text -------------------------------------------------------------------------

_OVERLAY_VERB = r"(?:add|put|show|display|insert|use|include|overlay|with|set|write|place)"
_POSITIONS = {
    "top": "top",
    "顶部": "top",
    "上方": "top",
    "顶端": "top",
    "上面": "top",
    "bottom": "bottom",
    "底部": "bottom",
    "下方": "bottom",
    "底端": "bottom",
    "下面": "bottom",
}  # anything else named is the center
_SIZES = {"tiny": 0.04, "small": 0.05, "large": 0.1, "big": 0.1, "huge": 0.14}


def _overlay_options() -> tuple[tuple[re.Pattern[str], OptionReader], ...]:
    def position(found: re.Match[str]) -> dict[str, object]:
        return {"position": _POSITIONS.get(found["position"], "center")}

    def start(found: re.Match[str]) -> dict[str, object]:
        return {"start": seconds(found["start"])}

    def duration(found: re.Match[str]) -> dict[str, object]:
        return {"duration": seconds(found["duration"])}

    def size(found: re.Match[str]) -> dict[str, object]:
        return {"size": _SIZES[found["size"]]}

    def at_start(found: re.Match[str]) -> dict[str, object]:
        return {"start": 0.0}

    options: list[tuple[str, OptionReader]] = [
        (
            r"\s*(?:(?:at|on|in|to|across) )?(?:the )?(?P<position>top|bottom|center|centre|middle)"
            r"(?: of the (?:screen|frame|video))?",
            position,
        ),
        (r"\s*(?:(?:at|in) )?the (?:start|beginning)(?: of the video)?", at_start),
        (r"\s*(?:from|starting at|starting from|beginning at|at|after) <dur:start>", start),
        (r"\s*(?:for(?: the first)?|lasting|during) <dur:duration>", duration),
        (r"\s*<dur:duration>(?: long)?", duration),
        (r"\s*(?:in )?(?P<size>large|big|small|huge|tiny)(?: (?:text|font|letters|type))?", size),
        (r"\s*(?:显示|持续|停留|展示)<dur:duration>", duration),
        (
            r"\s*(?:在|放在|位于|显示在)?(?:画面)?"
            r"(?P<position>顶部|上方|顶端|上面|底部|下方|底端|下面|中间|中央|居中|正中)",
            position,
        ),
        (r"\s*从第?<dur:start>(?:开始)?", start),
    ]
    return tuple((compile_pattern(option), reader) for option, reader in options)


_OVERLAY_OPTIONS = _overlay_options()


def _overlay(text: str, tail: str) -> TextOverlay | None:
    options = read_options(tail, _OVERLAY_OPTIONS)
    if options is None:
        return None
    try:
        return TextOverlay.model_validate({"text": text, **options})
    except ValidationError:
        return None  # empty, or longer than a title can be


def _title(found: re.Match[str], clause: Clause, edit: EditSpec) -> Reading | None:
    return _title_reading(_overlay(clause.quoted[0], group(found, "tail") or ""))


_AFTER_COLON = re.compile(r"(?:title|标题)\s*[:：]\s*", re.IGNORECASE)


def _unquoted_title(found: re.Match[str], clause: Clause, edit: EditSpec) -> Reading | None:
    # "title: Urban Dreams": the text is the rest of the phrase as written, case and all
    after = _AFTER_COLON.search(clause.phrase)
    if after is None:
        return None
    return _title_reading(_overlay(clause.phrase[after.end() :].strip(), ""))


def _title_reading(overlay: TextOverlay | None) -> Reading | None:
    """What a title phrase does; None when its text is no valid title."""
    if overlay is None:
        return None
    return Reading(
        _describe_overlay("the title ", overlay),
        {"title": overlay},
        claims=(("title", f'"{overlay.text}"'),),
    )


def _text(found: re.Match[str], clause: Clause, edit: EditSpec) -> Reading | None:
    overlay = _overlay(clause.quoted[0], group(found, "tail") or "")
    if overlay is None:
        return None
    # Overlays add up: several captions are not a contradiction.
    return Reading(_describe_overlay("", overlay), {"texts": (*edit.texts, overlay)})


def _describe_overlay(what: str, overlay: TextOverlay) -> str:
    where = "in the center" if overlay.position == "center" else f"at the {overlay.position}"
    return (
        f'show {what}"{overlay.text}" {where}'
        f" from {duration_text(overlay.start)} for {duration_text(overlay.duration)}"
    )


_ASPECT_LEAD = (
    r"(?:(?P<verb>make|turn|convert|change|reframe|resize|format|crop|pad|letterbox|set|switch|put"
    r"|render|export|fit)(?: it| this| the (?:video|clip|frame|footage))?(?: (?:to|into|as|in))?"
    r"(?: an?)? )?"
)
_ASPECT_WORD = (
    r"4:5 portrait|portrait 4:5|9:16|16:9|1:1|4:5|vertical|portrait|horizontal"
    rf"|landscape|widescreen|square|{_PLATFORM_WORD}"
)
_ASPECT_NAME = rf"(?P<aspect>(?:{_ASPECT_WORD})(?: (?:{_ASPECT_WORD})){{0,2}})"
_ASPECT_ZH = r"竖屏|竖版|竖向|横屏|横版|横向|正方形|方形|9:16|16:9|1:1|4:5|抖音|快手|视频号"
_ASPECT_SUFFIX = (
    r"(?: (?:video|format|aspect(?: ratio)?|ratio|mode|orientation|frame|version))?"
    # with the shape named, any platform is just a remark: "square for instagram"
    rf"(?: (?:for|on) (?:{PLATFORM_WORDS}|instagram|facebook))?{_FIT_TAIL}"
)

# Phrasings of the frame's shape, titles and text, in the order they are tried
# (`instructions.GRAMMAR` is every kind's, in order).
GRAMMAR: tuple[tuple[re.Pattern[str], Handler], ...] = (
    *rules(
        _aspect,
        _ASPECT_LEAD
        + r"(?:(?:the )?(?:aspect(?: ratio)?|ratio|format)(?: of| to| =|:)? )?"
        + _ASPECT_NAME
        + _ASPECT_SUFFIX,
        r"(?:(?:make|optimi[sz]e|format|reformat|crop|reframe|resize|adapt)"
        r"(?: it| this| the video)? )?"
        rf"for {PLATFORM_WORDS}{_FIT_TAIL}",
        r"(?:改成|改为|转成|转为|变成|做成|剪成|设为|设置为|调成|调整为|裁成|裁剪成|裁剪为|切成|换成)?"
        rf"(?:画面|画幅|比例)?(?P<aspect>(?:{_ASPECT_ZH})(?:的?(?:{_ASPECT_ZH})){{0,2}})"
        r"(?:比例|画幅|格式|视频|版本|版|模式)?"
        r"(?P<fit>加?模糊背景|背景模糊|加?黑边|裁剪填充|裁切填充)?",
        r"(?:适配|适合|发布到|发到|发)(?P<platform>抖音|快手|视频号)",
        # a shape and a platform: "竖屏适配抖音", "9:16发抖音"
        rf"(?:改成|转成|做成|变成)?(?P<aspect>(?:{_ASPECT_ZH}))(?:的?视频|版|格式)?"
        r"(?:适配|适合|用于|发布到|发到|发|给)(?P<platform>抖音|快手|视频号)(?:用)?",
    ),
    *rules(
        _fit,
        r"(?:with |use |add |fill (?:the )?(?:sides|edges|background|bars|gaps) with )?(?:an? )?"
        r"(?:blurred|blurry|blur) (?:background|sides|edges|bars|fill)",
        r"blur the (?:sides|edges|background|bars)",
        r"(?:crop|zoom)(?: it)?(?: in)? to (?:fill(?: the frame| the screen)?|fit)",
        r"fill the (?:frame|screen)",
        r"(?:letterbox|pad)(?: it| the video)?(?: with black(?: bars)?)?",
        r"(?:with |add |use )?(?:black bars|letterboxing|padding)",
        r"(?:加|用)?(?:模糊背景|背景模糊|模糊填充)",
        r"(?:加|用)?黑边(?:填充)?",
        r"(?:裁剪|裁切)(?:填充|填满|铺满)",
    ),
    # titles and text (quoted text, or "title: ..." up to the end of the clause)
    *rules(
        _title,
        rf"(?:{_OVERLAY_VERB}(?: in)? )?(?:(?:an?|the) )?(?:(?:opening|intro|main|big|large) )?"
        r"title(?: card| text| overlay| screen)?(?: of| saying| that says| reading| called| as)?"
        r":? <q>(?P<tail>.*)",
        rf"(?:{_OVERLAY_VERB} )?<q> as (?:the|a) title(?P<tail>.*)",
        r"(?:加|添加|加上|加个|加一个|放|显示|设置|写)?(?:一个)?(?:大|开场|片头)?标题"
        r"(?:为|是|:|写|写成|叫|叫做)?<q>(?P<tail>.*)",
    ),
    *rules(
        _text,
        rf"(?:{_OVERLAY_VERB} )?(?:(?:the|a|some) )?(?:text|caption|subtitle|words?|label"
        r"|lower third)(?: of| saying| that says| reading)?:? <q>(?P<tail>.*)",
        rf"{_OVERLAY_VERB} <q>(?P<tail>.*)",
        r"(?:加|添加|加上|放|显示|写)?(?:一段|一行)?(?:文字|字幕|文本)(?:为|是|:)?<q>(?P<tail>.*)",
    ),
    *rules(
        _unquoted_title,
        r"(?:(?:add|set|use) )?(?:(?:a|the) )?title ?: ?[^\ue000]+",
        r"(?:加|添加)?标题:[^\ue000]+",
    ),
)

"""Phrases about effects: denoise, colour (brightness, contrast, saturation, warmth),
watermark, reverse, loop, and the `enhance` preset for vague requests. Pure.

Unnamed amounts: "brighter" adds BRIGHTER (0.1) to the brightness, "more contrast" is
x1.2, "more vivid" x1.3 saturation, "less saturated" x0.7, "black and white" saturation 0,
"warmer" warmth +0.3, "cooler" -0.3; "a lot" doubles a step, "a little" halves it. A
percentage says the step itself ("20% brighter" is +0.2, "contrast up 30%" x1.3).
Colour clauses refine one another: "brighter" then "more contrast" sets both.
"""

from __future__ import annotations

import re

from nemowatch.language.clauses import Clause
from nemowatch.language.numbers import fraction, number, number_value, percent
from nemowatch.language.readings import Handler, Reading, group, rules
from nemowatch.rules import DENOISE_STRENGTHS, ENHANCE_DESCRIPTION, ColorAdjust, EditSpec

BRIGHTER = 0.1
MORE_CONTRAST = 1.2
MORE_SATURATION = 1.3
LESS_SATURATION = 0.7
WARMER = 0.3

# ---- denoise ---------------------------------------------------------------------------------

_NOISE = (
    r"(?:(?:the|any|all|all the|some|that|this) )?(?:annoying )?(?:background |ambient |room |wind "
    r"|audio |fan |static |white )?(?:noise|hiss|hissing|hum|buzz|buzzing|static|rumble)"
)
_OF_AUDIO = r"(?: (?:from|in|on) (?:the |my )?(?:audio|sound|recording|video|clip|voice))?"
_STRENGTH = (
    r"(?: (?P<strength>a (?:little|bit)|slightly|lightly|gently|a lot|strongly|heavily"
    r"|aggressively))?"
)
_STRENGTH_ZH = r"(?P<strength>轻微|轻度|稍微|强力|强烈|大幅|彻底)?"
_STRONG = re.compile(r"a lot|strongly|heavily|aggressively|强力|强烈|大幅|彻底")
_LIGHT = re.compile(r"a little|a bit|slightly|lightly|gently|轻微|轻度|稍微")


def _denoise(found: re.Match[str], clause: Clause, edit: EditSpec) -> Reading | None:
    strength = group(found, "strength") or ""
    name = "strong" if _STRONG.search(strength) else "light" if _LIGHT.search(strength) else ""
    decibels = DENOISE_STRENGTHS[name or "medium"]
    claims = (("denoise", f"{number(decibels)} dB"),) if name else ()
    return Reading(
        f"reduce background noise by {number(decibels)} dB", {"denoise": decibels}, claims=claims
    )


# ---- colour ----------------------------------------------------------------------------------

_AMOUNT = r"(?: (?P<amount>a (?:little|bit)|slightly|a lot|much|way|a little bit))?"
_BY = r"(?: by <pct:change>)?"
_IT = r"(?: (?:it|this|the (?:video|clip|picture|image|footage|shot)))?"
_AMOUNT_ZH = r"(?P<amount>一点|一些|点|些|很多|多一点|稍微|非常|大幅)?"


def _scale(found: re.Match[str]) -> float:
    """How much of a step: "a little" half, "a lot" double, a percentage its own."""
    amount = group(found, "amount") or ""
    if re.search(r"a lot|much|way|很多|非常|大幅", amount):
        return 2.0
    if re.search(r"little|bit|slightly|稍微", amount):
        return 0.5
    return 1.0


def _color(field: str, direction: int) -> Handler:
    """A handler that moves one colour setting up (`direction` 1) or down (-1)."""

    def handler(found: re.Match[str], clause: Clause, edit: EditSpec) -> Reading | None:
        change = group(found, "change")
        step = fraction(change) if change else None
        if field == "brightness":
            value = direction * (step if step is not None else BRIGHTER * _scale(found))
        elif field == "warmth":
            value = direction * (step if step is not None else WARMER * _scale(found))
        else:
            default = MORE_CONTRAST if field == "contrast" else MORE_SATURATION
            if direction < 0 and field == "saturation":
                default = 1 / LESS_SATURATION
            if step is not None:  # "contrast down 20%" is x0.8
                value = 1 + direction * step
            else:
                rise = (default - 1) * _scale(found)
                value = 1 + rise if direction > 0 else 1 / (1 + rise)
        return _color_reading(edit, field, round(value, 3))

    return handler


def _black_and_white(found: re.Match[str], clause: Clause, edit: EditSpec) -> Reading | None:
    return _color_reading(edit, "saturation", 0.0, "make it black and white (saturation 0)")


def _color_reading(
    edit: EditSpec, field: str, value: float, description: str | None = None
) -> Reading:
    color = (edit.color or ColorAdjust()).model_copy(update={field: value})
    shown = f"{value:+g}" if field in ("brightness", "warmth") else f"x{value:g}"
    return Reading(
        description or f"set {field} {shown}",
        {"color": color.model_dump()},  # checked with the rest (out of range: not understood)
        claims=((field, shown),),
    )


# ---- watermark -------------------------------------------------------------------------------

_CORNERS = {
    "bottom right": "bottom-right",
    "bottom left": "bottom-left",
    "top right": "top-right",
    "top left": "top-left",
    "lower right": "bottom-right",
    "lower left": "bottom-left",
    "upper right": "top-right",
    "upper left": "top-left",
    "右下": "bottom-right",
    "左下": "bottom-left",
    "右上": "top-right",
    "左上": "top-left",
}
_CORNER = (
    r"(?: (?:in|at|on|to) the (?P<corner>(?:bottom|lower|top|upper)[- ](?:right|left))"
    r"(?: corner)?)?"
)
_CORNER_ZH = (
    r"(?:(?:在|放在|放到)?(?:画面|视频)?的?(?P<corner>右下|左下|右上|左上)角?(?:的|位置)?)?"
)
_CORNER_ZH_AFTER = _CORNER_ZH.replace("<corner>", "<corner2>")
_OPACITY = r"(?: (?:at|with) <pct:opacity> (?:opacity|opaque|visible))?"
_OPACITY_ZH = r"(?:(?:不透明度|透明度)(?:为|设为)?<pct:opacity>)?"
_MARK = r"(?:watermark|logo|logo watermark|image watermark)"


def _watermark(found: re.Match[str], clause: Clause, edit: EditSpec) -> Reading | None:
    if len(clause.quoted) != 1:
        return None  # the image's file, quoted: "add watermark 'logo.png'"
    corner_word = group(found, "corner") or group(found, "corner2")
    fields: dict[str, object] = {"file": clause.quoted[0]}
    claims = [("watermark", clause.quoted[0])]
    if corner_word:
        fields["corner"] = _CORNERS[corner_word.replace("-", " ")]
        claims.append(("watermark corner", str(fields["corner"])))
    opacity = group(found, "opacity")
    if opacity:
        fields["opacity"] = fraction(opacity)
    earlier = edit.watermark.model_dump() if edit.watermark is not None else {}
    mark = EditSpec.model_validate({"watermark": {**earlier, **fields}}).watermark
    if mark is None:
        return None
    return Reading(
        f'add the watermark "{mark.file}" in the {mark.corner} corner, {percent(mark.size)}'
        f" of the width, {percent(mark.opacity)} opaque",
        {"watermark": mark},
        claims=tuple(claims),
    )


# ---- reverse and loop ------------------------------------------------------------------------


def _reverse(found: re.Match[str], clause: Clause, edit: EditSpec) -> Reading | None:
    return Reading("play it backwards (picture and sound)", {"reverse": True})


_COUNTS = {"twice": 2.0, "thrice": 3.0, "两": 2.0}


def _loop(found: re.Match[str], clause: Clause, edit: EditSpec) -> Reading | None:
    spoken = found["count"]
    count = _COUNTS.get(spoken) or number_value(spoken)
    if count != int(count):
        return None
    if group(found, "more") is not None:  # "repeat it 2 more times": 3 plays
        count += 1
    return Reading(
        f"play it {count:g} times over", {"loop": int(count)}, claims=(("loop", f"{count:g}"),)
    )


# ---- enhance ---------------------------------------------------------------------------------


def _enhance(found: re.Match[str], clause: Clause, edit: EditSpec) -> Reading | None:
    return Reading(ENHANCE_DESCRIPTION, {"enhance": True})  # it normalizes loudness itself


# Phrasings of effects, in the order they are tried (`instructions.GRAMMAR` is every
# kind's, in order; these come before timing's, whose "play it 3x" is a speed).
GRAMMAR: tuple[tuple[re.Pattern[str], Handler], ...] = (
    *rules(
        _denoise,
        rf"(?:remove|reduce|cut|clean up|get rid of|eliminate|suppress|lower|filter out|kill"
        rf"|take out|fix)(?: out)? {_NOISE}{_OF_AUDIO}{_STRENGTH}",
        rf"(?:denoise|de-noise|de-hiss|dehiss)(?: the)?(?: (?:audio|sound|voice|recording))?"
        rf"{_STRENGTH}",
        rf"(?:apply |add |use )?(?:(?:light|strong|heavy|some) )?(?:audio )?"
        rf"(?:noise reduction|noise removal|noise suppression){_OF_AUDIO}",
        rf"clean up the (?:audio|sound|voice|recording){_STRENGTH}",
        r"(?:make )?the (?:audio|sound|voice) (?:is )?(?:too )?(?:noisy|hissy)",
        rf"(?:音频|声音)?{_STRENGTH_ZH}(?:降噪|去噪)(?:处理)?",
        r"(?:去除|去掉|消除|减少|降低|过滤|去|除去|删除)(?:一下)?(?:视频|音频|声音)?(?:里|中)?的?"
        r"(?:背景|环境|底|电流|风)?(?:噪音|噪声|杂音|底噪|嘶嘶声|电流声|风声|沙沙声)",
        r"(?:背景|环境)?(?:噪音|杂音|底噪)(?:太大了?|去掉|去除|消除)",
    ),
    # colour
    *rules(
        _color("brightness", 1),
        rf"(?:increase|raise|boost|bump up|turn up|up|add) (?:the )?brightness{_BY}{_AMOUNT}",
        rf"(?:make|get){_IT}{_AMOUNT} brighter",
        rf"(?:make|get){_IT} brighter{_AMOUNT}",
        r"(?:(?P<amount>a (?:little|bit)|slightly|much|way) )?brighter",
        rf"brighten{_IT}(?: up)?{_BY}{_AMOUNT}",
        r"(?:it'?s|it is|the video is|too) (?:too )?dark(?:, brighten it)?",
        r"(?:make it |make the video )?<pct:change> brighter",
        r"brightness up(?: by)?(?: <pct:change>)?",
        rf"(?:调亮|提亮|变亮|亮度调高|亮度提高|提高亮度|增加亮度|调高亮度|亮度加大|画面调亮|画面提亮)"
        rf"{_AMOUNT_ZH}(?:<pct:change>)?",
        r"(?:画面|视频)?(?:太暗了?|有点暗|偏暗)",
        rf"(?:亮度|画面)(?:调|再)?亮{_AMOUNT_ZH}",
    ),
    *rules(
        _color("brightness", -1),
        rf"(?:decrease|lower|reduce|turn down|drop) (?:the )?brightness{_BY}{_AMOUNT}",
        rf"(?:make|get){_IT}{_AMOUNT} darker",
        rf"(?:make|get){_IT} darker{_AMOUNT}",
        r"(?:(?P<amount>a (?:little|bit)|slightly|much|way) )?darker",
        rf"darken{_IT}{_BY}{_AMOUNT}",
        r"brightness down(?: by)?(?: <pct:change>)?",
        r"(?:it'?s|it is|the video is|too) (?:too )?bright",
        rf"(?:调暗|变暗|压暗|亮度调低|降低亮度|调低亮度|减少亮度|画面调暗){_AMOUNT_ZH}(?:<pct:change>)?",
        r"(?:画面|视频)?(?:太亮了?|有点亮|过曝)",
    ),
    *rules(
        _color("contrast", 1),
        rf"(?:increase|raise|boost|bump up|add|crank up|up) (?:the )?(?:some )?contrast{_BY}"
        rf"{_AMOUNT}",
        r"(?:make it |with |give it |add )?(?:a (?:little |bit )?)?"
        r"(?:more|higher|stronger|punchier)"
        rf" contrast{_AMOUNT}",
        r"(?:make it|make the (?:picture|image|video)) (?:more )?(?:contrasty|punchier|punchy)",
        r"contrast up(?: by)?(?: <pct:change>)?",
        rf"(?:提高|增加|增强|加大|调高|提升|加强)(?:一点|一些|点)?(?:画面)?对比度{_AMOUNT_ZH}"
        rf"(?:<pct:change>)?",
        rf"对比度(?:调高|提高|加大|高|强|再高|增强){_AMOUNT_ZH}",
    ),
    *rules(
        _color("contrast", -1),
        rf"(?:decrease|lower|reduce|soften|turn down) (?:the )?contrast{_BY}{_AMOUNT}",
        r"contrast down(?: by)?(?: <pct:change>)?",
        rf"(?:make it |with )?(?:less|lower|softer) contrast{_AMOUNT}",
        rf"(?:降低|减少|减弱|调低)(?:画面)?对比度{_AMOUNT_ZH}",
        rf"对比度(?:调低|降低|低){_AMOUNT_ZH}",
    ),
    *rules(
        _color("saturation", 1),
        rf"(?:increase|raise|boost|bump up|up|crank up) (?:the )?(?:colou?r )?saturation{_BY}"
        rf"{_AMOUNT}",
        rf"(?:make )?(?:the )?colou?rs? (?:more )?(?:vivid|vibrant|saturated|pop|richer|punchier"
        rf"|brighter|stronger){_AMOUNT}",
        rf"(?:make it|make the (?:video|picture|image)|with) (?:a (?:little |bit )?)?(?:more )?"
        rf"(?:vivid|vibrant|saturated|colou?rful){_AMOUNT}",
        rf"(?:more|richer|stronger|bolder) (?:vivid |vibrant |saturated )?colou?rs?{_AMOUNT}",
        rf"(?:boost|intensify|enrich|pump up) the colou?rs?{_BY}{_AMOUNT}",
        rf"(?:色彩|颜色|画面)(?:更|再)?(?:鲜艳|饱满|艳丽|浓郁){_AMOUNT_ZH}",
        rf"(?:提高|增加|增强|加大|调高|提升)(?:色彩|颜色)?饱和度{_AMOUNT_ZH}(?:<pct:change>)?",
        rf"饱和度(?:调高|提高|加大|高){_AMOUNT_ZH}",
        rf"(?:让)?(?:色彩|颜色)(?:更)?(?:鲜艳|饱满){_AMOUNT_ZH}",
    ),
    *rules(
        _color("saturation", -1),
        rf"(?:decrease|lower|reduce|tone down|turn down) (?:the )?(?:colou?r )?saturation{_BY}"
        rf"{_AMOUNT}",
        rf"(?:desaturate){_IT}{_AMOUNT}",
        r"(?:make it |make the colou?rs |with )?"
        rf"(?:less saturated|more muted(?: colou?rs)?|muted colou?rs?"
        rf"|washed[- ]out colou?rs?|faded colou?rs?){_AMOUNT}",
        rf"tone down the colou?rs?{_AMOUNT}",
        rf"(?:降低|减少|调低)(?:色彩|颜色)?饱和度{_AMOUNT_ZH}",
        r"(?:色彩|颜色)(?:淡|素|灰)(?:一点|一些)?",
    ),
    *rules(
        _black_and_white,
        r"(?:make it |turn it |convert it |make the video |turn the video |convert the video"
        r" |make |turn |convert )?(?:(?:in|into|to) )?(?:black (?:and|&) white|b ?& ?w|b/w"
        r"|black-and-white|gr[ae]y ?scale|monochrome)(?: (?:video|filter|look|effect))?",
        r"(?:remove|drop|strip|take out) (?:all )?(?:the )?colou?rs?",
        r"(?:改成|变成|转成|调成|做成|加|加个|用)?黑白(?:色|的|效果|滤镜|画面|风格)?(?:效果)?",
        r"(?:去掉|去除)(?:画面的?)?颜色",
    ),
    *rules(
        _color("warmth", 1),
        rf"(?:make|get)(?:{_IT}| the colou?rs){_AMOUNT} warmer",
        rf"(?:make|get)(?:{_IT}| the colou?rs) warmer{_AMOUNT}",
        r"(?:(?P<amount>a (?:little|bit)|slightly|much|way) )?warmer(?: colou?rs| tones?)?",
        rf"(?:add |give it |use |with )?(?:a )?warm(?:er)? (?:tones?|colou?r grade|look|tint|filter"
        rf"|colou?rs?|feel|vibe){_AMOUNT}",
        r"warm (?:it|the (?:video|colou?rs|picture|image|footage)) up",
        r"warm up the (?:video|colou?rs|picture|image|footage|tones)",
        rf"(?:调成|改成|变成|加|用|偏)?暖(?:色调|色|调)(?:的|风格|滤镜|效果)?{_AMOUNT_ZH}",
        rf"(?:色调|颜色|画面)(?:调|更|偏)?暖{_AMOUNT_ZH}",
    ),
    *rules(
        _color("warmth", -1),
        rf"(?:make|get)(?:{_IT}| the colou?rs){_AMOUNT} (?:cooler|colder)",
        rf"(?:make|get)(?:{_IT}| the colou?rs) (?:cooler|colder){_AMOUNT}",
        r"(?:(?P<amount>a (?:little|bit)|slightly|much|way) )?(?:cooler|colder)"
        r"(?: colou?rs| tones?)?",
        rf"(?:add |give it |use |with )?(?:a )?(?:cool|cooler|cold) (?:tones?|colou?r grade|look"
        rf"|tint|filter|colou?rs?|feel|vibe){_AMOUNT}",
        r"cool (?:it|the (?:video|colou?rs|picture|image|footage)) down",
        rf"(?:调成|改成|变成|加|用|偏)?冷(?:色调|色|调)(?:的|风格|滤镜|效果)?{_AMOUNT_ZH}",
        rf"(?:色调|颜色|画面)(?:调|更|偏)?冷{_AMOUNT_ZH}",
    ),
    # watermark (the image's file is quoted)
    *rules(
        _watermark,
        rf"(?:add|put|place|overlay|stamp|insert|use)(?: (?:a|the|my|our))? {_MARK}:? <q>"
        rf"{_CORNER}{_OPACITY}",
        rf"(?:add|put|place|overlay|stamp|insert|use) <q> as (?:a |the |my )?{_MARK}{_CORNER}"
        rf"{_OPACITY}",
        rf"(?:add|put|place|overlay|stamp|insert) <q>{_CORNER} as (?:a |the |my )?{_MARK}"
        rf"{_OPACITY}",
        rf"{_MARK}:? <q>{_CORNER}{_OPACITY}",
        rf"{_CORNER_ZH}(?:加|添加|加上|放|打|贴|放上|打上)(?:一个|个)?(?:图片)?(?:水印|logo|标志|台标)"
        rf"(?:图片)?(?:为|用)?:? ?<q>{_OPACITY_ZH}",
        rf"(?:加|添加|加上|放|打|贴|放上|打上)(?:一个|个)?(?:图片)?(?:水印|logo|标志|台标)"
        rf"(?:图片)?(?:为|用)?:? ?<q>{_CORNER_ZH}{_OPACITY_ZH}",
        rf"(?:把|将)? ?<q> ?(?:作为|当作|当|做)(?:水印|logo|台标)(?:放在|放到|加在|贴在)?"
        rf"{_CORNER_ZH}{_OPACITY_ZH}",
        rf"(?:水印|logo)(?:用|为|:)? ?<q>{_CORNER_ZH}{_OPACITY_ZH}",
    ),
    # reverse and loop
    *rules(
        _reverse,
        r"(?:reverse|rewind)(?: it| this| the (?:video|clip|footage|whole (?:video|thing)))?",
        r"(?:play|run|make)(?: it| this| the (?:video|clip|footage))?"
        r" (?:backwards?|in reverse|reversed)",
        r"(?:make it )?(?:a )?(?:reverse|reversed|rewind) (?:effect|video|clip|playback)",
        r"(?:played|playing|shown|running) (?:backwards?|in reverse)",
        r"(?:做成|改成|变成|弄成)?(?:视频)?(?:倒放|倒播|倒序播放|倒着播放?|倒过来播放?|反向播放|倒带)"
        r"(?:视频|效果|的效果)?",
    ),
    *rules(
        _loop,
        r"(?:loop|repeat|play|run)(?: it| this| the (?:video|clip|whole (?:video|thing)))?"
        r" (?P<count>twice|thrice)",
        r"(?:loop|repeat|play)(?: it| this| the (?:video|clip))?"
        r" <num:count>(?P<more> more)? times(?: in a row| over)?",
        r"(?:make it |have it )?loop(?: it)? <num:count> times",
        r"(?:视频)?(?:循环|重复)(?:播放)?<num:count>(?:次|遍)",
        r"(?:视频)?(?:播放|放)<num:count>(?:次|遍)",
    ),
    # enhance: one documented preset for vague requests
    *rules(
        _enhance,
        r"(?:auto[- ]?)?enhance(?: it| this| the (?:video|clip|footage|picture|image|quality))?"
        r"(?: automatically)?",
        r"(?:make|get)(?: it| this| the (?:video|clip|footage))? (?:look|sound|look and sound)"
        r" (?:better|nicer|good|great|more professional|professional|polished|cleaner)",
        r"(?:improve|polish|touch up|clean up|fix up|spruce up|beautify|tidy up)"
        r"(?: it| this| the (?:video|clip|footage|look|picture|quality|image))?(?: up)?"
        r"(?: a (?:little|bit))?",
        r"(?:clean|touch|fix|spruce|tidy) (?:it|this|the (?:video|clip|footage)) up"
        r"(?: a (?:little|bit))?",
        r"(?:give it|apply|do|add) (?:a |an |some )?(?:quick |light |basic )?"
        r"(?:polish|touch-?up|enhancement|auto[- ]enhance|glow[- ]up)",
        r"(?:润色|美化|优化|修饰|调整|改善|提升)(?:一下)?(?:视频|画质|画面|效果|质量|视频质量|观感)?",
        r"(?:让|使)?(?:视频|画面|它)(?:变得)?(?:更)?好看(?:一点|一些|点)?",
        r"(?:一键)?(?:美化|优化|增强)(?:一下)?(?:视频|画质|画面)?",
    ),
)

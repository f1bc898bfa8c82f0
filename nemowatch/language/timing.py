"""Phrases about time: cutting silences, trims, the length of the result, speed. Pure."""

from __future__ import annotations

import re

from nemowatch.language.clauses import Clause
from nemowatch.language.frame import ASPECTS, PLATFORM_WORDS, PLATFORMS
from nemowatch.language.numbers import clock, duration_text, fraction, number, seconds, times
from nemowatch.language.readings import Handler, Reading, group, rules
from nemowatch.rules import EditSpec, SilenceCut, Trim

# "cut more aggressively": a higher threshold counts more as silence, a smaller margin
# keeps less of each pause.
AGGRESSIVE_SILENCE_CUT = SilenceCut(threshold_db=-24.0, margin=0.1)
DEFAULT_HIGHLIGHT = 60.0  # seconds, for a highlight reel that names no length


def describe_silence_cut(cut: SilenceCut) -> str:
    """A silence cut in words, e.g. "cut silences below -28 dB"."""
    return f"cut silences below {number(cut.threshold_db)} dB"


# ---- silences --------------------------------------------------------------------------------

# A clause must be only a silence cut ("remove the long pauses from the video", "cut
# silences aggressively", "cut silences below -30 dB"): anything more is reported back,
# never half-understood.
_SILENCE_CUT = re.compile(
    r"""
    ^(?:cut|remove|trim|delete|drop|strip|skip|eliminate|get\ rid\ of|take|edit)
    (?:\ out)?
    (?:\ (?:all|the|any|every|of|long|longer|awkward|unnecessary|needless|empty|extra))*
    \ (?:silences?|silent|pauses?|dead\ air|gaps|quiet)
    (?:\ (?:parts?|bits?|sections?|segments?|stretches?|moments?|gaps))?
    (?:\ (?:from|in|of)\ (?:the|this|my)\ (?:video|clip|footage|recording|file))?
    (?:\ (?:more\ )?aggressively)?
    (?:\ (?:below|under|quieter\ than)\ -?\d+(?:\.\d+)?\ ?db)?
    $
    """,
    flags=re.VERBOSE,
)
_MORE_AGGRESSIVE = re.compile(
    r"^(?:cut|trim|edit|be)\ (?:(?:more|very|really)\ )?aggressive(?:ly)?(?:\ than\ usual)?$",
    flags=re.VERBOSE,
)
_SILENCE_CUT_ZH = (
    r"(?:自动)?(?:去掉|去除|删掉|删除|剪掉|剪去|剪除|移除|切掉|跳过)(?:视频(?:中|里)?的?)?"
    r"(?:所有|全部|多余|中间|无用)?的?(?:静音|停顿|沉默|空白|无声|冷场)的?(?:部分|片段|段落|段|时间)?"
)
_MORE_AGGRESSIVE_ZH = r"(?:剪得?|剪辑得?)?(?:更|再)(?:激进|狠|紧凑)(?:一点|一些|些)?"
_AGGRESSIVE = re.compile(r"\baggressive(?:ly)?\b|激进|狠|紧凑")
_THRESHOLD = re.compile(r"(-?\d+(?:\.\d+)?)\s*db\b")


def _cut_silences(found: re.Match[str], clause: Clause, edit: EditSpec) -> Reading | None:
    # A plain "cut out silences" keeps an earlier refinement ("cut more aggressively").
    cut = edit.cut_silences or SilenceCut()
    claims: list[tuple[str, str]] = []
    if _AGGRESSIVE.search(found.string):
        cut = cut.model_copy(
            update={
                "threshold_db": AGGRESSIVE_SILENCE_CUT.threshold_db,
                "margin": AGGRESSIVE_SILENCE_CUT.margin,
            }
        )
        claims.append(("silence threshold", f"{number(cut.threshold_db)} dB"))
    threshold = _THRESHOLD.search(found.string)
    if threshold is not None:
        # "below 30 dB" means -30 dBFS: levels of digital audio are never above zero.
        value = -abs(float(threshold.group(1)))
        if value < -90.0:
            return None
        cut = cut.model_copy(update={"threshold_db": value})
        claims.append(("silence threshold", f"{number(value)} dB"))
    return Reading(describe_silence_cut(cut), {"cut_silences": cut}, claims=tuple(claims))


# ---- trim ------------------------------------------------------------------------------------

_OF_SOURCE = r"(?: of (?:the |this )?(?:video|clip|footage|source|recording))?"
_TRIM_VERB = r"(?:trim|cut|remove|skip|drop|delete|chop|lose)(?: off| out)?"


def _trim(found: re.Match[str], clause: Clause, edit: EditSpec) -> Reading | None:
    # Only what the phrase names changes: "trim the first 5 seconds" keeps an earlier end
    # (or an earlier cut from the end); an end replaces a cut from the end.
    earlier = edit.trim if edit.trim is not None and edit.trim.last is None else Trim()
    start_text, end_text = group(found, "start"), group(found, "end")
    start = seconds(start_text) if start_text else earlier.start
    end = seconds(end_text) if end_text else earlier.end
    if end is not None and end <= start:
        return None
    claims = []
    if start_text:
        claims.append(("trim start", clock(start)))
    if end_text:
        claims.append(("trim end", clock(end or 0.0)))
    cut_end = None if end_text else earlier.cut_end
    trim = Trim(start=start, end=end, cut_end=cut_end)
    return Reading(_describe_trim(trim), {"trim": trim}, claims=tuple(claims))


def _cut_end(found: re.Match[str], clause: Clause, edit: EditSpec) -> Reading | None:
    # "cut the last 10 seconds": resolved against the source's duration when planned;
    # an earlier start stays ("skip the first 5 s", then this)
    length = seconds(found["length"])
    start = edit.trim.start if edit.trim is not None and edit.trim.last is None else 0.0
    trim = Trim(start=start, cut_end=length)
    return Reading(
        _describe_trim(trim), {"trim": trim}, claims=(("trim end", f"-{duration_text(length)}"),)
    )


def _last(found: re.Match[str], clause: Clause, edit: EditSpec) -> Reading | None:
    length = seconds(found["length"])
    trim = Trim(last=length)
    return Reading(
        _describe_trim(trim), {"trim": trim}, claims=(("trim", f"last {duration_text(length)}"),)
    )


def _describe_trim(trim: Trim) -> str:
    if trim.last is not None:
        return f"keep only the last {duration_text(trim.last)} of the source"
    if trim.cut_end is not None:
        text = f"cut the last {duration_text(trim.cut_end)} of the source"
        return text + (f", starting it at {clock(trim.start)}" if trim.start else "")
    if trim.end is None:
        return f"start the source at {clock(trim.start)}"
    if trim.start == 0:
        return f"keep only the first {duration_text(trim.end)} of the source"
    return f"keep the source from {clock(trim.start)} to {clock(trim.end)}"


# ---- length ----------------------------------------------------------------------------------

_ASPECT_WORD = (
    r"(?P<aspect>9:16|16:9|1:1|4:5|vertical|square|horizontal|landscape|portrait|widescreen)"
)
_MAKE = (
    r"(?:(?:export|cut|edit|turn|make|create|render|produce|build|save|give me|generate|output)"
    r"(?: it| this| the (?:video|clip|footage))?(?: (?:as|into|to|in))? )?"
)


def _highlight(found: re.Match[str], clause: Clause, edit: EditSpec) -> Reading | None:
    spoken = group(found, "length") or group(found, "length2")
    # A reel that names no length keeps a length said elsewhere ("keep it under 45 s").
    length = seconds(spoken) if spoken else (edit.max_duration or DEFAULT_HIGHLIGHT)
    updates: dict[str, object] = {"max_duration": length}
    claims = [("length", duration_text(length))] if spoken else []
    description = f"make a {duration_text(length)} highlight reel"
    aspect_word, platform = group(found, "aspect"), group(found, "platform")
    if aspect_word or platform:
        aspect = ASPECTS[aspect_word] if aspect_word else PLATFORMS[platform or ""]
        updates["aspect"] = aspect
        claims.append(("aspect", aspect))
        description += f" in {aspect}"
    return Reading(description, updates, claims=tuple(claims))


def _max_duration(found: re.Match[str], clause: Clause, edit: EditSpec) -> Reading | None:
    length = seconds(found["length"])
    return Reading(
        f"keep the result under {duration_text(length)} (the best moments)",
        {"max_duration": length},
        claims=(("length", duration_text(length)),),
    )


# ---- speed -----------------------------------------------------------------------------------


def _speed(found: re.Match[str], clause: Clause, edit: EditSpec) -> Reading | None:
    return _speed_reading(times(found["factor"]))


def _slower(found: re.Match[str], clause: Clause, edit: EditSpec) -> Reading | None:
    # "slow it down 2x" and "slow down to 0.5x" both mean half speed
    factor = times(found["factor"])
    return _speed_reading(factor if factor < 1 else 1 / factor)


def _faster_by(found: re.Match[str], clause: Clause, edit: EditSpec) -> Reading | None:
    # "50% faster" is 1.5x
    return _speed_reading(round(1.0 + fraction(found["change"]), 4))


def _fixed_speed(factor: float) -> Handler:
    def handler(found: re.Match[str], clause: Clause, edit: EditSpec) -> Reading | None:
        return _speed_reading(factor)

    return handler


def _speed_reading(factor: float) -> Reading:
    return Reading(
        f"play at {number(factor)}x speed", {"speed": factor}, claims=(("speed", f"{factor:g}x"),)
    )


# Phrasings of silences, trims, length and speed, in the order they are tried
# (`instructions.GRAMMAR` is every kind's, in order).
GRAMMAR: tuple[tuple[re.Pattern[str], Handler], ...] = (
    *rules(_cut_silences, _SILENCE_CUT, _MORE_AGGRESSIVE, _SILENCE_CUT_ZH, _MORE_AGGRESSIVE_ZH),
    # trim: start, end, both
    *rules(
        _trim,
        rf"{_TRIM_VERB} (?:the )?first <dur:start>{_OF_SOURCE}",
        rf"{_TRIM_VERB} <dur:start> (?:from|at|off) the (?:start|beginning|front){_OF_SOURCE}",
        r"(?:start|begin)(?: the video| it| playback| the clip)? (?:at|from) <dur:start>(?: in)?",
        r"(?:视频)?(?:开头|片头)?的?前<dur:start>(?:剪掉|去掉|删掉|删除|不要)",
        r"(?:去掉|剪掉|删掉|删除|去除|跳过|剪去)视频(?:开头|片头)的?前?<dur:start>",
        r"(?:skip|jump) (?:ahead )?to <dur:start>",
        r"(?:去掉|剪掉|删掉|删除|去除|跳过|剪去|不要)(?:开头|片头)?的?前面?<dur:start>",
        r"(?:去掉|剪掉|删掉|删除|去除|跳过|剪去|不要)(?:开头|片头)的?<dur:start>",
        r"从第?<dur:start>(?:开始|起)",
        r"(?:only )?(?:(?:keep|use|take)(?: only)? )?(?:only )?(?:the )?"
        rf"first <dur:end>{_OF_SOURCE}"
        r"(?: only)?",
        r"(?:end|stop|finish)(?: the video| it| playback| the clip)? (?:at|by) <dur:end>",
        r"(?:(?:只保留|只要|只留|保留|只用)(?:开头|视频)?的?)?前面?<dur:end>",
        r"在?<dur:end>处?结束",
        r"(?:(?:keep|use|take|only keep|trim it to|trim to|cut it to|cut to)(?: only)? )?"
        r"(?:only )?(?:the part )?(?:from )?<dur:start>"
        r" ?(?:to|until|till|through|-|–|—) ?<dur:end>",
        r"(?:只?保留|截取|剪出|只要)?从?<dur:start>(?:截取|剪辑|剪)?(?:到|至|-|~)<dur:end>"
        r"(?:的部分|之间)?",
        r"(?:remove|cut|delete|drop|lose|trim) (?:off )?everything after <dur:end>",
        rf"(?:trim|cut)(?: it)? to the first <dur:end>{_OF_SOURCE}",
    ),
    # trims from the end (resolved against the source's duration when planned)
    *rules(
        _cut_end,
        rf"{_TRIM_VERB} (?:the )?(?:last|final|closing|ending) <dur:length>{_OF_SOURCE}",
        rf"{_TRIM_VERB} <dur:length> (?:from|at|off) the (?:end|ending|back|tail){_OF_SOURCE}",
        r"(?:trim|cut|shave|take) <dur:length> off(?: of)? the end",
        r"(?:end|stop|finish)(?: the video| it| the clip)? <dur:length> (?:early|before the end"
        r"|before it ends)",
        r"(?:视频)?(?:结尾|片尾|最后|末尾)的?(?:最后)?<dur:length>(?:剪掉|去掉|删掉|删除|不要)",
        r"(?:去掉|剪掉|删掉|删除|去除|剪去|不要|砍掉)(?:视频)?(?:的)?(?:结尾|片尾|最后|末尾)的?(?:最后)?"
        r"<dur:length>",
        r"(?:去掉|剪掉|删掉|删除|去除|剪去|不要)最?后面?的?<dur:length>",
        r"(?:视频)?(?:结尾|片尾|末尾|最后)(?:去掉|剪掉|删掉|删除|不要|剪去)<dur:length>",
    ),
    *rules(
        _last,
        r"(?:only )?(?:(?:keep|use|take|show|want)(?: only)? )?(?:only )?(?:the )?"
        rf"(?:last|final) <dur:length>{_OF_SOURCE}(?: only)?",
        rf"(?:trim|cut)(?: it)? (?:down )?to the (?:last|final) <dur:length>{_OF_SOURCE}",
        r"(?:只保留|只要|只留|保留|只用|截取)(?:视频)?(?:的)?(?:最后|结尾|末尾|最后面)的?<dur:length>",
        r"(?:只保留|只要|只留|只用)后面?<dur:length>",
    ),
    # length
    *rules(
        _highlight,
        rf"{_MAKE}(?:an? )?(?:<dur:length> )?(?:{_ASPECT_WORD} )?"
        r"(?:highlights?|recap|supercut|best[- ]of)"
        r"(?: (?:reel|video|clip|cut|montage|version|edit))?"
        r"(?: (?:of|lasting|that is|at) <dur:length2>(?: long)?)?"
        rf"(?: (?:for|on) {PLATFORM_WORDS})?",
        r"(?:keep |show |give me )?(?:only )?the best <dur:length>(?: of it)?",
        rf"{_MAKE}(?:an? )?<dur:length> (?:long )?(?:video|clip|version|edit|cut|short)"
        rf"(?: (?:for|on) {PLATFORM_WORDS})?",
        rf"{_MAKE}(?:an? )?<dur:length> {PLATFORM_WORDS}(?: video| clip)?",
        r"(?:做|剪|生成|导出|制作|剪辑|输出)?(?:成|为)?(?:一个|一段|一条)?(?:<dur:length>)?的?"
        r"(?P<aspect>竖屏|横屏|方形)?(?:精华|集锦|高光|精彩){1,2}(?:片段|视频|版|合集|剪辑|时刻)?",
    ),
    *rules(
        _max_duration,
        r"(?:keep|make|get)(?: it| the video| the result| the edit)? (?:under|below|within|to"
        r"|shorter than|less than|no (?:longer|more) than|at most|up to)(?: of)? <dur:length>"
        r"(?: long| total| or less| max(?:imum)?| in length)?",
        r"(?:under|below|within|shorter than|less than|no (?:longer|more) than|at most|up to"
        r"|max(?:imum)?\.?)(?: of)?:? <dur:length>(?: long| total| or less| in length)?",
        r"<dur:length> (?:max(?:imum)?|or less|or shorter|at most|tops)",
        r"(?:(?:set )?(?:the )?)(?:max(?:imum)?|target|total) (?:length|duration|runtime)"
        r"(?: of| to| is|:)? <dur:length>",
        r"(?:limit|cap|shorten|cut down|trim down|condense|reduce)(?: it| the video| the length"
        r"| this)?(?: down)? to <dur:length>(?: or less| max(?:imum)?)?",
        r"make (?:it|this|the (?:video|clip|edit|result|final video)) <dur:length>"
        r"(?: long| or less| or shorter| in length| total)?",
        r"(?:cut|trim|edit)(?: it| the video| this)? down to <dur:length>"
        r"(?: or less| max(?:imum)?)?",
        r"(?:做成|剪成|剪辑成|变成|改成|缩短成|缩短到|剪短到)(?:一个|一段)?<dur:length>(?:长|左右)?(?:的(?:视频|短片|版本))?",
        r"(?:做成|剪成|剪辑成|变成|改成|缩短成|缩短到|剪短到|剪到)?<dur:length>(?:以内|之内)"
        r"(?:的(?:短?视频|短片|版本))?",
        r"(?:剪|做|生成|制作|剪辑)(?:一个|一段|一条)<dur:length>的?(?:短?视频|短片|版本)",
        r"(?:不超过|最多|最长|控制在|限制在|少于|压缩到|缩短到|剪到)<dur:length>(?:以内|之内|内|以下)?",
        r"(?:时长|长度|总时长)(?:不超过|控制在|最多|限制在|为)?<dur:length>(?:以内|之内|内)?",
    ),
    # speed
    *rules(
        _speed,
        r"speed (?:it |this |the video |things )?up(?: by| to)? <times:factor>",
        r"(?:make it |play it |play |make the video )?<times:factor>"
        r" (?:faster|speed|as fast|quicker)",
        r"(?:set )?(?:the )?(?:playback )?speed(?: to|:)? <times:factor>",
        r"(?:make|play|run) it <times:factor>",
        r"(?:play|run)(?: it)? at <num:factor> speed",
        r"(?:播放)?速度(?:调为|调到|调成|设为|设置为|改为|为)?<times:factor>速?",
        r"(?:play(?: it)? |run(?: it)? |speed (?:it )?up )?at <times:factor>(?: speed)?",
        r"<times:factor>",
        r"(?:加速|加快|调成|设为|设置为|改成|变成|用|以)?(?:到|为|成)?<times:factor>速?(?:播放)?",
    ),
    *rules(
        _faster_by,
        r"speed (?:it |this |the video |things )?up(?: the video| it| this)? by <pct:change>",
        r"(?:make it |play it )?<pct:change> faster",
    ),
    *rules(
        _slower,
        r"slow (?:it |this |the video |things )?down(?: by| to)? <times:factor>",
        r"(?:make it |play it )?<times:factor> slower",
        r"(?:减速|放慢)(?:到|为|成)?<times:factor>",
    ),
    *rules(
        _fixed_speed(0.5),
        r"(?:make it |put it |play it |use |in )?(?:in |at )?(?:slow[- ]?motion|slow[- ]?mo)",
        r"(?:make it |play it |play |use )?(?:at )?half[- ]speed",
        r"慢动作|慢放|慢速(?:播放)?|半速|(?:减速|放慢|速度减慢)一半",
    ),
    *rules(
        _fixed_speed(2.0),
        r"(?:make it |play it |play |use )?(?:at |in )?double[- ]speed|(?:make it )?twice as fast",
        r"双倍速|(?:速度)?(?:加快|提高|提升)一倍",
    ),
)

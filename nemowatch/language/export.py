"""Phrases about export settings: resolution, format, frame rate, quality, and timelines
for editors ("also export a Premiere timeline", "导出剪辑工程"). Pure."""

from __future__ import annotations

import re
from collections.abc import Mapping

from nemowatch.language.clauses import Clause
from nemowatch.language.numbers import compile_pattern, number_value
from nemowatch.language.readings import Handler, OptionReader, Reading, group, read_options, rules
from nemowatch.rules import EditSpec

# ---- export ----------------------------------------------------------------------------------

_RESOLUTION_NAMES = {
    "4k": "2160p",
    "uhd": "2160p",
    "2k": "1440p",
    "qhd": "1440p",
    "full hd": "1080p",
    "fhd": "1080p",
    # HD is 720p, as YouTube labels it; Chinese sites' names in the same steps
    "hd": "720p",
    "high definition": "720p",
    "高清": "720p",
    "超清": "1080p",
    "全高清": "1080p",
    "蓝光": "1080p",
    "超高清": "2160p",
}
_FORMAT_NAMES = {"h264": "mp4", "h.264": "mp4", "quicktime": "mov"}
_QUALITIES = {
    **dict.fromkeys(("high", "higher", "best", "top", "max", "maximum", "good", "高"), "high"),
    **dict.fromkeys(("medium", "normal", "standard", "中"), "medium"),
    **dict.fromkeys(("low", "lower", "低"), "low"),
}


def _export_options() -> tuple[tuple[re.Pattern[str], OptionReader], ...]:
    def resolution(found: re.Match[str]) -> dict[str, object]:
        name = found["resolution"]
        return {"resolution": _RESOLUTION_NAMES.get(name, name)}

    def export_format(found: re.Match[str]) -> dict[str, object]:
        name = found["format"]
        return {"format": _FORMAT_NAMES.get(name, name)}

    def fps(found: re.Match[str]) -> dict[str, object]:
        return {"fps": number_value(found["fps"])}

    def quality(found: re.Match[str]) -> dict[str, object]:
        return {"quality": _QUALITIES[found["quality"]]}

    def nothing(found: re.Match[str]) -> dict[str, object]:
        return {}

    options: list[tuple[str, OptionReader]] = [
        (
            r"\s*(?:(?:as|in|at|to|into|with) )?(?:an? )?(?:(?:resolution|res)(?: of|:)? )?"
            r"(?P<resolution>240p|360p|480p|720p|1080p|1440p|2160p|4k|uhd|2k|qhd|full hd|fhd"
            r"|hd(?=\b|$)|high definition|全高清|超高清|高清|超清|蓝光)"
            r"(?: ?(?:resolution|res|video|quality|画质|分辨率|视频))?",
            resolution,
        ),
        (
            r"\s*(?:(?:as|in|to|into) )?(?:an? )?(?:animated )?"
            r"(?P<format>mp4|mov|webm|gif|h\.?264|quicktime)"
            r"(?: (?:file|video|format|clip|animation))?(?:格式|文件|动图|动画)?",
            export_format,
        ),
        (
            r"\s*(?:(?:at|in|with) )?(?:an? )?(?:(?:frame ?rate|帧率)(?: of|:)? ?)?"
            r"<num:fps> ?(?:fps|frames per second|frames a second|frames/s|帧(?:每秒)?)",
            fps,
        ),
        (
            r"\s*(?:(?:at|in|with) )?(?:an? )?(?:frame ?rate|帧率)(?: of|:)? ?"
            r"(?:设为|设置为|调为|调到|改为|为)?<num:fps>",
            fps,
        ),
        (
            r"\s*(?:(?:in|at|with) )?(?P<quality>high|higher|best|top|max|maximum|good|medium"
            r"|normal|standard|low|lower)(?:est)? ?quality",
            quality,
        ),
        (r"\s*(?P<quality>高|中|低)(?:画质|质量)", quality),
        (r"\s*(?:画质|质量)(?P<quality>高|中|低)", quality),
        (r"\s*(?:导出|输出)", nothing),
        (
            r"\s*(?:的|用|以)",
            nothing,
        ),  # "导出为1080p的mp4", "用4K导出"  # "1080p导出": the verb after what it exports
    ]
    return tuple((compile_pattern(option), reader) for option, reader in options)


_EXPORT_OPTIONS = _export_options()


def _export(found: re.Match[str], clause: Clause, edit: EditSpec) -> Reading | None:
    settings = read_options(found["tail"], _EXPORT_OPTIONS)
    if settings is None or (not settings and not group(found, "verb")):
        return None
    claims = tuple((name, str(value)) for name, value in settings.items())
    return Reading(_describe_export(settings), export=settings, claims=claims)


def _describe_export(settings: Mapping[str, object]) -> str:
    """E.g. "export as 1080p MP4 at 30 fps in high quality"."""
    named = [str(settings["resolution"])] if "resolution" in settings else []
    if "format" in settings:
        named.append(str(settings["format"]).upper())
    text = "export as " + " ".join(named) if named else "export"
    if "fps" in settings:
        text += f" at {settings['fps']:g} fps"
    if "quality" in settings:
        text += f" in {settings['quality']} quality"
    return text if text != "export" else "export the video"


def _frame_rate(found: re.Match[str], clause: Clause, edit: EditSpec) -> Reading | None:
    settings = {"fps": number_value(found["fps"])}
    return Reading(
        _describe_export(settings), export=settings, claims=(("fps", str(settings["fps"])),)
    )


# ---- timelines for editors -------------------------------------------------------------------

# An editor's name (as people write it, lower case) -> the timeline format it imports best.
# Resolve reads both FCP X and FCP 7 files: FCP X keeps more of the edit.
_EDITORS = {
    "premiere pro": "xml",
    "adobe premiere": "xml",
    "premiere": "xml",
    "pr": "xml",
    "davinci resolve": "fcpxml",
    "davinci": "fcpxml",
    "resolve": "fcpxml",
    "达芬奇": "fcpxml",
    "final cut pro": "fcpxml",
    "final cut": "fcpxml",
    "fcpx": "fcpxml",
    "fcp": "fcpxml",
    "fcpxml": "fcpxml",
    "fcp7": "xml",
    "xml": "xml",
    "kdenlive": "kdenlive",
    "edl": "edl",
    "cmx": "edl",
    "cmx 3600": "edl",
    "opentimelineio": "otio",
    "otio": "otio",
}
_LABELS = {
    "otio": "OpenTimelineIO (.otio)",
    "fcpxml": "Final Cut Pro / Resolve (.fcpxml)",
    "xml": "Premiere / Resolve (FCP 7 .xml)",
    "edl": "EDL (picture cut only)",
    "kdenlive": "Kdenlive (.kdenlive)",
}
# a timeline with no editor named: what Premiere, Resolve and Final Cut import between them
DEFAULT_TIMELINES = ("otio", "fcpxml", "xml")
_EDITOR = "|".join(re.escape(name) for name in sorted(_EDITORS, key=len, reverse=True))
_EDITOR_LIST = rf"(?P<editors>(?:{_EDITOR})(?:(?:/|, ?| or | ?& ?| ?\+ ?)(?:{_EDITOR}))*)"


def _timelines(found: re.Match[str], clause: Clause, edit: EditSpec) -> Reading | None:
    names = re.findall(_EDITOR, group(found, "editors") or "")
    formats = tuple(dict.fromkeys(_EDITORS[name] for name in names))
    if not formats:  # "export an EDL": the noun names the format
        formats = ("edl",) if "edl" in found.group(0) else DEFAULT_TIMELINES
    return Reading(
        "also write a timeline for editors: " + ", ".join(_LABELS[name] for name in formats),
        export={"timelines": formats},
        claims=tuple((f"timeline {name}", "yes") for name in formats),
    )


# Phrasings of export settings, in the order they are tried
# (`instructions.GRAMMAR` is every kind's, in order).
GRAMMAR: tuple[tuple[re.Pattern[str], Handler], ...] = (
    *rules(
        _timelines,
        # "export a premiere/resolve timeline", "also give me an edl", "export for kdenlive"
        r"(?:export|save|write|output|deliver|include|give me|make|hand over)(?: me)?"
        r"(?: (?:it|this|the (?:video|edit|cut)))?(?: (?:as|for|to|into))?(?: (?:an?|the))?"
        rf" (?:{_EDITOR_LIST} ?)?(?:timelines?|projects?|project files?|sequences?|edls?)"
        r"(?: files?)?(?: (?:too|as well|for editing|for an editor|for (?:my|the) editor))?",
        rf"(?:export|save|write|deliver|hand (?:it|this) over)(?: (?:it|this))?"
        rf"(?: (?:for|to|into))?(?: an?)? "
        rf"{_EDITOR_LIST}(?: (?:too|as well|editors?))?",
        rf"(?:an? )?{_EDITOR_LIST} (?:timelines?|projects?|sequences?)(?: (?:too|as well))?",
        r"(?:an? )?(?P<editors>edl)s?(?: files?)?(?: (?:too|as well))?",  # "... and an EDL"
        rf"(?:导出|输出|生成|保存|给我)(?:一(?:份|个))?(?:{_EDITOR_LIST})?(?:的)?"
        r"(?:剪辑)?(?:工程|工程文件|时间线|项目文件|项目)(?:文件)?",
        r"(?:导出|输出|生成)(?:一(?:份|个))?(?P<editors>edl)(?:文件)?",
    ),
    *rules(
        _frame_rate,
        r"(?:change|set|lower|raise|reduce|increase|drop|bump|convert|switch|bring|put|cap)"
        r"(?: the)? (?:frame ?rate|fps)(?: (?:down|up))?(?: to|:| at)? <num:fps>"
        r"(?: ?(?:fps|frames per second|frames/s|frames a second))?",
        r"(?:frame ?rate|fps)(?: should be| of|:)? <num:fps>"
        r"(?: ?(?:fps|frames per second|frames/s|frames a second))?",
        r"<num:fps> (?:frames a second|frames each second)",
        r"(?:把)?(?:帧率|帧数)(?:降低到|降到|提高到|提升到|调整为|调整到|改成|变成|设成)<num:fps>"
        r"(?:帧|fps)?(?:每秒)?",
        r"(?:每秒)<num:fps>帧",
    ),
    *rules(
        _export,
        r"(?P<verb>export|save|render|output|deliver|encode):?"
        r"(?: (?:it|this|the (?:video|result|file|clip|final video|output|edit)))?"
        r"(?: (?:as|to|in|into|at))?(?: an?)?(?P<tail>(?: .*)?)",
        r"(?:make|convert|turn|change)(?: it| this| the (?:video|result|clip))?"
        r"(?: (?:as|to|in|into))?(?: an?)?(?P<tail> .+)",
        r"(?P<verb>导出|输出|渲染|保存)(?:为|成)?(?P<tail>.*)",
        r"(?:转成|转为|转换成|转换为|做成|变成|改成)(?P<tail>.+)",
        r"(?P<tail>.+)",
    ),
)

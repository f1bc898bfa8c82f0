"""Suggestions ("did you mean ..."): phrasings the local engine understands that are closest
to one it does not. Pure.

`CANONICAL_PHRASES` holds, for each kind of edit the grammar knows (`effects`, `timing`,
`frame`, `sound`, `export`), a few plain phrasings in English and Simplified Chinese, written as a
user would. They are what `check` offers when a clause is not understood; a test keeps
every one of them understood, so a suggestion always works as written.

Closeness is `difflib`'s ratio over the normalized clause (lower case, fillers such as
"please" dropped, quoted text as written), over characters, so it serves Chinese (written
without spaces) as well as English. When nothing is close by that measure, phrasings that
share a word with the clause ("music", "音乐") are offered instead.
"""

from __future__ import annotations

import difflib
import re

from nemowatch.language.clauses import SENTINEL, to_clause

# kind of edit -> phrasings, English first, then Chinese
CANONICAL_PHRASES: dict[str, tuple[str, ...]] = {
    "silences": (
        "cut out silences",
        "remove pauses",
        "cut more aggressively",
        "去掉静音",
        "删除停顿",
    ),
    "trim": (
        "start at 5 seconds",
        "end at 30 seconds",
        "keep only 0:10 to 0:40",
        "去掉前5秒",
        "只保留前30秒",
        "从10秒到40秒",
        "cut the last 5 seconds",
        "keep only the last 30 seconds",
        "去掉最后5秒",
    ),
    "length": (
        "60-second highlight reel",
        "keep it under 30 seconds",
        "limit it to 1 minute",
        "剪成60秒精华",
        "时长不超过30秒",
    ),
    "speed": (
        "speed it up 1.5x",
        "slow it down 2x",
        "slow motion",
        "double speed",
        "1.5倍速播放",
        "慢动作",
    ),
    "aspect": (
        "make it vertical",
        "make it 9:16",
        "make it square",
        "make it 16:9",
        "vertical for tiktok",
        "blurred background",
        "letterbox with black bars",
        "crop to fill",
        "改成竖屏",
        "转成9:16",
        "改成横屏",
        "加模糊背景",
        "适配抖音",
    ),
    "text": (
        'title "My Trip"',
        'add a caption "Day one"',
        '加标题"我的旅行"',
        '加字幕"第一天"',
    ),
    "music": (
        "add background music",
        "add upbeat music",
        "add calm music",
        "music at 30%",
        "no ducking",
        "加背景音乐",
        "加欢快的背景音乐",
        "背景音乐音量30%",
    ),
    "fades": (
        "fade in and out",
        "fade in",
        "fade out",
        "加淡入淡出",
    ),
    "audio": (
        "mute the audio",
        "make it louder",
        "make it quieter",
        "normalize the audio",
        "静音",
        "声音调大一点",
        "音量标准化",
    ),
    "denoise": (
        "remove background noise",
        "reduce the hiss",
        "降噪",
        "去除杂音",
    ),
    "colour": (
        "make it brighter",
        "make it darker",
        "more contrast",
        "more vivid colors",
        "make it warmer",
        "make it cooler",
        "black and white",
        "调亮一点",
        "提高对比度",
        "色彩更鲜艳",
        "暖色调",
        "黑白",
    ),
    "watermark": (
        'add watermark "logo.png" in the bottom right',
        '右下角加水印"logo.png"',
    ),
    "reverse and loop": (
        "play it backwards",
        "loop it 3 times",
        "倒放",
        "循环播放3次",
    ),
    "enhance": (
        "enhance it",
        "make it look better",
        "润色一下",
        "优化画质",
    ),
    "export": (
        "export as 1080p",
        "export as 720p mp4",
        "export at 30 fps",
        "export in high quality",
        "导出1080p",
        "高画质导出",
    ),
}

MAX_SUGGESTIONS = 3
_CUTOFF = 0.5  # difflib ratio below which a phrasing is not "close"
_WORD = re.compile(r"[a-z]{3,}|[\u4e00-\u9fff]{2}")
# words too common to say what a clause is about
_COMMON = frozenset({"add", "make", "the", "and", "with", "for", "into", "this", "that", "视频"})


def all_phrases() -> tuple[str, ...]:
    """Every canonical phrasing, kind by kind, in order."""
    return tuple(phrase for phrases in CANONICAL_PHRASES.values() for phrase in phrases)


def suggest(phrase: str, limit: int = MAX_SUGGESTIONS) -> list[str]:
    """Up to `limit` canonical phrasings closest to `phrase`, closest first; may be empty."""
    wanted = _normalized(phrase)
    if not wanted:
        return []
    candidates = {_normalized(candidate): candidate for candidate in all_phrases()}
    close = difflib.get_close_matches(wanted, list(candidates), n=limit, cutoff=_CUTOFF)
    if close:
        return [candidates[match] for match in close]
    words = _words(wanted)
    if not words:
        return []
    sharing = [
        (difflib.SequenceMatcher(None, wanted, normalized).ratio(), original)
        for normalized, original in candidates.items()
        if words & _words(normalized)
    ]
    sharing.sort(key=lambda pair: -pair[0])  # stable: equal scores keep the table's order
    return [original for _ratio, original in sharing[:limit]]


def _normalized(phrase: str) -> str:
    """The clause as the grammar sees it, quoted texts left out (their words say nothing)."""
    return to_clause(phrase).normalized.replace(SENTINEL, "").strip()


def _words(text: str) -> set[str]:
    return {word for word in _WORD.findall(text) if word not in _COMMON}

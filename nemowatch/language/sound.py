"""Phrases about sound (and fades): music, ducking, the source's audio, loudness. Pure."""

from __future__ import annotations

import re

from nemowatch.language.clauses import Clause
from nemowatch.language.numbers import duration_text, fraction, percent, seconds
from nemowatch.language.readings import Handler, Reading, group, rules
from nemowatch.rules import EditSpec

DEFAULT_FADE = 1.0  # seconds
DEFAULT_MOOD = "lofi"
LOUDER = 1.5  # gain for "make it louder": clearly audible, still far from clipping limits
MUSIC_DOWN = 0.6  # "turn the music down": its level times this (35 % -> 21 %)
MUSIC_UP = 1.5  # "turn the music up": times this (35 % -> 52.5 %), at most full scale
QUIETER = 0.7  # gain for "make it quieter"

# ---- music -----------------------------------------------------------------------------------


def _words(text: str) -> list[str]:
    return text.split()


_MOODS = {  # a word for a kind of music -> the built-in mood closest to it
    **dict.fromkeys(_words("lofi lo-fi chill chilled chillhop 低保真"), "lofi"),
    **dict.fromkeys(
        _words("upbeat energetic happy fun lively uplifting cheerful exciting")
        + _words("欢快 轻快 动感 活泼 激昂 快节奏 热闹 欢乐"),
        "upbeat",
    ),
    **dict.fromkeys(
        _words("calm relaxing relaxed soft gentle ambient peaceful soothing mellow quiet")
        + _words("轻松 舒缓 安静 放松 柔和 平静 抒情"),
        "calm",
    ),
}

# Kinds of music with no built-in mood of their own: the nearest mood stands in, and
# `explain` says so ("add lofi music (the built-in mood nearest to jazz)").
_GENRES = {
    **dict.fromkeys(
        ["jazz", "jazzy", "hip hop", "hip-hop", "hiphop", "rap", "r&b", "爵士", "嘻哈", "说唱"],
        "lofi",
    ),
    **dict.fromkeys(
        [
            "piano",
            "classical",
            "acoustic",
            "acoustic guitar",
            "guitar",
            "folk",
            "orchestral",
            "钢琴",
            "钢琴曲",
            "古典",
            "吉他",
            "民谣",
            "轻",
        ],
        "calm",
    ),
    **dict.fromkeys(
        [
            "electronic",
            "edm",
            "dance",
            "techno",
            "house",
            "rock",
            "pop",
            "cinematic",
            "epic",
            "电子",
            "摇滚",
            "流行",
            "电音",
            "舞曲",
            "史诗",
        ],
        "upbeat",
    ),
}
_KINDS = {**_MOODS, **_GENRES}


def _alternatives(words: list[str]) -> str:
    return "|".join(re.escape(word) for word in sorted(words, key=len, reverse=True))


_MOOD_WORD = _alternatives([kind for kind in _KINDS if kind.isascii()])
_MOOD = rf"(?P<mood>{_MOOD_WORD})(?: (?:{_MOOD_WORD}))?"
_MOOD_ZH = (
    f"(?P<mood>{_alternatives([kind for kind in _KINDS if not kind.isascii()])}|lofi|lo-fi|chill)"
)
# genres that are nouns too: "add EDM", "play some jazz"
_GENRE_NOUN = (
    rf"(?P<mood>(?:(?:{_MOOD_WORD}) )?(?:edm|jazz|hip[- ]?hop|lo-?fi|rock|pop|techno|house"
    r"|classical|piano))"
)
_MUSIC_VERB = r"(?:add|play|put|use|include|insert|lay|put on|give it|with|set|throw in|put in)"
_MUSIC_VOLUME = r"(?: at <pct:volume>(?: volume)?)?"
_DOWN_WORDS = frozenset(
    {
        *("down", "quieter", "softer", "lower", "reduce", "decrease", "soften", "more subtle"),
        *(
            "low",
            "quiet",
            "subtle",
            "soft",
            "小",
            "低",
            "轻",
            "降低",
            "调低",
            "减小",
            "调小",
            "压低",
        ),
    }
)
_NEGATION = re.compile(r"\b(?:without|no|not)\b")
_SPEECH = r"(?:speech|the voice|voices?|talking|dialogue|someone (?:speaks|talks)|people talk)"


def _music(found: re.Match[str], clause: Clause, edit: EditSpec) -> Reading | None:
    mood = group(found, "mood")
    path = clause.quoted[0] if clause.quoted else None
    # "add background music" names no mood: it keeps one named elsewhere
    music = path or (_KINDS[_kind(mood)] if mood else edit.music or DEFAULT_MOOD)
    updates: dict[str, object] = {"music": music}
    claims = [("music", music)] if path or mood else []
    volume_text, duck_text = group(found, "volume"), group(found, "duck")
    volume, duck = edit.music_volume, edit.duck
    if volume_text:
        volume = updates["music_volume"] = fraction(volume_text)
        claims.append(("music volume", percent(volume)))
    if duck_text:
        duck = updates["duck"] = _NEGATION.search(duck_text) is None
        claims.append(("ducking", "on" if duck else "off"))
    description = _describe_music(music, volume, duck)
    if mood and not path and _kind(mood) in _GENRES:
        description += f" (the built-in mood nearest to {_kind(mood)})"
    return Reading(description, updates, claims=tuple(claims))


def _kind(mood: str) -> str:
    """The word of a kind of music: "soft piano" is soft, "hip hop" one kind."""
    if mood in _KINDS:
        return mood
    for kind in sorted(_KINDS, key=len, reverse=True):
        if mood.startswith(kind):
            return kind
    return mood


def _music_volume(found: re.Match[str], clause: Clause, edit: EditSpec) -> Reading | None:
    # a volume for music that was not asked for yet still asks for it
    music, volume = edit.music or DEFAULT_MOOD, fraction(found["volume"])
    return Reading(
        _describe_music(music, volume, edit.duck),
        {"music": music, "music_volume": volume},
        claims=(("music volume", percent(volume)),),
    )


def _music_turned(found: re.Match[str], clause: Clause, edit: EditSpec) -> Reading | None:
    # "turn the music down": a step from the level asked so far (and music, if not yet)
    down = (group(found, "way") or "") in _DOWN_WORDS
    step = MUSIC_DOWN if down else MUSIC_UP
    music, volume = edit.music or DEFAULT_MOOD, round(min(1.0, edit.music_volume * step), 4)
    return Reading(
        _describe_music(music, volume, edit.duck) + f" ({'down' if down else 'up'} from"
        f" {percent(edit.music_volume)})",
        {"music": music, "music_volume": volume},
    )


def _duck(duck: bool) -> Handler:
    def handler(found: re.Match[str], clause: Clause, edit: EditSpec) -> Reading | None:
        description = "lower the music under speech" if duck else "keep the music at one level"
        return Reading(description, {"duck": duck}, claims=(("ducking", "on" if duck else "off"),))

    return handler


def _describe_music(music: str, volume: float, duck: bool) -> str:
    what = f"{music} music" if music in _MOODS.values() else f'music from "{music}"'
    ducked = "ducked under speech" if duck else "not ducked"
    return f"add {what} at {percent(volume)}, {ducked}"


# ---- fades -----------------------------------------------------------------------------------


def _fade(found: re.Match[str], clause: Clause, edit: EditSpec) -> Reading | None:
    direction = found["direction"]
    both = any(word in direction for word in ("and", "/", "&", "淡入淡出", "淡入和淡出"))
    fade_in = both or direction in ("in", "from black", "淡入")
    spoken = group(found, "length") or group(found, "length2")
    lengths: dict[str, float] = {}
    claims: list[tuple[str, str]] = []
    for name, wanted in (("fade_in", fade_in), ("fade_out", both or not fade_in)):
        if not wanted:
            continue
        earlier: float | None = getattr(edit, name)
        # A fade that names no length keeps one named elsewhere, else lasts a second.
        lengths[name] = seconds(spoken) if spoken else earlier or DEFAULT_FADE
        if spoken:
            claims.append((name.replace("_", " "), duration_text(lengths[name])))
    if len(lengths) == 2 and lengths["fade_in"] == lengths["fade_out"]:
        description = f"fade in and out over {duration_text(lengths['fade_in'])}"
    else:
        description = "fade " + " and ".join(
            f"{name.removeprefix('fade_')} over {duration_text(length)}"
            for name, length in lengths.items()
        )
    return Reading(description, lengths, claims=tuple(claims))


# ---- the source's audio ----------------------------------------------------------------------


def _mute(found: re.Match[str], clause: Clause, edit: EditSpec) -> Reading | None:
    return Reading("mute the original audio", {"mute": True})


def _volume(found: re.Match[str], clause: Clause, edit: EditSpec) -> Reading | None:
    level = group(found, "level")
    change = group(found, "change")
    if level:
        gain = fraction(level)
    elif group(found, "down") is not None:
        gain = 1.0 - (fraction(change) if change else 1.0 - QUIETER)
    else:
        gain = 1.0 + (fraction(change) if change else LOUDER - 1.0)
    gain = round(gain, 4)
    return Reading(
        f"play the original audio at {percent(gain)}",
        {"volume": gain},
        claims=(("volume", percent(gain)),),
    )


def _normalize(on: bool) -> Handler:
    def handler(found: re.Match[str], clause: Clause, edit: EditSpec) -> Reading | None:
        description = "normalize loudness to -14 LUFS" if on else "leave the loudness as recorded"
        return Reading(
            description, {"normalize": on}, claims=(("normalize", "on" if on else "off"),)
        )

    return handler


# Phrasings of music, fades and the source's audio, in the order they are tried
# (`instructions.GRAMMAR` is every kind's, in order).
GRAMMAR: tuple[tuple[re.Pattern[str], Handler], ...] = (
    *rules(
        _music,
        rf"(?:{_MUSIC_VERB}(?: in| on)? )?(?:(?:some|a|an|the) )?(?:{_MOOD} )?(?:background |bg )?"
        r"(?:music|soundtrack|bgm|music track|background track|beats?|tunes?)(?: track)?"
        r"(?: (?:in the background|underneath|under it|behind it|to it|to the video))?"
        + _MUSIC_VOLUME
        + rf"(?: (?P<duck>with(?:out| no)? ducking|no ducking|ducked(?: under {_SPEECH})?"
        r"|not ducked))?",
        rf"(?:{_MUSIC_VERB} )?(?:the )?(?:background )?(?:music|soundtrack|track|song)"
        rf"(?: (?:from|file|track|at))?:? <q>{_MUSIC_VOLUME}",
        rf"{_MUSIC_VERB} <q> as (?:the )?(?:background )?(?:music|soundtrack|track){_MUSIC_VOLUME}",
        rf"{_MUSIC_VERB} (?:some )?{_GENRE_NOUN}" + _MUSIC_VOLUME,
        r"(?:加|添加|加上|配|配上|放|来点|加点|加入|用|使用)?(?:一段|一首|一些|一个|个|点)?"
        rf"(?:{_MOOD_ZH}的?)?(?:背景)?(?:纯音乐|音乐|配乐|bgm|曲子)"
        r"(?:音量(?:调到|设为|为)?<pct:volume>)?",
        r"(?:背景音乐|配乐|bgm)(?:用|要|选|换成)(?:一首|一段)?"
        rf"{_MOOD_ZH}的?(?:纯音乐|音乐|曲子|曲)?",
    ),
    *rules(
        _music_volume,
        r"(?:(?:set|turn|put|bring|keep|lower|raise|drop|reduce) )?(?:the )?(?:background |bg )?"
        r"music(?: volume| level)?"
        r"(?: (?:down|up))?(?: to| at|:)? <pct:volume>(?: volume)?",
        r"(?:背景)?音乐(?:音量)?(?:调到|设为|设置为|为|调成)?<pct:volume>",
    ),
    *rules(
        _music_turned,
        r"(?:turn|bring|dial|take) (?:the )?(?:background |bg )?music (?P<way>up|down)"
        r"(?: (?:a (?:bit|little|touch|notch)|slightly|some))?",
        r"turn (?P<way>up|down) the (?:background |bg )?music",
        r"(?:make )?(?:the )?(?:background |bg )?music (?:(?:a (?:bit|little)|much|slightly|way) )?"
        r"(?P<way>louder|quieter|softer|lower|more subtle)",
        r"(?P<way>lower|raise|reduce|boost|increase|decrease|soften) the (?:background |bg )?music"
        r"(?: (?:volume|level))?(?: (?:a (?:bit|little)|slightly))?",
        r"(?:(?:a )?(?:bit |little )?)?(?P<way>quieter|softer|louder|lower)"
        r" (?:background |bg )?music",
        r"(?:keep|have|put) the (?:background )?music (?P<way>low|quiet|subtle|soft)",
        r"(?:背景)?音乐(?:声音|音量)?(?:调|放|开)?得?(?P<way>小|低|轻|大|高|响)(?:一点|一些|点|些)?",
        r"(?P<way>降低|调低|减小|调小|压低|提高|调高|加大|调大|增大)(?:背景)?音乐(?:的)?(?:声音|音量)?",
    ),
    *rules(
        _duck(False),
        r"(?:no|without|disable|turn off|skip) ducking",
        rf"(?:don't|do not|dont|never) duck(?: the music)?(?: under {_SPEECH})?",
        r"(?:keep the music|music) at (?:a )?(?:constant|steady|fixed) (?:volume|level)",
    ),
    *rules(
        _duck(True),
        r"(?:with|enable|turn on) ducking",
        rf"duck(?: the music)?(?: under| during| when| while)? {_SPEECH}",
        rf"(?:lower|dip) the music (?:under|during|when|while) {_SPEECH}",
        r"(?:人声|说话)时?(?:自动)?降低(?:背景)?音乐(?:音量)?",
    ),
    # fades
    *rules(
        _fade,
        r"(?:(?:add|use|put|apply|with) )?(?:(?:an?|some) )?(?:<dur:length> )?fades?(?:-| )?"
        r"(?P<direction>in and out|in ?/ ?out|in & out|in|out|from black|to black)"
        r"(?: (?:over|for|of|lasting|during))?(?: <dur:length2>)?"
        r"(?: at the (?:start|beginning|end))?",
        r"(?:开头|片头|结尾|片尾|最后)?(?:加|添加|加上|加个|用)?(?:<dur:length>的?)?(?P<direction>淡入淡出|淡入和淡出|淡入|淡出)"
        r"(?:效果)?(?:各?<dur:length2>)?",
    ),
    # the source's audio
    *rules(
        _mute,
        r"mute(?: it| this| everything| the (?:video|clip))?",
        r"mute (?:the )?(?:original |source |camera |background |video's )?"
        r"(?:audio|sound|voice|voices)(?: track)?",
        r"(?:remove|drop|strip|delete|kill|cut|lose|turn off|get rid of|take out|disable)"
        r"(?: out)? (?:all )?(?:of )?(?:the )?(?:original |source |camera |video's )?"
        r"(?:audio|sound)(?: track)?",
        r"(?:no|without) (?:original |source )?(?:audio|sound)",
        r"make it silent",
        r"(?:(?:原声|声音|音频)(?:全部)?)?静音|(?:去掉|去除|删掉|删除|关掉|关闭|不要|移除|消除)(?:视频)?的?"
        r"(?:原声|原音|声音|音频|原始音频|原始声音)|(?:原声|声音|音频)(?:去掉|关掉|删掉|关闭)",
    ),
    *rules(
        _volume,
        r"(?:make (?:it|the (?:audio|sound|voice|voices|video)) )?louder",
        r"(?:make (?:it|the (?:audio|sound|voice|voices|video)) )?(?P<down>quieter|softer)",
        r"(?:turn|bring|pump|crank|boost) (?:the )?(?:volume|audio|sound|it) up"
        r"(?: by)?(?: <pct:change>)?",
        r"(?:turn|crank) up the (?:volume|audio|sound)(?: by)?(?: <pct:change>)?",
        r"(?:increase|raise|boost) (?:the )?(?:volume|audio|sound|loudness|audio level)"
        r"(?: by)?(?: <pct:change>)?",
        r"volume up(?: by)?(?: <pct:change>)?",
        r"(?:turn|bring) (?:the )?(?:volume|audio|sound|it) (?P<down>down)"
        r"(?: by)?(?: <pct:change>)?",
        r"turn (?P<down>down) the (?:volume|audio|sound)(?: by)?(?: <pct:change>)?",
        r"(?P<down>decrease|lower|reduce) (?:the )?(?:volume|audio|sound|audio level)"
        r"(?: by)?(?: <pct:change>)?",
        r"volume (?P<down>down)(?: by)?(?: <pct:change>)?",
        r"(?:set )?(?:the )?(?:audio |sound |original |source |voice )?(?:volume|audio level|gain)"
        r"(?: to| at|:)? <pct:level>",
        r"(?:声音|音量)(?:调大|加大|提高|放大|增大|大)(?:一点|一些|点)?(?:<pct:change>)?",
        r"(?:调大|加大|提高|放大|增大)(?:声音|音量)(?:<pct:change>)?",
        r"(?:声音|音量)(?P<down>调小|减小|降低|小)(?:一点|一些|点)?(?:<pct:change>)?",
        r"(?P<down>调小|减小|降低)(?:声音|音量)(?:<pct:change>)?",
        r"音量(?:调到|调成|设为|设置为|为)?<pct:level>",
    ),
    *rules(
        _normalize(True),
        r"normali[sz]e(?: the)?(?: (?:audio|loudness|volume|sound|levels|audio levels"
        r"|audio loudness))?",
        r"(?:loudness|audio|volume) normali[sz]ation",
        r"(?:even out|level|balance) (?:the )?(?:audio|volume|loudness|sound)(?: levels)?",
        r"(?:音量|响度|音频|声音)(?:标准化|归一化|均衡|统一)|(?:标准化|归一化)(?:音量|响度|音频|声音)?"
        r"|(?:统一|均衡)(?:音量|响度|音频|声音)",
    ),
    *rules(
        _normalize(False),
        r"(?:don't|do not|dont|no need to|never) normali[sz]e(?: the)?"
        r"(?: (?:audio|loudness|volume|sound|levels))?",
        r"(?:no|skip|without|disable|turn off)(?: the)? (?:loudness |audio |volume )?"
        r"normali[sz]ation",
        r"keep the (?:original )?(?:loudness|audio levels|levels)(?: as (?:it is|is))?",
        r"(?:不要|不用|不需要|无需|关闭|取消)(?:音量|响度|音频)?(?:标准化|归一化)",
    ),
)

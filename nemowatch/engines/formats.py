"""Which files each engine takes, by extension: what the engines enforce and what `check`
warns about. Data only, importing nothing of nemowatch, so the config can use it without
importing an engine.
"""

from pathlib import PurePath

# NemoVideo's upload: the extensions it accepts and the Content-Type each is sent with
# (nemo-api.md, "Upload").
NEMO_CONTENT_TYPES = {
    ".mp4": "video/mp4",
    ".mov": "video/quicktime",
    ".avi": "video/x-msvideo",
    ".webm": "video/webm",
    ".mkv": "video/x-matroska",
    ".jpg": "image/jpeg",
    ".png": "image/png",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".mp3": "audio/mpeg",
    ".wav": "audio/wav",
    ".m4a": "audio/mp4",
    ".aac": "audio/aac",
}
NEMO_EXTENSIONS = frozenset(NEMO_CONTENT_TYPES)

# Music files the local engine mixes in (a track, or the tracks of a folder).
AUDIO_EXTENSIONS = frozenset(
    {".mp3", ".m4a", ".aac", ".wav", ".flac", ".ogg", ".oga", ".opus", ".aif", ".aiff", ".wma"}
)

# ---- inputs of the local engine (issue 13: photos and audio) ------------------------------
# What each kind of source is usually named. The engine decides the kind by content (a
# probe), never by name: these lists only feed the default `match` and `check`'s warnings.
VIDEO_EXTENSIONS = frozenset(
    {
        ".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi", ".mts", ".m2ts", ".ts",
        ".mpg", ".mpeg", ".wmv", ".flv", ".3gp",
    }
)  # fmt: skip
# Pictures (GIF and WebP may be animated: they then play as clips).
PHOTO_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff"})
# Sound files that become audiograms (the same list as the music the engine mixes in).
SOUND_EXTENSIONS = AUDIO_EXTENSIONS
LOCAL_EXTENSIONS = VIDEO_EXTENSIONS | PHOTO_EXTENSIONS | SOUND_EXTENSIONS


def is_footage_name(name: str) -> bool:
    """Whether the local engine reads a file of this name as footage (by its extension:
    used where a name is all there is, as for the files of a combined batch)."""
    return PurePath(name).suffix.lower() in LOCAL_EXTENSIONS

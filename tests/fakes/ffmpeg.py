"""A fake `ffmpeg`: a shell script that answers the capability probe's questions as a
given build would, so that the choice of FFmpeg can be tested on any machine."""

from __future__ import annotations

import stat
from pathlib import Path

from nemowatch.engines.local.ffmpeg import (
    REQUIRED_ENCODERS,
    REQUIRED_FILTER_OPTIONS,
    REQUIRED_GLOBAL_OPTIONS,
)

# What FFmpeg 5.1 (Debian 12) prints for `-h filter=drawtext`, shortened: no text_align.
DRAWTEXT_5_1 = """\
Filter drawtext
  Draw text on top of video frames using libfreetype library.
    Inputs:
       #0: default (video)
drawtext AVOptions:
   fontfile          <string>     ..FV....... set font file
   text              <string>     ..FV....... set text
   textfile          <string>     ..FV....... set text file
   fontcolor         <color>      ..FV....... set foreground color (default "black")
   bordercolor       <color>      ..FV....... set border color (default "black")
   shadowcolor       <color>      ..FV....... set shadow color (default "black")
   line_spacing      <int>        ..FV....... set line spacing in pixels (default 0)
   fontsize          <string>     ..FV....... set font size
   x                 <string>     ..FV....... set x expression (default "0")
   y                 <string>     ..FV....... set y expression (default "0")
   shadowx           <int>        ..FV....... set shadow x offset (default 0)
   shadowy           <int>        ..FV....... set shadow y offset (default 0)
   borderw           <int>        ..FV....... set border width (default 0)
   expansion         <int>        ..FV....... set the expansion mode (default normal)
     none            0            ..FV....... set no expansion
     normal          1            ..FV....... set normal expansion

This filter has support for timeline through the 'enable' option.
"""
# FFmpeg 6.1 and later add:
TEXT_ALIGN = "   text_align        <flags>      ..FV.....T. set text alignment (default 0)\n"


def fake_ffmpeg(
    folder: Path,
    *,
    version: str,
    drawtext_help: str,
    without_encoders: tuple[str, ...] = (),
    global_options: tuple[str, ...] = REQUIRED_GLOBAL_OPTIONS,
    name: str = "ffmpeg",
) -> Path:
    """An executable that answers the probe's questions as a build of `version` would."""
    folder.mkdir(parents=True, exist_ok=True)
    encoders = "".join(
        f" V....D {encoder:<20} {encoder}\n"
        for encoder in REQUIRED_ENCODERS
        if encoder not in without_encoders
    )
    filters = "".join(f" .. {each:<17} A->A       {each}\n" for each in REQUIRED_FILTER_OPTIONS)
    answers = {"-encoders": f"Encoders:\n ------\n{encoders}", "-filters": f"Filters:\n{filters}"}
    answers["-version"] = f"ffmpeg version {version} Copyright (c) 2000-2026\n"
    for each, options in REQUIRED_FILTER_OPTIONS.items():
        listed = "".join(
            f"   {option:<17} <string>     ..F........ {option}\n" for option in options
        )
        answers[f"filter={each}"] = f"{each} AVOptions:\n{listed}"
    answers["filter=drawtext"] = drawtext_help
    # `-h full`: every class's options; like FFmpeg 5.1, scale's and vstack's classes are
    # named otherwise there, so the probe must ask for those two one by one
    renamed = {"scale": "scale(2ref)", "vstack": "(h|v)stack"}
    answers["full"] = "".join(
        f"-{option} <value>  {option}\n" for option in global_options
    ) + "".join(
        answers[f"filter={each}"].replace(f"{each} AVOptions:", f"{renamed[each]} AVOptions:")
        if each in renamed
        else answers[f"filter={each}"]
        for each in REQUIRED_FILTER_OPTIONS
    )
    for key, text in answers.items():
        (folder / f"{name}.{key.lstrip('-')}.txt").write_text(text)
    script = folder / name
    script.write_text(
        "#!/bin/sh\n"
        "# the last argument is the question: -version, -encoders, -filters, full or filter=NAME\n"
        'for last in "$@"; do :; done\n'
        f'answer="{folder}/{name}.${{last#-}}.txt"\n'
        '[ -f "$answer" ] || { echo "unknown: $last" >&2; exit 1; }\n'
        'cat "$answer"\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return script

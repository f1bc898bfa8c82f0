"""Titles and texts: `drawtext` with the bundled font, each text read from a file
(`textfile=`, `expansion=none`: nothing in it is ever parsed), wrapped to the frame's width
and placed inside the platforms' safe zones. Where FFmpeg's drawtext lacks `text_align`
(before 6.1), each line is drawn on its own, where it falls in the whole.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

from nemowatch.engines.base import Draft
from nemowatch.engines.local.analysis import format_number
from nemowatch.engines.local.graph import RenderFiles
from nemowatch.engines.local.timeline import TextItem, TimelineFacts, texts_of
from nemowatch.errors import EngineError

TEXT_COLOR = "white"


TEXT_BORDER = "black@0.65"


TEXT_SHADOW = "black@0.45"


TEXT_WIDTH = 0.9  # of the frame's width: where lines are wrapped


# Safe zones: vertical video (9:16) has the platforms' buttons and captions over its top
# and bottom; other shapes keep a small margin.
VERTICAL_MARGINS = (0.15, 0.20)  # (top, bottom), fractions of the height


OTHER_MARGINS = (0.05, 0.05)


# Estimated advance widths, in ems, of the bundled font's glyphs (for wrapping).
WIDE_ADVANCE = 1.0  # CJK ideographs, kana, full-width forms


NARROW_ADVANCE = 0.6  # Latin letters and digits (bold; a little generous)


SPACE_ADVANCE = 0.25


def filter_value(value: str) -> str:
    """`value` escaped for an option of a filter inside a filter graph.

    Two levels: the option parser treats `\\ ' :` specially, the graph parser
    `\\ ' [ ] , ;`. Each level's specials are escaped with a backslash, inner level first.
    """
    inner = "".join("\\" + character if character in "\\':" else character for character in value)
    return "".join("\\" + character if character in "\\'[],;" else character for character in inner)


def text_width(text: str, font_size: float) -> float:
    """The estimated width of one line of `text` in pixels at `font_size`."""
    return sum(_advance(character) for character in text) * font_size


def wrap_text(text: str, max_width: float, font_size: float) -> str:
    """`text` broken into lines no wider than `max_width` (estimated), at spaces where it
    has them and between any two CJK characters; the user's own line breaks are kept."""
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        line = ""
        for word in _words(paragraph.strip()):
            candidate = line + word if line else word.lstrip()
            if not line or text_width(candidate, font_size) <= max_width:
                line = candidate
            else:
                lines.append(line.rstrip())
                line = word.lstrip()
            while text_width(line, font_size) > max_width and len(line) > 1:
                # a single word wider than the frame: break it where it overflows
                cut = len(line) - 1
                while cut > 1 and text_width(line[:cut], font_size) > max_width:
                    cut -= 1
                lines.append(line[:cut])
                line = line[cut:]
        lines.append(line.rstrip())
    return "\n".join(lines)


def font_size(item: TextItem, height: int) -> int:
    """The text's size in pixels: its share of the frame's height."""
    return max(8, round(item.size * height))


def drawtext_filter(
    item: TextItem,
    *,
    text_file: Path,
    font: Path,
    width: int,
    height: int,
    line: tuple[int, int] | None = None,
) -> str:
    """One `drawtext` drawing `text_file` as `item` says, centred, inside the safe zones.

    `line` (index, count): the file holds that one line of the text, placed where it falls
    in the whole (an FFmpeg without `text_align` centres a block, not each of its lines).
    """
    size = font_size(item, height)
    top, bottom = VERTICAL_MARGINS if height > width else OTHER_MARGINS
    spacing = round(size * 0.15)
    if line is None:
        block, offset = "text_h", ""
    else:
        index, count = line
        line_height = "(max_glyph_a-max_glyph_d)"
        block = f"({count}*{line_height}+{(count - 1) * spacing})" if count > 1 else line_height
        offset = f"+{index}*({line_height}+{spacing})" if index else ""
    if item.position == "top":
        y = f"{round(top * height)}{offset}"
    elif item.position == "bottom":
        y = f"h-{block}-{round(bottom * height)}{offset}"
    else:
        y = f"(h-{block})/2{offset}"
    border = max(1, round(size * 0.06))
    shadow = max(1, round(size * 0.04))
    options = [
        f"fontfile={filter_value(str(font))}",
        f"textfile={filter_value(str(text_file))}",
        "expansion=none",
        f"fontsize={size}",
        f"fontcolor={TEXT_COLOR}",
        f"borderw={border}",
        f"bordercolor={TEXT_BORDER}",
        f"shadowx={shadow}",
        f"shadowy={shadow}",
        f"shadowcolor={TEXT_SHADOW}",
        f"line_spacing={spacing}",
        *(["text_align=C"] if line is None else []),
        "x=(w-text_w)/2",
        f"y={y}",
        f"enable='between(t,{format_number(item.start)},{format_number(item.end)})'",
    ]
    return "drawtext=" + ":".join(options)


def text_file_contents(draft: Draft, *, line_by_line: bool = False) -> list[str]:
    """What each text file of the draft holds: its text, wrapped to the output's width
    (`line_by_line`: each line of each text, in order)."""
    width, height = TimelineFacts.of(draft).output_size
    if width is None or height is None:
        texts = [item.text for item in texts_of(draft)]
    else:
        texts = [
            wrap_text(item.text, TEXT_WIDTH * width, font_size(item, height))
            for item in texts_of(draft)
        ]
    if line_by_line:
        return [line for text in texts for line in text.split("\n")]
    return texts


def drawtext_filters(draft: Draft, files: RenderFiles, width: int, height: int) -> list[str]:
    """A drawtext for each text of the draft (for each line of each, `files.line_by_line`)."""
    texts = texts_of(draft)
    lines: list[tuple[TextItem, tuple[int, int] | None]] = []
    if files.line_by_line:
        for item, text in zip(texts, text_file_contents(draft), strict=True):
            count = text.count("\n") + 1
            lines += [(item, (index, count)) for index in range(count)]
    else:
        lines = [(item, None) for item in texts]
    if len(files.text_files) != len(lines):
        raise EngineError(f"{len(lines)} texts to draw, but {len(files.text_files)} files")
    return [
        drawtext_filter(
            item, text_file=text_file, font=files.font, width=width, height=height, line=line
        )
        for (item, line), text_file in zip(lines, files.text_files, strict=True)
    ]


def _words(paragraph: str) -> list[str]:
    """Where a line may break: words with the spaces before them, and each CJK character."""
    words: list[str] = []
    spaces = ""
    for character in paragraph:
        if character == " ":
            spaces += character
        elif spaces or not words or _is_wide(character) or _is_wide(words[-1][-1]):
            words.append(spaces + character)
            spaces = ""
        else:
            words[-1] += character
    return words


def _is_wide(character: str) -> bool:
    width = unicodedata.east_asian_width(character)
    # The CJK font draws the ambiguous punctuation (curly quotes, dashes, ellipsis) wide.
    return width in ("W", "F") or (width == "A" and "\u2000" <= character <= "\u206f")


def _advance(character: str) -> float:
    if character == " ":
        return SPACE_ADVANCE
    return WIDE_ADVANCE if _is_wide(character) else NARROW_ADVANCE

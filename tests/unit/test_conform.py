"""What a downloaded result needs to be the rule's export (pure)."""

from __future__ import annotations

import pytest

from nemowatch.conform import Change, describe, needs
from nemowatch.rules import ExportSpec


@pytest.mark.parametrize(
    ("size", "fps", "export", "expected"),
    [
        ((1920, 1080), 25.0, {"resolution": "720p", "fps": 30}, ((1280, 720), 30.0)),
        ((1080, 1920), 30.0, {"resolution": "720p"}, ((720, 1280), None)),  # upright
        ((1280, 720), 29.97, {"resolution": "720p", "fps": 30}, None),  # close enough
        ((1280, 720), 30.0, {}, None),  # nothing asked
        ((1920, 1080), 25.0, {"resolution": "720p", "format": "webm"}, None),  # mp4/mov only
        ((640, 480), 25.0, {"resolution": "1080p"}, ((1440, 1080), None)),  # up, 4:3 kept
    ],
)
def test_a_result_needs_what_the_export_asks_and_it_lacks(
    size: tuple[int, int],
    fps: float,
    export: dict[str, object],
    expected: tuple[tuple[int, int] | None, float | None] | None,
) -> None:
    change = needs(*size, fps, ExportSpec.model_validate(export))
    assert (None if change is None else (change.size, change.fps)) == expected


def test_the_warning_says_what_it_was_and_what_it_became() -> None:
    change = Change((1280, 720), 30.0, had="1920x1080 at 25 fps")
    assert describe(change) == (
        "the engine rendered 1920x1080 at 25 fps; conformed to 1280x720 at 30 fps with the"
        " local FFmpeg, as the rule's export asks"
    )

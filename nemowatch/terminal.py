"""The live progress line of `nemowatch process` on a terminal: the file, its stage, a bar,
the percent, time elapsed and the time left, drawn by rich. On a pipe or a file it draws
nothing (no control characters in logs or captured output).

While the line is shown, rich carries whatever the process writes to stderr (the log
lines) above it, so configure logging inside the `with` block.
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID


class ProgressLine:
    """A progress listener (`nemowatch.progress.Listener`) that draws on a terminal."""

    def __init__(self, stream: TextIO, label: str) -> None:
        self._label = label
        self._stage: str | None = None
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        if stream.isatty():
            # imported only to draw: rich is most of a tenth of a second of CPU, which
            # every other command and the daemon need not pay (nemowatch/imports.py)
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                Progress,
                TaskProgressColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TaskProgressColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=Console(file=stream),
                redirect_stdout=False,  # stdout is the output's path, for scripts
            )

    @property
    def live(self) -> bool:
        return self._progress is not None

    def __enter__(self) -> ProgressLine:
        if self._progress is not None:
            self._progress.start()
            self._task = self._progress.add_task(self._label, total=None)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()

    def __call__(self, stage: str, percent: float | None) -> None:
        if self._progress is None or self._task is None:
            return
        if stage != self._stage or (percent is not None and self._progress.tasks[0].total is None):
            # each stage has its own pace: its time and ETA start afresh; a stage without a
            # percent has an indeterminate bar (rich cannot unset a total, so a new task)
            self._stage = stage
            self._progress.remove_task(self._task)
            self._task = self._progress.add_task(
                f"{self._label}: {stage}", total=None if percent is None else 100.0
            )
        if percent is not None:
            self._progress.update(self._task, completed=percent)

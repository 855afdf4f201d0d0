"""Progress people can see: a live bar on a terminal, plain log lines everywhere else.

Long steps (parsing snapshots, fetching records) report through a :class:`Progress`; which kind
is chosen once, by :func:`make_progress`, from whether the output is a terminal.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Protocol, TextIO

LOG = logging.getLogger("trialrecon")


class Progress(Protocol):
    def start(self, label: str, total: int) -> None: ...
    def advance(self, item: str = "") -> None: ...
    def finish(self) -> None: ...


class NoProgress:
    """Reports nothing (library use, tests)."""

    def start(self, label: str, total: int) -> None:
        pass

    def advance(self, item: str = "") -> None:
        pass

    def finish(self) -> None:
        pass


class LogProgress:
    """One log line at the start, about every tenth of the way, and at the end: readable in CI logs."""

    def __init__(self, logger: logging.Logger | logging.LoggerAdapter = LOG) -> None:  # type: ignore[type-arg]
        self.logger = logger
        self.label, self.total, self.done, self._next = "", 0, 0, 0

    def start(self, label: str, total: int) -> None:
        self.label, self.total, self.done = label, total, 0
        self._next = max(1, total // 10)
        self.logger.info("%s: %d to do", label, total)

    def advance(self, item: str = "") -> None:
        self.done += 1
        if self.done >= self._next and self.done < self.total:
            self.logger.info("%s: %d/%d %s", self.label, self.done, self.total, item)
            self._next += max(1, self.total // 10)

    def finish(self) -> None:
        self.logger.info("%s: %d/%d done", self.label, self.done, self.total)


class BarProgress:
    """A rich progress bar on the terminal."""

    def __init__(self, stream: TextIO) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as RichProgress

        self._bar = RichProgress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TextColumn("{task.fields[item]}"), console=Console(file=stream), transient=False,
        )
        self._task: int | None = None

    def start(self, label: str, total: int) -> None:
        self._bar.start()
        self._task = self._bar.add_task(label, total=total, item="")  # type: ignore[assignment]

    def advance(self, item: str = "") -> None:
        if self._task is not None:
            self._bar.update(self._task, advance=1, item=item)  # type: ignore[arg-type]

    def finish(self) -> None:
        self._bar.stop()


def make_progress(stream: TextIO | None = None, logger: logging.Logger | None = None) -> Progress:
    """A bar when ``stream`` is an interactive terminal (and not CI), log lines otherwise."""
    stream = stream or sys.stderr
    if stream.isatty() and not os.environ.get("CI"):
        return BarProgress(stream)
    return LogProgress(logger or LOG)

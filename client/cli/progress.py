"""Progress of the connector's cycle: a quiet default and a terminal display.

The cycle reports rows read, uploaded, streamed back and written, and the
engine's phases, to a :class:`CycleProgress`. The base class ignores them
(scripts, CI, ``--json``); :class:`TerminalProgress` draws rich progress bars
on a terminal.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CycleProgress", "TerminalProgress"]


class CycleProgress:
    """Receives progress events; this base class ignores them."""

    def begin(self, phase: str, total: int | None = None) -> None:
        """A phase starts; ``total`` rows when known."""

    def advance(self, phase: str, rows: int) -> None:
        """``rows`` more rows of ``phase`` are done."""

    def fraction(self, phase: str, done: float, note: str = "") -> None:
        """``phase`` is ``done`` (0 to 1) complete; ``note`` says what it does now."""

    def end(self, phase: str) -> None:
        """A phase is complete."""

    def close(self) -> None:
        """The cycle is over (also after a failure)."""


class TerminalProgress(CycleProgress):
    """Rich progress bars on stderr, one line per phase."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._progress = Progress(
            TextColumn("{task.description:<28}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self._tasks: dict[str, Any] = {}
        self._progress.start()

    def begin(self, phase: str, total: int | None = None) -> None:
        self._tasks[phase] = self._progress.add_task(phase, total=total)

    def advance(self, phase: str, rows: int) -> None:
        if phase in self._tasks:
            self._progress.advance(self._tasks[phase], rows)

    def fraction(self, phase: str, done: float, note: str = "") -> None:
        if phase in self._tasks:
            self._progress.update(
                self._tasks[phase],
                completed=round(done * 100),
                total=100,
                description=f"{phase} {note}".strip(),
            )

    def end(self, phase: str) -> None:
        if phase in self._tasks:
            task = self._tasks[phase]
            state = self._progress.tasks[task]
            total = state.total or state.completed or 1  # a total, or the rows counted
            self._progress.update(task, total=total, completed=total, description=phase)

    def close(self) -> None:
        self._progress.stop()

"""Progress bars: rich, on stderr, only when stderr is a terminal (and not -q)."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class ProgressReporter:
    """Thread-safe counters shown as a bar; a no-op when there is no terminal."""

    def __init__(self, bar: Any = None, task: Any = None) -> None:
        self._bar = bar
        self._task = task
        self._lock = threading.Lock()
        self.objects = 0
        self.bytes = 0

    def set_total(self, *, objects: int | None = None, bytes_: int | None = None) -> None:
        if self._bar is not None:
            total = bytes_ if bytes_ is not None else objects
            self._bar.update(self._task, total=total)

    def advance(self, objects: int = 1, nbytes: int = 0) -> None:
        with self._lock:
            self.objects += objects
            self.bytes += nbytes
        if self._bar is not None:
            self._bar.update(self._task, completed=self.bytes or self.objects)

    __call__ = advance


@contextmanager
def progress(description: str, *, enabled: bool = True) -> Iterator[ProgressReporter]:
    if not enabled or not sys.stderr.isatty():
        yield ProgressReporter()
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    bar = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    with bar:
        task = bar.add_task(description, total=None)
        yield ProgressReporter(bar, task)

"""Small pieces shared by the detection reports: sizes for humans, capped key lists."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")

# Problem lists are the output, so they are kept, but a lake that lost everything
# must not make the report as large as the lake: beyond this, only counts grow.
DEFAULT_CAP = 100_000


def human_bytes(size: int) -> str:
    """``1.2 GB``: decimal units, as object-store consoles and invoices show them."""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if abs(value) < 1000 or unit == "PB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


@dataclass(slots=True)
class Capped(Generic[T]):
    """A list that keeps its first ``cap`` items and counts the rest."""

    cap: int = DEFAULT_CAP
    items: list[T] = field(default_factory=list)
    count: int = 0

    def append(self, item: T) -> None:
        self.count += 1
        if len(self.items) < self.cap:
            self.items.append(item)

    @property
    def truncated(self) -> bool:
        return self.count > len(self.items)

"""Ctrl-C during verify --deep and gaps returns at once, not when stalled requests end."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from lakeguard.location import parse_location
from lakeguard.ops.gaps import find_gaps
from lakeguard.ops.inventory import take_inventory
from lakeguard.ops.verify import verify
from lakeguard.storage.memory import MemoryStore

LOC = parse_location("memory://lake/d")
STALL = 20.0  # how long a stalled request would hold the caller


class _Stalling(MemoryStore):
    """Reads (and, once armed, listings of a partition) wait until released."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.release = threading.Event()
        self.stall_listings = False

    def get(self, *args: Any, **kwargs: Any) -> Any:
        self.release.wait(STALL)
        return super().get(*args, **kwargs)

    def list(self, prefix: str = "", *args: Any, **kwargs: Any) -> Any:
        if self.stall_listings and prefix.startswith("d/dt="):
            self.release.wait(STALL)
        return super().list(prefix, *args, **kwargs)


@pytest.fixture
def stalling() -> Iterator[_Stalling]:
    store = _Stalling("lake")
    for n in range(12):
        store.put(f"d/dt=2026-01-0{n % 3 + 1}/part-{n}", b"x" * 10)
    yield store
    store.release.set()


def _interrupted_after(seconds: float, call: Callable[[], object]) -> float:
    """Run ``call`` with Ctrl-C (KeyboardInterrupt) arriving after ``seconds``; its duration."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    started = time.monotonic()
    try:
        signal.setitimer(signal.ITIMER_REAL, seconds)
        with pytest.raises(KeyboardInterrupt):
            call()
        return time.monotonic() - started
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_deep_verify_stops_at_ctrl_c_with_reads_in_flight(
    stalling: _Stalling, tmp_path: Path
) -> None:
    inventory = tmp_path / "i.parquet"
    take_inventory(stalling, LOC, output=inventory)
    took = _interrupted_after(
        0.3, lambda: verify(stalling, LOC, against=inventory, deep=True, concurrency=4)
    )
    assert took < 5


def test_gaps_stops_at_ctrl_c_with_listings_in_flight(stalling: _Stalling) -> None:
    stalling.stall_listings = True
    took = _interrupted_after(
        0.3,
        lambda: find_gaps(
            stalling, LOC, start=date(2026, 1, 1), end=date(2026, 1, 3), concurrency=4
        ),
    )
    assert took < 5

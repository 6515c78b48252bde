"""FaultStore: failures, latency, cut and corrupted reads, injected into any Store.

For tests and drills: ``open_store`` puts it under the retries when
``LAKEGUARD_FAULTS`` is set, so what the faults break is what RetryStore and
the commands above it must survive::

    RetryStore(FaultStore(S3Store(...)))

It fails a fraction of calls with ``TransientError`` (listings also mid-way,
before every ``page`` items, when a page is set), adds latency, cuts read
streams after N bytes, or flips a bit in them (corruption), from a seeded
random generator:
``LAKEGUARD_FAULTS="fail=0.1,cut=1000,latency=0.01,flip=1,seed=3,page=100,ops=get+put"``.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

from lakeguard.errors import TransientError, UsageError
from lakeguard.storage.base import (
    ObjectStream,
    Store,
)
from lakeguard.storage.wrappers import OPS, StoreWrapper, StreamBase

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """What faults to inject. ``flip`` is the fraction of read streams corrupted (1 = all)."""

    fail_rate: float = 0.0
    cut_after: int | None = None
    latency: float = 0.0
    flip: float = 0.0
    seed: int | None = None
    ops: frozenset[str] = field(default=OPS)
    # With a page size, a listing may also fail before each further page of that
    # many items (not only when it starts): what resuming a listing must survive.
    page: int | None = None

    @classmethod
    def parse(cls, text: str) -> FaultPlan:
        """Parse ``fail=0.1,cut=1000,latency=0.01,flip=1,seed=3,page=100,ops=get+put``."""
        values: dict[str, object] = {}
        names = {"fail": "fail_rate", "cut": "cut_after", "latency": "latency", "flip": "flip"}
        for item in filter(None, (part.strip() for part in text.split(","))):
            name, sep, value = item.partition("=")
            name, value = name.strip(), value.strip()
            if not sep or not value:
                raise UsageError(f"bad fault setting {item!r}: use name=value, e.g. fail=0.1")
            try:
                if name in ("fail", "flip"):
                    rate = float(value)
                    if not 0.0 <= rate <= 1.0:
                        raise ValueError(value)
                    values[names[name]] = rate
                elif name == "latency":
                    seconds = float(value)
                    if seconds < 0:
                        raise ValueError(value)
                    values["latency"] = seconds
                elif name in ("cut", "seed", "page"):
                    number = int(value)
                    if number < (1 if name == "page" else 0):
                        raise ValueError(value)
                    values[names.get(name, name)] = number
                elif name == "ops":
                    ops = frozenset(op.strip() for op in value.split("+"))
                    unknown = ops - OPS - {"all"}
                    if unknown:
                        raise UsageError(
                            f"unknown fault ops {sorted(unknown)}: choose from {sorted(OPS)}"
                        )
                    values["ops"] = OPS if "all" in ops else ops
                else:
                    raise UsageError(
                        f"unknown fault setting {name!r}: "
                        "use fail, cut, latency, flip, seed, page, ops"
                    )
            except ValueError as err:
                raise UsageError(f"bad value for fault setting {name!r}: {value!r}") from err
        return cls(**values)  # type: ignore[arg-type]


class FaultStore(StoreWrapper):
    """Injects the faults of ``plan`` into calls to ``inner``; ``injected`` counts them."""

    def __init__(
        self,
        inner: Store,
        plan: FaultPlan,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(inner)
        self.plan = plan
        self._sleep = sleep
        self._rng = random.Random(plan.seed)
        self._lock = threading.Lock()
        self.injected = 0

    def _roll(self, rate: float) -> bool:
        if rate <= 0:
            return False
        with self._lock:
            hit = self._rng.random() < rate
            if hit:
                self.injected += 1
            return hit

    def _run(self, op: str, key: str | None, call: Callable[[], T]) -> T:
        if op in self.plan.ops:
            if self.plan.latency:
                self._sleep(self.plan.latency)
            if self._roll(self.plan.fail_rate):
                raise TransientError(f"injected fault: {op} {key or ''}".rstrip(), op=op, key=key)
        return call()

    def _iterate(self, op: str, key: str, make: Callable[[], Iterator[T]]) -> Iterator[T]:
        # A listing fails when it starts, not lazily on first use of the iterator.
        items = self._run(op, key, make)
        if op not in self.plan.ops or self.plan.fail_rate <= 0 or not self.plan.page:
            return items
        return self._paged(op, key, items, self.plan.page)

    def _paged(self, op: str, key: str, items: Iterator[T], page: int) -> Iterator[T]:
        """Fails before each further page, as a paged listing's next request would."""
        where = f"{op} {key}" if key else op
        for count, item in enumerate(items):
            if count and count % page == 0 and self._roll(self.plan.fail_rate):
                raise TransientError(
                    f"injected fault: {where} after {count} items", op=op, key=key or None
                )
            yield item

    def get(
        self,
        key: str,
        *,
        version_id: str | None = None,
        offset: int = 0,
        length: int | None = None,
    ) -> ObjectStream:
        stream = super().get(key, version_id=version_id, offset=offset, length=length)
        if "get" not in self.plan.ops:
            return stream
        flip_at = None
        if self._roll(self.plan.flip):
            with self._lock:
                flip_at = self._rng.randrange(0, 1024)
        if self.plan.cut_after is None and flip_at is None:
            return stream
        return _FaultyStream(stream, self.plan.cut_after, flip_at)


class _FaultyStream(StreamBase):
    """Cuts a stream with TransientError after ``cut_after`` bytes; flips one bit."""

    def __init__(self, inner: ObjectStream, cut_after: int | None, flip_at: int | None) -> None:
        self.info = inner.info
        self._inner = inner
        self._cut_after = cut_after
        self._flip_at = flip_at

    def __iter__(self) -> Iterator[bytes]:
        sent = 0
        flip_at = self._flip_at
        for original in self._inner:
            chunk = original
            if flip_at is not None and chunk:
                # Flip inside this chunk (the position wraps to its length).
                where = flip_at % len(chunk)
                chunk = chunk[:where] + bytes([chunk[where] ^ 0x01]) + chunk[where + 1 :]
                flip_at = None
            if self._cut_after is not None and sent + len(chunk) > self._cut_after:
                part = chunk[: self._cut_after - sent]
                if part:
                    yield part
                self.close()
                raise TransientError(
                    f"injected fault: stream of {self.info.key} cut after {self._cut_after} bytes",
                    op="get",
                    key=self.info.key,
                )
            sent += len(chunk)
            yield chunk

    def close(self) -> None:
        self._inner.close()

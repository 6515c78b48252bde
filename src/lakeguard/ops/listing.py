"""Listing a location fast, in key order, with bounded memory.

One S3 listing is a chain of 1,000-key pages, each waiting on the last. To
list in parallel, the key space under a prefix is cut into ranges at folder
boundaries (the common prefixes one or two levels down) and each range is
listed by its own worker with ``start_after``:

    bounds b1 < b2 < ... < bn     (a folder "p/dt=1/" gives the bound "p/dt=1")
    ranges (-, b1], (b1, b2], ..., (bn, +)

Any sorted set of bounds cuts the key space into ranges that hold every key
exactly once, so keys outside every folder (``_SUCCESS`` next to the
partitions) are listed too. A range stops at the first key above its upper
bound. Ranges are started in key order with a bounded look-ahead, and each
hands its keys over in chunks through a small queue, so the caller receives
chunks in key order and memory holds at most ``look-ahead x queue`` chunks.

    list_chunks(store, prefix) -> [ObjectInfo, ...], [ObjectInfo, ...], ...   (key order)
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from lakeguard.storage.base import ObjectInfo, Store

CHUNK = 1000  # objects handed from a range worker to the consumer at a time
_QUEUE_CHUNKS = 4  # chunks a range worker may run ahead of the consumer
_DONE = object()


@dataclass(frozen=True, slots=True)
class KeyRange:
    """Keys ``k`` with ``after < k <= upto`` (None: unbounded on that side)."""

    after: str | None
    upto: str | None


@dataclass(frozen=True, slots=True)
class _Failed:
    error: BaseException


def split_ranges(store: Store, prefix: str, *, parts: int) -> list[KeyRange]:
    """Cut the keys under ``prefix`` into at most ``parts`` ranges at folder boundaries.

    Looks one folder level down, and a second level when the first has fewer
    folders than ``parts`` (a lake of two tables, each with many partitions).
    """
    if parts <= 1:
        return [KeyRange(None, None)]
    folders = store.list_prefixes(prefix)
    if 0 < len(folders) < parts:
        with ThreadPoolExecutor(min(len(folders), 16)) as pool:
            children = list(pool.map(store.list_prefixes, folders))
        deeper = sorted({*folders, *(c for group in children for c in group)})
        folders = deeper
    if not folders:
        return [KeyRange(None, None)]
    # Evenly spaced bounds: without sizes, the folder count is the best guess of work.
    step = max(1, len(folders) // parts) if len(folders) > parts else 1
    bounds = [folder[:-1] for folder in folders[::step]]
    ranges: list[KeyRange] = []
    lower: str | None = None
    for bound in bounds:
        if lower is not None and bound <= lower:
            continue
        ranges.append(KeyRange(lower, bound))
        lower = bound
    ranges.append(KeyRange(lower, None))
    return ranges


def _put(target: queue.Queue[object], item: object, stop: threading.Event) -> bool:
    while not stop.is_set():
        try:
            target.put(item, timeout=0.1)
        except queue.Full:
            continue
        return True
    return False


def _list_range(
    store: Store, prefix: str, span: KeyRange, out: queue.Queue[object], stop: threading.Event
) -> None:
    try:
        chunk: list[ObjectInfo] = []
        listing = store.list(prefix, start_after=span.after)
        try:
            for info in listing:
                if span.upto is not None and info.key > span.upto:
                    break
                chunk.append(info)
                if len(chunk) >= CHUNK:
                    if not _put(out, chunk, stop):
                        return
                    chunk = []
        finally:
            close = getattr(listing, "close", None)
            if callable(close):
                close()
        if chunk and not _put(out, chunk, stop):
            return
        _put(out, _DONE, stop)
    except BaseException as exc:  # handed to the consumer, who raises it
        _put(out, _Failed(exc), stop)


def list_chunks(
    store: Store, prefix: str = "", *, concurrency: int = 16, parallel: bool = True
) -> Iterator[list[ObjectInfo]]:
    """The current objects under ``prefix`` in key order, as chunks of up to ``CHUNK``."""
    if not parallel or concurrency <= 1:
        yield from _sequential_chunks(store, prefix)
        return
    ranges = split_ranges(store, prefix, parts=concurrency * 4)
    if len(ranges) == 1:
        yield from _sequential_chunks(store, prefix)
        return
    stop = threading.Event()
    pending = iter(ranges)
    window: deque[queue.Queue[object]] = deque()
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="list")

    def start_next() -> None:
        span = next(pending, None)
        if span is not None:
            out: queue.Queue[object] = queue.Queue(maxsize=_QUEUE_CHUNKS)
            pool.submit(_list_range, store, prefix, span, out, stop)
            window.append(out)

    try:
        for _ in range(concurrency * 2):
            start_next()
        while window:
            out = window[0]
            while True:
                item = out.get()
                if item is _DONE:
                    break
                if isinstance(item, _Failed):
                    raise item.error
                assert isinstance(item, list)
                yield item
            window.popleft()
            start_next()
    finally:
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)


def _sequential_chunks(store: Store, prefix: str) -> Iterator[list[ObjectInfo]]:
    chunk: list[ObjectInfo] = []
    for info in store.list(prefix):
        chunk.append(info)
        if len(chunk) >= CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def list_objects(
    store: Store, prefix: str = "", *, concurrency: int = 16, parallel: bool = True
) -> Iterator[ObjectInfo]:
    """The current objects under ``prefix`` in key order, one at a time."""
    for chunk in list_chunks(store, prefix, concurrency=concurrency, parallel=parallel):
        yield from chunk

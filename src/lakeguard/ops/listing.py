"""Listing a location fast, with bounded memory, every key exactly once.

One S3 listing is a chain of 1,000-key pages, each waiting on the last. To
list in parallel, the listing is cut at folder boundaries (the common prefixes
one, or when there are few, two levels down) and each piece is listed by its
own worker:

    folders F1, F2, ..., Fn        in the store's own listing order
    pieces  [start .. F1), [F1 .. F2), ..., [Fn .. end)
    piece i = list(prefix, start_after=Fi), stopping at the first key at or past F(i+1)

No comparison assumes one key order. S3 lists in UTF-8 byte order; a store
built on a file tree (SeaweedFS) walks folders first (``a/x`` before ``a-b``).
Folders come in the store's own order from ``list_prefixes``, a folder's keys
are contiguous in either order, and a worker stops only at a key that lies
past the next folder in *both* orders, so no key is skipped or listed twice
whichever order the store keeps. (Should a whole folder vanish between the
two calls, the keys around it may be listed twice; a listing of a changing
bucket is never a snapshot.)

Pieces are started in order with a bounded look-ahead, and each hands its keys
over in chunks through a small queue, so the caller receives chunks in the
store's order and memory holds at most ``look-ahead x queue`` chunks.

    list_chunks(store, prefix) -> [ObjectInfo, ...], [ObjectInfo, ...], ...
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
    """The keys listed after folder ``after`` up to the folder ``until`` (None: open)."""

    after: str | None
    until: str | None


@dataclass(frozen=True, slots=True)
class _Failed:
    error: BaseException


def _past(key: str, folder: str) -> bool:
    """Whether ``key`` lies at or past ``folder`` in byte order and in folder-walk order."""
    if key < folder:
        return False
    return key.split("/") > folder[:-1].split("/")


def split_ranges(store: Store, prefix: str, *, parts: int) -> list[KeyRange]:
    """Cut the listing under ``prefix`` into at most about ``parts`` pieces at folders.

    Looks one folder level down, and a second level when the first has fewer
    folders than ``parts`` (a lake of two tables, each with many partitions).
    """
    if parts <= 1:
        return [KeyRange(None, None)]
    folders = store.list_prefixes(prefix)
    if 0 < len(folders) < parts:
        with ThreadPoolExecutor(min(len(folders), 16)) as pool:
            children = list(pool.map(store.list_prefixes, folders))
        # Each folder, then its subfolders: still the store's own order.
        folders = [
            f for parent, kids in zip(folders, children, strict=True) for f in (parent, *kids)
        ]
    if not folders:
        return [KeyRange(None, None)]
    # Evenly spaced: without sizes, the folder count is the best guess of work.
    step = max(1, len(folders) // parts)
    bounds = folders[::step]
    edges: list[str | None] = [None, *bounds, None]
    return [KeyRange(edges[i], edges[i + 1]) for i in range(len(edges) - 1)]


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
                if span.until is not None and _past(info.key, span.until):
                    if (
                        info.key == span.until
                    ):  # a folder marker object: the next piece starts after it
                        chunk.append(info)
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

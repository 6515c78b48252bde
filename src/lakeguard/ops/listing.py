"""Listing a location fast, with bounded memory, every key exactly once.

One S3 listing is a chain of 1,000-key pages, each waiting on the last. Over a
slow link, cutting it into pieces listed side by side hides that wait; over a
fast one it only adds work, because each piece fetches a whole page, mostly of
keys past its end, and parsing pages costs client CPU. Measured on SeaweedFS
over loopback with boto3's listing (2 cores): 3,600 keys in 0.6 s as one chain,
6-7 s in 70 pieces; 30,240 keys in 2.6-3.2 s as one chain, 6.3-7.3 s in pieces.
So callers list in one chain unless told otherwise (``parallel=True``), and
even then the listing starts as one chain, and only once it has yielded
``parallel_after`` keys is the rest cut at folder boundaries (the common
prefixes one, or when there are few, two levels down):

    head    list(prefix)                                 until parallel_after keys
    tail    folders F1..Fn ahead of the last key K, in the store's own order
            pieces (K .. F1), [F1 .. F2), ..., [Fn .. end)
            piece i = list(prefix, start_after=Fi), stopping at the first key at or past F(i+1)

No comparison assumes one key order. S3 lists in UTF-8 byte order; a store
built on a file tree (SeaweedFS) walks folders first (``a/x`` before ``a-b``)
and takes ``start_after=a`` as "skip the folder a". Pieces start after a real
key or after a folder *with* its slash, folders come in the store's own order
from ``list_prefixes``, a folder's keys are contiguous in either order, and a
piece stops only at a key that lies past the next folder in *both* orders, so
no key is skipped or listed twice whichever order the store keeps. (Should a
whole folder vanish between the two calls, the keys around it may be listed
twice: a listing of a changing bucket is never a snapshot.)

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

CHUNK = 1000  # objects handed from a piece's worker to the consumer at a time
PARALLEL_AFTER = 10_000  # keys listed in one chain before the rest is cut into pieces
_QUEUE_CHUNKS = 4  # chunks a piece's worker may run ahead of the consumer
_DONE = object()


@dataclass(frozen=True, slots=True)
class KeyRange:
    """The keys listed after ``after`` (a key or a folder) up to the folder ``until``."""

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


def _ahead(folder: str, key: str | None) -> bool:
    """Whether every key of ``folder`` comes after ``key`` in byte and folder-walk order."""
    if key is None:
        return True
    return key < folder and key.split("/") < folder[:-1].split("/")


def split_ranges(
    store: Store, prefix: str, *, parts: int, after: str | None = None
) -> list[KeyRange]:
    """Cut the listing under ``prefix`` past the key ``after`` into about ``parts`` pieces.

    Looks one folder level down, and a second level when the first has fewer
    folders than ``parts`` (a lake of two tables, each with many partitions).
    Folders behind ``after`` are left out; the first piece starts after it.
    """
    if parts <= 1:
        return [KeyRange(after, None)]
    # A folder still counts when ``after`` lies inside it: its subfolders may be ahead.
    folders = [
        f
        for f in store.list_prefixes(prefix)
        if _ahead(f, after) or (after is not None and after.startswith(f))
    ]
    if 0 < len(folders) < parts:
        with ThreadPoolExecutor(min(len(folders), 16)) as pool:
            children = list(pool.map(store.list_prefixes, folders))
        # Each folder, then its subfolders: still the store's own order.
        folders = [
            f for parent, kids in zip(folders, children, strict=True) for f in (parent, *kids)
        ]
    folders = [f for f in folders if _ahead(f, after)]
    if not folders:
        return [KeyRange(after, None)]
    # Evenly spaced: without sizes, the folder count is the best guess of work.
    step = max(1, len(folders) // parts)
    bounds = folders[::step]
    edges: list[str | None] = [after, *bounds, None]
    return [KeyRange(edges[i], edges[i + 1]) for i in range(len(edges) - 1)]


def _put(target: queue.Queue[object], item: object, stop: threading.Event) -> bool:
    while not stop.is_set():
        try:
            target.put(item, timeout=0.1)
        except queue.Full:
            continue
        return True
    return False


def _close(listing: object) -> None:
    close = getattr(listing, "close", None)
    if callable(close):
        close()


def _list_range(
    store: Store, prefix: str, span: KeyRange, out: queue.Queue[object], stop: threading.Event
) -> None:
    try:
        chunk: list[ObjectInfo] = []
        listing = store.list(prefix, start_after=span.after)
        try:
            for info in listing:
                if span.until is not None and _past(info.key, span.until):
                    if info.key == span.until:
                        chunk.append(info)  # a folder marker: the next piece starts after it
                    break
                chunk.append(info)
                if len(chunk) >= CHUNK:
                    if not _put(out, chunk, stop):
                        return
                    chunk = []
        finally:
            _close(listing)
        if chunk and not _put(out, chunk, stop):
            return
        _put(out, _DONE, stop)
    except BaseException as exc:  # handed to the consumer, who raises it
        _put(out, _Failed(exc), stop)


def list_chunks(
    store: Store,
    prefix: str = "",
    *,
    concurrency: int = 16,
    parallel: bool = False,
    parallel_after: int = PARALLEL_AFTER,
) -> Iterator[list[ObjectInfo]]:
    """The current objects under ``prefix`` in the store's order, as chunks of up to ``CHUNK``.

    With ``parallel``, a listing longer than ``parallel_after`` keys goes on in
    up to ``concurrency`` pieces side by side.
    """
    if not parallel or concurrency <= 1:
        yield from _sequential_chunks(store, prefix)
        return
    last: str | None = None
    if parallel_after > 0:
        chunk: list[ObjectInfo] = []
        listed = 0
        listing = store.list(prefix)
        try:
            for info in listing:
                chunk.append(info)
                listed += 1
                if listed >= parallel_after:
                    last = info.key
                    break
                if len(chunk) >= CHUNK:
                    yield chunk
                    chunk = []
        finally:
            _close(listing)
        if chunk:
            yield chunk
        if last is None:  # the whole listing fitted in the head
            return
    # The head was long: list the rest in pieces, after the last key seen (a real key).
    ranges = split_ranges(store, prefix, parts=concurrency * 4, after=last)
    yield from _pieces(store, prefix, ranges, concurrency)


def _pieces(
    store: Store, prefix: str, ranges: list[KeyRange], concurrency: int
) -> Iterator[list[ObjectInfo]]:
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
    listing = store.list(prefix)
    try:
        for info in listing:
            chunk.append(info)
            if len(chunk) >= CHUNK:
                yield chunk
                chunk = []
    finally:
        _close(listing)
    if chunk:
        yield chunk


def list_objects(
    store: Store,
    prefix: str = "",
    *,
    concurrency: int = 16,
    parallel: bool = False,
    parallel_after: int = PARALLEL_AFTER,
) -> Iterator[ObjectInfo]:
    """The current objects under ``prefix`` in the store's order, one at a time."""
    for chunk in list_chunks(
        store, prefix, concurrency=concurrency, parallel=parallel, parallel_after=parallel_after
    ):
        yield from chunk

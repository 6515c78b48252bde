"""Packing new objects into one archive, uploaded while it is produced.

    pack_archive(ctx, archive_id, items)        runs on a backup worker thread
      small objects (<= FETCH_WHOLE): fetched ahead on the shared fetch pool,
          at most READAHEAD_ITEMS / readahead_bytes ahead of the writer
      large objects: streamed in the worker thread, block by block
      each object -> ArchiveWriter.member (SHA-256 on the way)
                  -> mirrors (small: a PUT on the mirror pool; large: a tee thread
                     feeding a streaming PUT), so the source is read once
      manifest.json, end-of-archive, seek table
      -> repo.write(archive key, <the generator>)   multipart, streamed
      -> catalog file

An object that vanished since the listing is skipped; one that cannot be
read is reported and skipped. A large object that fails half-way has already
sent frames, so the archive is abandoned (the upload aborted) and packed
again without it.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from lakeguard import cpu
from lakeguard.archive.writer import (
    ArchiveWriteError,
    ArchiveWriter,
    PreparedMember,
    prepare_member,
)
from lakeguard.errors import (
    AccessDeniedError,
    BucketNotFoundError,
    EndpointUnreachableError,
    LakeguardError,
    NotFoundError,
)
from lakeguard.location import Location
from lakeguard.repository.catalog_writer import write_catalog
from lakeguard.repository.layout import FORMAT_VERSION, SourceRef, member_name
from lakeguard.repository.manifest import ManifestRow
from lakeguard.repository.repo import Repository
from lakeguard.storage.base import ObjectInfo, Store, read_buffer
from lakeguard.timeparse import iso
from lakeguard.transfer.parts import adjust_part_size

log = logging.getLogger(__name__)

READAHEAD_ITEMS = 256
# Small objects go to the fetch pool a few at a time (see _fetch_bunch): up to
# 8 of them, or 256 KiB. With bunches of up to 1 MiB the bench lake's objects
# (64 KiB - 1 MiB) were fetched fewer at once, and its backup took 14.3 s
# against 13.4 s (4 alternating runs each); with 256 KiB, 13.9 s both.
BUNCH_ITEMS = 8
BUNCH_BYTES = 256 * 1024
UPLOAD_PIECE = 1024 * 1024
# Objects up to this size are fetched whole, ahead, and hashed and compressed
# on the fetch threads (in block-size frames); larger ones stream through the
# archive's thread.
FETCH_WHOLE = 4 * 1024 * 1024
# Bytes of small objects fetched ahead, shared by every packing worker: each
# gets budget / workers, between 8 and 64 MiB (held twice: raw and compressed).
# With 64 MiB each, eight workers peaked at 760 MB (bench/backup.py); a fixed
# budget keeps the process near the same size whatever the core count. Each
# worker's archive upload holds its parts in flight too (4 x 8 MiB).
READAHEAD_BUDGET = 64 * 1024 * 1024
READAHEAD_MIN = 8 * 1024 * 1024
READAHEAD_MAX = 64 * 1024 * 1024


def readahead_bytes(workers: int) -> int:
    """Each packing worker's share of the read-ahead budget."""
    return max(READAHEAD_MIN, min(READAHEAD_MAX, READAHEAD_BUDGET // max(1, workers)))


PACK_ATTEMPTS = 3
_FATAL = (BucketNotFoundError, EndpointUnreachableError, AccessDeniedError)


@dataclass(frozen=True, slots=True)
class PackItem:
    key: str  # full key in the source store
    relative: str  # key relative to the source location
    size: int  # listed size (batching only: the size read is what counts)
    version_id: str | None = None


@dataclass(frozen=True, slots=True)
class Mirror:
    location: Location
    store: Store


class Cancelled(Exception):
    """The backup is stopping (interrupt, or a fatal error elsewhere)."""


@dataclass(slots=True)
class PackContext:
    source_store: Store
    source: SourceRef
    repo: Repository
    snapshot_id: str
    level: int
    block_size: int
    fetch_pool: ThreadPoolExecutor
    mirrors: Sequence[Mirror] = ()
    mirror_pool: ThreadPoolExecutor | None = None
    on_object: Callable[[int], None] | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    readahead_bytes: int = READAHEAD_MAX


@dataclass(slots=True)
class PackResult:
    archive: str | None = None  # repository-relative key; None when nothing was written
    rows: list[ManifestRow] = field(default_factory=list)
    stored_bytes: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    vanished: int = 0
    mirrored: int = 0


class _NothingToWrite(Exception):
    """Every object of the batch vanished or failed: no archive."""


@dataclass(frozen=True, slots=True)
class _Fetched:
    info: ObjectInfo
    data: bytes | memoryview  # a view of the GET's own buffer when the store has one
    member: PreparedMember | None  # None when the bytes read disagree with the size


def _fetch_bunch(
    store: Store, items: Sequence[PackItem], level: int, block_size: int
) -> list[_Fetched | BaseException | None]:
    """``_fetch_small`` for a few consecutive small objects, one after the other.

    One pool task and one future for several objects: with one each, a
    backup of 20,000 objects of 8 KiB spent more CPU handing objects between
    threads than reading them. Each object's outcome is its own (an error
    fails only that object).
    """
    out: list[_Fetched | BaseException | None] = []
    for item in items:
        try:
            out.append(_fetch_small(store, item, level, block_size))
        except Exception as exc:  # re-raised for this object alone by _Slot.result()
            out.append(exc)
    return out


class _Slot:
    """One object's place in a bunch's future: ``result()`` as a Future's."""

    __slots__ = ("_future", "_index")

    def __init__(self, future: Future[list[_Fetched | BaseException | None]], index: int) -> None:
        self._future = future
        self._index = index

    def result(self) -> _Fetched:
        """This object's outcome, once: the bunch lets go of it (its bytes are freed
        as soon as the archive has them, not when the whole bunch has gone)."""
        outcomes = self._future.result()
        outcome = outcomes[self._index]
        outcomes[self._index] = None
        if outcome is None:
            raise RuntimeError("this object's outcome was already taken")
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def cancel(self) -> bool:
        return self._future.cancel()


def _fetch_small(store: Store, item: PackItem, level: int, block_size: int) -> _Fetched:
    """GET a small object, then hash and compress its member, on a fetch thread."""
    with store.get(item.key, version_id=item.version_id) as stream:
        info = stream.info
        data = read_buffer(stream)
    if len(data) != info.size:
        return _Fetched(info, data, None)
    with cpu.SLOTS:  # hashing and compressing: one thread per core (lakeguard/cpu.py)
        member = prepare_member(
            member_name(item.relative), data, level=level, mtime=_mtime(info), block_size=block_size
        )
    return _Fetched(info, data, member)


def _row(item: PackItem, info: ObjectInfo, archive: str, record: Any) -> ManifestRow:
    return ManifestRow(
        key=item.relative,
        size=record.size,
        sha256=record.sha256,
        archive=archive,
        member=record.name,
        frame_offset=record.frame_offset,
        frame_length=record.frame_length,
        etag=info.etag,
        version_id=info.version_id,
        last_modified=info.last_modified,
        storage_class=info.storage_class,
        content_type=info.content_type,
        metadata=dict(info.metadata or {}),
    )


def archive_manifest(
    ctx: PackContext, archive_id: str, rows: Sequence[ManifestRow]
) -> dict[str, Any]:
    """The manifest.json document of an archive (seed-compatible fields first)."""
    source = ctx.source
    return {
        "kind": "lakeguard-archive",
        "format": FORMAT_VERSION,
        "archive_id": archive_id,
        "snapshot_id": ctx.snapshot_id,
        "created": _now_iso(),
        "source": source.url,
        "source_bucket": source.bucket,
        "source_prefix": source.prefix,
        "compression": {"codec": "zstd", "level": ctx.level, "block_size": ctx.block_size},
        "objects": [
            {
                "object_name": row.key,
                "relative_key": row.key,
                "source_bucket": source.bucket,
                "source_prefix": source.prefix,
                "etag": row.etag,
                "size": row.size,
                "sha256": row.sha256,
                "creation_time": iso(row.last_modified),
                "version_id": row.version_id,
                "member": row.member,
                "frame_offset": row.frame_offset,
                "frame_length": row.frame_length,
                "last_modified": iso(row.last_modified),
                "storage_class": row.storage_class,
                "content_type": row.content_type,
                "metadata": dict(row.metadata),
            }
            for row in rows
        ],
    }


def _now_iso() -> str:
    from datetime import UTC, datetime

    return iso(datetime.now(UTC)) or ""


class _Tee:
    """Feeds one large object's chunks to a streaming PUT on a mirror, on its own thread."""

    _END = object()

    def __init__(self, mirror: Mirror, relative: str, info: ObjectInfo) -> None:
        self.key = mirror.location.key(relative)
        self.where = str(mirror.location)
        self._queue: queue.Queue[object] = queue.Queue(maxsize=4)
        self.error: BaseException | None = None
        part = adjust_part_size(info.size)

        def run() -> None:
            try:
                mirror.store.put(
                    self.key,
                    self._chunks(),
                    content_type=info.content_type,
                    metadata=info.metadata,
                    part_size=part,
                )
            except BaseException as exc:  # reported by close()
                self.error = exc

        self._thread = threading.Thread(target=run, name="lakeguard-mirror", daemon=True)
        self._thread.start()

    def _chunks(self) -> Iterator[bytes]:
        while True:
            item = self._queue.get()
            if item is self._END:
                return
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, bytes)
            yield item

    def feed(self, chunk: bytes) -> None:
        while self._thread.is_alive():
            try:
                self._queue.put(chunk, timeout=0.1)
                return
            except queue.Full:
                continue

    def close(self, ok: bool) -> str | None:
        """Finish (or abort) the upload; the error message, if it failed."""
        final: object = self._END if ok else Cancelled("archive member failed")
        while self._thread.is_alive():
            try:
                self._queue.put(final, timeout=0.1)
                break
            except queue.Full:
                continue
        self._thread.join()
        if ok and self.error is not None:
            return f"mirror {self.where}: {self.error}"
        return None


class _Packer:
    """One attempt at one archive."""

    def __init__(self, ctx: PackContext, archive_id: str, items: Sequence[PackItem]) -> None:
        self.ctx = ctx
        self.archive_id = archive_id
        self.archive = ctx.repo.layout.archive(archive_id)
        self.items = items
        self.writer = ArchiveWriter(level=ctx.level, block_size=ctx.block_size, pool=ctx.fetch_pool)
        self.result = PackResult()
        self.current: PackItem | None = None
        self.mirror_puts: list[tuple[str, Future[Any]]] = []
        self.raised: BaseException | None = None  # what stopped chunks(), as raised there

    def _window(self) -> Iterator[tuple[PackItem, _Slot | None]]:
        """Items in order, small ones fetched ahead on the shared pool, in bunches."""
        ctx = self.ctx
        ahead: deque[tuple[PackItem, _Slot | None]] = deque()
        ahead_bytes = 0
        pending = iter(self.items)
        exhausted = False
        bunch: list[PackItem] = []
        bunch_bytes = 0

        def send() -> None:
            nonlocal bunch_bytes
            future = ctx.fetch_pool.submit(
                _fetch_bunch, ctx.source_store, list(bunch), ctx.level, ctx.block_size
            )
            ahead.extend((member, _Slot(future, i)) for i, member in enumerate(bunch))
            bunch.clear()
            bunch_bytes = 0

        try:
            while True:
                while not exhausted and (
                    len(ahead) + len(bunch) < READAHEAD_ITEMS and ahead_bytes < ctx.readahead_bytes
                ):
                    item = next(pending, None)
                    if item is None:
                        exhausted = True
                        break
                    if item.size <= max(ctx.block_size, FETCH_WHOLE):
                        bunch.append(item)
                        bunch_bytes += item.size
                        ahead_bytes += item.size
                        if len(bunch) >= BUNCH_ITEMS or bunch_bytes >= BUNCH_BYTES:
                            send()
                    else:
                        if bunch:
                            send()
                        ahead.append((item, None))
                if bunch and (exhausted or not ahead or len(ahead) < READAHEAD_ITEMS // 2):
                    send()
                if not ahead:
                    return
                item, slot = ahead.popleft()
                if slot is not None:
                    ahead_bytes -= item.size
                yield item, slot
        finally:
            for _item, waiting in ahead:
                if waiting is not None:
                    waiting.cancel()

    def chunks(self) -> Iterator[bytes]:
        """The archive's bytes; remembers why it stopped, whatever the store wraps it in.

        Small members' frames are joined into pieces of at least UPLOAD_PIECE
        bytes: each piece crosses to the upload's thread through a queue, and
        one crossing per frame of an 8 KiB object cost more than the frame.
        """
        held: list[bytes] = []
        held_bytes = 0
        try:
            for piece in self._chunks():
                if not held and len(piece) >= UPLOAD_PIECE:
                    yield piece
                    continue
                held.append(piece)
                held_bytes += len(piece)
                if held_bytes >= UPLOAD_PIECE:
                    yield b"".join(held)
                    held.clear()
                    held_bytes = 0
            if held:
                yield b"".join(held)
        except BaseException as exc:
            self.raised = exc
            raise

    def _chunks(self) -> Iterator[bytes]:
        ctx = self.ctx
        for item, future in self._window():
            if ctx.cancel.is_set():
                raise Cancelled("backup stopped")
            try:
                if future is not None:
                    yield from self._small(item, future.result())
                else:
                    yield from self._large(item)
            except NotFoundError:
                self.result.vanished += 1
            except _FATAL:
                raise
            except LakeguardError as exc:
                if self.current is not None:  # frames already sent: abandon the archive
                    raise
                self.result.failures.append((item.relative, exc.message))
        if not self.result.rows:
            raise _NothingToWrite()
        yield from self.writer.finish(archive_manifest(ctx, self.archive_id, self.result.rows))

    def _small(self, item: PackItem, fetched: _Fetched) -> Iterator[bytes]:
        info, data = fetched.info, fetched.data
        if fetched.member is None:
            self.result.failures.append(
                (item.relative, f"read {len(data)} bytes of {info.size} (object changed?)")
            )
            return
        record = yield from self.writer.prepared(fetched.member)
        self.result.rows.append(_row(item, info, self.archive, record))
        for mirror in self.ctx.mirrors:
            pool = self.ctx.mirror_pool
            assert pool is not None
            future = pool.submit(
                mirror.store.put,
                mirror.location.key(item.relative),
                data,
                content_type=info.content_type,
                metadata=info.metadata,
            )
            self.mirror_puts.append((f"{item.relative}\x00{mirror.location}", future))
        self._progress(len(data))

    def _large(self, item: PackItem) -> Iterator[bytes]:
        stream = self.ctx.source_store.get(item.key, version_id=item.version_id)
        with stream:
            info = stream.info
            tees = [_Tee(mirror, item.relative, info) for mirror in self.ctx.mirrors]

            def feed(chunk: bytes) -> None:
                for tee in tees:
                    tee.feed(chunk)

            self.current = item
            ok = False
            try:
                record = yield from self.writer.member(
                    member_name(item.relative),
                    info.size,
                    stream,
                    mtime=_mtime(info),
                    on_chunk=feed if tees else None,
                )
                ok = True
            finally:
                for tee in tees:
                    problem = tee.close(ok)
                    if problem:
                        self.result.failures.append((item.relative, problem))
                    elif ok:
                        self.result.mirrored += 1
            self.current = None
        self.result.rows.append(_row(item, info, self.archive, record))
        self._progress(info.size)

    def _progress(self, nbytes: int) -> None:
        if self.ctx.on_object is not None:
            self.ctx.on_object(nbytes)

    def settle_mirrors(self) -> None:
        for label, future in self.mirror_puts:
            relative, _, where = label.partition("\x00")
            try:
                future.result()
                self.result.mirrored += 1
            except LakeguardError as exc:
                self.result.failures.append((relative, f"mirror {where}: {exc.message}"))
            except Exception as exc:
                self.result.failures.append((relative, f"mirror {where}: {exc}"))


def _mtime(info: ObjectInfo) -> float:
    return info.last_modified.timestamp() if info.last_modified else 0.0


def pack_archive(ctx: PackContext, archive_id: str, items: Sequence[PackItem]) -> PackResult:
    """Write one archive of ``items`` (in key order) and its catalog file."""
    remaining = list(items)
    dropped: list[tuple[str, str]] = []
    total = sum(item.size for item in items)
    # The archive is at most slightly larger than its data; size parts for the data.
    part_size = adjust_part_size(total + total // 16 + 1024 * 1024)
    for attempt in range(PACK_ATTEMPTS):
        packer = _Packer(ctx, archive_id, remaining)
        try:
            put = ctx.repo.write(
                packer.archive,
                packer.chunks(),
                content_type="application/zstd",
                part_size=part_size,
            )
        except Exception as exc:
            cause = packer.raised or exc
            if isinstance(cause, _NothingToWrite):
                packer.settle_mirrors()
                packer.result.failures[:0] = dropped
                return packer.result
            failed = packer.current
            retry = isinstance(cause, ArchiveWriteError | LakeguardError) and not isinstance(
                cause, _FATAL
            )
            if failed is None or not retry or attempt == PACK_ATTEMPTS - 1:
                raise cause from None
            message = cause.message if isinstance(cause, LakeguardError) else str(cause)
            log.warning("archive %s: packing again without %s: %s", archive_id, failed.key, message)
            dropped.append((failed.relative, message))
            remaining = [item for item in remaining if item is not failed]
            continue
        packer.settle_mirrors()
        result = packer.result
        result.archive = packer.archive
        result.stored_bytes = put.size or packer.writer.offset
        result.failures[:0] = dropped
        write_catalog(
            ctx.repo,
            source=ctx.source,
            archive=packer.archive,
            rows=result.rows,
            snapshot_id=ctx.snapshot_id,
        )
        return result
    raise AssertionError("unreachable")

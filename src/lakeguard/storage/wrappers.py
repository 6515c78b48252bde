"""Wrappers that add retry, fault injection and a concurrency limit to any Store.

They stack (``open_store`` composes them in one place)::

    RetryStore(FaultStore(S3Store(...)))   # faults are injected below the retries

- ``RetryStore`` retries ``TransientError`` only (throttling, 5xx, resets,
  truncated bodies, an unreachable endpoint), with exponential backoff and full
  jitter. Not found, access denied, usage errors and cancellation propagate at
  once. A read stream cut mid-body is re-opened at the next byte, pinned to
  the version the first response came from, so a resumed read never mixes two
  versions. A put with an iterable body cannot be replayed and is tried once.
  A listing broken mid-way is listed again from its start and picks up after
  the last items it yielded, whatever order the store lists in.
- ``FaultStore`` (faults.py) injects failures, latency, cut and corrupted
  reads, for tests and drills.
- ``LimitStore`` bounds the calls (and open read streams) in flight.
"""

from __future__ import annotations

import builtins
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Self, TypeVar

from lakeguard.errors import StoreError, TransientError, UsageError
from lakeguard.storage.base import (
    DEFAULT_PART_SIZE,
    Capabilities,
    DeleteResult,
    GetBytesMixin,
    ObjectInfo,
    ObjectStream,
    PutResult,
    Store,
    read_buffer,
)

T = TypeVar("T")

# Items a resumed listing looks for again (see RetryStore._resumed).
RESUME_WINDOW = 64

OPS = frozenset(
    {
        "list",
        "list_versions",
        "list_prefixes",
        "head",
        "get",
        "put",
        "copy",
        "delete",
        "versioning",
        "set_versioning",
        "exists",
        "create",
    }
)


def unwrap(store: Store) -> Store:
    """The base store under any stack of wrappers (for server-side copies)."""
    while isinstance(store, StoreWrapper):
        store = store.inner
    return store


class StoreWrapper(GetBytesMixin):
    """Delegates every Store call to ``inner`` through ``_run``; subclasses hook in."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner

    def _run(self, op: str, key: str | None, call: Callable[[], T]) -> T:
        return call()

    def _iterate(self, op: str, key: str, make: Callable[[], Iterator[T]]) -> Iterator[T]:
        return self._run(op, key, make)

    @property
    def url(self) -> str:
        return self.inner.url

    @property
    def capabilities(self) -> Capabilities:
        return self.inner.capabilities

    def list(self, prefix: str = "", *, start_after: str | None = None) -> Iterator[ObjectInfo]:
        return self._iterate(
            "list", prefix, lambda: iter(self.inner.list(prefix, start_after=start_after))
        )

    def list_versions(self, prefix: str = "") -> Iterator[ObjectInfo]:
        return self._iterate(
            "list_versions", prefix, lambda: iter(self.inner.list_versions(prefix))
        )

    def list_prefixes(self, prefix: str = "") -> builtins.list[str]:
        return self._run("list_prefixes", prefix, lambda: self.inner.list_prefixes(prefix))

    def head(self, key: str, *, version_id: str | None = None) -> ObjectInfo:
        return self._run("head", key, lambda: self.inner.head(key, version_id=version_id))

    def get(
        self,
        key: str,
        *,
        version_id: str | None = None,
        offset: int = 0,
        length: int | None = None,
    ) -> ObjectStream:
        return self._run(
            "get",
            key,
            lambda: self.inner.get(key, version_id=version_id, offset=offset, length=length),
        )

    def put(
        self,
        key: str,
        data: bytes | memoryview | Iterable[bytes],
        *,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
        part_size: int = DEFAULT_PART_SIZE,
        etag: str | None = None,
    ) -> PutResult:
        return self._run(
            "put",
            key,
            lambda: self.inner.put(
                key,
                data,
                content_type=content_type,
                metadata=metadata,
                part_size=part_size,
                etag=etag,
            ),
        )

    def copy(
        self,
        src_key: str,
        dst_key: str,
        *,
        src_version_id: str | None = None,
        metadata: Mapping[str, str] | None = None,
        src_info: ObjectInfo | None = None,
    ) -> PutResult:
        return self._run(
            "copy",
            dst_key,
            lambda: self.inner.copy(
                src_key,
                dst_key,
                src_version_id=src_version_id,
                metadata=metadata,
                src_info=src_info,
            ),
        )

    def copy_from(
        self,
        source: Store,
        src_key: str,
        dst_key: str,
        *,
        src_version_id: str | None = None,
        src_info: ObjectInfo | None = None,
    ) -> PutResult:
        base = unwrap(source)
        return self._run(
            "copy",
            dst_key,
            lambda: self.inner.copy_from(
                base, src_key, dst_key, src_version_id=src_version_id, src_info=src_info
            ),
        )

    def delete(self, key: str, *, version_id: str | None = None) -> DeleteResult:
        return self._run("delete", key, lambda: self.inner.delete(key, version_id=version_id))

    def versioning(self) -> str | None:
        return self._run("versioning", None, self.inner.versioning)

    def set_versioning(self, enabled: bool) -> None:
        self._run("set_versioning", None, lambda: self.inner.set_versioning(enabled))

    def exists(self) -> bool:
        return self._run("exists", None, self.inner.exists)

    def create(self) -> None:
        self._run("create", None, self.inner.create)


class StreamBase:
    """Context-manager plumbing shared by the wrapping streams."""

    info: ObjectInfo

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# -- retry ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Attempts and backoff for transient errors: full jitter over an exponential cap."""

    attempts: int = 4
    fast: bool = False  # ~1 ms delays, for tests
    base_delay: float = 0.2
    max_delay: float = 10.0

    def delay(self, retry: int, rng: random.Random) -> float:
        """Seconds to wait before retry number ``retry`` (0-based)."""
        base, cap = (0.001, 0.005) if self.fast else (self.base_delay, self.max_delay)
        return rng.uniform(0, min(cap, base * (2**retry)))


class RetryStore(StoreWrapper):
    """Retries transient errors of ``inner``; ``retries`` counts the retries made."""

    def __init__(
        self,
        inner: Store,
        policy: RetryPolicy | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(inner)
        self.policy = policy or RetryPolicy()
        self._sleep = sleep
        self._rng = random.Random()
        self._lock = threading.Lock()
        self.retries = 0

    def backoff(self, retry: int) -> None:
        """Count one retry and wait before it."""
        with self._lock:
            self.retries += 1
            delay = self.policy.delay(retry, self._rng)
        self._sleep(delay)

    def _run(self, op: str, key: str | None, call: Callable[[], T]) -> T:
        retry = 0
        while True:
            try:
                return call()
            except TransientError:
                if retry + 1 >= max(1, self.policy.attempts):
                    raise
                self.backoff(retry)
                retry += 1

    def list(self, prefix: str = "", *, start_after: str | None = None) -> Iterator[ObjectInfo]:
        return self._resumed(prefix, lambda: self.inner.list(prefix, start_after=start_after))

    def list_versions(self, prefix: str = "") -> Iterator[ObjectInfo]:
        return self._resumed(prefix, lambda: self.inner.list_versions(prefix))

    def _resumed(
        self, prefix: str, make: Callable[[], Iterator[ObjectInfo]]
    ) -> Iterator[ObjectInfo]:
        """A listing that survives transient errors mid-way, in any listing order.

        Resuming with ``start_after`` the last key would assume the store lists
        in byte order and filters by it; SeaweedFS does neither reliably (its
        StartAfter both repeats and skips keys around ``a/x`` and ``a-b``), and
        a version listing has no marker to pass. So a broken listing is listed
        again from its start, and nothing is yielded until the last item
        yielded, (key, version id), has come by again; after it, items among
        the last ``RESUME_WINDOW`` yielded are skipped too (a key's versions
        can be reordered when a new one becomes current). The result keeps the
        store's order, so a key's versions stay together; items added meanwhile
        before that point are not seen, as with a paged listing.

        If the last item yielded was deleted meanwhile, the listing is read once
        more and resumes after the newest of the recent items still listed; if
        none of them is, the place is lost: StoreError.

        Cost: a break after N items re-reads those N (N/1,000 requests on S3)
        without yielding them. The attempts count again once a pass gets
        further than any before it, so a long listing with rare errors ends.
        """
        recent: deque[tuple[str, str | None]] = deque(maxlen=RESUME_WINDOW)
        resume_after: tuple[str, str | None] | None = None  # when not the last yielded
        reached = 0  # items the furthest pass got through
        retry = 0
        relocated = 0  # passes that did not find where to resume
        while True:
            members = tuple(recent)
            ring = {identity: index for index, identity in enumerate(members)}
            target = resume_after or (recent[-1] if recent else None)
            found = target is None
            newest = -1  # the newest recent item this pass has listed
            position = 0
            try:
                for info in make():
                    position += 1
                    if position > reached:
                        reached, retry = position, 0
                    identity = (info.key, info.version_id)
                    if not found:
                        newest = max(newest, ring.get(identity, -1))
                        found = identity == target
                    elif identity not in ring:
                        recent.append(identity)
                        resume_after = None
                        yield info
            except TransientError:
                if retry + 1 >= max(1, self.policy.attempts):
                    raise
                self.backoff(retry)
                retry += 1
                continue
            if found:
                return
            relocated += 1
            if newest < 0 or relocated > 2:  # gone, or the listing keeps changing
                raise StoreError(
                    f"cannot resume listing {self.url}/{prefix} after an error: the last "
                    "items it gave are no longer listed: run again",
                    op="list",
                    key=prefix or None,
                )
            resume_after = members[newest]

    def get(
        self,
        key: str,
        *,
        version_id: str | None = None,
        offset: int = 0,
        length: int | None = None,
    ) -> ObjectStream:
        first = self._run(
            "get",
            key,
            lambda: self.inner.get(key, version_id=version_id, offset=offset, length=length),
        )
        return _ResumingStream(self, key, version_id, offset, length, first)

    def put(
        self,
        key: str,
        data: bytes | memoryview | Iterable[bytes],
        *,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
        part_size: int = DEFAULT_PART_SIZE,
        etag: str | None = None,
    ) -> PutResult:
        def call() -> PutResult:
            return self.inner.put(
                key,
                data,
                content_type=content_type,
                metadata=metadata,
                part_size=part_size,
                etag=etag,
            )

        if isinstance(data, bytes | bytearray | memoryview):
            return self._run("put", key, call)
        return call()  # an iterable body is consumed by the first attempt


class _ResumingStream(StreamBase):
    """A read that re-opens after a transient error at the next unread byte."""

    def __init__(
        self,
        store: RetryStore,
        key: str,
        version_id: str | None,
        offset: int,
        length: int | None,
        first: ObjectStream,
    ) -> None:
        self.info = first.info
        self._store = store
        self._key = key
        # Pin the version the first response came from: a resumed read must
        # not continue with bytes of a newer version.
        self._version_id = first.info.version_id or version_id
        self._offset = offset
        self._length = length
        self._consumed = 0  # bytes handed out so far
        self._current = first

    def __iter__(self) -> Iterator[bytes]:
        retry = 0
        attempts = max(1, self._store.policy.attempts)
        while True:
            try:
                for chunk in self._current:
                    self._consumed += len(chunk)
                    retry = 0  # progress was made: the next cut gets fresh attempts
                    yield chunk
                return
            except TransientError:
                self._current.close()
                if retry + 1 >= attempts:
                    raise
                self._store.backoff(retry)
                retry += 1
                if not self._reopen_rest():
                    return

    def read_buffer(self) -> bytes | memoryview:
        """The rest of the body at once, when the inner stream can hand it over whole."""
        if not hasattr(self._current, "read_buffer"):
            return b"".join(self)  # chunk by chunk, resumed where a cut left it
        attempts = max(1, self._store.policy.attempts)
        for retry in range(attempts):
            try:
                return read_buffer(self._current)
            except TransientError:
                self._current.close()
                if retry + 1 >= attempts:
                    raise
                self._store.backoff(retry)
                if not self._reopen_rest():
                    return b""
        raise AssertionError("unreachable")

    def _reopen_rest(self) -> bool:
        """Open the unread rest of the range; False when nothing is left."""
        remaining = None if self._length is None else self._length - self._consumed
        if remaining == 0:
            return False
        self._current = self._reopen(self._offset + self._consumed, remaining)
        return True

    def _reopen(self, offset: int, length: int | None) -> ObjectStream:
        inner = self._store.inner
        stream = self._store._run(
            "get",
            self._key,
            lambda: inner.get(self._key, version_id=self._version_id, offset=offset, length=length),
        )
        before, after = self.info.etag, stream.info.etag
        if self._version_id is None and before and after and before != after:
            # Unversioned store: the object was replaced while we read it.
            stream.close()
            raise StoreError(
                f"{self._key} changed while it was being read (ETag {before} -> {after})",
                op="get",
                key=self._key,
            )
        return stream

    def close(self) -> None:
        self._current.close()


# -- concurrency limit ---------------------------------------------------------


class LimitStore(StoreWrapper):
    """At most ``max_in_flight`` calls at once; an open read stream holds its slot.

    A caller that opens more streams than slots from one thread would wait on
    itself: read and close streams one at a time per thread.
    """

    def __init__(self, inner: Store, max_in_flight: int) -> None:
        super().__init__(inner)
        if max_in_flight < 1:
            raise UsageError(f"max_in_flight must be at least 1, not {max_in_flight}")
        self._slots = threading.BoundedSemaphore(max_in_flight)

    def _run(self, op: str, key: str | None, call: Callable[[], T]) -> T:
        with self._slots:
            return call()

    def _iterate(self, op: str, key: str, make: Callable[[], Iterator[T]]) -> Iterator[T]:
        return self._limited(make)

    def _limited(self, make: Callable[[], Iterator[T]]) -> Iterator[T]:
        with self._slots:
            items = make()
        while True:
            with self._slots:
                try:
                    item = next(items)
                except StopIteration:
                    return
            yield item

    def get(
        self,
        key: str,
        *,
        version_id: str | None = None,
        offset: int = 0,
        length: int | None = None,
    ) -> ObjectStream:
        self._slots.acquire()
        try:
            stream = self.inner.get(key, version_id=version_id, offset=offset, length=length)
        except BaseException:
            self._slots.release()
            raise
        return _SlotStream(stream, self._slots)


class _SlotStream(StreamBase):
    """Releases its concurrency slot once, when closed or read to the end."""

    def __init__(self, inner: ObjectStream, slots: threading.BoundedSemaphore) -> None:
        self.info = inner.info
        self._inner = inner
        self._slots: threading.BoundedSemaphore | None = slots

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._inner
        finally:
            self.close()

    @property
    def read_buffer(self) -> Callable[[], bytes | memoryview]:
        """The inner stream's read_buffer (AttributeError when it has none), then close."""
        whole: Callable[[], bytes | memoryview] = self._inner.read_buffer  # type: ignore[attr-defined]

        def read() -> bytes | memoryview:
            try:
                return whole()
            finally:
                self.close()

        return read

    def close(self) -> None:
        self._inner.close()
        slots, self._slots = self._slots, None
        if slots is not None:
            slots.release()

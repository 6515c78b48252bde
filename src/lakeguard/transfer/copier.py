"""Copying one object, and checking what was copied.

Two ways, tried in this order:

    server-side   dst.copy (same store) or dst.copy_from(src) (same endpoint);
                  checked by the resulting ETag against the source's, and size
    streaming     src.get -> StreamHasher -> dst.put; small objects in one put
                  (read whole: they are below the part size), larger ones as a
                  generator of chunks the store uploads in parts

Checks on the bytes read (size, SHA-256 expected by the caller, the source's
ETag) run when the last chunk has been read and before the store completes
the upload: a failure there raises inside ``put``, which aborts the multipart
upload, so bad bytes are never committed. The ETag the store returns is then
compared with the MD5 (single part) or multipart ETag computed on the way.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace

from lakeguard.errors import (
    EndpointUnreachableError,
    LakeguardError,
    OperationalError,
    TransientError,
    UnsupportedError,
)
from lakeguard.hashing import StreamHasher, multipart_parts, strip_etag
from lakeguard.storage.base import DEFAULT_PART_SIZE, ObjectInfo, ObjectStream, PutResult, Store
from lakeguard.transfer.parts import adjust_part_size, source_part_size


class ChecksumMismatch(OperationalError):
    """Bytes read or written do not match their expected size, ETag or SHA-256."""


class TransferCancelled(LakeguardError):
    """The run was interrupted; in-flight uploads stop at their next chunk."""

    exit_code = 130


@dataclass(frozen=True, slots=True)
class CopyItem:
    """One object to copy. ``dst_key`` defaults to ``src_key``.

    ``size``, ``etag`` and ``sha256`` are what the caller expects the source to
    be (from a listing or a manifest); each one given is checked. ``metadata``
    and ``content_type`` replace the source's; by default they come along.
    ``size`` with ``storage_class`` (None: unknown) let a server-side copy
    skip its look-up of the source: one request per object instead of two.
    """

    src_key: str
    dst_key: str | None = None
    size: int | None = None
    src_version_id: str | None = None
    etag: str | None = None
    sha256: str | None = None
    content_type: str | None = None
    metadata: Mapping[str, str] | None = None
    storage_class: str | None = None

    @property
    def target(self) -> str:
        return self.src_key if self.dst_key is None else self.dst_key

    def listed(self) -> ObjectInfo | None:
        """What the item says of its source version, for a server-side copy."""
        if self.size is None:
            return None
        return ObjectInfo(
            key=self.src_key,
            size=self.size,
            etag=strip_etag(self.etag),
            version_id=self.src_version_id,
            storage_class=self.storage_class,
        )


@dataclass(frozen=True, slots=True)
class ItemResult:
    """What happened to one item. ``error`` is None when it was copied.

    ``verified``: the written object was checked (its ETag against the bytes
    sent, or against the source's ETag for a server-side copy); False when
    the store returned nothing comparable.
    """

    src_key: str
    dst_key: str
    bytes: int = 0
    sha256: str | None = None
    etag: str | None = None
    version_id: str | None = None
    server_side: bool = False
    verified: bool = False
    seconds: float = 0.0
    error: str | None = None
    exception: BaseException | None = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.error is None


def describe(exc: BaseException) -> str:
    """A one-line message for an item's failure."""
    if isinstance(exc, LakeguardError):
        return exc.message.splitlines()[0] if exc.message else type(exc).__name__
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _comparable(a: str, b: str) -> bool:
    """Two ETags of the same shape (both MD5s, or multipart with the same count)."""
    return multipart_parts(a) == multipart_parts(b) and (
        multipart_parts(a) > 0 or (len(a) == 32 and len(b) == 32)
    )


class Copier:
    """Copies single items from ``src`` to ``dst``; shared by the worker threads."""

    def __init__(
        self,
        src: Store,
        dst: Store,
        *,
        part_size: int | None = None,
        verify: bool = True,
        server_side: bool = True,
        attempts: int = 3,
        backoff: float = 0.2,
        cancel: threading.Event | None = None,
    ) -> None:
        self.src = src
        self.dst = dst
        self.part_size = part_size
        self.verify = verify
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self.cancel = cancel or threading.Event()
        self._same = src is dst
        # Cleared for the rest of the run once copy_from says the stores cannot
        # copy server-side: no point asking again for every object.
        self._server_side = (
            server_side and dst.capabilities.server_side_copy and src.capabilities.server_side_copy
        )
        self._lock = threading.Lock()
        self.retries = 0  # whole-item retries (a cut stream cannot be retried below)

    # -- one item, with retries --------------------------------------------------

    def run(self, item: CopyItem) -> ItemResult:
        """Copy one item; never raises for the item's own failure (see ``error``)."""
        started = time.monotonic()
        attempt = 1
        while True:
            try:
                if self.cancel.is_set():
                    raise TransferCancelled("interrupted before this object was copied")
                result = self.copy_once(item)
                return _with_time(result, started)
            except (TransientError, ChecksumMismatch) as exc:
                # RetryStore already retried each call; what remains is a body cut
                # mid-stream or bytes that changed in flight: worth one more copy.
                # An endpoint that is down is not: the store has waited long enough.
                if (
                    attempt >= self.attempts
                    or isinstance(exc, EndpointUnreachableError)
                    or self.cancel.is_set()
                ):
                    return self._failed(item, exc, started)
                with self._lock:
                    self.retries += 1
                delay = self.backoff * (2 ** (attempt - 1))
                self.cancel.wait(random.uniform(delay / 2, delay))
                attempt += 1
            except Exception as exc:
                return self._failed(item, exc, started)

    @staticmethod
    def _failed(item: CopyItem, exc: BaseException, started: float) -> ItemResult:
        return ItemResult(
            item.src_key,
            item.target,
            seconds=time.monotonic() - started,
            error=describe(exc),
            exception=exc,
        )

    def copy_once(self, item: CopyItem) -> ItemResult:
        """Copy one item once; raises on failure."""
        if self._server_side and (self._same or item.metadata is None):
            try:
                return self._server_side_copy(item)
            except UnsupportedError:
                if self._same:
                    raise
                self._server_side = False
        return self._stream_copy(item)

    # -- server-side -------------------------------------------------------------

    def _server_side_copy(self, item: CopyItem) -> ItemResult:
        if self._same:
            put = self.dst.copy(
                item.src_key,
                item.target,
                src_version_id=item.src_version_id,
                metadata=item.metadata,
                src_info=item.listed(),
            )
        else:
            put = self.dst.copy_from(
                self.src,
                item.src_key,
                item.target,
                src_version_id=item.src_version_id,
                src_info=item.listed(),
            )
        size = put.size if put.size or item.size is None else item.size
        verified = False
        if self.verify:
            where = f"{self.dst.url}/{item.target}"
            if item.size is not None and put.size and put.size != item.size:
                raise ChecksumMismatch(
                    f"server-side copy to {where} has {put.size:,} bytes, the source {item.size:,}"
                )
            written, expected = strip_etag(put.etag), strip_etag(item.etag)
            if written and expected and _comparable(written, expected):
                if written != expected:
                    raise ChecksumMismatch(
                        f"server-side copy to {where} has ETag {written}, "
                        f"the source {expected}: the copy differs from its source"
                    )
                verified = True
        return ItemResult(
            item.src_key,
            item.target,
            bytes=size,
            sha256=item.sha256,
            etag=strip_etag(put.etag),
            version_id=put.version_id,
            server_side=True,
            verified=verified,
        )

    # -- streaming ---------------------------------------------------------------

    def _stream_copy(self, item: CopyItem) -> ItemResult:
        with self.src.get(item.src_key, version_id=item.src_version_id) as stream:
            info = stream.info
            size = info.size
            where = f"{self.src.url}/{item.src_key}"
            if item.size is not None and item.size != size:
                raise ChecksumMismatch(
                    f"{where} has {size:,} bytes, {item.size:,} expected: "
                    "it changed since it was listed"
                )
            source_etag = strip_etag(item.etag or info.etag)
            part = self._part_size_for(size, source_etag)
            multipart = size > part
            hasher = self._hasher(part, multipart, source_etag)
            checked = _Checked(stream, hasher, size, item, source_etag, where, self)
            content_type = item.content_type or info.content_type
            metadata = item.metadata if item.metadata is not None else info.metadata
            body: bytes | Iterator[bytes]
            # Below the part size the object fits one request: read it whole (it
            # is small) so the store makes one plain PUT with a known length.
            body = b"".join(checked) if not multipart else iter(checked)
            put = self.dst.put(
                item.target,
                body,
                content_type=content_type,
                metadata=metadata,
                part_size=part,
            )
        verified = self._check_written(put, hasher, item, part if multipart else None)
        return ItemResult(
            item.src_key,
            item.target,
            bytes=size,
            sha256=hasher.sha256,
            etag=strip_etag(put.etag),
            version_id=put.version_id,
            server_side=False,
            verified=verified,
        )

    def _part_size_for(self, size: int, source_etag: str | None) -> int:
        if self.part_size is not None:
            return adjust_part_size(size, self.part_size)
        inferred = source_part_size(source_etag, size)
        return adjust_part_size(size, inferred or DEFAULT_PART_SIZE)

    def _hasher(self, part: int, multipart: bool, source_etag: str | None) -> StreamHasher:
        """Only the digests some check will use: MD5 costs as much as a copy on
        a slow core, so a multipart upload to S3 of a multipart source skips
        the whole-object MD5, and a single put skips the per-part one."""
        if not self.verify:
            return StreamHasher(sha256=True, md5=False)
        source_single = bool(source_etag) and not multipart_parts(source_etag)
        store_parts = multipart and self.dst.capabilities.multipart
        md5 = not multipart or not store_parts or source_single
        per_part = multipart and (store_parts or multipart_parts(source_etag) > 0)
        return StreamHasher(sha256=True, md5=md5, part_sizes=[part] if per_part else [])

    def _check_written(
        self, put: PutResult, hasher: StreamHasher, item: CopyItem, part: int | None
    ) -> bool:
        written = strip_etag(put.etag)
        if not self.verify or not written:
            return False
        computed: str | None = None
        if multipart_parts(written):
            etags = hasher.multipart_etags()
            computed = etags[0] if etags else None
        elif len(written) == 32:
            computed = _md5_of(hasher)
        if computed is None or not _comparable(written, computed):
            return False
        if written != computed:
            how = f"multipart ETag, parts of {part:,} bytes" if part else "MD5"
            raise ChecksumMismatch(
                f"{self.dst.url}/{item.target} was written with ETag {written} but the "
                f"bytes sent give {computed} ({how}): the stored object is not what was sent"
            )
        return True


class _Checked:
    """The source's chunks, hashed on the way; checks the whole once it has been read."""

    def __init__(
        self,
        stream: ObjectStream,
        hasher: StreamHasher,
        size: int,
        item: CopyItem,
        source_etag: str | None,
        where: str,
        copier: Copier,
    ) -> None:
        self._stream = stream
        self._hasher = hasher
        self._size = size
        self._item = item
        self._source_etag = source_etag
        self._where = where
        self._copier = copier

    def __iter__(self) -> Iterator[bytes]:
        hasher, cancel = self._hasher, self._copier.cancel
        for chunk in self._stream:
            if cancel.is_set():
                # Raised inside the store's put: it aborts the multipart upload.
                raise TransferCancelled(f"interrupted while copying {self._where}")
            hasher.update(chunk)
            if hasher.size > self._size:
                raise ChecksumMismatch(
                    f"{self._where} gave more than the {self._size:,} bytes it announced"
                )
            yield chunk
        self._check_source()

    def _check_source(self) -> None:
        hasher = self._hasher
        if hasher.size != self._size:
            raise TransientError(
                f"reading {self._where} stopped after {hasher.size:,} of {self._size:,} bytes",
                op="get",
                key=self._item.src_key,
            )
        if self._item.sha256 and hasher.sha256 != self._item.sha256.lower():
            raise ChecksumMismatch(
                f"{self._where} has SHA-256 {hasher.sha256}, {self._item.sha256} expected: "
                "the source is not the object that was recorded"
            )
        if not self._copier.verify or not self._source_etag:
            return
        expected = self._source_etag
        computed: str | None = None
        if multipart_parts(expected):
            etags = hasher.multipart_etags()
            computed = etags[0] if etags else None
        elif len(expected) == 32:
            computed = _md5_of(hasher)
        if computed and _comparable(expected, computed) and computed != expected:
            raise ChecksumMismatch(
                f"bytes read from {self._where} give ETag {computed}, the store says "
                f"{expected}: the object is damaged or changed while being read"
            )


def _md5_of(hasher: StreamHasher) -> str | None:
    try:
        return hasher.md5
    except ValueError:  # not computed: no check needed it
        return None


def _with_time(result: ItemResult, started: float) -> ItemResult:
    return replace(result, seconds=time.monotonic() - started)

"""The Store protocol: the one interface every storage backend implements.

Contract (every store, including the in-memory one, passes the shared suite in
``tests/storage_suite.py``):

- Keys are strings relative to the store's root (the bucket, or the directory).
  A key is data, never a path: a local store refuses keys that would escape
  its root (``..`` segments, leading ``/``, NUL bytes) with ``UsageError``.
- Listings stream in lexicographic key order and are paginated internally; a
  caller never holds a whole listing. ``list_versions`` yields, per key, the
  newest version first (the store's own version order), delete markers
  included, ``is_latest`` set on the current one.
- Reads (``head``, ``get``, ``list*``) are idempotent and may be retried.
- ``NotFoundError`` means the object or version does not exist;
  ``BucketNotFoundError`` the bucket or root; ``AccessDeniedError`` bad or
  missing credentials. These are permanent: never retried.
  ``TransientError`` (throttling, 5xx, resets, truncated bodies) may be.
- ``put`` is atomic: readers see the whole new object or the old one. With an
  iterable body it streams, using a multipart upload of ``part_size`` parts
  when the store has them; an incomplete upload is aborted on failure.
  ``etag`` is the ETag the body's source served it with, when the caller
  checks the body by other means (a restore checks SHA-256): a store that
  keeps ETags of its own (a local directory) records it instead of hashing
  every byte again, a multipart ``<md5>-<parts>`` ETag included. S3 ignores
  it (the server computes its own).
- ``copy`` is server-side (``capabilities.server_side_copy``) and can copy a
  given version; ``copy_from`` copies from another store when both live on one
  endpoint, else raises ``UnsupportedError`` (the transfer engine then streams).
  Both take ``src_info``, what the caller already knows of the source version
  (from a listing): a store may then skip its own look-up of the source.
- ``delete`` without a version id on a versioned store places a delete marker;
  with one it removes that version (or marker) for good.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Protocol, runtime_checkable

# S3 limits that shape multipart arithmetic.
MIN_PART_SIZE = 5 * 1024 * 1024
MAX_PART_SIZE = 5 * 1024 * 1024 * 1024
MAX_PARTS = 10_000
MAX_SINGLE_COPY = 5 * 1024 * 1024 * 1024
DEFAULT_PART_SIZE = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Capabilities:
    versioning: bool = False
    server_side_copy: bool = False
    ranged_reads: bool = True
    multipart: bool = False
    checksums: bool = False  # the store can keep and return a SHA-256 per object


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """One object, one version, or one delete marker.

    ``etag`` has no quotes. ``checksum_sha256`` is the hex SHA-256 of the whole
    object when the store knows it (never a composite multipart checksum).
    ``content_type`` and ``metadata`` are filled by ``head`` and ``get``, not
    by listings.
    """

    key: str
    size: int
    etag: str | None = None
    last_modified: datetime | None = None
    version_id: str | None = None
    is_latest: bool = True
    is_delete_marker: bool = False
    storage_class: str | None = None
    checksum_sha256: str | None = None
    content_type: str | None = None
    metadata: Mapping[str, str] | None = None


@dataclass(frozen=True, slots=True)
class PutResult:
    key: str
    etag: str | None
    version_id: str | None = None
    size: int = 0


@dataclass(frozen=True, slots=True)
class DeleteResult:
    key: str
    version_id: str | None = None  # the marker's id, or the id that was removed
    delete_marker: bool = False


class ObjectStream(Protocol):
    """An open object body: iterate for chunks, close when done.

    ``info`` describes the version being read (its ``version_id`` pins it, so
    a resumed read never mixes two versions).
    """

    info: ObjectInfo

    def __iter__(self) -> Iterator[bytes]: ...

    def close(self) -> None: ...

    def __enter__(self) -> ObjectStream: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


@runtime_checkable
class Store(Protocol):
    """A bucket-like namespace of keys. See the module docstring for the contract."""

    @property
    def url(self) -> str:
        """Where this store points, for messages (``s3://bucket``, ``/data/x``)."""
        ...

    @property
    def capabilities(self) -> Capabilities: ...

    def list(self, prefix: str = "", *, start_after: str | None = None) -> Iterator[ObjectInfo]:
        """Current objects under ``prefix``, in key order."""
        ...

    def list_versions(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every version and delete marker under ``prefix``: key order, newest first per key.

        A store without versioning yields its current objects with
        ``version_id=None``.
        """
        ...

    def list_prefixes(self, prefix: str = "") -> builtins.list[str]:
        """The common prefixes one ``/`` level below ``prefix`` (each ending in ``/``)."""
        ...

    def head(self, key: str, *, version_id: str | None = None) -> ObjectInfo: ...

    def get(
        self,
        key: str,
        *,
        version_id: str | None = None,
        offset: int = 0,
        length: int | None = None,
    ) -> ObjectStream:
        """Open a streaming read, the whole object or ``length`` bytes from ``offset``."""
        ...

    def get_bytes(
        self,
        key: str,
        *,
        version_id: str | None = None,
        offset: int = 0,
        length: int | None = None,
    ) -> bytes:
        """Read a small object or range into memory."""
        ...

    def put(
        self,
        key: str,
        data: bytes | memoryview | Iterable[bytes],
        *,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
        part_size: int = DEFAULT_PART_SIZE,
        etag: str | None = None,
    ) -> PutResult: ...

    def copy(
        self,
        src_key: str,
        dst_key: str,
        *,
        src_version_id: str | None = None,
        metadata: Mapping[str, str] | None = None,
        src_info: ObjectInfo | None = None,
    ) -> PutResult:
        """Server-side copy within this store (a new version on top when versioned).

        Content type, user metadata and storage class come along unless
        ``metadata`` replaces the user metadata.

        ``src_info``: what the caller already knows of the source version (a
        listed ``ObjectInfo`` of ``src_key``, of ``src_version_id`` when one is
        given); a store may skip its own look-up. A ``storage_class`` of None
        means unknown, not STANDARD. The result's ``size`` is then the one given.
        """
        ...

    def copy_from(
        self,
        source: Store,
        src_key: str,
        dst_key: str,
        *,
        src_version_id: str | None = None,
        src_info: ObjectInfo | None = None,
    ) -> PutResult:
        """Server-side copy from another store on the same endpoint, else UnsupportedError.

        ``src_info`` as for ``copy``: what the caller already knows of the source.
        """
        ...

    def delete(self, key: str, *, version_id: str | None = None) -> DeleteResult: ...

    def versioning(self) -> str | None:
        """``"Enabled"``, ``"Suspended"``, or None when versioning was never enabled."""
        ...

    def set_versioning(self, enabled: bool) -> None: ...

    def exists(self) -> bool:
        """Whether the bucket (or root directory) exists."""
        ...

    def create(self) -> None:
        """Create the bucket (or root directory); no error if it exists."""
        ...


class GetBytesMixin:
    """``get_bytes`` for every store: ``get`` read into memory (small objects only)."""

    def get(
        self,
        key: str,
        *,
        version_id: str | None = None,
        offset: int = 0,
        length: int | None = None,
    ) -> ObjectStream:
        raise NotImplementedError

    def get_bytes(
        self,
        key: str,
        *,
        version_id: str | None = None,
        offset: int = 0,
        length: int | None = None,
    ) -> bytes:
        with self.get(key, version_id=version_id, offset=offset, length=length) as stream:
            return b"".join(stream)


@dataclass(slots=True)
class BytesStream:
    """An ``ObjectStream`` over chunks already produced by an iterator."""

    info: ObjectInfo
    chunks: Iterator[bytes]
    _closer: object = field(default=None, repr=False)

    def __iter__(self) -> Iterator[bytes]:
        return self.chunks

    def close(self) -> None:
        close = getattr(self._closer, "close", None)
        if callable(close):
            close()

    def __enter__(self) -> BytesStream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def read_all(stream: ObjectStream) -> bytes:
    with stream:
        return b"".join(stream)


def read_buffer(stream: ObjectStream) -> bytes | memoryview:
    """The rest of ``stream`` as one buffer (the caller closes the stream).

    A stream that can hand its body over without copying it chunk by chunk
    has a ``read_buffer()`` method (S3 through obstore, and the wrappers
    around such a stream); any other is joined.
    """
    whole = getattr(stream, "read_buffer", None)
    if whole is not None:
        result: bytes | memoryview = whole()
        return result
    return b"".join(stream)


def chunked(data: bytes, size: int = 1024 * 1024) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]

"""MemoryStore: an in-memory, optionally versioned store for tests.

It follows S3's versioning rules closely enough that history and point-in-time
logic can be unit-tested on it: never-enabled (version id None), Enabled (a
new id per write, delete markers), Suspended (writes replace the ``null``
version). Its clock is injectable so tests control ``last_modified``.
"""

from __future__ import annotations

import builtins
import hashlib
import itertools
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import ClassVar

from lakeguard.errors import BucketNotFoundError, NotFoundError, UnsupportedError
from lakeguard.hashing import multipart_parts
from lakeguard.storage.base import (
    DEFAULT_PART_SIZE,
    BytesStream,
    Capabilities,
    DeleteResult,
    GetBytesMixin,
    ObjectInfo,
    ObjectStream,
    PutResult,
    Store,
    chunked,
)

NULL_VERSION = "null"


@dataclass(slots=True)
class _Version:
    version_id: str
    data: bytes | None  # None: a delete marker
    etag: str | None
    last_modified: datetime
    content_type: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    parts: int = 0  # > 0: written by a multipart upload of that many parts


def _multipart_etag(data: bytes, part_size: int) -> tuple[str, int]:
    digests = [
        hashlib.md5(data[i : i + part_size]).digest() for i in range(0, len(data), part_size)
    ]
    return f"{hashlib.md5(b''.join(digests)).hexdigest()}-{len(digests)}", len(digests)


class MemoryStore(GetBytesMixin):
    """A dict of keys to version stacks (oldest first), guarded by a lock."""

    _named: ClassVar[dict[str, MemoryStore]] = {}
    _named_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self,
        name: str = "memory",
        *,
        versioning: str | None = None,
        clock: Callable[[], datetime] | None = None,
        multipart_threshold: int | None = None,
    ) -> None:
        self.name = name
        self._versioning = versioning
        self._clock = clock or (lambda: datetime.now(UTC))
        self._objects: dict[str, list[_Version]] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._exists = True
        # Bodies given as iterables and larger than this get a multipart ETag,
        # as S3 would give them; None: like S3, any iterable body above part_size.
        self._multipart_threshold = multipart_threshold

    @classmethod
    def named(cls, name: str) -> MemoryStore:
        """The process-wide store called ``name`` (for ``memory://name`` locations)."""
        with cls._named_lock:
            if name not in cls._named:
                cls._named[name] = cls(name)
            return cls._named[name]

    @classmethod
    def forget_all(cls) -> None:
        with cls._named_lock:
            cls._named.clear()

    @property
    def url(self) -> str:
        return f"memory://{self.name}"

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(
            versioning=True, server_side_copy=True, ranged_reads=True, multipart=True
        )

    # -- helpers ---------------------------------------------------------------

    def _check_exists(self) -> None:
        if not self._exists:
            raise BucketNotFoundError(f"bucket {self.url} does not exist", op="access")

    def _new_id(self) -> str:
        if self._versioning == "Enabled":
            # Zero-padded so that ids sort in write order, as a reader might expect.
            return f"v{next(self._ids):012d}"
        return NULL_VERSION

    def _public_id(self, version_id: str) -> str | None:
        return None if self._versioning is None and version_id == NULL_VERSION else version_id

    def _info(self, key: str, version: _Version, latest: bool, full: bool = False) -> ObjectInfo:
        return ObjectInfo(
            key=key,
            size=len(version.data) if version.data is not None else 0,
            etag=version.etag,
            last_modified=version.last_modified,
            version_id=self._public_id(version.version_id),
            is_latest=latest,
            is_delete_marker=version.data is None,
            storage_class="STANDARD" if version.data is not None else None,
            checksum_sha256=None,
            content_type=version.content_type if full else None,
            metadata=dict(version.metadata) if full else None,
        )

    def _find(self, key: str, version_id: str | None) -> tuple[_Version, bool]:
        stack = self._objects.get(key)
        if not stack:
            raise NotFoundError(f"{self.url}/{key} does not exist", op="head", key=key)
        if version_id is None:
            current = stack[-1]
            if current.data is None:
                raise NotFoundError(f"{self.url}/{key} is deleted", op="head", key=key)
            return current, True
        wanted = NULL_VERSION if version_id in ("null", "") else version_id
        for index, version in enumerate(stack):
            if version.version_id == wanted:
                return version, index == len(stack) - 1
        raise NotFoundError(f"{self.url}/{key} has no version {version_id}", op="head", key=key)

    def _push(self, key: str, version: _Version) -> None:
        stack = self._objects.setdefault(key, [])
        if version.version_id == NULL_VERSION:
            stack[:] = [v for v in stack if v.version_id != NULL_VERSION]
        stack.append(version)

    # -- reads -----------------------------------------------------------------

    def list(self, prefix: str = "", *, start_after: str | None = None) -> Iterator[ObjectInfo]:
        self._check_exists()
        with self._lock:
            keys = sorted(k for k in self._objects if k.startswith(prefix))
        for key in keys:
            if start_after is not None and key <= start_after:
                continue
            with self._lock:
                stack = self._objects.get(key)
                current = stack[-1] if stack else None
            if current is not None and current.data is not None:
                yield self._info(key, current, True)

    def list_versions(self, prefix: str = "") -> Iterator[ObjectInfo]:
        self._check_exists()
        with self._lock:
            keys = sorted(k for k in self._objects if k.startswith(prefix))
        for key in keys:
            with self._lock:
                stack = list(self._objects.get(key, []))
            for index in range(len(stack) - 1, -1, -1):
                yield self._info(key, stack[index], index == len(stack) - 1)

    def list_prefixes(self, prefix: str = "") -> builtins.list[str]:
        self._check_exists()
        found: set[str] = set()
        with self._lock:
            for key, stack in self._objects.items():
                if not key.startswith(prefix) or not stack:
                    continue
                rest = key[len(prefix) :]
                if "/" in rest:
                    found.add(prefix + rest.split("/", 1)[0] + "/")
        return sorted(found)

    def head(self, key: str, *, version_id: str | None = None) -> ObjectInfo:
        self._check_exists()
        with self._lock:
            version, latest = self._find(key, version_id)
            if version.data is None:
                raise NotFoundError(f"{self.url}/{key} version is a delete marker", key=key)
            return self._info(key, version, latest, full=True)

    def get(
        self,
        key: str,
        *,
        version_id: str | None = None,
        offset: int = 0,
        length: int | None = None,
    ) -> ObjectStream:
        info = self.head(key, version_id=version_id)
        with self._lock:
            version, _ = self._find(key, info.version_id or version_id)
        data = version.data or b""
        end = len(data) if length is None else min(len(data), offset + length)
        return BytesStream(info, chunked(data[offset:end], 256 * 1024))

    # -- writes ----------------------------------------------------------------

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
        self._check_exists()
        streamed = not isinstance(data, bytes | bytearray | memoryview)
        body = bytes(data) if not streamed else b"".join(data)  # type: ignore[arg-type]
        threshold = part_size if self._multipart_threshold is None else self._multipart_threshold
        if etag:
            parts = multipart_parts(etag)
        elif streamed and len(body) > threshold:
            etag, parts = _multipart_etag(body, part_size)
        else:
            etag, parts = hashlib.md5(body).hexdigest(), 0
        with self._lock:
            version = _Version(
                version_id=self._new_id(),
                data=body,
                etag=etag,
                last_modified=self._clock(),
                content_type=content_type,
                metadata=dict(metadata or {}),
                parts=parts,
            )
            self._push(key, version)
        return PutResult(key, etag, self._public_id(version.version_id), len(body))

    def copy(
        self,
        src_key: str,
        dst_key: str,
        *,
        src_version_id: str | None = None,
        metadata: Mapping[str, str] | None = None,
        src_info: ObjectInfo | None = None,
    ) -> PutResult:
        # src_info saves nothing here: the source version is at hand.
        self._check_exists()
        with self._lock:
            source, _ = self._find(src_key, src_version_id)
            if source.data is None:
                raise NotFoundError(f"{self.url}/{src_key} is a delete marker", key=src_key)
            version = replace(
                source,
                version_id=self._new_id(),
                last_modified=self._clock(),
                metadata=dict(metadata) if metadata is not None else dict(source.metadata),
            )
            self._push(dst_key, version)
        return PutResult(
            dst_key, version.etag, self._public_id(version.version_id), len(source.data)
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
        if source is self:
            return self.copy(src_key, dst_key, src_version_id=src_version_id)
        if not isinstance(source, MemoryStore):
            raise UnsupportedError(f"cannot copy server-side from {source.url} to {self.url}")
        with source._lock:
            original, _ = source._find(src_key, src_version_id)
        if original.data is None:
            raise NotFoundError(f"{source.url}/{src_key} is a delete marker", key=src_key)
        self._check_exists()
        with self._lock:
            version = replace(original, version_id=self._new_id(), last_modified=self._clock())
            self._push(dst_key, version)
        return PutResult(
            dst_key, version.etag, self._public_id(version.version_id), len(original.data)
        )

    def delete(self, key: str, *, version_id: str | None = None) -> DeleteResult:
        self._check_exists()
        with self._lock:
            stack = self._objects.get(key, [])
            if version_id is not None:
                wanted = NULL_VERSION if version_id in ("null", "") else version_id
                kept = [v for v in stack if v.version_id != wanted]
                removed = next((v for v in stack if v.version_id == wanted), None)
                if kept:
                    self._objects[key] = kept
                else:
                    self._objects.pop(key, None)
                return DeleteResult(
                    key, version_id, delete_marker=removed is not None and removed.data is None
                )
            if self._versioning is None:
                self._objects.pop(key, None)
                return DeleteResult(key, None, delete_marker=False)
            marker = _Version(self._new_id(), None, None, self._clock())
            self._push(key, marker)
            return DeleteResult(key, marker.version_id, delete_marker=True)

    # -- bucket ----------------------------------------------------------------

    def versioning(self) -> str | None:
        self._check_exists()
        return self._versioning

    def set_versioning(self, enabled: bool) -> None:
        self._check_exists()
        self._versioning = (
            "Enabled" if enabled else ("Suspended" if self._versioning is not None else None)
        )

    def exists(self) -> bool:
        return self._exists

    def create(self) -> None:
        self._exists = True

    def drop(self) -> None:
        """Make the bucket vanish (tests of 'bucket does not exist')."""
        with self._lock:
            self._objects.clear()
            self._exists = False

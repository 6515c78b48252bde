"""Helpers for the backup, restore and archive tests: lakes, repositories, counting stores."""

from __future__ import annotations

import hashlib
import os
import random
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path

from lakeguard.location import Location, parse_location
from lakeguard.repository.repo import Repository, init_repository
from lakeguard.storage.base import DEFAULT_PART_SIZE, ObjectInfo, ObjectStream, PutResult, Store
from lakeguard.storage.memory import MemoryStore
from lakeguard.storage.wrappers import StoreWrapper


class CountingStore(StoreWrapper):
    """Counts GETs and the bytes they return, per key prefix."""

    def __init__(self, inner: Store) -> None:
        super().__init__(inner)
        self.gets = 0
        self.bytes_read = 0
        self.ranges: list[tuple[str, int, int | None]] = []
        self.puts: list[str] = []
        self.read_by_key: dict[str, int] = {}
        self._lock = threading.Lock()

    def get(
        self,
        key: str,
        *,
        version_id: str | None = None,
        offset: int = 0,
        length: int | None = None,
    ) -> ObjectStream:
        stream = self.inner.get(key, version_id=version_id, offset=offset, length=length)
        with self._lock:
            self.gets += 1
            self.ranges.append((key, offset, length))
        return _Counted(stream, self, key)

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
        with self._lock:
            self.puts.append(key)
        return self.inner.put(
            key, data, content_type=content_type, metadata=metadata, part_size=part_size, etag=etag
        )

    def add(self, key: str, nbytes: int) -> None:
        with self._lock:
            self.bytes_read += nbytes
            self.read_by_key[key] = self.read_by_key.get(key, 0) + nbytes

    def read_under(self, prefix: str) -> int:
        return sum(n for key, n in self.read_by_key.items() if key.startswith(prefix))


class _Counted:
    def __init__(self, inner: ObjectStream, counter: CountingStore, key: str) -> None:
        self.inner = inner
        self.key = key
        self.info: ObjectInfo = inner.info
        self.counter = counter

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.inner:
            self.counter.add(self.key, len(chunk))
            yield chunk

    def close(self) -> None:
        self.inner.close()

    def __enter__(self) -> _Counted:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class FailingStore(StoreWrapper):
    """Raises ``make_error(key)`` for GETs (or PUTs) of keys the predicate selects."""

    def __init__(
        self,
        inner: Store,
        *,
        fail_get: Callable[[str], bool] = lambda key: False,
        fail_put: Callable[[str], bool] = lambda key: False,
        make_error: Callable[[str], BaseException],
    ) -> None:
        super().__init__(inner)
        self.fail_get = fail_get
        self.fail_put = fail_put
        self.make_error = make_error

    def get(
        self,
        key: str,
        *,
        version_id: str | None = None,
        offset: int = 0,
        length: int | None = None,
    ) -> ObjectStream:
        if self.fail_get(key):
            raise self.make_error(key)
        return self.inner.get(key, version_id=version_id, offset=offset, length=length)

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
        if self.fail_put(key):
            raise self.make_error(key)
        return self.inner.put(
            key, data, content_type=content_type, metadata=metadata, part_size=part_size, etag=etag
        )


def make_lake(name: str = "lake", *, objects: int = 40, seed: int = 7) -> dict[str, bytes]:
    """A memory lake under ``t/``: partitioned, compressible and random objects, one empty."""
    rng = random.Random(seed)
    store = MemoryStore.named(name)
    data: dict[str, bytes] = {}
    for index in range(objects):
        day = index % 4 + 1
        if index % 3 == 0:
            body = rng.randbytes(rng.randrange(100, 40_000))
        else:
            body = (f"row {index};" * rng.randrange(10, 3000)).encode()
        data[f"dt=2026-02-0{day}/part-{index:03d}.csv"] = body
    data["dt=2026-02-01/_SUCCESS"] = b""
    for key, body in data.items():
        store.put(f"t/{key}", body, content_type="text/csv", metadata={"writer": "spark", "n": "1"})
    return data


def new_repo(tmp_path: Path, name: str = "repo") -> Repository:
    """A repository in a local directory."""
    from lakeguard.storage import open_store

    location = parse_location(str(tmp_path / name))
    return init_repository(open_store(location), location).repository


def lake_location(name: str = "lake") -> Location:
    return parse_location(f"memory://{name}/t")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def store_bytes(store: Store, prefix: str = "") -> dict[str, bytes]:
    return {info.key: store.get_bytes(info.key) for info in store.list(prefix)}


def random_bytes(size: int, seed: int = 1) -> bytes:
    if size <= 1 << 20:
        return random.Random(seed).randbytes(size)
    return os.urandom(size)

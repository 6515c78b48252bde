"""Inventories: a listing of a location at a moment, written as Parquet.

    take_inventory(store, location, output=...)
        list_chunks (one chain, or pieces side by side: see listing.py) -> or list_versions
        -> column buffers of up to ROWS_PER_BATCH rows -> ParquetWriter (one row group each)
        -> FILE.partial, renamed to FILE once complete

Memory is bounded by one batch plus the listing's look-ahead, whatever the size
of the lake. Rows are written in the store's listing order (UTF-8 byte order on
S3; folders first on stores built on a file tree), versions of one key
together, newest first. Readers must not rely on an order: ``verify`` joins by
key. The Parquet key-value metadata records the location, its prefix, when the
listing started, and whether versions were listed.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from lakeguard.errors import UsageError
from lakeguard.location import Location
from lakeguard.ops.listing import CHUNK, list_chunks
from lakeguard.storage.base import ObjectInfo, Store
from lakeguard.timeparse import iso

if TYPE_CHECKING:
    import pyarrow as pa

ProgressCallback = Callable[[int, int], None]

ROWS_PER_BATCH = 50_000
FORMAT_VERSION = "1"
COLUMNS = (
    "key",
    "size",
    "etag",
    "last_modified",
    "version_id",
    "is_latest",
    "is_delete_marker",
    "storage_class",
    "checksum_sha256",
)
# An inventory from elsewhere (S3 Inventory, another tool) is usable with these;
# the other columns default to "current object".
REQUIRED_COLUMNS = ("key", "size", "etag")
META_LOCATION = b"lakeguard.location"
META_PREFIX = b"lakeguard.prefix"
META_TAKEN_AT = b"lakeguard.taken_at"
META_VERSIONS = b"lakeguard.versions"
META_FORMAT = b"lakeguard.format"


@dataclass(frozen=True, slots=True)
class InventoryResult:
    objects: int  # object versions (current objects unless versions were listed)
    bytes: int
    delete_markers: int
    seconds: float
    path: Path

    def to_json(self) -> dict[str, Any]:
        return {
            "objects": self.objects,
            "bytes": self.bytes,
            "delete_markers": self.delete_markers,
            "seconds": round(self.seconds, 3),
            "path": str(self.path),
        }


def schema() -> pa.Schema:
    import pyarrow as pa

    return pa.schema(
        [
            pa.field("key", pa.string(), nullable=False),
            pa.field("size", pa.int64()),
            pa.field("etag", pa.string()),
            pa.field("last_modified", pa.timestamp("us", tz="UTC")),
            pa.field("version_id", pa.string()),
            pa.field("is_latest", pa.bool_()),
            pa.field("is_delete_marker", pa.bool_()),
            pa.field("storage_class", pa.string()),
            pa.field("checksum_sha256", pa.string()),
        ]
    )


class _Columns:
    """Column buffers for one batch of rows."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.data: dict[str, list[Any]] = {name: [] for name in COLUMNS}
        self.rows = 0

    def extend(self, chunk: list[ObjectInfo]) -> None:
        data = self.data
        data["key"].extend([o.key for o in chunk])
        data["size"].extend([o.size for o in chunk])
        data["etag"].extend([o.etag for o in chunk])
        data["last_modified"].extend([o.last_modified for o in chunk])
        data["version_id"].extend([o.version_id for o in chunk])
        data["is_latest"].extend([o.is_latest for o in chunk])
        data["is_delete_marker"].extend([o.is_delete_marker for o in chunk])
        data["storage_class"].extend([o.storage_class for o in chunk])
        data["checksum_sha256"].extend([o.checksum_sha256 for o in chunk])
        self.rows += len(chunk)

    def batch(self, target: pa.Schema) -> pa.RecordBatch:
        import pyarrow as pa

        arrays = [pa.array(self.data[f.name], type=f.type) for f in target]
        return pa.RecordBatch.from_arrays(arrays, schema=target)


def _version_chunks(store: Store, prefix: str) -> Iterator[list[ObjectInfo]]:
    chunk: list[ObjectInfo] = []
    for info in store.list_versions(prefix):
        chunk.append(info)
        if len(chunk) >= CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _check_output(output: Path) -> None:
    if output.is_dir():
        raise UsageError(f"cannot write the inventory to {output}: it is a directory")
    if not output.parent.is_dir():
        raise UsageError(
            f"cannot write the inventory to {output}: directory {output.parent} does not exist"
        )
    if output.exists() and output.stat().st_size and not _is_inventory(output):
        raise UsageError(
            f"{output} exists and is not a lakeguard inventory: choose another -o, "
            "or remove it first"
        )


def _is_inventory(path: Path) -> bool:
    """Whether ``path`` is an inventory file (replacing one is what -o is for)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        metadata = pq.read_schema(path).metadata or {}
    except (pa.ArrowException, OSError):
        return False
    return META_LOCATION in metadata


def take_inventory(
    store: Store,
    location: Location,
    *,
    versions: bool = False,
    output: Path,
    concurrency: int = 16,
    parallel: bool = False,
    on_progress: ProgressCallback | None = None,
) -> InventoryResult:
    """List ``location`` (every version and delete marker with ``versions``) into ``output``.

    The file appears only once complete (written as ``output.partial``, then renamed).
    ``parallel`` lists a long listing in pieces side by side (see ``ops.listing``:
    slower against a nearby server, worth trying over a slow link).
    """
    import pyarrow.parquet as pq

    output = Path(output)
    _check_output(output)
    started = time.monotonic()
    taken_at = datetime.now(UTC)
    target = schema().with_metadata(
        {
            META_LOCATION: str(location).encode(),
            META_PREFIX: location.prefix.encode(),
            META_TAKEN_AT: (iso(taken_at) or "").encode(),
            META_VERSIONS: b"true" if versions else b"false",
            META_FORMAT: FORMAT_VERSION.encode(),
        }
    )
    chunks = (
        _version_chunks(store, location.prefix)
        if versions
        else list_chunks(store, location.prefix, concurrency=concurrency, parallel=parallel)
    )
    partial = output.with_name(output.name + ".partial")
    objects = nbytes = markers = 0
    buffer = _Columns()
    try:
        with pq.ParquetWriter(partial, target, compression="zstd") as writer:
            for chunk in chunks:
                buffer.extend(chunk)
                chunk_bytes = 0
                for info in chunk:
                    if info.is_delete_marker:
                        markers += 1
                    else:
                        objects += 1
                        chunk_bytes += info.size
                nbytes += chunk_bytes
                if on_progress is not None:
                    on_progress(len(chunk), chunk_bytes)
                if buffer.rows >= ROWS_PER_BATCH:
                    writer.write_batch(buffer.batch(target))
                    buffer.clear()
            if buffer.rows:
                writer.write_batch(buffer.batch(target))
                buffer.clear()
        partial.replace(output)
    except BaseException:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise
    finally:
        close = getattr(chunks, "close", None)
        if callable(close):
            close()
    return InventoryResult(objects, nbytes, markers, time.monotonic() - started, output)


class InventoryEntry(NamedTuple):
    """One current object as the inventory recorded it."""

    key: str
    size: int
    etag: str | None
    checksum_sha256: str | None


class Inventory:
    """An inventory file opened for reading; see ``read_inventory``."""

    def __init__(self, path: Path) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.path = Path(path)
        if not self.path.exists():
            raise UsageError(f"inventory file {self.path} does not exist")
        if self.path.is_dir():
            raise UsageError(f"inventory file {self.path} is a directory, not a Parquet file")
        try:
            self._file = pq.ParquetFile(self.path)
        except (pa.ArrowException, OSError) as exc:
            raise UsageError(
                f"inventory file {self.path} is not a Parquet file ({_first_line(exc)}); "
                "write one with 'lakeguard inventory LOC -o FILE.parquet'"
            ) from None
        names = set(self._file.schema_arrow.names)
        absent = [name for name in REQUIRED_COLUMNS if name not in names]
        if absent:
            raise UsageError(
                f"inventory file {self.path} lacks the column(s) {', '.join(absent)}: "
                "write one with 'lakeguard inventory LOC -o FILE.parquet'"
            )
        self.columns = names
        meta = self._file.schema_arrow.metadata or {}
        self.location = meta.get(META_LOCATION, b"").decode() or None
        prefix = meta.get(META_PREFIX)
        self.prefix: str | None = prefix.decode() if prefix is not None else None
        self.taken_at = meta.get(META_TAKEN_AT, b"").decode() or None
        self.versions = meta.get(META_VERSIONS) == b"true"
        self.rows: int = self._file.metadata.num_rows

    def batches(
        self, columns: list[str] | None = None, *, batch_size: int = ROWS_PER_BATCH
    ) -> Iterator[pa.RecordBatch]:
        """Record batches of the file as written (all rows, versions and markers included)."""
        import pyarrow as pa

        wanted = [c for c in (columns or list(COLUMNS)) if c in self.columns]
        try:
            yield from self._file.iter_batches(batch_size=batch_size, columns=wanted)
        except (pa.ArrowException, OSError) as exc:
            raise UsageError(f"inventory file {self.path} is damaged: {_first_line(exc)}") from None

    def current(self, prefix: str = "") -> Iterator[InventoryEntry]:
        """The current objects (latest, not deleted) under ``prefix``, in file order."""
        yield from _current_entries(self, prefix)


def _current_entries(inventory: Inventory, prefix: str) -> Iterator[InventoryEntry]:
    import pyarrow.compute as pc

    columns = ["key", "size", "etag", "checksum_sha256", "is_latest", "is_delete_marker"]
    for raw in inventory.batches(columns):
        batch = raw
        names = batch.schema.names
        mask = None
        if "is_latest" in names:
            mask = pc.fill_null(batch.column("is_latest"), True)
        if "is_delete_marker" in names:
            live = pc.invert(pc.fill_null(batch.column("is_delete_marker"), False))
            mask = live if mask is None else pc.and_(mask, live)
        if prefix:
            under = pc.starts_with(batch.column("key"), prefix)
            mask = under if mask is None else pc.and_(mask, under)
        if mask is not None:
            batch = batch.filter(mask)
        keys = batch.column("key").to_pylist()
        sizes = batch.column("size").to_pylist()
        etags = batch.column("etag").to_pylist()
        sums = (
            batch.column("checksum_sha256").to_pylist()
            if "checksum_sha256" in names
            else [None] * len(keys)
        )
        for key, size, etag, checksum in zip(keys, sizes, etags, sums, strict=True):
            yield InventoryEntry(key, int(size or 0), etag, checksum)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def read_inventory(path: Path | str | os.PathLike[str]) -> Inventory:
    """Open an inventory file; ``UsageError`` (exit 2) naming the file if it is unusable."""
    return Inventory(Path(path))

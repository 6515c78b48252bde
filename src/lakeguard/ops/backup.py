"""``backup``: one incremental snapshot of a location into a repository.

    runs/<id>.json
    candidates = parent snapshot's manifest + archives of crashed runs  (reuse.py)
    for each object listed, in key order:
        unchanged (version id, or ETag + size + last-modified)? -> reuse its row
        else -> batch; a batch of archive-size bytes (or one larger object)
                -> pack_archive on a worker thread               (backup_pack.py)
    adopted archives of crashed runs get their missing catalog files
    rows (spooled to disk as sorted runs) -> merged -> manifests/<id>.parquet
    snapshots/<id>.json, last

Workers pack archives side by side (zstd and hashlib release the GIL); a
shared pool fetches small objects ahead of them. At most ``workers + 1``
batches are waiting, so memory is bounded by the read-ahead windows, the
open multipart parts and one batch of items per worker.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import json
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lakeguard import __version__
from lakeguard.errors import BucketNotFoundError, UsageError
from lakeguard.location import Location
from lakeguard.ops.backup_pack import (
    Mirror,
    PackContext,
    PackItem,
    PackResult,
    pack_archive,
    readahead_bytes,
)
from lakeguard.repository.catalog_writer import write_catalog
from lakeguard.repository.layout import (
    FORMAT_VERSION,
    SourceRef,
    archive_id,
    archive_id_of,
    new_snapshot_id,
)
from lakeguard.repository.manifest import (
    ManifestWriter,
    StoredRow,
    is_key_sorted,
    read_stored,
)
from lakeguard.repository.repo import Repository, default_cache_dir
from lakeguard.repository.retention import split_tags
from lakeguard.repository.reuse import Orphans, ReuseIndex, find_orphans
from lakeguard.repository.runs import RunFailure
from lakeguard.repository.snapshot import SnapshotHeader, SnapshotStats
from lakeguard.repository.spool import RowSpool, sorted_rows
from lakeguard.storage.base import ObjectInfo, Store
from lakeguard.storage.pump import Ahead, batched
from lakeguard.timeparse import iso
from lakeguard.transfer.parts import adjust_part_size

MiB = 1024 * 1024
MAX_MEMBERS = 20_000  # per archive: keeps manifest.json (one frame) a few MB
MIN_ARCHIVE_SIZE = 64 * 1024
MAX_ARCHIVE_SIZE = 5 * 1024**4
# Listed objects handed over at a time: small enough that the first archive
# starts on the listing's first (short) page.
LIST_BATCH = 200
MAX_WORKERS = 3
ProgressCallback = Callable[[int, int], None]


@dataclass(slots=True)
class BackupResult:
    snapshot_id: str
    source: str
    objects: int = 0
    bytes: int = 0
    new_objects: int = 0
    new_bytes: int = 0
    reused_objects: int = 0
    archives_written: int = 0
    stored_bytes: int = 0
    duration_s: float = 0.0
    parent: str | None = None
    adopted_archives: int = 0
    vanished: int = 0
    mirrored: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def compression_ratio(self) -> float | None:
        """New bytes per stored byte (None when nothing new was stored)."""
        if not self.stored_bytes:
            return None
        return round(self.new_bytes / self.stored_bytes, 3)

    def to_json(self) -> dict[str, Any]:
        return {
            "snapshot_id": self.snapshot_id,
            "objects": self.objects,
            "bytes": self.bytes,
            "new_objects": self.new_objects,
            "new_bytes": self.new_bytes,
            "reused_objects": self.reused_objects,
            "archives_written": self.archives_written,
            "stored_bytes": self.stored_bytes,
            "compression_ratio": self.compression_ratio,
            "duration_s": round(self.duration_s, 3),
            "source": self.source,
            "parent": self.parent,
            "mirrored": self.mirrored,
            "vanished": self.vanished,
            "adopted_archives": self.adopted_archives,
            "failed": [{"key": key, "error": error} for key, error in self.failed],
        }


def _check_options(archive_size: int, level: int, block_size: int) -> None:
    if archive_size < MIN_ARCHIVE_SIZE:
        raise UsageError(f"--archive-size must be at least 64KiB, got {archive_size} bytes")
    if archive_size > MAX_ARCHIVE_SIZE:
        raise UsageError(
            f"--archive-size must be at most 5TiB (the largest S3 object), got {archive_size} bytes"
        )
    if not 1 <= level <= 22:
        raise UsageError(f"--compression-level must be 1 to 22 (zstd levels), got {level}")
    if block_size < 64 * 1024:
        raise UsageError(f"block size must be at least 64KiB, got {block_size}")


class _Batcher:
    """Groups new objects into archives: up to archive_size bytes / MAX_MEMBERS members."""

    def __init__(self, archive_size: int) -> None:
        self.archive_size = archive_size
        self.items: list[PackItem] = []
        self.bytes = 0

    def add(self, item: PackItem) -> list[list[PackItem]]:
        """Batches that are ready after adding ``item``."""
        if item.size > self.archive_size:
            return [[item]]  # an archive of its own
        self.items.append(item)
        self.bytes += item.size
        if self.bytes >= self.archive_size or len(self.items) >= MAX_MEMBERS:
            return [self.flush()]
        return []

    def flush(self) -> list[PackItem]:
        """The batch, in byte order of keys: the manifest's order, so a restore
        finds the members of one archive side by side (one ranged GET for many)
        also when the source lists folder by folder (SeaweedFS)."""
        items, self.items, self.bytes = self.items, [], 0
        items.sort(key=lambda item: item.relative)
        return items


class _Run:
    """One backup run's moving parts (a class to keep backup() readable)."""

    def __init__(
        self,
        *,
        ctx: PackContext,
        workers: int,
        spool: RowSpool,
        result: BackupResult,
        on_progress: ProgressCallback | None,
    ) -> None:
        self.ctx = ctx
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="lakeguard-pack")
        self.workers = workers
        self.spool = spool
        self.result = result
        self.on_progress = on_progress
        self.pending: set[Future[PackResult]] = set()
        self.sequence = 0
        self.lock = threading.Lock()

    def submit(self, items: list[PackItem]) -> None:
        if not items:
            return
        while len(self.pending) > self.workers:
            self.collect(wait(self.pending, return_when=FIRST_COMPLETED).done)
        self.sequence += 1
        ident = archive_id(self.ctx.snapshot_id, self.sequence)
        self.pending.add(self.pool.submit(pack_archive, self.ctx, ident, items))

    def collect(self, done: set[Future[PackResult]]) -> None:
        for future in done:
            self.pending.discard(future)
            packed = future.result()
            result = self.result
            result.vanished += packed.vanished
            result.mirrored += packed.mirrored
            result.failed.extend(packed.failures)
            if packed.archive is None:
                continue
            result.archives_written += 1
            result.stored_bytes += packed.stored_bytes
            result.new_objects += len(packed.rows)
            result.new_bytes += sum(row.size for row in packed.rows)
            self.spool.add_run(packed.rows)

    def finish(self) -> None:
        while self.pending:
            self.collect(wait(self.pending, return_when=FIRST_COMPLETED).done)
        self.pool.shutdown(wait=True)

    def abort(self) -> None:
        self.ctx.cancel.set()
        self.pool.shutdown(wait=True, cancel_futures=True)


def _check_places(
    source: Location, repository: Location, mirrors: Sequence[tuple[Location, Store]]
) -> None:
    """The source, the repository and each mirror are separate places.

    A repository inside the source would back itself up (and grow with every
    run); a mirror inside the repository or the source would overwrite them.
    """
    if source.overlaps(repository):
        raise UsageError(
            f"the repository {repository} and the source {source} overlap: "
            "back up a prefix that does not hold the repository, or keep the repository elsewhere"
        )
    for mirror, _store in mirrors:
        for what, place in (("repository", repository), ("source", source)):
            if mirror.overlaps(place):
                raise UsageError(
                    f"--mirror {mirror} overlaps the {what} {place}: mirror to a separate place"
                )


def _prepare_mirrors(mirrors: Sequence[tuple[Location, Store]]) -> None:
    """A local mirror directory is created; a missing bucket is an error before any work."""
    for location, store in mirrors:
        if store.exists():
            continue
        if location.scheme != "s3":
            store.create()
            continue
        raise BucketNotFoundError(
            f"--mirror {location}: bucket {location.root} does not exist: create it first",
            op="backup",
        )


def _parent_rows(
    repo: Repository, parent: SnapshotHeader | None, cache: Path, scratch: Path
) -> Iterator[StoredRow]:
    """The parent snapshot's rows in key order (manifests of earlier versions
    may hold SeaweedFS's listing order: those are sorted on disk first)."""
    if parent is None:
        return iter(())
    path = repo.fetch_manifest(parent, cache)
    if is_key_sorted(path):
        return read_stored(path)
    return sorted_rows(read_stored(path), scratch / "parent")


def backup(
    store: Store,
    location: Location,
    repo: Repository,
    *,
    tags: Sequence[str] = (),
    archive_size: int | None = None,
    compression_level: int | None = None,
    block_size: int | None = None,
    mirrors: Sequence[tuple[Location, Store]] = (),
    concurrency: int = 16,
    workers: int | None = None,
    on_progress: ProgressCallback | None = None,
    cache_dir: Path | None = None,
    now: datetime | None = None,
) -> BackupResult:
    """Back ``location`` up into ``repo``; see the module docstring."""
    config = repo.config
    archive_size = config.archive_size if archive_size is None else archive_size
    level = config.compression_level if compression_level is None else compression_level
    block_size = config.block_size if block_size is None else block_size
    _check_options(archive_size, level, block_size)
    tags = [tag for text in tags for tag in split_tags(text, "--tag")]
    _check_places(location, repo.location, mirrors)
    _prepare_mirrors(mirrors)
    clock = time.monotonic()
    started = (now or datetime.now(UTC)).astimezone(UTC)
    source = SourceRef.of(location)
    snapshot_id = new_snapshot_id(started)
    result = BackupResult(snapshot_id=snapshot_id, source=source.url)
    # The source is listed from now on, on a thread of its own, while the
    # repository's state is read (run record, snapshots, parent manifest):
    # their round trips overlap (a no-change backup is mostly round trips).
    with (
        Ahead(
            batched(store.list(location.prefix), LIST_BATCH), depth=4, name="lakeguard-list"
        ) as listing,
        RunFailure(repo, snapshot_id) as run_failure,  # runs/<id>.failed.json if it fails
    ):
        run_doc = {
            "kind": "lakeguard-run",
            "format": FORMAT_VERSION,
            "id": snapshot_id,
            "source": source.url,
            "started": iso(started),
            "hostname": socket.gethostname(),
        }
        # The run is recorded before the snapshot list is read: a prune that does not
        # see this record also saw every header this run can pick as its parent
        # (docs/format.md, "Forget and prune").
        repo.write(
            repo.layout.run(snapshot_id),
            (json.dumps(run_doc, indent=2) + "\n").encode(),
            content_type="application/json",
        )
        run_failure.armed = True
        history = repo.snapshots(source=source.url)
        parent = history[-1] if history else None
        result.parent = parent.id if parent else None
        cache = (cache_dir or default_cache_dir(repo)) / "manifests"
        workers = workers or default_workers()
        with (
            tempfile.TemporaryDirectory(prefix="lakeguard-backup-") as scratch,
            ThreadPoolExecutor(concurrency, thread_name_prefix="lakeguard-fetch") as fetch_pool,
            ThreadPoolExecutor(
                max(1, concurrency // 2), thread_name_prefix="lakeguard-mirror"
            ) as mirror_pool,
        ):
            parent_rows = _parent_rows(repo, parent, cache, Path(scratch))
            orphans = find_orphans(repo, source.url, exclude=snapshot_id)
            index = ReuseIndex(heapq.merge(parent_rows, orphans.rows, key=lambda row: row.key))
            spool = RowSpool(Path(scratch) / "rows", snapshot_id=snapshot_id)

            def on_object(nbytes: int) -> None:
                if on_progress is not None:
                    on_progress(1, nbytes)

            ctx = PackContext(
                source_store=store,
                source=source,
                repo=repo,
                snapshot_id=snapshot_id,
                level=level,
                block_size=block_size,
                fetch_pool=fetch_pool,
                mirrors=[Mirror(loc, mirror) for loc, mirror in mirrors],
                mirror_pool=mirror_pool if mirrors else None,
                on_object=on_object,
                readahead_bytes=readahead_bytes(workers),
            )
            run = _Run(
                ctx=ctx, workers=workers, spool=spool, result=result, on_progress=on_progress
            )
            adopted: set[str] = set()
            try:
                _plan(listing, location, index, orphans, run, archive_size, adopted)
                run.finish()
            except BaseException:
                run.abort()
                raise
            result.adopted_archives = len(adopted)
            _adopt_catalogs(repo, source, orphans, adopted)
            manifest_path = Path(scratch) / "manifest.parquet"
            _write_manifest(manifest_path, spool, snapshot_id, result)
            header = _commit(repo, manifest_path, cache, result, source, started, clock, tags)
        result.duration_s = header.stats.duration_s
        return result


def default_workers() -> int:
    """Packing workers: one per core, 2 to 3. Each hashes and compresses about
    200 MB/s, so three outrun most links to S3; each also holds ~100 MB (its
    read-ahead and the archive parts in flight): peak RSS of the bench backup
    was 410-440 MB with 2, 470-490 with 3, 500-550 with 4, 560-600 with 8."""
    return min(MAX_WORKERS, max(2, os.cpu_count() or 2))


def _plan(
    listing: Iterable[list[ObjectInfo]],
    location: Location,
    index: ReuseIndex,
    orphans: Orphans,
    run: _Run,
    archive_size: int,
    adopted: set[str],
) -> None:
    """List the source and send each object to reuse or to a batch."""
    batcher = _Batcher(archive_size)
    reused = run.spool.open_run()
    result = run.result
    try:
        for info in itertools.chain.from_iterable(listing):
            if info.is_delete_marker:
                continue
            relative = location.relative(info.key)
            if not relative:
                continue  # the folder marker of the location itself
            row = index.find(relative, info)
            if row is not None:
                reused.write(row)
                result.reused_objects += 1
                if row.archive in orphans.archives:
                    adopted.add(row.archive)
                if run.on_progress is not None:
                    run.on_progress(1, row.size)
                continue
            item = PackItem(info.key, relative, info.size, info.version_id)
            for batch in batcher.add(item):
                run.submit(batch)
        run.submit(batcher.flush())
    finally:
        reused.close()


def _adopt_catalogs(
    repo: Repository, source: SourceRef, orphans: Orphans, adopted: set[str]
) -> None:
    """Archives of crashed runs that this snapshot uses get the catalog file they lack."""
    for archive in sorted(adopted):
        relative = repo.layout.catalog(source, archive_id_of(archive))
        if repo.exists(relative):
            continue
        rows = [row for row in orphans.rows if row.archive == archive]
        write_catalog(
            repo, source=source, archive=archive, rows=rows, snapshot_id=orphans.archives[archive]
        )


def _write_manifest(path: Path, spool: RowSpool, snapshot_id: str, result: BackupResult) -> None:
    single = spool.only_run()
    if single is not None:
        single.replace(path)
    else:
        with ManifestWriter(path, snapshot_id=snapshot_id) as writer:
            spool.write_to(writer)
    result.objects += spool.rows
    result.bytes += spool.bytes


def _commit(
    repo: Repository,
    manifest_path: Path,
    cache: Path,
    result: BackupResult,
    source: SourceRef,
    started: datetime,
    clock: float,
    tags: Sequence[str],
) -> SnapshotHeader:
    """Upload the manifest, then the header: from here on the snapshot exists."""
    digest = hashlib.sha256()
    with manifest_path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(MiB), b""):
            digest.update(chunk)
    size = manifest_path.stat().st_size
    relative = repo.layout.manifest(result.snapshot_id)

    def chunks() -> Iterator[bytes]:
        with manifest_path.open("rb") as handle:
            yield from iter(lambda: handle.read(MiB), b"")

    repo.write(relative, chunks(), part_size=adjust_part_size(size))
    cache.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(manifest_path, cache / f"{result.snapshot_id}.parquet")
    stats = SnapshotStats(
        objects=result.objects,
        bytes=result.bytes,
        new_objects=result.new_objects,
        new_bytes=result.new_bytes,
        reused_objects=result.reused_objects,
        archives_written=result.archives_written,
        stored_bytes=result.stored_bytes,
        failed=len(result.failed),
        duration_s=round(time.monotonic() - clock, 3),
    )
    header = SnapshotHeader(
        id=result.snapshot_id,
        time=started,
        finished=datetime.now(UTC),
        source=source.url,
        source_bucket=source.bucket,
        source_prefix=source.prefix,
        manifest=relative,
        manifest_sha256=digest.hexdigest(),
        manifest_size=size,
        stats=stats,
        tags=list(dict.fromkeys(tags)),
        parent=result.parent,
        hostname=socket.gethostname(),
        retain_until=repo.retain_until(),
        lakeguard_version=__version__,
    )
    repo.write(
        repo.layout.snapshot(result.snapshot_id), header.encode(), content_type="application/json"
    )
    return header

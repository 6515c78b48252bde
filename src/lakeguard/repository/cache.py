"""A local cache of a repository's headers, manifests and catalog files.

    $XDG_CACHE_HOME/lakeguard/<repo-id>/      (~/.cache when XDG_CACHE_HOME is unset)
        snapshots/<snapshot-id>.json          headers
        manifests/<snapshot-id>.parquet       manifests (shared with backup and restore)
        catalog/<bucket>/<prefix>/year=/month=/day=/<archive-id>.tar.zst.jsonl

Every one of these files is written once in the repository and never changed,
so a cached copy never goes stale: it is only dropped when the repository no
longer has the file (forget, prune). A sync therefore costs one listing per
folder plus a GET for each file not seen before, and ``query`` run twice
downloads nothing the second time. Files are written to a temporary name and
renamed, so a crash or a concurrent lakeguard never leaves a half file under a
real name. The cache is keyed by repository id, so two repositories never
share entries.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from lakeguard.errors import NotFoundError
from lakeguard.repository.catalog import CatalogFile, list_catalog
from lakeguard.repository.layout import CATALOG, CATALOG_SUFFIX, is_snapshot_id
from lakeguard.repository.repo import ManifestDamaged, Repository, default_cache_dir
from lakeguard.repository.snapshot import (
    DamagedHeader,
    HeaderDamaged,
    SnapshotHeader,
    list_snapshot_ids,
)

T = TypeVar("T")
R = TypeVar("R")


@dataclass(slots=True)
class SyncStats:
    """What a sync downloaded and dropped (for tests and ``-v``)."""

    headers_fetched: int = 0
    manifests_fetched: int = 0
    catalog_fetched: int = 0
    removed: int = 0
    catalog_files: int = 0


@dataclass(slots=True)
class CacheView:
    """The repository as the cache sees it after a sync."""

    headers: list[SnapshotHeader]
    manifests: dict[str, Path]  # snapshot id -> local manifest
    catalog_dir: Path
    stats: SyncStats = field(default_factory=SyncStats)
    damaged_manifests: dict[str, str] = field(default_factory=dict)  # id -> message


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.part{os.getpid()}")
    partial.write_bytes(data)
    partial.replace(path)


class RepoCache:
    """Local copies of one repository's immutable files; see the module docstring."""

    def __init__(
        self, repo: Repository, root: Path | None = None, *, concurrency: int = 16
    ) -> None:
        self.repo = repo
        self.root = root or default_cache_dir(repo)
        self.concurrency = max(1, concurrency)
        self.stats = SyncStats()

    @property
    def snapshots_dir(self) -> Path:
        return self.root / "snapshots"

    @property
    def manifests_dir(self) -> Path:
        return self.root / "manifests"

    @property
    def catalog_dir(self) -> Path:
        return self.root / "catalog"

    def _map(self, work: Callable[[T], R], items: Iterable[T]) -> list[R]:
        pending = list(items)
        if len(pending) <= 1:
            return [work(item) for item in pending]
        with ThreadPoolExecutor(
            min(self.concurrency, len(pending)), thread_name_prefix="lakeguard-cache"
        ) as pool:
            return list(pool.map(work, pending))

    # -- headers -----------------------------------------------------------------

    def headers(self) -> list[SnapshotHeader]:
        """Every complete snapshot, oldest first; new headers fetched, gone ones dropped.

        A header that cannot be read raises HeaderDamaged, its message naming
        what to do (``read_headers`` lists the readable ones instead).
        """
        headers, damaged = self.read_headers()
        if damaged:
            first = damaged[0]
            error = HeaderDamaged(first.error, snapshot_id=first.id)
            raise error.with_remedy(self.repo.url)
        return headers

    def read_headers(self) -> tuple[list[SnapshotHeader], list[DamagedHeader]]:
        """The readable headers (oldest first) and those that cannot be read (id order)."""
        repo = self.repo
        ids = list(list_snapshot_ids(repo.store, repo.layout))
        wanted = set(ids)
        directory = self.snapshots_dir
        directory.mkdir(parents=True, exist_ok=True)
        for path in directory.glob("*.json"):
            if path.stem not in wanted:
                path.unlink(missing_ok=True)
                (self.manifests_dir / f"{path.stem}.parquet").unlink(missing_ok=True)
                self.stats.removed += 1

        def load(snapshot_id: str) -> SnapshotHeader | DamagedHeader | None:
            path = directory / f"{snapshot_id}.json"
            where = f"snapshot {snapshot_id}"
            if path.exists():
                try:
                    return SnapshotHeader.decode(path.read_bytes(), snapshot_id=snapshot_id)
                except HeaderDamaged:
                    path.unlink(missing_ok=True)  # a damaged local copy: read the repository's
            try:
                data = repo.read_bytes(repo.layout.snapshot(snapshot_id))
            except NotFoundError:
                return None  # forgotten between the listing and the read
            try:  # decoded before caching: a damaged header is never cached
                header = SnapshotHeader.decode(data, where=where, snapshot_id=snapshot_id)
            except HeaderDamaged as exc:
                return DamagedHeader(snapshot_id, exc.reason)
            _atomic_write(path, data)
            self.stats.headers_fetched += 1
            return header

        loaded = self._map(load, ids)
        headers = [item for item in loaded if isinstance(item, SnapshotHeader)]
        headers.sort(key=lambda header: (header.time, header.finished, header.id))
        return headers, [item for item in loaded if isinstance(item, DamagedHeader)]

    # -- manifests ---------------------------------------------------------------

    def manifest(self, header: SnapshotHeader) -> Path:
        """The snapshot's manifest as a local file (downloaded and checked once)."""
        path = self.manifests_dir / f"{header.id}.parquet"
        # Cached files only ever appear under their real name complete (renamed
        # into place after the SHA-256 matched), so the size is enough here.
        if path.exists() and path.stat().st_size == header.manifest_size:
            return path
        fetched = self.repo.fetch_manifest(header, self.manifests_dir)
        self.stats.manifests_fetched += 1
        return fetched

    def manifests(
        self, headers: Iterable[SnapshotHeader], *, damaged: dict[str, str] | None = None
    ) -> dict[str, Path]:
        """Manifests of ``headers`` (fetched side by side).

        A manifest missing or not matching its header raises ManifestDamaged,
        unless ``damaged`` is a dict: then its message is stored there by
        snapshot id and the manifest left out.
        """
        chosen = list(headers)

        def fetch(header: SnapshotHeader) -> Path | None:
            try:
                return self.manifest(header)
            except ManifestDamaged as exc:
                if damaged is None:
                    raise
                damaged[header.id] = exc.message
                return None

        paths = self._map(fetch, chosen)
        return {
            header.id: path for header, path in zip(chosen, paths, strict=True) if path is not None
        }

    def drop_stale_manifests(self, keep: Iterable[str]) -> None:
        wanted = set(keep)
        for path in self.manifests_dir.glob("*.parquet"):
            if is_snapshot_id(path.stem) and path.stem not in wanted:
                path.unlink(missing_ok=True)
                self.stats.removed += 1

    # -- catalog -----------------------------------------------------------------

    def catalog_path(self, entry: CatalogFile) -> Path:
        return self.catalog_dir / entry.relative[len(CATALOG) :]

    def sync_catalog(self) -> Path:
        """Bring the local catalog folder in line with the repository's; returns it."""
        listed: set[Path] = set()
        missing: list[CatalogFile] = []
        for entry in list_catalog(self.repo):
            path = self.catalog_path(entry)
            listed.add(path)
            if not (path.exists() and path.stat().st_size == entry.size):
                missing.append(entry)

        def fetch(entry: CatalogFile) -> None:
            try:
                data = self.repo.read_bytes(entry.relative)
            except NotFoundError:
                return  # pruned between the listing and the read
            _atomic_write(self.catalog_path(entry), data)

        self._map(fetch, missing)
        self.stats.catalog_fetched += len(missing)
        self.stats.catalog_files = len(listed)
        if self.catalog_dir.exists():
            for path in self.catalog_dir.rglob(f"*{CATALOG_SUFFIX}"):
                if path not in listed:
                    path.unlink(missing_ok=True)
                    self.stats.removed += 1
        self.catalog_dir.mkdir(parents=True, exist_ok=True)
        return self.catalog_dir

    # -- all ---------------------------------------------------------------------

    def sync(self, *, catalog: bool = True, tolerate_damage: bool = False) -> CacheView:
        """Headers, their manifests and (optionally) the catalog, up to date.

        ``tolerate_damage``: a damaged manifest is left out and named in
        ``CacheView.damaged_manifests`` instead of raising.
        """
        headers = self.headers()
        damaged: dict[str, str] | None = {} if tolerate_damage else None
        manifests = self.manifests(headers, damaged=damaged)
        self.drop_stale_manifests(h.id for h in headers)
        catalog_dir = self.sync_catalog() if catalog else self.catalog_dir
        return CacheView(headers, manifests, catalog_dir, self.stats, damaged or {})

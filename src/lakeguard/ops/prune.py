"""``prune``: delete what no snapshot references, never what a running backup may use.

No lock files (docs/format.md, "Forget and prune"). The protocol::

    1. headers       list snapshots/, read every manifest's archive column
                     -> referenced archives
    2. runs          list runs/: a run without a header in (1) started less
                     than the grace period ago is IN PROGRESS; an older one is
                     ABANDONED (crashed) unless its header appeared meanwhile
    3. listings      archives/, catalog/, manifests/
    4. decide        an unreferenced archive is deleted unless a run in progress
                     wrote it or backs up the same source (it may reuse it:
                     its parent's archives, or a crashed run's); catalog files go
                     with their archive (or when their archive is gone); a
                     manifest without a header goes unless its run is in progress
    5. apply         abandoned run records first (no new backup adopts their
                     archives after this), list runs/ again: a run that began
                     meanwhile joins (4), then delete: catalog file, archive,
                     stale catalog files, orphan manifests, each checked for
                     Object Lock (repository/removal.py)

Why it is safe: a backup records its run before it reads the snapshot list,
so a run this prune does not see in (2) or (5) read the headers after (1) and
can reference only archives (1) found referenced, or adopt only archives of
runs whose records (5) had not yet deleted, which (5) then sees. The one
assumption is that a backup finishes within the grace period (default 24 h).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from lakeguard.errors import NotFoundError, OperationalError, UsageError
from lakeguard.location import parse_location
from lakeguard.ops.report import Capped
from lakeguard.repository.cache import RepoCache
from lakeguard.repository.catalog import CatalogFile, list_catalog
from lakeguard.repository.layout import (
    ARCHIVE_SUFFIX,
    ARCHIVES,
    MANIFESTS,
    SourceRef,
    archive_id_of,
    archive_run,
    catalog_folder,
    is_snapshot_id,
    snapshot_id_time,
)
from lakeguard.repository.manifest import open_manifest
from lakeguard.repository.removal import Removal, Remover
from lakeguard.repository.repo import Repository
from lakeguard.repository.runs import list_runs
from lakeguard.repository.snapshot import DamagedHeader, header_remedy
from lakeguard.timeparse import iso

DEFAULT_GRACE = timedelta(hours=24)
LIST_CAP = 10_000


@dataclass(frozen=True, slots=True)
class RunInProgress:
    id: str
    source: str | None  # None: the run record could not be read

    @property
    def started(self) -> datetime:
        return snapshot_id_time(self.id)

    @property
    def folder(self) -> str | None:
        """The catalog folder of the run's source (archives of that source share it)."""
        return _folder(self.source)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "source": self.source, "started": iso(self.started)}


def _folder(source: str | None) -> str | None:
    if source is None:
        return None
    try:
        return catalog_folder(SourceRef.of(parse_location(source)))
    except UsageError:
        return None


@dataclass(slots=True)
class PruneResult:
    dry_run: bool
    grace: timedelta
    snapshots: int = 0
    archives: int = 0  # archives in the repository
    referenced_archives: int = 0
    deleted_archives: Capped[str] = field(default_factory=lambda: Capped(LIST_CAP))
    deleted_bytes: int = 0
    deleted_catalog_files: int = 0
    deleted_manifests: int = 0
    deleted_runs: int = 0
    in_progress: list[RunInProgress] = field(default_factory=list)
    deferred: Capped[tuple[str, str]] = field(default_factory=lambda: Capped(LIST_CAP))
    locked: Capped[tuple[str, datetime]] = field(default_factory=lambda: Capped(LIST_CAP))
    failed: Capped[tuple[str, str]] = field(default_factory=lambda: Capped(LIST_CAP))
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "grace_hours": round(self.grace.total_seconds() / 3600, 3),
            "snapshots": self.snapshots,
            "archives": self.archives,
            "referenced_archives": self.referenced_archives,
            "deleted": {
                "archives": self.deleted_archives.count,
                "bytes": self.deleted_bytes,
                "catalog_files": self.deleted_catalog_files,
                "manifests": self.deleted_manifests,
                "runs": self.deleted_runs,
            },
            "deleted_archives": list(self.deleted_archives.items),
            "in_progress": [run.to_json() for run in self.in_progress],
            "deferred": [
                {"archive": archive, "reason": reason} for archive, reason in self.deferred.items
            ],
            "locked": [
                {"key": key, "retain_until": iso(until)} for key, until in self.locked.items
            ],
            "failed": [{"key": key, "error": error} for key, error in self.failed.items],
            "seconds": round(self.seconds, 3),
        }


def _referenced(paths: Iterable[Path]) -> set[str]:
    """Distinct archives named by the manifests (one column read, a batch at a time)."""
    archives: set[str] = set()
    for path in paths:
        parquet = open_manifest(path)
        for batch in parquet.iter_batches(batch_size=65_536, columns=["archive"]):
            archives.update(batch.column(0).unique().to_pylist())
    return archives


def _run_ids(repo: Repository) -> set[str]:
    return list_runs(repo).started


def _run_source(repo: Repository, run_id: str) -> str | None:
    import json

    try:
        doc = json.loads(repo.read_bytes(repo.layout.run(run_id)))
    except (NotFoundError, ValueError):
        return None
    source = doc.get("source") if isinstance(doc, dict) else None
    return str(source) if source else None


@dataclass(slots=True)
class _Plan:
    archives: list[tuple[str, int]] = field(default_factory=list)  # (key, size) to delete
    catalog: list[str] = field(default_factory=list)
    manifests: list[str] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)
    deferred: list[tuple[str, str]] = field(default_factory=list)


class _Pruner:
    def __init__(self, repo: Repository, grace: timedelta, now: datetime) -> None:
        self.repo = repo
        self.grace = grace
        self.now = now
        self.snapshot_ids: set[str] = set()
        self.referenced: set[str] = set()
        self.in_progress: dict[str, RunInProgress] = {}
        self.abandoned: list[str] = []
        self.seen_runs: set[str] = set()
        self.failed_runs: set[str] = set()  # runs/<id>.failed.json present
        self.run_records: set[str] = set()
        self.archives: dict[str, int] = {}
        self.catalog: dict[str, list[CatalogFile]] = {}
        self.manifests: list[str] = []

    def read(self, cache: RepoCache, forgotten: frozenset[str] = frozenset()) -> None:
        headers, damaged = cache.read_headers()
        damaged = [item for item in damaged if item.id not in forgotten]
        if damaged:
            raise _refusal(self.repo, damaged)
        headers = [header for header in headers if header.id not in forgotten]
        self.snapshot_ids = {header.id for header in headers}
        # Each manifest's SHA-256 is checked even when cached: a wrong reference
        # list here would delete data a snapshot needs.
        manifests = cache.manifests_dir
        self.referenced = _referenced(self.repo.fetch_manifest(h, manifests) for h in headers)
        self.seen_runs.update(forgotten)
        runs = list_runs(self.repo)
        self.failed_runs = runs.failed
        self.run_records = runs.started
        self.classify_runs(runs.started)
        for entry in list_catalog(self.repo):  # catalog before archives: see _decide
            self.catalog.setdefault(entry.archive_id, []).append(entry)
        repo = self.repo
        for info in repo.store.list(repo.key(ARCHIVES)):
            if info.key.endswith(ARCHIVE_SUFFIX):
                self.archives[repo.layout.relative(info.key)] = info.size
        prefix = repo.key(MANIFESTS)
        for info in repo.store.list(prefix):
            name = info.key[len(prefix) :]
            # A forgotten snapshot's manifest is forget's to delete, not an orphan.
            snapshot_id = name[:-8]
            ours = name.endswith(".parquet") and is_snapshot_id(snapshot_id)
            if ours and snapshot_id not in forgotten:
                self.manifests.append(snapshot_id)

    def classify_runs(self, run_ids: set[str]) -> bool:
        """Sort new run records into in progress / abandoned; True if one is in progress."""
        found = False
        for run_id in sorted(run_ids - self.seen_runs):
            self.seen_runs.add(run_id)
            if run_id in self.snapshot_ids:
                continue
            young = self.now - snapshot_id_time(run_id) < self.grace
            if young and self._failed_empty(run_id):
                young = False  # it failed, writes nothing more and left nothing to adopt
            # A header written after the snapshot list was read: that run just
            # finished and its manifest was not read, so it counts as running.
            if young or self.repo.exists(self.repo.layout.snapshot(run_id)):
                self.in_progress[run_id] = RunInProgress(run_id, _run_source(self.repo, run_id))
                found = True
            else:
                self.abandoned.append(run_id)
        return found

    def _failed_empty(self, run_id: str) -> bool:
        """Whether the run recorded its failure and landed no archive (runs.py)."""
        if run_id not in self.failed_runs:
            return False
        prefix = self.repo.key(self.repo.layout.run_archives(run_id))
        return next(iter(self.repo.store.list(prefix)), None) is None

    def stale_failure_records(self) -> list[str]:
        """``.failed.json`` records of abandoned runs, and of runs whose record is gone."""
        abandoned = set(self.abandoned)
        return [
            self.repo.layout.run_failed(run_id)
            for run_id in sorted(self.failed_runs)
            if run_id in abandoned or run_id not in self.run_records
        ]

    def _keep_reason(self, archive: str) -> str | None:
        if not self.in_progress:
            return None
        try:
            run_id = archive_run(archive_id_of(archive))
        except ValueError:
            run_id = ""
        if run_id in self.in_progress:
            return f"written by backup {run_id}, in progress"
        entries = self.catalog.get(archive_id_of(archive), [])
        folder = entries[0].folder if entries else _folder(_run_source(self.repo, run_id))
        for run in self.in_progress.values():
            if folder is None or run.folder is None or run.folder == folder:
                return f"backup {run.id} of the same source is in progress and may reuse it"
        return None

    def decide(self) -> _Plan:
        plan = _Plan(runs=list(self.abandoned))
        doomed: set[str] = set()
        for archive, size in sorted(self.archives.items()):
            if archive in self.referenced:
                continue
            reason = self._keep_reason(archive)
            if reason is not None:
                plan.deferred.append((archive, reason))
                continue
            plan.archives.append((archive, size))
            doomed.add(archive_id_of(archive))
        present = {archive_id_of(archive) for archive in self.archives}
        for archive_id, entries in sorted(self.catalog.items()):
            # The catalog was listed before the archives, so an archive missing
            # from the later listing is really gone (its catalog file is stale).
            stale = archive_id not in present and archive_run(archive_id) not in self.in_progress
            if archive_id in doomed or stale:
                plan.catalog.extend(entry.relative for entry in entries)
        for snapshot_id in self.manifests:
            if snapshot_id not in self.snapshot_ids and snapshot_id not in self.in_progress:
                plan.manifests.append(self.repo.layout.manifest(snapshot_id))
        return plan


def _refusal(repo: Repository, damaged: list[DamagedHeader]) -> OperationalError:
    """Why prune deletes nothing while a header cannot be read, and what to do."""
    first = damaged[0]
    more = (
        f" (and {len(damaged) - 1} other header(s): see 'lakeguard snapshots')"
        if (len(damaged) > 1)
        else ""
    )
    return OperationalError(
        f"{first.error}{more}: prune deletes nothing, "
        "since it cannot know which archives that snapshot references; "
        f"{header_remedy(repo.url, first.id)}, then prune again"
    )


def _record(result: PruneResult, removal: Removal) -> bool:
    if removal.locked_until is not None:
        result.locked.append((removal.relative, removal.locked_until))
    elif removal.error is not None:
        result.failed.append((removal.relative, removal.error))
    return removal.removed


def prune(
    repo: Repository,
    *,
    dry_run: bool = False,
    grace: timedelta = DEFAULT_GRACE,
    now: datetime | None = None,
    cache_dir: Path | None = None,
    concurrency: int = 16,
    forgotten: Iterable[str] = (),
) -> PruneResult:
    """Delete unreferenced archives, their catalog files and orphan manifests (see above).

    ``forgotten`` (dry runs only): snapshots to take as removed, with their run
    records and manifests, as ``forget --dry-run --prune`` previews them.
    A header that cannot be read stops prune before it deletes anything
    (OperationalError naming the remedy), unless it is among ``forgotten``.
    """
    if grace < timedelta(0):
        raise UsageError("--grace must not be negative")
    assumed = frozenset(forgotten)
    if assumed and not dry_run:
        raise UsageError("prune takes snapshots as forgotten only in a dry run")
    clock = time.monotonic()
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    result = PruneResult(dry_run=dry_run, grace=grace)
    pruner = _Pruner(repo, grace, moment)
    pruner.read(RepoCache(repo, cache_dir, concurrency=concurrency), assumed)
    remover = Remover(repo, now=moment)
    if not dry_run:
        for run_id in pruner.abandoned:
            if _record(result, remover.remove(repo.layout.run(run_id))):
                result.deleted_runs += 1
        # After the run records: a failure record left alone means nothing.
        for relative in pruner.stale_failure_records():
            _record(result, remover.remove(relative))
        # A backup that began while this prune read the repository is in
        # progress too: what it may reuse must stay.
        pruner.classify_runs(_run_ids(repo))
    else:
        result.deleted_runs = len(pruner.abandoned)
    plan = pruner.decide()
    result.snapshots = len(pruner.snapshot_ids)
    result.archives = len(pruner.archives)
    result.referenced_archives = len(pruner.referenced & set(pruner.archives))
    result.in_progress = list(pruner.in_progress.values())
    for item in plan.deferred:
        result.deferred.append(item)
    if dry_run:
        for archive, size in plan.archives:
            result.deleted_archives.append(archive)
            result.deleted_bytes += size
        result.deleted_catalog_files = len(plan.catalog)
        result.deleted_manifests = len(plan.manifests)
        result.seconds = time.monotonic() - clock
        return result
    catalog_of: dict[str, list[str]] = {}
    for relative in plan.catalog:
        catalog_of.setdefault(archive_id_of(relative), []).append(relative)
    for archive, size in plan.archives:
        catalog_files = catalog_of.pop(archive_id_of(archive), [])
        until = remover.locked_until(archive)
        if until is not None:  # keep its catalog file too: the two go together
            result.locked.append((archive, until))
            continue
        # The catalog file first: a crash in between leaves an archive without
        # one (the next prune deletes it), never a catalog row for a lost archive.
        removals = [remover.remove(relative) for relative in catalog_files]
        result.deleted_catalog_files += sum(_record(result, removal) for removal in removals)
        if not all(removal.removed for removal in removals):
            continue
        if _record(result, remover.remove(archive)):
            result.deleted_archives.append(archive)
            result.deleted_bytes += size
    for relatives in catalog_of.values():  # stale: their archives are gone already
        for relative in relatives:
            result.deleted_catalog_files += _record(result, remover.remove(relative))
    for relative in plan.manifests:
        result.deleted_manifests += _record(result, remover.remove(relative))
    result.seconds = time.monotonic() - clock
    return result

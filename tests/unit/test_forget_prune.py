"""forget and prune on local and memory repositories: what goes, what stays, and why."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lakeguard.errors import AccessDeniedError, OperationalError, UsageError
from lakeguard.location import Location, parse_location
from lakeguard.ops.backup import backup
from lakeguard.ops.check import check
from lakeguard.ops.forget import forget
from lakeguard.ops.prune import prune
from lakeguard.ops.restore import restore
from lakeguard.repository.layout import new_snapshot_id
from lakeguard.repository.repo import Repository, init_repository, open_repository
from lakeguard.repository.retention import RetentionPolicy
from lakeguard.repository.runs import record_run_failed
from lakeguard.storage import open_store
from lakeguard.storage.base import DeleteResult, ObjectInfo, Store
from lakeguard.storage.memory import MemoryStore
from lakeguard.storage.wrappers import StoreWrapper

T0 = datetime(2026, 2, 1, 3, tzinfo=UTC)


class Lake:
    """A memory lake with its own name, backed up with explicit times."""

    def __init__(self, tag: str = "lake") -> None:
        self.name = f"{tag}-{uuid.uuid4().hex[:8]}"
        self.store = MemoryStore.named(self.name)
        self.location = parse_location(f"memory://{self.name}/data")

    def write(self, key: str, body: bytes) -> None:
        self.store.put(f"data/{key}", body)

    def backup(self, repo: Repository, cache: Path, when: datetime) -> str:
        return backup(self.store, self.location, repo, cache_dir=cache, now=when).snapshot_id


def local_repo(tmp_path: Path) -> Repository:
    location = parse_location(str(tmp_path / "repo"))
    return init_repository(open_store(location), location).repository


def files(tmp_path: Path, folder: str) -> list[str]:
    root = tmp_path / "repo" / folder
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def test_forget_keeps_per_source_and_prune_frees_what_no_snapshot_needs(
    tmp_path: Path, cache: Path
) -> None:
    repo = local_repo(tmp_path)
    lake, other = Lake("a"), Lake("b")
    other.write("b.csv", b"b" * 500)
    old_other = other.backup(repo, cache, T0)
    days = []
    for day in range(3):
        lake.write("state.csv", f"day {day}\n".encode() * 200)  # replaced every day
        days.append(lake.backup(repo, cache, T0 + timedelta(days=day)))
    assert len(files(tmp_path, "archives")) == 4

    preview = forget(repo, RetentionPolicy(last=1), dry_run=True, now=T0 + timedelta(days=5))
    assert preview.removed == days[:2][::-1]
    assert len(files(tmp_path, "snapshots")) == 4  # nothing changed
    # each source keeps its own newest: the single snapshot of the other lake stays
    result = forget(repo, RetentionPolicy(last=1), now=T0 + timedelta(days=5))
    assert sorted(result.removed) == sorted(days[:2])
    assert {g.source for g in result.groups} == {
        str(lake.location),
        str(other.location),
    }
    assert [h.id for h in repo.snapshots()] == [old_other, days[2]]
    assert files(tmp_path, "manifests") == sorted([f"{old_other}.parquet", f"{days[2]}.parquet"])
    assert len(files(tmp_path, "runs")) == 2  # the forgotten snapshots' run records went too

    dry = prune(repo, dry_run=True, cache_dir=cache)
    assert dry.deleted_archives.count == 2 and dry.deleted_bytes > 0
    assert dry.deleted_catalog_files == 2
    assert len(files(tmp_path, "archives")) == 4

    pruned = prune(repo, cache_dir=cache)
    assert pruned.deleted_archives.count == 2 and pruned.deleted_catalog_files == 2
    assert not pruned.failed.count and not pruned.locked.count and not pruned.deferred.count
    assert len(files(tmp_path, "archives")) == 2 and len(files(tmp_path, "catalog")) == 2
    assert check(repo, read_data=True).ok
    out = tmp_path / "out"
    restored = restore(
        repo, days[2], open_store(parse_location(str(out))), parse_location(str(out))
    )
    assert restored.verified == 1 and (out / "state.csv").read_bytes() == b"day 2\n" * 200
    # nothing left to do: a second prune is a no-op
    again = prune(repo, cache_dir=cache)
    assert again.deleted_archives.count == 0 and again.deleted_catalog_files == 0


def test_forget_by_id_and_argument_errors(tmp_path: Path, cache: Path) -> None:
    repo = local_repo(tmp_path)
    lake = Lake()
    lake.write("x.csv", b"x")
    first = lake.backup(repo, cache, T0)
    second = lake.backup(repo, cache, T0 + timedelta(hours=1))
    with pytest.raises(UsageError, match="no policy"):
        forget(repo, RetentionPolicy())
    with pytest.raises(UsageError, match="not both"):
        forget(repo, RetentionPolicy(last=1), snapshot_ids=[first])
    with pytest.raises(UsageError, match="no snapshot 'nope'"):
        forget(repo, snapshot_ids=["nope"])
    with pytest.raises(UsageError, match="no snapshot of"):
        forget(repo, RetentionPolicy(last=1), source="memory://elsewhere/")
    result = forget(repo, snapshot_ids=[first[17:21]])  # a unique random tail is enough
    assert result.removed == [first]
    assert [h.id for h in repo.snapshots()] == [second]
    # the archive stays referenced by the second snapshot
    assert prune(repo, cache_dir=cache).deleted_archives.count == 0


def _run_record(repo: Repository, source: Location, started: datetime) -> str:
    run_id = new_snapshot_id(started)
    doc = {"kind": "lakeguard-run", "format": 1, "id": run_id, "source": str(source)}
    repo.write(repo.layout.run(run_id), json.dumps(doc).encode())
    return run_id


def test_prune_keeps_what_a_running_backup_of_the_same_source_may_reuse(
    tmp_path: Path, cache: Path
) -> None:
    repo = local_repo(tmp_path)
    lake, other = Lake("a"), Lake("b")
    lake.write("a.csv", b"old a" * 100)
    other.write("b.csv", b"old b" * 100)
    forgotten = [lake.backup(repo, cache, T0), other.backup(repo, cache, T0)]
    lake.write("a.csv", b"new a" * 100)
    other.write("b.csv", b"new b" * 100)
    lake.backup(repo, cache, T0 + timedelta(days=1))
    other.backup(repo, cache, T0 + timedelta(days=1))
    forget(repo, snapshot_ids=forgotten)
    # a backup of ``lake`` started an hour ago and has no header yet
    running = _run_record(repo, lake.location, T0 + timedelta(days=2))
    now = T0 + timedelta(days=2, hours=1)

    result = prune(repo, cache_dir=cache, now=now)
    assert [run.id for run in result.in_progress] == [running]
    assert result.deleted_archives.count == 1  # the other lake's old archive
    assert forgotten[1] in result.deleted_archives.items[0]
    assert result.deferred.count == 1
    archive, reason = result.deferred.items[0]
    assert forgotten[0] in archive and running in reason and "same source" in reason
    assert files(tmp_path, "runs").count(f"{running}.json") == 1

    # after the grace period the run is taken as crashed: its record goes, the archive too
    later = prune(repo, cache_dir=cache, now=now + timedelta(days=2))
    assert later.in_progress == [] and later.deleted_runs == 1
    assert later.deleted_archives.count == 1 and forgotten[0] in later.deleted_archives.items[0]
    assert f"{running}.json" not in files(tmp_path, "runs")
    assert check(repo).ok


def test_prune_deletes_a_crashed_runs_archives_manifests_and_stale_catalog(
    tmp_path: Path, cache: Path
) -> None:
    repo = local_repo(tmp_path)
    lake = Lake()
    lake.write("a.csv", b"a" * 1000)
    kept = lake.backup(repo, cache, T0)
    crashed = lake.backup(repo, cache, T0 + timedelta(hours=1))
    # make the second run look crashed before its header: no header, no manifest
    # (its archive holds nothing new, so give it one by hand from the first run's)
    (tmp_path / "repo" / "snapshots" / f"{crashed}.json").unlink()
    first_archive = next((tmp_path / "repo" / "archives").rglob("*.tar.zst"))
    copy = first_archive.with_name(f"{crashed}-000001.tar.zst")
    copy.write_bytes(first_archive.read_bytes())
    stale = tmp_path / "repo" / "catalog" / "x" / "year=2026" / "month=01" / "day=01"
    stale.mkdir(parents=True)
    (stale / "20260101T000000Z-00000000-000001.tar.zst.jsonl").write_text("{}\n")

    young = prune(repo, cache_dir=cache, now=T0 + timedelta(hours=2))
    assert [run.id for run in young.in_progress] == [crashed]
    assert young.deleted_archives.count == 0 and young.deleted_manifests == 0
    assert young.deleted_catalog_files == 1  # the stale one: its archive does not exist

    old = prune(repo, cache_dir=cache, now=T0 + timedelta(days=3))
    assert old.deleted_runs == 1 and old.deleted_manifests == 1
    assert old.deleted_archives.items == [str(copy.relative_to(tmp_path / "repo"))]
    assert files(tmp_path, "manifests") == [f"{kept}.parquet"]
    assert files(tmp_path, "runs") == [f"{kept}.json"]
    assert check(repo, read_data=True).ok


class _StartsBackupWhileListingRuns(StoreWrapper):
    """Writes a run record of ``source`` the second time runs/ is listed (mid-prune)."""

    def __init__(self, inner: Store, repo_prefix: str, doc: dict[str, str]) -> None:
        super().__init__(inner)
        self.prefix = repo_prefix
        self.doc = doc
        self.listings = 0

    def list(self, prefix: str = "", *, start_after: str | None = None) -> Iterator[ObjectInfo]:
        if prefix == f"{self.prefix}runs/":
            self.listings += 1
            if self.listings == 2:
                self.inner.put(
                    f"{self.prefix}runs/{self.doc['id']}.json", json.dumps(self.doc).encode()
                )
        return self.inner.list(prefix, start_after=start_after)


def _one_superseded(tmp_path: Path, cache: Path) -> tuple[Repository, Lake, str, str]:
    """Two backups of a changed a.csv, the first forgotten: its archive is garbage."""
    repo = local_repo(tmp_path)
    lake = Lake()
    lake.write("a.csv", b"old" * 100)
    old = lake.backup(repo, cache, T0)
    lake.write("a.csv", b"new" * 100)
    new = lake.backup(repo, cache, T0 + timedelta(days=1))
    forget(repo, snapshot_ids=[old])
    return repo, lake, old, new


def test_a_backup_starting_during_prune_keeps_its_sources_archives(
    tmp_path: Path, cache: Path
) -> None:
    repo, lake, _old, _new = _one_superseded(tmp_path, cache)
    now = T0 + timedelta(days=5)
    doc = {"kind": "lakeguard-run", "id": new_snapshot_id(now), "source": str(lake.location)}
    wrapped = _StartsBackupWhileListingRuns(repo.store, repo.layout.prefix, doc)
    racing = open_repository(wrapped, repo.location)
    result = prune(racing, cache_dir=cache, now=now)
    assert wrapped.listings == 2
    assert result.deleted_archives.count == 0 and result.deferred.count == 1
    assert [run.id for run in result.in_progress] == [doc["id"]]
    assert len(files(tmp_path, "archives")) == 2


def test_prune_in_a_versioned_store_removes_every_version(cache: Path) -> None:
    name = f"vrepo-{uuid.uuid4().hex[:8]}"
    store = MemoryStore.named(name)
    store.set_versioning(True)
    location = parse_location(f"memory://{name}/backups")
    repo = init_repository(store, location).repository
    lake = Lake()
    lake.write("a.csv", b"one" * 100)
    old = lake.backup(repo, cache, T0)
    lake.write("a.csv", b"two" * 100)
    lake.backup(repo, cache, T0 + timedelta(days=1))
    forget(repo, snapshot_ids=[old])
    result = prune(repo, cache_dir=cache)
    assert result.deleted_archives.count == 1
    gone = [
        info
        for info in store.list_versions("backups/")
        if old in info.key  # header, run, manifest, archive, catalog of the old snapshot
    ]
    assert gone == []  # no noncurrent versions, no delete markers: the space is back


class _RefusesDeletes(StoreWrapper):
    def delete(self, key: str, *, version_id: str | None = None) -> DeleteResult:
        if "/archives/" in f"/{key}":
            raise AccessDeniedError(f"Access Denied: {key}", op="delete", key=key)
        return self.inner.delete(key, version_id=version_id)


def test_a_refused_delete_is_reported_not_raised(tmp_path: Path, cache: Path) -> None:
    repo, _lake, _old, _new = _one_superseded(tmp_path, cache)
    refusing = open_repository(_RefusesDeletes(repo.store), repo.location)
    result = prune(refusing, cache_dir=cache)
    assert result.deleted_archives.count == 0 and result.failed.count == 1
    key, error = result.failed.items[0]
    assert key.startswith("archives/") and "refused" in error
    # its catalog file went first; the next prune (allowed to delete) finishes the job
    assert prune(repo, cache_dir=cache).deleted_archives.count == 1


def test_prune_refuses_a_negative_grace(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="grace"):
        prune(local_repo(tmp_path), grace=timedelta(hours=-1))


def test_prune_trusts_no_damaged_manifest(tmp_path: Path, cache: Path) -> None:
    repo, _lake, _old, new = _one_superseded(tmp_path, cache)
    # a cached copy damaged in place (same size) is not believed: the repository's is read
    cached = cache / "manifests" / f"{new}.parquet"
    cached.write_bytes(b"\0" * cached.stat().st_size)
    assert prune(repo, cache_dir=cache, dry_run=True).referenced_archives == 1
    # a damaged manifest in the repository stops prune before it deletes anything
    manifest = tmp_path / "repo" / "manifests" / f"{new}.parquet"
    manifest.write_bytes(manifest.read_bytes()[:-1] + b"x")
    cached.unlink()
    with pytest.raises(OperationalError, match="damaged"):
        prune(repo, cache_dir=cache)
    assert len(files(tmp_path, "archives")) == 2


def test_a_failed_run_is_waited_for_only_if_it_left_archives(tmp_path: Path, cache: Path) -> None:
    repo, lake, old, _new = _one_superseded(tmp_path, cache)
    now = T0 + timedelta(days=2)
    empty = _run_record(repo, lake.location, now - timedelta(minutes=5))
    landed = _run_record(repo, lake.location, now - timedelta(minutes=4))
    for run_id in (empty, landed):
        record_run_failed(repo, run_id, OperationalError("source unreachable"), now=now)
    archive = next((tmp_path / "repo" / "archives").rglob("*.tar.zst"))
    copy = tmp_path / "repo" / f"{repo.layout.run_archives(landed)}000001.tar.zst"
    copy.parent.mkdir(parents=True, exist_ok=True)
    copy.write_bytes(archive.read_bytes())
    orphan = repo.layout.run_failed(new_snapshot_id(T0))  # its run record is gone
    repo.write(orphan, b"{}")
    with pytest.raises(UsageError, match="dry run"):
        prune(repo, cache_dir=cache, now=now, forgotten=[old])

    result = prune(repo, cache_dir=cache, now=now)
    # the failed run that landed an archive may still be adopted by a re-run: waited for
    assert [run.id for run in result.in_progress] == [landed]
    assert result.deleted_runs == 1 and result.deleted_archives.count == 0
    assert result.deferred.count == 2  # its own, and the same source's old one
    assert files(tmp_path, "runs") == sorted(
        [f"{landed}.json", f"{landed}.failed.json", *[f"{s.id}.json" for s in repo.snapshots()]]
    )
    assert orphan.split("/")[-1] not in files(tmp_path, "runs")

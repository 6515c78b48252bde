"""Incremental backups of a source that lists in folder-tree order (SeaweedFS).

SeaweedFS lists "a/b" and the rest of folder "a/" before "a-b"; manifests are
in byte order. An unchanged object must be reused whatever the order.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

from repo_testing import new_repo

from lakeguard.location import parse_location
from lakeguard.ops.backup import BackupResult, backup
from lakeguard.repository.manifest import (
    ManifestRow,
    is_key_sorted,
    read_manifest,
    write_manifest,
)
from lakeguard.repository.repo import Repository
from lakeguard.repository.reuse import ReuseIndex, _listed_later
from lakeguard.repository.spool import RowSpool, sorted_rows
from lakeguard.storage.base import ObjectInfo
from lakeguard.storage.memory import MemoryStore
from lakeguard.storage.wrappers import StoreWrapper

NAME1, NAME2 = "tree-order-1", "tree-order-2"
KEYS = ["a/b", "a/c", "a/d/e", "a-b", "a.txt", "a0", "b", "b/x", "b-1/y", "b!"]


class TreeOrderStore(StoreWrapper):
    """Lists in folder-tree order, as SeaweedFS's filer does."""

    def list(self, prefix: str = "", *, start_after: str | None = None) -> Iterator[ObjectInfo]:
        listed = list(self.inner.list(prefix, start_after=start_after))
        return iter(sorted(listed, key=lambda info: info.key.split("/")))


def _source(name: str) -> MemoryStore:
    store = MemoryStore.named(name)
    for key in KEYS:
        store.put(f"t/{key}", f"body of {key}".encode())
    return store


def _backup(name: str, repo: Repository, cache: Path) -> BackupResult:
    location = parse_location(f"memory://{name}/t")
    return backup(TreeOrderStore(MemoryStore.named(name)), location, repo, cache_dir=cache)


def _manifest_keys(repo: Repository, tmp_path: Path) -> list[str]:
    header = repo.snapshots()[-1]
    path = repo.fetch_manifest(header, tmp_path / "check")
    return [row.key for row in read_manifest(path)]


def test_whatever_the_listing_order_every_unchanged_object_is_reused(
    tmp_path: Path,
) -> None:
    store = _source(NAME1)
    repo = new_repo(tmp_path)
    first = _backup(NAME1, repo, tmp_path / "c")
    assert first.new_objects == len(KEYS)
    assert _manifest_keys(repo, tmp_path) == sorted(KEYS)
    second = _backup(NAME1, repo, tmp_path / "c")
    assert (second.new_objects, second.reused_objects) == (0, len(KEYS))
    assert _manifest_keys(repo, tmp_path) == sorted(KEYS)
    # The last keys of folders: the old merge-join then stopped at them and
    # read "a-b", "a.txt", "a0" and "b!" again.
    store.delete("t/a/d/e")
    store.delete("t/b/x")
    third = _backup(NAME1, repo, tmp_path / "c")
    assert (third.new_objects, third.new_bytes, third.reused_objects) == (0, 0, len(KEYS) - 2)
    store.put("t/a/bb", b"new")
    store.put("t/a+", b"new too")
    fourth = _backup(NAME1, repo, tmp_path / "c")
    assert (fourth.new_objects, fourth.reused_objects) == (2, len(KEYS) - 2)
    left = sorted({*KEYS, "a/bb", "a+"} - {"a/d/e", "b/x"})
    assert _manifest_keys(repo, tmp_path) == left


def test_a_parent_manifest_in_listing_order_from_an_earlier_version_is_sorted_first(
    tmp_path: Path,
) -> None:
    store = _source(NAME2)
    repo = new_repo(tmp_path)
    _backup(NAME2, repo, tmp_path / "c")
    # Rewrite the snapshot as an earlier version wrote it: rows in the
    # source's listing order.
    header = repo.snapshots()[-1]
    root = tmp_path / "repo"
    manifest = root / header.manifest
    rows = list(read_manifest(manifest))
    rows.sort(key=lambda row: row.key.split("/"))
    write_manifest(manifest, rows, snapshot_id=header.id)
    assert not is_key_sorted(manifest)
    doc = json.loads((root / "snapshots" / f"{header.id}.json").read_text())
    doc["manifest_size"] = manifest.stat().st_size
    doc["manifest_sha256"] = hashlib.sha256(manifest.read_bytes()).hexdigest()
    (root / "snapshots" / f"{header.id}.json").write_text(json.dumps(doc))
    store.delete("t/a/d/e")
    again = _backup(NAME2, repo, tmp_path / "fresh-cache")
    assert (again.new_objects, again.reused_objects) == (0, len(KEYS) - 1)
    assert _manifest_keys(repo, tmp_path) == sorted(set(KEYS) - {"a/d/e"})


def _row(key: str, etag: str = "e") -> ManifestRow:
    return ManifestRow(key, 1, "0" * 64, "archives/x.tar.zst", "m", 0, 1, etag=etag)


def _info(key: str, etag: str = "e") -> ObjectInfo:
    return ObjectInfo(key, 1, etag)


def test_reuse_index_finds_rows_passed_on_the_way_to_a_folder() -> None:
    index = ReuseIndex(_row(key) for key in sorted(KEYS))
    found = [key for key in sorted(KEYS, key=lambda k: k.split("/")) if index.find(key, _info(key))]
    assert sorted(found) == sorted(KEYS)
    changed = ReuseIndex(_row(key) for key in sorted(KEYS))
    assert changed.find("a/b", _info("a/b")) is not None
    assert changed.find("a-b", _info("a-b", etag="other")) is None  # set aside, but changed


def test_reuse_index_keeps_a_bounded_number_of_rows_aside() -> None:
    keys = [f"a-{n:03d}" for n in range(10)] + ["a/x"]
    index = ReuseIndex((_row(key) for key in sorted(keys)), keep=4)
    assert index.find("a/x", _info("a/x")) is not None
    found = [key for key in keys[:10] if index.find(key, _info(key))]
    assert found == keys[6:10]  # the oldest were dropped: read again, never wrong


def test_rows_of_deleted_objects_are_not_kept_aside() -> None:
    assert _listed_later("a-b", "a/b")
    assert _listed_later("a/b-c", "a/b/d")
    assert not _listed_later("a", "a/b")  # a file named like the folder comes first
    assert not _listed_later("dt=1/part-1", "dt=1/part-3")  # a deleted part
    assert not _listed_later("a/b", "a0")


def test_the_spool_sorts_rows_that_come_in_any_order(tmp_path: Path) -> None:
    listing = sorted(KEYS, key=lambda k: k.split("/"))
    assert listing != sorted(KEYS)
    assert [row.key for row in sorted_rows((_row(k) for k in listing), tmp_path / "s")] == sorted(
        KEYS
    )
    spool = RowSpool(tmp_path / "rows")
    run = spool.open_run()
    for key in listing[:6]:
        run.write(_row(key))
    run.close()
    run.close()  # a second close is harmless
    spool.add_run([_row(key) for key in reversed(listing[6:])])
    out = tmp_path / "m.parquet"
    from lakeguard.repository.manifest import ManifestWriter

    with ManifestWriter(out) as writer:
        spool.write_to(writer)
    assert [row.key for row in read_manifest(out)] == sorted(KEYS)
    assert is_key_sorted(out)


def test_an_archive_holds_its_members_in_the_manifests_order(tmp_path: Path) -> None:
    """So a restore reads the members of one archive with one ranged GET."""
    from repo_testing import CountingStore

    from lakeguard.ops.restore import restore

    store = _source(NAME1)
    repo = new_repo(tmp_path)
    _backup(NAME1, repo, tmp_path / "c")
    header = repo.snapshots()[-1]
    rows = list(read_manifest(repo.fetch_manifest(header, tmp_path / "m")))
    assert len({row.archive for row in rows}) == 1
    assert [row.frame_offset for row in rows] == sorted(row.frame_offset for row in rows)
    counting = CountingStore(repo.store)
    counted = Repository(counting, repo.location, repo.config, repo.layout)
    out = parse_location("memory://tree-order-out/r")
    target = MemoryStore.named("tree-order-out")
    target.create()
    done = restore(counted, "latest", target, out, cache_dir=tmp_path / "c")
    assert done.restored == len(KEYS)
    assert len([r for r in counting.ranges if r[0].startswith(repo.key("archives/"))]) == 1
    assert all(store.get_bytes(f"t/{key}") == target.get_bytes(f"r/{key}") for key in KEYS)

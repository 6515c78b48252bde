"""backup into a local repository from a memory lake: what lands, what is reused, what fails."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from repo_testing import (
    CountingStore,
    FailingStore,
    lake_location,
    make_lake,
    new_repo,
    random_bytes,
    sha256,
)

from lakeguard.errors import NotFoundError, StoreError, UsageError
from lakeguard.location import parse_location
from lakeguard.ops.backup import backup
from lakeguard.repository.manifest import ManifestRow, ManifestWriter, read_manifest
from lakeguard.repository.repo import Repository
from lakeguard.repository.reuse import unchanged
from lakeguard.repository.spool import RowSpool
from lakeguard.storage.base import ObjectInfo, Store
from lakeguard.storage.memory import MemoryStore

MiB = 1024 * 1024


def _backup(repo: Repository, tmp_path: Path, store: Store | None = None, **options: object):  # type: ignore[no-untyped-def]
    source = store if store is not None else MemoryStore.named("lake")
    return backup(source, lake_location(), repo, cache_dir=tmp_path / "cache", **options)  # type: ignore[arg-type]


def _rows(repo: Repository, tmp_path: Path, snapshot: str = "latest") -> dict[str, object]:
    header = repo.snapshot(snapshot)
    path = repo.fetch_manifest(header, tmp_path / "m")
    return {row.key: row for row in read_manifest(path)}


def test_first_backup_stores_every_object_with_its_sha256(tmp_path: Path) -> None:
    data = make_lake()
    repo = new_repo(tmp_path)
    result = _backup(repo, tmp_path, archive_size=256 * 1024)
    assert result.objects == result.new_objects == len(data)
    assert result.bytes == result.new_bytes == sum(map(len, data.values()))
    assert result.reused_objects == 0
    assert result.archives_written >= 2  # the lake is bigger than one archive
    assert 0 < result.stored_bytes < result.new_bytes  # csv compresses
    rows = _rows(repo, tmp_path)
    assert sorted(rows) == sorted(data)
    for key, row in rows.items():
        assert row.sha256 == sha256(data[key])  # type: ignore[attr-defined]
        assert row.content_type == "text/csv"  # type: ignore[attr-defined]
        assert row.metadata == {"writer": "spark", "n": "1"}  # type: ignore[attr-defined]
    header = repo.snapshot("latest")
    assert header.stats.objects == len(data) and header.parent is None


def test_catalog_has_one_line_per_object_with_seed_fields(tmp_path: Path) -> None:
    data = make_lake()
    repo = new_repo(tmp_path)
    result = _backup(repo, tmp_path)
    files = sorted((tmp_path / "repo" / "catalog" / "lake" / "t").rglob("*.jsonl"))
    assert len(files) == result.archives_written
    assert "year=" in str(files[0]) and "month=" in str(files[0]) and "day=" in str(files[0])
    lines = [json.loads(line) for path in files for line in path.read_text().splitlines()]
    assert sorted(line["object_name"] for line in lines) == sorted(data)
    line = next(line for line in lines if line["object_name"].endswith("part-001.csv"))
    assert line["object_path"] == "t/" + line["object_name"]
    assert line["source_bucket"] == "lake" and line["source_prefix"] == "t/"
    assert line["sha256"] == sha256(data[line["object_name"]])
    assert line["snapshot_id"] == result.snapshot_id
    assert line["backup_file"].endswith(".tar.zst")
    assert line["target_buckets"] == [str(tmp_path / "repo")]
    for field in (
        "backup_timestamp",
        "backup_date",
        "object_size",
        "creation_time",
        "creation_date",
        "etag",
        "version_id",
    ):
        assert field in line


def test_unchanged_lake_is_not_read_again(tmp_path: Path) -> None:
    make_lake()
    repo = new_repo(tmp_path)
    first = _backup(repo, tmp_path)
    counting = CountingStore(MemoryStore.named("lake"))
    second = _backup(repo, tmp_path, counting)
    assert (second.new_objects, second.new_bytes, second.archives_written) == (0, 0, 0)
    assert second.reused_objects == second.objects == first.objects
    assert counting.gets == 0 and counting.bytes_read == 0
    assert repo.snapshot("latest").parent == first.snapshot_id
    assert _rows(repo, tmp_path, second.snapshot_id) == _rows(repo, tmp_path, first.snapshot_id)


def test_only_changed_and_new_objects_are_read(tmp_path: Path) -> None:
    data = make_lake()
    repo = new_repo(tmp_path)
    _backup(repo, tmp_path)
    lake = MemoryStore.named("lake")
    lake.put("t/dt=2026-02-01/part-000.csv", b"rewritten")
    lake.put("t/dt=2026-02-05/new.csv", b"brand new")
    lake.delete("t/dt=2026-02-02/part-001.csv")
    counting = CountingStore(lake)
    result = _backup(repo, tmp_path, counting)
    assert result.new_objects == 2 and result.new_bytes == len(b"rewritten") + len(b"brand new")
    assert counting.gets == 2
    rows = _rows(repo, tmp_path)
    assert "dt=2026-02-02/part-001.csv" not in rows
    assert rows["dt=2026-02-01/part-000.csv"].sha256 == sha256(b"rewritten")  # type: ignore[attr-defined]
    assert len(rows) == len(data) + 1 - 1


def test_versioned_source_reuses_by_version_id(tmp_path: Path) -> None:
    lake = MemoryStore.named("vlake")
    lake.set_versioning(True)
    lake.put("t/a.csv", b"one")
    lake.put("t/b.csv", b"two")
    repo = new_repo(tmp_path)
    loc = parse_location("memory://vlake/t")
    backup(lake, loc, repo, cache_dir=tmp_path / "c")
    lake.put("t/a.csv", b"one")  # same bytes, new version: it is a different object version
    result = backup(lake, loc, repo, cache_dir=tmp_path / "c")
    assert result.new_objects == 1 and result.reused_objects == 1
    rows = _rows(repo, tmp_path)
    assert rows["a.csv"].version_id == lake.head("t/a.csv").version_id  # type: ignore[attr-defined]


def test_object_larger_than_archive_size_gets_its_own_archive(tmp_path: Path) -> None:
    lake = MemoryStore.named("lake")
    big = random_bytes(3 * MiB + 17)
    lake.put("t/big.bin", big)
    lake.put("t/small.txt", b"small")
    repo = new_repo(tmp_path)
    result = _backup(repo, tmp_path, archive_size=MiB, block_size=256 * 1024)
    assert result.archives_written == 2
    rows = _rows(repo, tmp_path)
    assert rows["big.bin"].archive != rows["small.txt"].archive  # type: ignore[attr-defined]
    reader = repo.open_archive(rows["big.bin"].archive)  # type: ignore[attr-defined]
    table = reader.seek_table()
    assert len(table.frames) == 13 + 2  # 256 KiB blocks, then manifest and end frames
    member = reader.open_member(rows["big.bin"].frame_offset, rows["big.bin"].frame_length)  # type: ignore[attr-defined]
    assert b"".join(member.data) == big


def test_mirror_receives_each_new_object_and_source_is_read_once(tmp_path: Path) -> None:
    data = make_lake()
    lake = MemoryStore.named("lake")
    lake.put("t/big.bin", random_bytes(2 * MiB))
    data["big.bin"] = lake.get_bytes("t/big.bin")
    counting = CountingStore(lake)
    mirror = MemoryStore.named("mirror")
    repo = new_repo(tmp_path)
    result = _backup(
        repo,
        tmp_path,
        counting,
        mirrors=[(parse_location("memory://mirror/copy"), mirror)],
        block_size=512 * 1024,
    )
    assert result.mirrored == len(data) and not result.failed
    assert counting.gets == len(data)
    assert counting.bytes_read == sum(map(len, data.values()))
    for key, body in data.items():
        assert mirror.get_bytes(f"copy/{key}") == body
    assert mirror.head("copy/dt=2026-02-01/part-000.csv").content_type == "text/csv"


def test_unreadable_object_is_reported_and_the_rest_backed_up(tmp_path: Path) -> None:
    data = make_lake()
    failing = FailingStore(
        MemoryStore.named("lake"),
        fail_get=lambda key: key.endswith("part-005.csv"),
        make_error=lambda key: StoreError(f"get {key} refused", op="get", key=key),
    )
    repo = new_repo(tmp_path)
    result = _backup(repo, tmp_path, failing)
    assert [key for key, _ in result.failed] == ["dt=2026-02-02/part-005.csv"]
    assert result.objects == len(data) - 1
    assert repo.snapshot("latest").stats.failed == 1
    # the next run picks it up
    retry = _backup(repo, tmp_path)
    assert retry.new_objects == 1 and retry.objects == len(data)


def test_object_deleted_during_the_run_is_skipped_quietly(tmp_path: Path) -> None:
    data = make_lake()
    vanishing = FailingStore(
        MemoryStore.named("lake"),
        fail_get=lambda key: key.endswith("part-007.csv"),
        make_error=lambda key: NotFoundError(f"{key} does not exist", op="get", key=key),
    )
    repo = new_repo(tmp_path)
    result = _backup(repo, tmp_path, vanishing)
    assert not result.failed and result.objects == len(data) - 1
    assert result.vanished == 1 and result.to_json()["vanished"] == 1


def test_crashed_run_is_finished_without_rereading_what_landed(tmp_path: Path) -> None:
    data = make_lake(objects=60)
    repo = new_repo(tmp_path)
    archives_done: list[str] = []

    class Crash(BaseException):
        pass

    def crash_after_two_archives(key: str) -> bool:
        if "/archives/" in "/" + key:
            archives_done.append(key)
        return len(archives_done) > 2 and "/archives/" in "/" + key

    crashing = FailingStore(repo.store, fail_put=crash_after_two_archives, make_error=Crash)
    crashing_repo = Repository(crashing, repo.location, repo.config, repo.layout)
    with pytest.raises(Crash):
        _backup(crashing_repo, tmp_path, archive_size=64 * 1024, workers=1)
    assert repo.snapshots() == []  # no snapshot points at anything missing
    landed = list((tmp_path / "repo" / "archives").rglob("*.tar.zst"))
    assert len(landed) == 2
    counting = CountingStore(MemoryStore.named("lake"))
    result = _backup(repo, tmp_path, counting, archive_size=64 * 1024)
    assert result.objects == len(data)
    assert result.reused_objects > 0 and result.adopted_archives == 2
    assert counting.gets == result.new_objects == len(data) - result.reused_objects
    catalogs = list((tmp_path / "repo" / "catalog").rglob("*.jsonl"))
    assert len(catalogs) == result.archives_written + 2


def test_bad_options_are_usage_errors(tmp_path: Path) -> None:
    make_lake()
    repo = new_repo(tmp_path)
    with pytest.raises(UsageError, match="archive-size"):
        _backup(repo, tmp_path, archive_size=1000)
    with pytest.raises(UsageError, match="compression-level"):
        _backup(repo, tmp_path, compression_level=40)
    with pytest.raises(UsageError, match="tag"):
        _backup(repo, tmp_path, tags=[" "])
    with pytest.raises(UsageError, match="tag"):
        _backup(repo, tmp_path, tags=["a,,b"])
    # 0 is not "the default": zstd and the help both say 1-22 and at least 64KiB
    with pytest.raises(UsageError, match="archive-size"):
        _backup(repo, tmp_path, archive_size=0)
    with pytest.raises(UsageError, match="compression-level"):
        _backup(repo, tmp_path, compression_level=0)
    with pytest.raises(UsageError, match="at most 5TiB"):
        _backup(repo, tmp_path, archive_size=6 * 1024**4)
    assert repo.snapshots() == []


@pytest.mark.parametrize(
    ("source", "repo_at", "mirror"),
    [
        ("{tmp}/data", "{tmp}/data/repo", None),  # the repository inside the source
        ("{tmp}/data/lake", "{tmp}/data", None),  # the source inside the repository
        ("{tmp}/lake", "{tmp}/repo", "{tmp}/repo/copy"),  # a mirror into the repository
        ("{tmp}/lake", "{tmp}/repo", "{tmp}/lake"),  # a mirror onto the source
    ],
)
def test_overlapping_places_are_refused(
    tmp_path: Path, source: str, repo_at: str, mirror: str | None
) -> None:
    from lakeguard.repository.repo import init_repository
    from lakeguard.storage import open_store

    where = {
        name: parse_location(text.format(tmp=tmp_path))
        for name, text in (("source", source), ("repo", repo_at), ("mirror", mirror or source))
    }
    repo = init_repository(open_store(where["repo"]), where["repo"]).repository
    lake = open_store(where["source"])
    lake.create()
    lake.put("a.csv", b"1,2\n")
    mirrors = [(where["mirror"], open_store(where["mirror"]))] if mirror else []
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    with pytest.raises(UsageError, match="overlap"):
        backup(lake, where["source"], repo, mirrors=mirrors, cache_dir=tmp_path / "cache")
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_tags_are_split_on_commas_and_stripped(tmp_path: Path) -> None:
    make_lake(objects=4)
    repo = new_repo(tmp_path)
    result = _backup(repo, tmp_path, tags=["nightly, prod", " spaced "])
    assert repo.snapshot(result.snapshot_id).tags == ["nightly", "prod", "spaced"]


def test_tags_and_same_second_runs_order(tmp_path: Path) -> None:
    make_lake(objects=4)
    repo = new_repo(tmp_path)
    first = _backup(repo, tmp_path, tags=["nightly", "nightly", "prod"])
    second = _backup(repo, tmp_path)
    assert [h.id for h in repo.snapshots()] == [first.snapshot_id, second.snapshot_id]
    assert repo.snapshot(first.snapshot_id).tags == ["nightly", "prod"]
    assert repo.snapshot("latest").id == second.snapshot_id
    assert repo.snapshot(second.snapshot_id[17:21]).id == second.snapshot_id


def test_spooled_rows_come_back_sorted_after_compaction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lakeguard.repository import spool as spool_mod
    from lakeguard.repository.manifest import ManifestRow

    monkeypatch.setattr(spool_mod, "MAX_RUNS", 4)
    monkeypatch.setattr(spool_mod, "_MERGE_AT_ONCE", 3)
    spool = spool_mod.RowSpool(tmp_path / "spool")

    def row(key: str) -> ManifestRow:
        return ManifestRow(key, 1, "0" * 64, "archives/a.tar.zst", key, 0, 1)

    keys = [f"k{i:04d}" for i in range(200)]
    for start in range(20):  # 20 sorted runs, interleaved
        spool.add_run([row(key) for key in keys[start::20]])
    streamed = spool.open_run()
    streamed.write(row("a-first"))
    streamed.write(row("z-last"))
    streamed.close()
    merged = [r.key for r in spool.merged()]
    assert merged == ["a-first", *keys, "z-last"]
    assert len(list((tmp_path / "spool").glob("*.parquet"))) <= 5


def _spool_row(key: str, size: int = 1) -> ManifestRow:
    return ManifestRow(key, size, "0" * 64, "archives/a.tar.zst", key, 0, 1, etag=f"e-{key}")


def _written(spool: RowSpool, path: Path) -> list[ManifestRow]:
    with ManifestWriter(path, snapshot_id="s1") as writer:
        spool.write_to(writer)
    return list(read_manifest(path))


def test_runs_that_follow_one_another_are_concatenated_in_key_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pyarrow.parquet as pq

    from lakeguard.repository import manifest as manifest_mod
    from lakeguard.repository import spool as spool_mod

    monkeypatch.setattr(manifest_mod, "ROW_GROUP_ROWS", 7)
    monkeypatch.setattr(spool_mod, "MAX_RUNS", 4)
    monkeypatch.setattr(spool_mod, "_MERGE_AT_ONCE", 3)

    def no_merge(paths: object) -> None:
        raise AssertionError("runs that do not overlap need no row-by-row merge")

    monkeypatch.setattr(spool_mod, "_merge", no_merge)
    spool = RowSpool(tmp_path / "spool", snapshot_id="s1")
    keys = [f"k{i:04d}" for i in range(100)]
    stretches = [keys[i : i + 9] for i in range(0, 100, 9)]
    for stretch in reversed(stretches):  # archives finish in any order
        spool.add_run([_spool_row(key, len(key)) for key in stretch])
    rows = _written(spool, tmp_path / "manifest.parquet")
    assert rows == [_spool_row(key, len(key)) for key in keys]
    assert (spool.rows, spool.bytes) == (100, 500)
    groups = pq.ParquetFile(tmp_path / "manifest.parquet").metadata
    sizes = [groups.row_group(i).num_rows for i in range(groups.num_row_groups)]
    assert sizes == [7] * 14 + [2]
    schema = pq.read_schema(tmp_path / "manifest.parquet")
    assert schema.metadata[b"lakeguard.snapshot_id"] == b"s1"


def test_overlapping_runs_are_merged(tmp_path: Path) -> None:
    spool = RowSpool(tmp_path / "spool", snapshot_id="s1")
    spool.add_run([_spool_row("k2"), _spool_row("k3")])
    spool.add_run([_spool_row("k5"), _spool_row("k6")])
    reused = spool.open_run()
    for key in ("k1", "k4", "k7"):
        reused.write(_spool_row(key))
    reused.close()
    assert [row.key for row in _written(spool, tmp_path / "m.parquet")] == [
        f"k{i}" for i in range(1, 8)
    ]


def test_a_late_overlapping_run_compacts_the_disjoint_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lakeguard.repository import spool as spool_mod

    monkeypatch.setattr(spool_mod, "MAX_RUNS", 4)
    monkeypatch.setattr(spool_mod, "_MERGE_AT_ONCE", 3)
    spool = RowSpool(tmp_path / "spool", snapshot_id="s1")
    keys = [f"k{i:04d}" for i in range(60)]
    new, reused = keys[::3] + keys[1::3], keys[2::3]
    new.sort()
    for start in range(0, len(new), 4):
        spool.add_run([_spool_row(key) for key in new[start : start + 4]])
    assert len(list((tmp_path / "spool").glob("*.parquet"))) == 10  # disjoint: none merged
    run = spool.open_run()
    for key in reused:
        run.write(_spool_row(key))
    run.close()
    assert len(list((tmp_path / "spool").glob("*.parquet"))) <= 4
    assert [row.key for row in _written(spool, tmp_path / "m.parquet")] == keys


def test_a_folder_marker_with_bytes_round_trips(tmp_path: Path) -> None:
    """S3 lets a key ending in '/' carry bytes; a tar member named so would read as a folder."""
    import io
    import tarfile

    import zstandard

    from lakeguard.ops.restore import restore

    source = MemoryStore.named("lake")
    source.put("t/events/marker/", b"bytes of a folder marker")
    source.put("t/events/a.csv", b"a,b\n")
    repo = new_repo(tmp_path)
    _backup(repo, tmp_path)
    target = MemoryStore.named("out")
    result = restore(
        repo, "latest", target, parse_location("memory://out/r"), cache_dir=tmp_path / "cache"
    )
    assert result.failed == [] and result.restored == result.verified == 2
    assert target.get_bytes("r/events/marker/") == b"bytes of a folder marker"

    # a plain tar reader sees every member, the marker a file under _unsafe/
    (archive,) = (tmp_path / "repo").rglob("*.tar.zst")
    with archive.open("rb") as compressed:
        raw = zstandard.ZstdDecompressor().stream_reader(compressed, read_across_frames=True)
        with tarfile.open(fileobj=io.BytesIO(raw.read())) as tar:
            members = {m.name: m for m in tar.getmembers()}
    unsafe = [m for name, m in members.items() if name.startswith("_unsafe/")]
    assert len(unsafe) == 1 and unsafe[0].isreg() and unsafe[0].size == 24


def test_folder_markers_in_archives_of_the_earlier_layout_still_restore_and_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Archives written before '/'-ending keys became _unsafe/ hold them as 'x/' members."""
    from lakeguard.ops import backup_pack
    from lakeguard.ops.check import check
    from lakeguard.ops.restore import restore

    monkeypatch.setattr(backup_pack, "member_name", lambda key: key)  # the earlier writer
    source = MemoryStore.named("lake")
    source.put("t/events/marker/", b"bytes of a folder marker")
    repo = new_repo(tmp_path)
    _backup(repo, tmp_path)
    assert _rows(repo, tmp_path)["events/marker/"].member == "events/marker/"  # type: ignore[attr-defined]
    target = MemoryStore.named("out")
    result = restore(
        repo, "latest", target, parse_location("memory://out/r"), cache_dir=tmp_path / "cache"
    )
    assert (
        result.failed == [] and target.get_bytes("r/events/marker/") == b"bytes of a folder marker"
    )
    report = check(repo, read_data=True)
    assert report.ok and report.read_data


def test_small_objects_are_fetched_in_bunches_each_with_its_own_outcome() -> None:
    """One pool task serves several small objects; an error fails only its object."""
    from concurrent.futures import ThreadPoolExecutor

    from lakeguard.ops.backup_pack import BUNCH_ITEMS, PackItem, _fetch_bunch, _Slot

    store = MemoryStore.named("bunch")
    for n in range(BUNCH_ITEMS):
        if n != 3:
            store.put(f"t/{n}", bytes([n]) * 100)
    items = [PackItem(f"t/{n}", str(n), 100) for n in range(BUNCH_ITEMS)]
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(_fetch_bunch, store, items, 3, 1 << 20)
        slots = [_Slot(future, n) for n in range(BUNCH_ITEMS)]
        for n, slot in enumerate(slots):
            if n == 3:
                with pytest.raises(NotFoundError):
                    slot.result()
            else:
                assert slot.result().data == bytes([n]) * 100


@pytest.mark.parametrize(
    ("listed", "stored", "same"),
    [
        (
            datetime(2026, 2, 11, 3, 4, 5, 6, tzinfo=UTC),
            datetime(2026, 2, 11, 3, 4, 5, 6, tzinfo=UTC),
            True,
        ),
        (
            datetime(2026, 2, 11, 3, 4, 5, 6),
            datetime(2026, 2, 11, 3, 4, 5, 6, tzinfo=UTC),
            True,
        ),  # naive: UTC
        (
            datetime(2026, 2, 11, 4, 4, 5, 6, tzinfo=timezone(timedelta(hours=1))),
            datetime(2026, 2, 11, 3, 4, 5, 6, tzinfo=UTC),
            True,
        ),
        (
            datetime(2026, 2, 11, 3, 4, 5, 7, tzinfo=UTC),
            datetime(2026, 2, 11, 3, 4, 5, 6, tzinfo=UTC),
            False,
        ),
        (None, datetime(2026, 2, 11, tzinfo=UTC), False),
        (None, None, True),
    ],
)
def test_an_unversioned_object_is_unchanged_when_size_etag_and_time_match(
    listed: datetime | None, stored: datetime | None, same: bool
) -> None:
    info = ObjectInfo(key="k", size=3, etag="e", last_modified=listed)
    row = ManifestRow(
        key="k",
        size=3,
        sha256="0" * 64,
        archive="a",
        member="k",
        frame_offset=0,
        frame_length=1,
        etag="e",
        last_modified=stored,
    )
    assert unchanged(info, row) is same

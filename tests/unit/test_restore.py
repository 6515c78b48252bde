"""restore from a local repository: bytes, metadata, filters, one-GET reads, damage, escapes."""

from __future__ import annotations

from pathlib import Path

import pytest
from repo_testing import (
    CountingStore,
    FailingStore,
    lake_location,
    make_lake,
    new_repo,
    random_bytes,
)

from lakeguard.errors import StoreError, UsageError
from lakeguard.location import parse_location
from lakeguard.ops.backup import backup
from lakeguard.ops.restore import restore
from lakeguard.repository.manifest import read_manifest
from lakeguard.repository.repo import Repository
from lakeguard.storage import open_store
from lakeguard.storage.memory import MemoryStore

MiB = 1024 * 1024


def _setup(tmp_path: Path, **options: object) -> tuple[Repository, dict[str, bytes], str]:
    data = make_lake()
    repo = new_repo(tmp_path)
    result = backup(
        MemoryStore.named("lake"),
        lake_location(),
        repo,
        cache_dir=tmp_path / "cache",
        **options,  # type: ignore[arg-type]
    )
    return repo, data, result.snapshot_id


def _restore(repo: Repository, tmp_path: Path, target: str = "memory://out/r", **options: object):  # type: ignore[no-untyped-def]
    location = parse_location(target)
    store = options.pop("store", None) or open_store(location)
    return restore(
        repo,
        str(options.pop("snapshot", "latest")),
        store,  # type: ignore[arg-type]
        location,
        cache_dir=tmp_path / "cache",
        **options,  # type: ignore[arg-type]
    )


def test_full_restore_gives_back_bytes_type_and_metadata(tmp_path: Path) -> None:
    repo, data, _ = _setup(tmp_path)
    MemoryStore.named("out").create()
    result = _restore(repo, tmp_path)
    assert (result.restored, result.verified, result.failed) == (len(data), len(data), [])
    assert result.bytes == sum(map(len, data.values()))
    out = MemoryStore.named("out")
    for key, body in data.items():
        assert out.get_bytes(f"r/{key}") == body
    info = out.head("r/dt=2026-02-03/part-002.csv")
    assert info.content_type == "text/csv"
    assert dict(info.metadata or {}) == {"writer": "spark", "n": "1"}


def test_restore_of_one_object_is_one_ranged_get_of_its_frames(tmp_path: Path) -> None:
    repo, data, snapshot = _setup(tmp_path, archive_size=256 * 1024)
    key = "dt=2026-02-02/part-009.csv"
    header = repo.snapshot(snapshot)
    row = next(
        r for r in read_manifest(repo.fetch_manifest(header, tmp_path / "cache")) if r.key == key
    )
    counting = CountingStore(repo.store)
    counted = Repository(counting, repo.location, repo.config, repo.layout)
    MemoryStore.named("out").create()
    result = _restore(counted, tmp_path, includes=[key])
    assert result.restored == 1
    assert MemoryStore.named("out").get_bytes(f"r/{key}") == data[key]
    archive_reads = [r for r in counting.ranges if r[0].startswith(repo.key("archives/"))]
    assert archive_reads == [(repo.key(row.archive), row.frame_offset, row.frame_length)]
    assert counting.read_under(repo.key("archives/")) == row.frame_length


def test_include_and_exclude_globs(tmp_path: Path) -> None:
    repo, data, _ = _setup(tmp_path)
    MemoryStore.named("out").create()
    result = _restore(repo, tmp_path, includes=["dt=2026-02-01/"], excludes=["*_SUCCESS"])
    expected = {k for k in data if k.startswith("dt=2026-02-01/") and not k.endswith("_SUCCESS")}
    assert {info.key[2:] for info in MemoryStore.named("out").list("r/")} == expected
    assert result.restored == len(expected)


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    repo, data, _ = _setup(tmp_path)
    result = _restore(repo, tmp_path, dry_run=True, includes=["*.csv"])
    assert result.restored == 0 and result.planned == len(data) - 1
    assert not MemoryStore.named("out").exists() or not list(MemoryStore.named("out").list())


def test_flipped_byte_fails_only_the_objects_it_damages(tmp_path: Path) -> None:
    repo, data, snapshot = _setup(tmp_path)
    header = repo.snapshot(snapshot)
    rows = list(read_manifest(repo.fetch_manifest(header, tmp_path / "cache")))
    victim = max(rows, key=lambda r: r.frame_length)
    path = tmp_path / "repo" / victim.archive
    raw = bytearray(path.read_bytes())
    raw[victim.frame_offset + victim.frame_length // 2] ^= 0x01
    path.write_bytes(bytes(raw))
    MemoryStore.named("out").create()
    result = _restore(repo, tmp_path)
    assert [key for key, _ in result.failed] == [victim.key]
    assert result.damaged == 1 and result.restored == len(data) - 1
    assert f"r/{victim.key}" not in {i.key for i in MemoryStore.named("out").list()}


def test_missing_archive_is_damage(tmp_path: Path) -> None:
    repo, data, _ = _setup(tmp_path)
    for path in (tmp_path / "repo" / "archives").rglob("*.tar.zst"):
        path.unlink()
    MemoryStore.named("out").create()
    result = _restore(repo, tmp_path)
    assert result.restored == 0 and result.damaged == len(data)
    assert "missing" in result.failed[0][1]


def test_write_failures_are_partial_not_damage(tmp_path: Path) -> None:
    repo, data, _ = _setup(tmp_path)
    out = MemoryStore.named("out")
    out.create()
    failing = FailingStore(
        out,
        fail_put=lambda key: key.endswith("part-004.csv"),
        make_error=lambda key: StoreError(f"put {key} refused", op="put", key=key),
    )
    result = _restore(repo, tmp_path, store=failing)
    assert [key for key, _ in result.failed] == ["dt=2026-02-01/part-004.csv"]
    assert result.damaged == 0 and result.restored == len(data) - 1


def test_keys_never_escape_a_local_target(tmp_path: Path) -> None:
    lake = MemoryStore.named("evil")
    lake.put("t/ok.txt", b"fine")
    lake.put("t/../../escaped.txt", b"bad")
    lake.put("t//abs.txt", b"bad")
    repo = new_repo(tmp_path)
    backup(lake, parse_location("memory://evil/t"), repo, cache_dir=tmp_path / "cache")
    target = tmp_path / "restore" / "here"
    result = _restore(repo, tmp_path, target=str(target))
    assert (target / "ok.txt").read_bytes() == b"fine"
    assert result.restored == 1 and len(result.failed) == 2
    written = {p.relative_to(tmp_path) for p in (tmp_path / "restore").rglob("*") if p.is_file()}
    assert written == {Path("restore/here/ok.txt")}
    assert not (tmp_path / "escaped.txt").exists()


def test_unknown_snapshot_is_usage_error(tmp_path: Path) -> None:
    repo, _, _ = _setup(tmp_path)
    with pytest.raises(UsageError, match="no snapshot"):
        _restore(repo, tmp_path, snapshot="20200101T000000Z-deadbeef")
    with pytest.raises(UsageError, match="empty glob"):
        _restore(repo, tmp_path, includes=[""])


def test_large_object_streams_and_a_damaged_one_never_lands(tmp_path: Path) -> None:
    lake = MemoryStore.named("biglake")
    good, bad = random_bytes(9 * MiB, seed=3), random_bytes(9 * MiB, seed=4)
    lake.put("t/good.bin", good)
    lake.put("t/bad.bin", bad)
    repo = new_repo(tmp_path)
    backup(lake, parse_location("memory://biglake/t"), repo, cache_dir=tmp_path / "cache")
    rows = {
        r.key: r
        for r in read_manifest(repo.fetch_manifest(repo.snapshot("latest"), tmp_path / "cache"))
    }
    victim = rows["bad.bin"]
    path = tmp_path / "repo" / victim.archive
    raw = bytearray(path.read_bytes())
    # the last frame: the object's final block, so most of it has streamed out already
    raw[victim.frame_offset + victim.frame_length - 100] ^= 0x01
    path.write_bytes(bytes(raw))
    MemoryStore.named("out").create()
    result = _restore(repo, tmp_path)
    assert [key for key, _ in result.failed] == ["bad.bin"] and result.damaged == 1
    out = MemoryStore.named("out")
    assert out.get_bytes("r/good.bin") == good
    assert [info.key for info in out.list("r/")] == ["r/good.bin"]


def test_adjacent_small_members_share_one_get(tmp_path: Path) -> None:
    repo, data, _ = _setup(tmp_path)
    counting = CountingStore(repo.store)
    counted = Repository(counting, repo.location, repo.config, repo.layout)
    MemoryStore.named("out").create()
    result = _restore(counted, tmp_path)
    assert result.restored == len(data) and not result.failed
    archive_gets = [r for r in counting.ranges if r[0].startswith(repo.key("archives/"))]
    assert 0 < len(archive_gets) <= len(data) // 4
    stored = sum(p.stat().st_size for p in (tmp_path / "repo" / "archives").rglob("*.tar.zst"))
    assert counting.read_under(repo.key("archives/")) < stored  # frames only, never a seek table


def test_a_local_restore_keeps_the_source_etags(tmp_path: Path) -> None:
    import hashlib

    repo, data, _ = _setup(tmp_path)
    result = _restore(repo, tmp_path, target=str(tmp_path / "out"))
    assert result.failed == []
    out = open_store(parse_location(str(tmp_path / "out")))
    for key, body in data.items():
        # Vouched (the source's single-part ETag) or computed: the MD5 of the bytes.
        assert out.head(key).etag == hashlib.md5(body).hexdigest()


def test_a_local_restore_keeps_a_multipart_etag_of_a_large_object(tmp_path: Path) -> None:
    lake = MemoryStore.named("mplake")
    body = random_bytes(9 * MiB, seed=8)
    lake.put("t/big.bin", iter([body[: 5 * MiB], body[5 * MiB :]]), part_size=8 * MiB)
    source_etag = lake.head("t/big.bin").etag
    assert source_etag is not None and source_etag.endswith("-2")
    repo = new_repo(tmp_path)
    backup(lake, parse_location("memory://mplake/t"), repo, cache_dir=tmp_path / "cache")
    result = _restore(repo, tmp_path, target=str(tmp_path / "out"))
    assert result.failed == [] and result.verified == 1
    assert (tmp_path / "out" / "big.bin").read_bytes() == body
    assert open_store(parse_location(str(tmp_path / "out"))).head("big.bin").etag == source_etag


def test_only_s3_shaped_etags_are_vouched_for() -> None:
    from lakeguard.ops.restore import _source_etag

    plain = "0123456789abcdef0123456789abcdef"
    assert _source_etag(plain) == plain
    assert _source_etag(plain + "-12") == plain + "-12"
    # anything else is computed again by the target (MD5 of the bytes)
    for other in (None, "", "abc", plain.upper(), f'"{plain}"', plain + "-", plain + "-x1"):
        assert _source_etag(other) is None

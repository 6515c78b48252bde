"""check: structure and data of a local repository, and damage named down to the object."""

from __future__ import annotations

import dataclasses
import json
import random
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest

from lakeguard.archive.reader import ArchiveReader
from lakeguard.errors import UsageError
from lakeguard.location import parse_location
from lakeguard.ops.backup import backup
from lakeguard.ops.check import Subset, check
from lakeguard.repository.manifest import read_manifest
from lakeguard.repository.repo import Repository, init_repository
from lakeguard.storage import open_store
from lakeguard.storage.memory import MemoryStore
from lakeguard.storage.wrappers import StoreWrapper

T = TypeVar("T")

T0 = datetime(2026, 2, 1, tzinfo=UTC)


@pytest.fixture
def repo(tmp_path: Path) -> Repository:
    """Two snapshots of a 30-object lake in archives of 64 KiB; the second reuses all but one."""
    name = f"lake-{uuid.uuid4().hex[:8]}"
    lake = MemoryStore.named(name)
    rng = random.Random(5)
    for index in range(30):
        body = (f"{index};" * rng.randrange(2000, 8000)).encode() + rng.randbytes(50)
        lake.put(f"t/dt={index % 3}/part-{index:02d}.csv", body)
    location = parse_location(str(tmp_path / "repo"))
    repository = init_repository(open_store(location), location).repository
    source = parse_location(f"memory://{name}/t")
    cache = tmp_path / "cache"
    backup(lake, source, repository, archive_size=65_536, cache_dir=cache, now=T0)
    lake.put("t/dt=0/part-00.csv", b"changed")
    backup(lake, source, repository, archive_size=65_536, cache_dir=cache, now=T0 + timedelta(1))
    return repository


def root(repo: Repository) -> Path:
    return Path(repo.location.root)


def rows(repo: Repository, tmp_path: Path) -> list[tuple[str, str, int, int]]:
    header = repo.snapshot("latest")
    path = repo.fetch_manifest(header, tmp_path / "m")
    return [(r.key, r.archive, r.frame_offset, r.frame_length) for r in read_manifest(path)]


def flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x40
    path.write_bytes(bytes(data))


def test_a_clean_repository_passes_both_checks(repo: Repository) -> None:
    structure = check(repo)
    assert structure.ok and structure.snapshots == 2 and structure.objects == 60
    assert structure.members == 31 and structure.archives >= 3
    assert structure.to_json()["read_data"] is None
    data = check(repo, read_data=True)
    assert data.ok and data.members_read == 31 and data.archives_read == data.archives
    archive_bytes = sum(p.stat().st_size for p in (root(repo) / "archives").rglob("*.tar.zst"))
    assert data.bytes_read <= archive_bytes  # each archive read once, seek tables not
    assert json.loads(json.dumps(data.to_json()))["read_data"]["members"] == 31


def test_check_reads_no_archive_by_head_its_listing_gives_the_sizes(repo: Repository) -> None:
    """A HEAD per archive cost a request each, and on S3 botocore's 0.5 s start."""
    ops: list[tuple[str, str | None]] = []

    class Counting(StoreWrapper):
        def _run(self, op: str, key: str | None, call: Callable[[], T]) -> T:
            ops.append((op, key))
            return call()

    counted = dataclasses.replace(repo, store=Counting(repo.store))
    assert check(counted, read_data=True).ok
    assert [key for op, key in ops if op == "head" and key and "archives/" in key] == []
    assert any(op == "list" for op, _ in ops)


@pytest.mark.parametrize("whole_frames", [0, 8 * 1024 * 1024], ids=["streamed", "in memory"])
def test_a_flipped_byte_names_exactly_the_object_it_damages(
    repo: Repository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, whole_frames: int
) -> None:
    from lakeguard.ops import check_data

    monkeypatch.setattr(check_data, "WHOLE_FRAMES", whole_frames)
    listing = rows(repo, tmp_path)
    key, archive, offset, length = next(r for r in listing if r[0] == "dt=1/part-04.csv")
    flip(root(repo) / archive, offset + length // 2)
    assert check(repo).ok  # structure alone cannot see inside frames
    result = check(repo, read_data=True)
    assert not result.ok
    assert [item.key for item in result.damaged.items] == [key]
    damaged = result.damaged.items[0]
    assert damaged.archive == archive and len(damaged.snapshots) == 2  # both hold it
    assert result.members_read == 31  # the read went on past the damage
    doc = result.to_json()
    assert doc["damaged"][0]["key"] == key and doc["damaged_total"] == 1


def test_damage_in_manifest_json_hurts_no_object_but_is_reported(repo: Repository) -> None:
    archive = sorted((root(repo) / "archives").rglob("*.tar.zst"))[0]
    reader = ArchiveReader(open_store(parse_location(str(archive.parent))), archive.name)
    frame = reader.seek_table().frames[-2]
    flip(archive, frame.offset + frame.compressed_size // 2)
    result = check(repo, read_data=True)
    assert not result.ok and result.damaged.count == 0
    assert any("manifest.json" in p.message for p in result.problems.items)


def test_a_missing_archive_damages_every_object_in_it(repo: Repository, tmp_path: Path) -> None:
    listing = rows(repo, tmp_path)
    archive = listing[0][1]
    (root(repo) / archive).unlink()
    result = check(repo)
    inside = {key for key, name, _, _ in listing if name == archive}
    assert {item.key for item in result.damaged.items} == inside
    assert [p.kind for p in result.problems.items] == ["archive"]


def test_a_truncated_archive_fails_its_seek_table(repo: Repository, tmp_path: Path) -> None:
    archive = root(repo) / rows(repo, tmp_path)[0][1]
    archive.write_bytes(archive.read_bytes()[:-7])
    result = check(repo)
    assert [p.kind for p in result.problems.items] == ["seek-table"]
    data = check(repo, read_data=True)
    assert not data.ok  # members are still read by the manifests' offsets


def test_damaged_header_and_manifest_are_reported_and_the_rest_checked(repo: Repository) -> None:
    headers = sorted((root(repo) / "snapshots").glob("*.json"))
    headers[0].write_text("{not json")
    manifest = root(repo) / "manifests" / f"{headers[1].stem}.parquet"
    flip(manifest, 10)
    result = check(repo)
    kinds = sorted(p.kind for p in result.problems.items)
    assert kinds == ["header", "manifest"]
    assert {p.snapshot for p in result.problems.items} == {headers[0].stem, headers[1].stem}
    assert "SHA-256" in next(p.message for p in result.problems.items if p.kind == "manifest")


def test_a_header_whose_stats_disagree_with_its_manifest(repo: Repository) -> None:
    path = sorted((root(repo) / "snapshots").glob("*.json"))[-1]
    doc = json.loads(path.read_text())
    doc["stats"]["objects"] += 1
    path.write_text(json.dumps(doc))
    result = check(repo)
    assert [p.kind for p in result.problems.items] == ["manifest"]
    assert "header says 31" in result.problems.items[0].message


def test_subsets_split_the_archives(repo: Repository) -> None:
    total = check(repo).archives
    reads = [check(repo, subset=f"{n}/3").archives_read for n in (1, 2, 3)]
    assert sum(reads) == total
    half = check(repo, subset="50%", rng=random.Random(1))
    assert half.archives_read == -(-total // 2) and half.subset == "50%"
    assert check(repo, subset="100%").archives_read == total


@pytest.mark.parametrize("text", ["0/3", "4/3", "1/0", "x", "0%", "101%", "1/2/3", "-5%"])
def test_bad_subsets_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError, match="read-data-subset"):
        Subset.parse(text)


def test_an_empty_repository_is_clean(tmp_path: Path) -> None:
    location = parse_location(str(tmp_path / "empty"))
    repository = init_repository(open_store(location), location).repository
    result = check(repository, read_data=True)
    assert result.ok and result.snapshots == 0 and result.archives_read == 0


def test_manifests_that_describe_one_member_differently_are_named(
    repo: Repository, tmp_path: Path
) -> None:
    """The second snapshot reuses members of the first; its manifest is rewritten
    (header updated to match) to give one reused member another SHA-256."""
    import hashlib

    from lakeguard.repository.manifest import write_manifest

    path = sorted((root(repo) / "snapshots").glob("*.json"))[-1]
    doc = json.loads(path.read_text())
    manifest = root(repo) / doc["manifest"]
    rows = list(read_manifest(manifest))
    first = json.loads(sorted((root(repo) / "snapshots").glob("*.json"))[0].read_text())
    older = {row.key: row for row in read_manifest(root(repo) / first["manifest"])}
    at = next(i for i, row in enumerate(rows) if older[row.key].archive == row.archive)
    rows[at] = dataclasses.replace(rows[at], sha256="0" * 64)
    write_manifest(manifest, rows, snapshot_id=doc["id"])
    data = manifest.read_bytes()
    doc["manifest_sha256"] = hashlib.sha256(data).hexdigest()
    doc["manifest_size"] = len(data)
    path.write_text(json.dumps(doc))
    result = check(repo)
    messages = [p.message for p in result.problems.items if p.kind == "manifest"]
    assert messages == [
        f"manifests disagree about the member at {rows[at].frame_offset} of {rows[at].archive}"
    ]

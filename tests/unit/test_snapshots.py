"""snapshots, ls and find over a local repository, and the cache they read through."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lakeguard.errors import UsageError
from lakeguard.location import parse_location
from lakeguard.ops.backup import backup
from lakeguard.ops.forget import forget
from lakeguard.ops.snapshots import find, list_objects, list_snapshots, row_json, source_url
from lakeguard.repository.cache import RepoCache
from lakeguard.repository.repo import Repository, init_repository
from lakeguard.storage import open_store
from lakeguard.storage.memory import MemoryStore

T0 = datetime(2026, 2, 11, 12, tzinfo=UTC)


class Setup:
    def __init__(self, tmp_path: Path) -> None:
        self.name = f"lake-{uuid.uuid4().hex[:8]}"
        self.lake = MemoryStore.named(self.name)
        self.source = parse_location(f"memory://{self.name}/events")
        location = parse_location(str(tmp_path / "repo"))
        self.repo: Repository = init_repository(open_store(location), location).repository
        self.cache = tmp_path / "cache"
        self.ids: list[str] = []

    def put(self, key: str, body: bytes) -> None:
        self.lake.put(f"events/{key}", body)

    def backup(self, hours: int, tags: tuple[str, ...] = ()) -> str:
        result = backup(
            self.lake,
            self.source,
            self.repo,
            tags=tags,
            cache_dir=self.cache,
            now=T0 + timedelta(hours=hours),
        )
        self.ids.append(result.snapshot_id)
        return result.snapshot_id


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    s = Setup(tmp_path)
    for day in (10, 11):
        for part in range(3):
            s.put(f"dt=2026-02-{day}/part-{part}.parquet", f"{day}-{part}".encode() * 50)
    s.backup(0, ("nightly",))
    s.put("dt=2026-02-11/part-1.parquet", b"rewritten")
    s.put("dt=2026-02-12/part-0.parquet", b"new day")
    s.backup(24)
    return s


def test_snapshots_oldest_first_with_the_json_summary(setup: Setup) -> None:
    headers = list_snapshots(setup.repo, cache_dir=setup.cache)
    assert [h.id for h in headers] == setup.ids
    first = headers[0].summary()
    assert set(first) == {"id", "time", "source", "objects", "bytes", "tags"}
    assert first["tags"] == ["nightly"] and first["objects"] == 6
    assert first["time"] == "2026-02-11T12:00:00Z" and first["source"] == str(setup.source)
    assert headers[1].stats.objects == 7
    only = list_snapshots(setup.repo, source=source_url(str(setup.source)), cache_dir=setup.cache)
    assert len(only) == 2
    assert list_snapshots(setup.repo, source="s3://other/", cache_dir=setup.cache) == []


def test_headers_are_cached_and_forgotten_ones_dropped(setup: Setup) -> None:
    cache = RepoCache(setup.repo, setup.cache)
    cache.headers()
    assert cache.stats.headers_fetched == 2
    again = RepoCache(setup.repo, setup.cache)
    again.headers()
    assert again.stats.headers_fetched == 0
    forget(setup.repo, snapshot_ids=[setup.ids[0]])
    after = RepoCache(setup.repo, setup.cache)
    assert [h.id for h in after.headers()] == [setup.ids[1]]
    assert not (setup.cache / "snapshots" / f"{setup.ids[0]}.json").exists()


def test_ls_lists_keys_in_order_filtered_by_glob(setup: Setup) -> None:
    everything = list_objects(setup.repo, "latest", cache_dir=setup.cache)
    keys = [row.key for row in everything.rows]
    assert keys == sorted(keys) and len(keys) == 7
    assert everything.snapshot.id == setup.ids[1]
    folder = list_objects(setup.repo, setup.ids[0], glob="dt=2026-02-11/", cache_dir=setup.cache)
    assert [row.key for row in folder.rows] == [f"dt=2026-02-11/part-{i}.parquet" for i in range(3)]
    star = list_objects(setup.repo, "latest", glob="*part-0*", cache_dir=setup.cache)
    assert [row.key for row in star.rows] == [
        "dt=2026-02-10/part-0.parquet",
        "dt=2026-02-11/part-0.parquet",
        "dt=2026-02-12/part-0.parquet",
    ]
    row = next(iter(list_objects(setup.repo, "latest", glob="*12*", cache_dir=setup.cache).rows))
    doc = row_json(row)
    assert doc["size"] == 7 and doc["archive"].startswith("archives/") and len(doc["sha256"]) == 64
    with pytest.raises(UsageError, match="no snapshot"):
        list_objects(setup.repo, "20990101", cache_dir=setup.cache)
    with pytest.raises(UsageError, match="empty glob"):
        list_objects(setup.repo, "latest", glob="", cache_dir=setup.cache)


def test_find_groups_a_key_over_the_snapshots_that_hold_it(setup: Setup) -> None:
    result = find(setup.repo, "dt=2026-02-11/part-1.parquet", cache_dir=setup.cache)
    assert [(f.key, f.snapshots) for f in result.found] == [
        ("dt=2026-02-11/part-1.parquet", [setup.ids[0]]),
        ("dt=2026-02-11/part-1.parquet", [setup.ids[1]]),
    ]  # two versions: one entry per archive member
    assert result.found[0].archive != result.found[1].archive
    unchanged = find(setup.repo, "*/part-2.parquet", cache_dir=setup.cache)
    assert all(f.snapshots == setup.ids for f in unchanged.found) and len(unchanged.found) == 2
    # a full source key (as a Spark error would print it) finds the object too
    full = find(setup.repo, "events/dt=2026-02-12/*", cache_dir=setup.cache)
    assert [f.key for f in full.found] == ["dt=2026-02-12/part-0.parquet"]
    doc = full.to_json()
    assert doc["snapshots"] == [setup.ids[1]] and len(doc["archives"]) == 1
    assert doc["matches"][0]["source"] == str(setup.source)
    nothing = find(setup.repo, "nope*", cache_dir=setup.cache)
    assert nothing.found == [] and nothing.snapshots_searched == 2
    with pytest.raises(UsageError, match="empty glob"):
        find(setup.repo, " ", cache_dir=setup.cache)
    with pytest.raises(UsageError, match="narrow the glob"):
        find(setup.repo, "*", cache_dir=setup.cache, limit=3)

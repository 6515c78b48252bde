"""query: SQL over the snapshots, objects and catalog views, on a local cache."""

from __future__ import annotations

import io
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from repo_testing import CountingStore

from lakeguard.errors import UsageError
from lakeguard.location import parse_location
from lakeguard.ops.backup import backup
from lakeguard.ops.forget import forget
from lakeguard.ops.query import query, write_json, write_table
from lakeguard.repository.repo import Repository, init_repository, open_repository
from lakeguard.storage import open_store
from lakeguard.storage.memory import MemoryStore

T0 = datetime(2026, 2, 11, 12, tzinfo=UTC)


class Setup:
    def __init__(self, tmp_path: Path) -> None:
        self.name = f"lake-{uuid.uuid4().hex[:8]}"
        self.lake = MemoryStore.named(self.name)
        self.source = parse_location(f"memory://{self.name}/events")
        self.location = parse_location(str(tmp_path / "repo"))
        self.repo = init_repository(open_store(self.location), self.location).repository
        self.cache = tmp_path / "cache"
        self.ids: list[str] = []

    def backup(self, hours: int) -> None:
        result = backup(self.lake, self.source, self.repo, cache_dir=tmp_cache(self), now=at(hours))
        self.ids.append(result.snapshot_id)

    def counting(self) -> tuple[Repository, CountingStore]:
        store = CountingStore(open_store(self.location))
        return open_repository(store, self.location), store


def tmp_cache(setup: Setup) -> Path:
    return setup.cache.parent / "backup-cache"  # backups keep their own cache


def at(hours: int) -> datetime:
    return T0 + timedelta(hours=hours)


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    s = Setup(tmp_path)
    for index in range(5):
        s.lake.put(f"events/dt=2026-02-11/part-{index}.json", b"{}" * (index + 1) * 100)
    s.backup(0)
    s.lake.put("events/dt=2026-02-12/part-0.json", b"[]" * 10)
    s.backup(24)
    return s


def rows(repo: Repository, sql: str, cache: Path) -> list[dict[str, object]]:
    with query(repo, sql, cache_dir=cache) as result:
        out = io.StringIO()
        write_json(result, out)
    loaded = json.loads(out.getvalue())
    assert isinstance(loaded, list)
    return loaded


def test_the_three_views(setup: Setup) -> None:
    snaps = rows(
        setup.repo, "SELECT id, time, objects, tags FROM snapshots ORDER BY time", setup.cache
    )
    assert [s["id"] for s in snaps] == setup.ids
    assert snaps[0] == {
        "id": setup.ids[0],
        "time": "2026-02-11T12:00:00Z",
        "objects": 5,
        "tags": [],
    }
    per = rows(
        setup.repo,
        "SELECT snapshot_id, count(*) AS n, sum(size) AS bytes FROM objects GROUP BY 1 ORDER BY 1",
        setup.cache,
    )
    assert per == [
        {"snapshot_id": setup.ids[0], "n": 5, "bytes": 3000},
        {"snapshot_id": setup.ids[1], "n": 6, "bytes": 3020},
    ]
    catalog = rows(
        setup.repo,
        "SELECT object_name, object_path, year, month, day, backup_date, snapshot_id "
        "FROM catalog WHERE object_name LIKE 'dt=2026-02-12/%'",
        setup.cache,
    )
    assert catalog == [
        {
            "object_name": "dt=2026-02-12/part-0.json",
            "object_path": "events/dt=2026-02-12/part-0.json",
            "year": 2026,
            "month": 2,
            "day": 12,
            "backup_date": "2026-02-12",
            "snapshot_id": setup.ids[1],
        }
    ]
    # the catalog and the manifests agree on every object's SHA-256
    joined = rows(
        setup.repo,
        "SELECT count(*) AS n FROM objects o JOIN catalog c "
        "ON o.key = c.object_name AND o.sha256 = c.sha256 AND o.archive = c.archive",
        setup.cache,
    )
    assert joined == [{"n": 11}]


def test_a_second_query_downloads_nothing_and_new_files_only_after_a_backup(
    setup: Setup,
) -> None:
    repo, store = setup.counting()
    rows(repo, "SELECT count(*) FROM catalog", setup.cache)
    first = store.gets
    assert first >= 2 + 2 + 2  # headers, manifests, catalog files
    rows(repo, "SELECT count(*) FROM objects", setup.cache)
    assert store.gets == first
    setup.lake.put("events/dt=2026-02-13/part-0.json", b"{}")
    setup.backup(48)
    before = store.gets
    with query(repo, "SELECT count(*) AS n FROM catalog", cache_dir=setup.cache) as result:
        assert list(result.rows()) == [{"n": 7}]
        stats = result.stats
    assert (stats.headers_fetched, stats.manifests_fetched, stats.catalog_fetched) == (1, 1, 1)
    assert store.gets - before == 3
    forget(setup.repo, snapshot_ids=[setup.ids[0]])
    assert [r["n"] for r in rows(repo, "SELECT count(*) AS n FROM snapshots", setup.cache)] == [2]


def test_an_empty_repository_has_empty_views(tmp_path: Path) -> None:
    location = parse_location(str(tmp_path / "empty"))
    repo = init_repository(open_store(location), location).repository
    for view in ("snapshots", "objects", "catalog"):
        assert rows(repo, f"SELECT * FROM {view}", tmp_path / "c") == []
    with query(repo, "SELECT key, archive FROM objects", cache_dir=tmp_path / "c") as result:
        assert result.columns == ["key", "archive"]


def test_bad_sql_is_a_usage_error(setup: Setup) -> None:
    with pytest.raises(UsageError, match="query failed: Parser Error"):
        query(setup.repo, "SELEC 1", cache_dir=setup.cache)
    with pytest.raises(UsageError, match=r"query failed: .*nope"):
        query(setup.repo, "SELECT nope FROM snapshots", cache_dir=setup.cache)
    with pytest.raises(UsageError, match="empty query"):
        query(setup.repo, "  ", cache_dir=setup.cache)


def test_table_and_json_rendering(setup: Setup) -> None:
    sql = (
        "SELECT 1 AS a, 'x' AS b, NULL AS c, TIMESTAMPTZ '2026-02-11 12:00:00+00' AS t, "
        "[1, 2] AS l, 12345678901234::HUGEINT AS h, 1.5::DECIMAL(4,2) AS d"
    )
    with query(setup.repo, sql, cache_dir=setup.cache) as result:
        out = io.StringIO()
        assert write_json(result, out) == 1
    assert json.loads(out.getvalue()) == [
        {
            "a": 1,
            "b": "x",
            "c": None,
            "t": "2026-02-11T12:00:00Z",
            "l": [1, 2],
            "h": 12345678901234,
            "d": 1.5,
        }
    ]
    with query(
        setup.repo, "SELECT id, objects FROM snapshots ORDER BY id", cache_dir=setup.cache
    ) as result:
        table = io.StringIO()
        assert write_table(result, table) == 2
    lines = table.getvalue().splitlines()
    assert lines[0].split() == ["id", "objects"] and set(lines[1]) <= {"-", " "}
    assert lines[2].split() == [setup.ids[0], "5"] and lines[-1] == "(2 rows)"

"""Inventories: complete, in key order, bounded, and refused when unusable."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lakeguard.errors import TransientError, UsageError
from lakeguard.location import parse_location
from lakeguard.ops.inventory import COLUMNS, read_inventory, take_inventory
from lakeguard.ops.listing import list_chunks, list_objects, split_ranges
from lakeguard.storage.base import ObjectInfo
from lakeguard.storage.memory import MemoryStore


def _lake() -> MemoryStore:
    store = MemoryStore("lake")
    for table in ("events", "users"):
        for day in range(1, 8):
            for part in range(3):
                store.put(f"db/{table}/dt=2026-02-{day:02d}/part-{part}.parquet", b"x" * part)
        store.put(f"db/{table}/_SUCCESS", b"")
        store.put(f"db/{table}/dt=2026-02-01.json", b"{}")  # sorts between folders
    store.put("db/README", b"hello")
    store.put("db/AAA", b"first")
    store.put("other/x", b"not under db/")
    return store


def test_parallel_listing_holds_every_key_once_in_key_order() -> None:
    store = _lake()
    expected = [o.key for o in store.list("db/")]
    ranges = split_ranges(store, "db/", parts=8)
    assert len(ranges) > 2  # the listing really was cut
    for concurrency in (1, 2, 8):
        for head in (0, 1, 20, 10_000):  # keys listed in one chain before the pieces
            listing = list_objects(store, "db/", concurrency=concurrency, parallel_after=head)
            assert [o.key for o in listing] == expected


def test_inventory_rows_match_the_listing(tmp_path: Path) -> None:
    store = _lake()
    location = parse_location("memory://lake/db")
    result = take_inventory(store, location, output=tmp_path / "inv.parquet", concurrency=4)
    table = pq.read_table(tmp_path / "inv.parquet")
    assert table.schema.names == list(COLUMNS)
    assert table.column("key").to_pylist() == [o.key for o in store.list("db/")]
    assert result.objects == table.num_rows == 48
    assert result.bytes == sum(o.size for o in store.list("db/"))
    assert result.delete_markers == 0
    assert table.schema.field("last_modified").type == pa.timestamp("us", tz="UTC")
    inventory = read_inventory(tmp_path / "inv.parquet")
    assert inventory.location == "memory://lake/db/"
    assert inventory.prefix == "db/"
    assert inventory.versions is False
    assert inventory.taken_at is not None and inventory.taken_at.endswith("Z")
    assert not (tmp_path / "inv.parquet.partial").exists()


def test_versions_inventory_holds_old_versions_and_delete_markers(tmp_path: Path) -> None:
    store = MemoryStore("v", versioning="Enabled")
    store.put("t/a", b"1")
    store.put("t/a", b"22")
    store.put("t/b", b"333")
    store.delete("t/b")
    result = take_inventory(
        store, parse_location("memory://v/t"), versions=True, output=tmp_path / "v.parquet"
    )
    rows = pq.read_table(tmp_path / "v.parquet").to_pylist()
    assert [(r["key"], r["size"], r["is_latest"], r["is_delete_marker"]) for r in rows] == [
        ("t/a", 2, True, False),
        ("t/a", 1, False, False),
        ("t/b", 0, True, True),
        ("t/b", 3, False, False),
    ]
    assert all(r["version_id"] for r in rows)
    assert (result.objects, result.delete_markers, result.bytes) == (3, 1, 6)
    # The current entries of a versions inventory are the live objects.
    current = list(read_inventory(tmp_path / "v.parquet").current())
    assert [(e.key, e.size) for e in current] == [("t/a", 2)]


class _Large:
    """A store whose listing is generated lazily: the bench's synthetic lake, small."""

    url = "memory://large"

    def __init__(self, count: int, fail_after: int | None = None) -> None:
        self.count = count
        self.fail_after = fail_after

    def list(self, prefix: str = "", *, start_after: str | None = None) -> Iterator[ObjectInfo]:
        for index in range(self.count):
            if self.fail_after is not None and index == self.fail_after:
                raise TransientError("connection reset while listing", op="list")
            key = f"{prefix}k{index:09d}"
            if start_after is None or key > start_after:
                yield ObjectInfo(key=key, size=index, etag=f"{index:032x}")

    def list_prefixes(self, prefix: str = "") -> list[str]:
        return []


def test_inventory_spans_many_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("lakeguard.ops.inventory.ROWS_PER_BATCH", 2000)
    store = _Large(12_000)
    result = take_inventory(
        store,  # type: ignore[arg-type]
        parse_location("memory://large"),
        output=tmp_path / "big.parquet",
    )
    meta = pq.ParquetFile(tmp_path / "big.parquet").metadata
    assert result.objects == meta.num_rows == 12_000
    assert meta.num_row_groups >= 3  # written batch by batch, not as one table


def test_failed_listing_leaves_no_inventory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("lakeguard.ops.inventory.ROWS_PER_BATCH", 2000)  # some rows were written
    store = _Large(10_000, fail_after=6_000)
    with pytest.raises(TransientError):
        take_inventory(
            store,  # type: ignore[arg-type]
            parse_location("memory://large"),
            output=tmp_path / "inv.parquet",
        )
    assert list(tmp_path.iterdir()) == []


def test_output_in_a_missing_directory_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        take_inventory(
            _lake(), parse_location("memory://lake/db"), output=tmp_path / "no" / "inv.parquet"
        )


def test_only_an_inventory_is_replaced(tmp_path: Path) -> None:
    """-o replaces yesterday's inventory, never a file that is something else."""
    location = parse_location("memory://lake/db")
    output = tmp_path / "inv.parquet"
    take_inventory(_lake(), location, output=output)
    take_inventory(_lake(), location, output=output)  # again: replaced
    assert read_inventory(output).location == "memory://lake/db/"
    for name, body in (("script.py", b"print('keep me')\n"), ("other.parquet", None)):
        precious = tmp_path / name
        if body is None:
            pq.write_table(pa.table({"a": [1]}), precious)
        else:
            precious.write_bytes(body)
        before = precious.read_bytes()
        with pytest.raises(UsageError, match="exists and is not a lakeguard inventory"):
            take_inventory(_lake(), location, output=precious)
        assert precious.read_bytes() == before


def test_missing_inventory_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"nope\.parquet does not exist") as info:
        read_inventory(tmp_path / "nope.parquet")
    assert info.value.exit_code == 2


def test_non_parquet_inventory_is_named(tmp_path: Path) -> None:
    path = tmp_path / "inv.parquet"
    path.write_text("key,size\na,1\n")
    with pytest.raises(UsageError, match=r"inv\.parquet is not a Parquet file"):
        read_inventory(path)


def test_parquet_without_inventory_columns_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.parquet"
    pq.write_table(pa.table({"name": ["a"], "bytes": [1]}), path)
    with pytest.raises(UsageError, match=r"other\.parquet lacks the column\(s\) key, size, etag"):
        read_inventory(path)


def test_foreign_inventory_needs_only_key_size_etag(tmp_path: Path) -> None:
    path = tmp_path / "foreign.parquet"
    pq.write_table(
        pa.table(
            {
                "key": ["p/c", "p/a", "q/z", "p/b"],
                "size": [3, 1, 9, 2],
                "etag": ["c", "a", "z", "b"],
            }
        ),
        path,
    )
    inventory = read_inventory(path)
    assert inventory.prefix is None and inventory.location is None
    entries = list(inventory.current("p/"))
    assert [(e.key, e.size, e.etag) for e in entries] == [
        ("p/c", 3, "c"),
        ("p/a", 1, "a"),
        ("p/b", 2, "b"),
    ]


def _folders(count: int = 20, per: int = 300) -> MemoryStore:
    store = MemoryStore("wide")
    for folder in range(count):
        for index in range(per):
            store.put(f"f{folder:03d}/k{index:04d}", b"v")
    return store


def test_abandoned_parallel_listing_stops_its_workers() -> None:
    import threading

    store = _folders()
    before = threading.active_count()
    chunks = list_chunks(store, "", concurrency=4, parallel_after=0)
    assert len(next(chunks)) > 0
    chunks.close()  # the consumer stops early: workers must not stay blocked
    assert threading.active_count() <= before


def test_a_failing_range_fails_the_listing() -> None:
    from lakeguard.storage.faults import FaultPlan, FaultStore

    store = FaultStore(_folders(), FaultPlan(fail_rate=1.0, ops=frozenset({"list"})))
    with pytest.raises(TransientError, match="injected fault"):
        list(list_objects(store, "", concurrency=4, parallel_after=0))


class _TreeOrderStore:
    """A store that lists as a file tree walks (SeaweedFS): ``a/x`` before ``a-b``."""

    url = "memory://tree"

    def __init__(self, keys: list[str]) -> None:
        self.keys = sorted(keys, key=lambda k: k.split("/"))

    def list(self, prefix: str = "", *, start_after: str | None = None) -> Iterator[ObjectInfo]:
        after = start_after.split("/") if start_after is not None else None
        for key in self.keys:
            if key.startswith(prefix) and (after is None or key.split("/") > after):
                yield ObjectInfo(key=key, size=1)

    def list_prefixes(self, prefix: str = "") -> list[str]:
        found: list[str] = []
        for key in self.keys:
            rest = key[len(prefix) :] if key.startswith(prefix) else None
            if rest and "/" in rest:
                folder = prefix + rest.split("/", 1)[0] + "/"
                if folder not in found:
                    found.append(folder)
        return found


def _tricky_keys(seed: int) -> list[str]:
    import random

    rng = random.Random(seed)
    keys: set[str] = set()
    while len(keys) < 400:
        parts = [
            "".join(rng.choice("ab-.") for _ in range(rng.randint(1, 3)))
            for _ in range(rng.randint(1, 4))
        ]
        keys.add("/".join(parts))
    # A name cannot be both an object and a folder in a file tree.
    return sorted(k for k in keys if not any(other.startswith(k + "/") for other in keys))


@pytest.mark.parametrize("seed", range(5))
def test_parallel_listing_is_exact_in_byte_and_tree_order(seed: int) -> None:
    keys = _tricky_keys(seed)
    memory = MemoryStore("tricky")
    for key in keys:
        memory.put(key, b"v")
    tree = _TreeOrderStore(keys)
    for store in (memory, tree):
        expected = [o.key for o in store.list("")]  # type: ignore[attr-defined]
        for head in (0, 1, 57, 200):
            listing = list_objects(store, "", concurrency=3, parallel_after=head)  # type: ignore[arg-type]
            assert [o.key for o in listing] == expected


def test_an_empty_file_may_be_the_output(tmp_path: Path) -> None:
    """`inventory -o "$(mktemp)"`: an empty file holds nothing to lose."""
    empty = tmp_path / "tmp.XXXX"
    empty.touch()
    take_inventory(_lake(), parse_location("memory://lake/db"), output=empty)
    assert read_inventory(empty).location == "memory://lake/db/"

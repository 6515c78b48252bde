"""Verify: each kind of damage lands in its category, and only there."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lakeguard.errors import UsageError
from lakeguard.location import Location, parse_location
from lakeguard.ops.inventory import take_inventory
from lakeguard.ops.verify import in_sample, parse_sample, verify
from lakeguard.storage.base import chunked
from lakeguard.storage.faults import FaultPlan, FaultStore
from lakeguard.storage.memory import MemoryStore

LOC = parse_location("memory://lake/data")


def _lake(tmp_path: Path) -> tuple[MemoryStore, Path]:
    store = MemoryStore("lake", versioning="Enabled")
    for day in (1, 2, 3):
        for part in range(4):
            store.put(f"data/dt=2026-02-0{day}/part-{part}.parquet", f"{day}-{part}".encode() * 50)
    # A multipart object: its ETag is md5-of-md5s-N, checked part by part.
    store.put("data/big.bin", chunked(b"0123456789" * 70_000, 65_536), part_size=5 * 1024 * 1024)
    store.put("outside/keep", b"not under data/")
    path = tmp_path / "inv.parquet"
    take_inventory(store, LOC, output=path, concurrency=4)
    return store, path


def test_untouched_location_is_clean_in_both_modes(tmp_path: Path) -> None:
    store, inventory = _lake(tmp_path)
    fast = verify(store, LOC, against=inventory, concurrency=4)
    assert fast.clean and fast.counts()["ok"] == 13 and fast.mode == "fast"
    assert fast.bytes_read == 0
    deep = verify(store, LOC, against=inventory, deep=True, concurrency=4)
    assert deep.clean and deep.checksums_valid == 13 and deep.unverifiable == 0
    assert deep.bytes_read == deep.total_bytes == sum(o.size for o in store.list("data/"))
    assert deep.lines()[-5:] == [
        "Objects verified: 13",
        "Checksums valid: 13",
        "Missing objects: 0",
        "Corrupted objects: 0",
        f"Total size: {deep.total_bytes / 1000:.1f} KB",
    ]
    assert fast.lines()[-4] == "Checksums valid: not checked (use --deep)"


def test_missing_changed_and_extra_are_found_without_downloading(tmp_path: Path) -> None:
    store, inventory = _lake(tmp_path)
    store.delete("data/dt=2026-02-02/part-1.parquet")
    same_size = store.get_bytes("data/dt=2026-02-03/part-0.parquet").replace(b"3", b"9")
    store.put("data/dt=2026-02-03/part-0.parquet", same_size)  # same size, other ETag
    store.put("data/dt=2026-02-01/part-2.parquet", b"short")  # other size
    store.put("data/dt=2026-02-04/part-0.parquet", b"new")
    result = verify(store, LOC, against=inventory, concurrency=4)
    doc = result.to_json()
    assert doc["counts"] == {
        "ok": 10,
        "missing": 1,
        "changed": 2,
        "corrupted": 0,
        "extra": 1,
        "errors": 0,
    }
    assert doc["missing"] == ["data/dt=2026-02-02/part-1.parquet"]
    assert doc["changed"] == [
        "data/dt=2026-02-01/part-2.parquet",
        "data/dt=2026-02-03/part-0.parquet",
    ]
    assert doc["extra"] == ["data/dt=2026-02-04/part-0.parquet"]
    assert doc["mode"] == "fast" and doc["bytes_read"] == 0
    assert not result.clean


def test_bit_rot_under_an_unchanged_etag_is_corrupted_only_in_deep_mode(tmp_path: Path) -> None:
    store, inventory = _lake(tmp_path)
    rotten = FaultStore(store, FaultPlan(flip=1.0, seed=1, ops=frozenset({"get"})))
    fast = verify(rotten, LOC, against=inventory, concurrency=4)
    assert fast.clean
    deep = verify(rotten, LOC, against=inventory, deep=True, concurrency=4)
    assert deep.corrupted.count == 13 and deep.checksums_valid == 0
    assert "data/big.bin" in deep.corrupted.items  # the multipart ETag is checked too
    assert deep.lines()[-2] == "Corrupted objects: 13"


def test_recorded_sha256_decides_when_the_etag_cannot(tmp_path: Path) -> None:
    store = MemoryStore("lake")
    store.put("data/a", b"alpha")
    store.put("data/b", b"beta")
    store.put("data/c", b"gamma")
    path = tmp_path / "inv.parquet"
    pq.write_table(
        pa.table(
            {
                "key": ["data/a", "data/b", "data/c"],
                "size": [5, 4, 5],
                # No ETag recorded (as from a tool that keeps only checksums).
                "etag": pa.array([None, None, None], pa.string()),
                "checksum_sha256": [hashlib.sha256(b"alpha").hexdigest(), "00" * 32, None],
            }
        ),
        path,
    )
    result = verify(store, LOC, against=path, deep=True)
    assert result.corrupted.items == ["data/b"]
    assert result.checksums_valid == 1
    assert result.unverifiable == 1  # no ETag, no SHA-256: read, but nothing to compare with
    assert any(line.startswith("Checksums not verifiable: 1") for line in result.lines())


def test_multipart_part_size_is_learned_once(tmp_path: Path) -> None:
    store = MemoryStore("lake")
    mib = 1024 * 1024
    for name in "abc":
        body = name.encode() * (6 * mib + 1000)
        store.put(f"data/{name}.bin", chunked(body, mib), part_size=5 * mib)
    path = tmp_path / "inv.parquet"
    take_inventory(store, LOC, output=path)
    clean = verify(store, LOC, against=path, deep=True, concurrency=1)
    assert clean.checksums_valid == 3
    # One read per object: after the first, the part size that fits is tried alone.
    assert clean.bytes_read == clean.total_bytes
    rotten = FaultStore(store, FaultPlan(flip=1.0, seed=2, ops=frozenset({"get"})))
    damaged = verify(rotten, LOC, against=path, deep=True, concurrency=1)
    assert damaged.corrupted.count == 3 and damaged.checksums_valid == 0


def test_failed_reads_are_errors_not_corruption(tmp_path: Path) -> None:
    store, inventory = _lake(tmp_path)
    failing = FaultStore(store, FaultPlan(fail_rate=1.0, ops=frozenset({"get"})))
    result = verify(failing, LOC, against=inventory, deep=True, concurrency=4)
    doc = result.to_json()
    assert doc["counts"]["errors"] == 13 and doc["counts"]["corrupted"] == 0
    assert all("injected fault" in e["error"] for e in doc["errors"])
    assert not result.clean


def test_sample_reads_a_stable_share(tmp_path: Path) -> None:
    store, inventory = _lake(tmp_path)
    first = verify(store, LOC, against=inventory, deep=True, sample=0.5)
    second = verify(store, LOC, against=inventory, deep=True, sample=0.5)
    assert 0 < first.checked < 13
    assert first.checked == second.checked and first.bytes_read == second.bytes_read
    assert first.ok == 13  # objects outside the sample are still compared by listing
    keys = [f"k{i}" for i in range(10_000)]
    share = sum(in_sample(k, 0.1) for k in keys) / len(keys)
    assert 0.08 < share < 0.12


@pytest.mark.parametrize(("text", "value"), [("0.25", 0.25), ("10%", 0.1), ("100%", 1.0)])
def test_parse_sample(text: str, value: float) -> None:
    assert parse_sample(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["0", "1.5", "abc", "-10%"])
def test_parse_sample_refuses_nonsense(text: str) -> None:
    with pytest.raises(UsageError, match="--sample"):
        parse_sample(text)


def test_a_folder_inside_the_inventory_is_verified_alone(tmp_path: Path) -> None:
    store, inventory = _lake(tmp_path)
    store.delete("data/dt=2026-02-01/part-0.parquet")
    day2 = parse_location("memory://lake/data/dt=2026-02-02")
    assert verify(store, day2, against=inventory).to_json()["counts"]["ok"] == 4
    day1 = parse_location("memory://lake/data/dt=2026-02-01")
    assert verify(store, day1, against=inventory).missing.items == [
        "data/dt=2026-02-01/part-0.parquet"
    ]


def test_a_replica_under_another_prefix_is_compared_key_for_key(tmp_path: Path) -> None:
    store, inventory = _lake(tmp_path)
    for info in store.list("data/"):
        store.copy(info.key, "replica/" + info.key)
    store.delete("replica/data/dt=2026-02-03/part-3.parquet")
    replica = Location("memory", "lake", "replica/data/")
    result = verify(store, replica, against=inventory)
    assert result.counts()["ok"] == 12
    assert result.missing.items == ["replica/data/dt=2026-02-03/part-3.parquet"]


def test_foreign_inventory_in_any_order(tmp_path: Path) -> None:
    store = MemoryStore("lake")
    store.put("data/b", b"beta")
    store.put("data/a", b"alpha")
    store.put("data/c", b"new")
    path = tmp_path / "foreign.parquet"
    pq.write_table(
        pa.table(
            {
                "key": ["data/z", "data/b", "data/a", "data/a"],  # unsorted, one repeated
                "size": [1, 4, 5, 5],
                "etag": [
                    "x",
                    f'"{hashlib.md5(b"beta").hexdigest()}"',  # quoted, as S3 Inventory writes
                    hashlib.md5(b"alpha").hexdigest().upper(),
                    hashlib.md5(b"alpha").hexdigest(),
                ],
            }
        ),
        path,
    )
    result = verify(store, LOC, against=path, deep=True)
    assert result.counts() == {
        "ok": 2,
        "missing": 1,
        "changed": 0,
        "corrupted": 0,
        "extra": 1,
        "errors": 0,
    }
    assert result.checksums_valid == 2


def test_inventory_with_wrong_column_types_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "odd.parquet"
    pq.write_table(pa.table({"key": ["data/a"], "size": ["big"], "etag": ["x"]}), path)
    with pytest.raises(UsageError, match=r"odd\.parquet cannot be compared"):
        verify(MemoryStore("lake"), LOC, against=path)


def test_a_tiny_sample_still_reads_one_object(tmp_path: Path) -> None:
    store, inventory = _lake(tmp_path)
    keys = [info.key for info in store.list("data/")]
    assert not any(in_sample(key, 0.001) for key in keys)  # the share takes none of them
    first = verify(store, LOC, against=inventory, deep=True, sample=0.001)
    again = verify(store, LOC, against=inventory, deep=True, sample=0.001)
    assert first.checked == again.checked == 1 and first.checksums_valid == 1
    assert first.bytes_read == again.bytes_read > 0
    assert "from 1 object (a 0.1% sample)" in "\n".join(first.lines())
    assert first.clean and first.ok == 13

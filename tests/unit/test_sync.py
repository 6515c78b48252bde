"""sync between in-memory stores and local directories: plans, copies, deletes, checksums."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakeguard.errors import UsageError
from lakeguard.location import Location, parse_location
from lakeguard.ops.sync import sync
from lakeguard.storage.base import Store, chunked
from lakeguard.storage.local import LocalStore
from lakeguard.storage.memory import MemoryStore

SRC = parse_location("memory://replica/lake")
DST = parse_location("memory://prod/lake")
FILES = {
    f"dt=2026-02-0{d}/part-{p}.parquet": bytes([d * 10 + p]) * (1000 + p)
    for d in (1, 2, 3)
    for p in (0, 1)
}


def stores() -> tuple[MemoryStore, MemoryStore]:
    replica = MemoryStore("replica", versioning="Enabled")
    prod = MemoryStore("prod", versioning="Enabled")
    for rel, body in FILES.items():
        replica.put("lake/" + rel, body)
        prod.put("lake/" + rel, body)
    return replica, prod


def contents(store: Store, prefix: str) -> dict[str, bytes]:
    return {i.key[len(prefix) :]: store.get_bytes(i.key) for i in store.list(prefix)}


def test_copies_what_is_missing_or_different_and_deletes_only_when_asked() -> None:
    replica, prod = stores()
    prod.delete("lake/dt=2026-02-02/part-0.parquet")
    prod.put("lake/dt=2026-02-03/part-1.parquet", b"\0" * 1001)  # same size, other bytes
    prod.put("lake/dt=2026-02-01/part-1.parquet", b"short")
    prod.put("lake/junk.tmp", b"junk")

    dry = sync(replica, SRC, prod, DST, dry_run=True, delete=True)
    assert dry.to_json()["plan"] == {"copy": 3, "delete": 1, "unchanged": 3, "bytes_to_copy": 3002}
    assert contents(prod, "lake/")["junk.tmp"] == b"junk"

    kept = sync(replica, SRC, prod, DST)
    doc = kept.to_json()
    assert doc["applied"] == {"copy": 3, "delete": 0} and doc["failed"] == []
    assert doc["verified"] == {"ok": 3, "failed": 0}
    assert contents(prod, "lake/") == {**FILES, "junk.tmp": b"junk"}

    removed = sync(replica, SRC, prod, DST, delete=True)
    assert removed.to_json()["applied"] == {"copy": 0, "delete": 1}
    assert contents(prod, "lake/") == FILES
    # A versioned DST keeps what sync replaced or removed.
    assert any(i.is_delete_marker for i in prod.list_versions("lake/junk.tmp"))
    assert sync(replica, SRC, prod, DST, delete=True).plan.actions == 0


def test_local_directory_changed_behind_its_back_is_caught_by_sha256(tmp_path: Path) -> None:
    replica, _ = stores()
    replica.put("lake/big.bin", chunked(b"B" * 3000, 1000), part_size=1000)  # multipart ETag
    folder = tmp_path / "copy"
    local = LocalStore(folder)
    where = Location("file", str(folder))
    first = sync(replica, SRC, local, where)
    assert first.ok and first.plan.counts["copy"] == 7
    # A multipart ETag and an MD5 say nothing to each other: compared by SHA-256.
    second = sync(replica, SRC, local, where)
    assert second.plan.actions == 0 and second.checked == 1

    victim = folder / "dt=2026-02-01" / "part-0.parquet"
    victim.write_bytes(b"\xff" * 1000)  # same size; the recorded ETag no longer holds
    with pytest.raises(UsageError, match=r"keeps no versions.*--force"):
        sync(replica, SRC, local, where)
    repaired = sync(replica, SRC, local, where, force=True)
    assert repaired.to_json()["applied"]["copy"] == 1
    assert victim.read_bytes() == FILES["dt=2026-02-01/part-0.parquet"]

    every = sync(replica, SRC, local, where, checksum=True)
    assert every.plan.actions == 0 and every.checked == 7


def test_overlapping_locations_are_refused() -> None:
    replica, _ = stores()
    with pytest.raises(UsageError, match="overlap"):
        sync(replica, SRC, replica, parse_location("memory://replica/lake/sub"))


def test_delete_from_an_empty_source_needs_force() -> None:
    """A misspelled SRC lists nothing: --delete would empty DST, versioned or not."""
    _replica, prod = stores()
    empty = MemoryStore("empty-src")
    empty.create()
    nowhere = parse_location("memory://empty-src/misspelled")
    with pytest.raises(UsageError, match="holds no objects: --delete would delete all 6 objects"):
        sync(empty, nowhere, prod, DST, delete=True)
    assert contents(prod, "lake/") == FILES

    dry = sync(empty, nowhere, prod, DST, delete=True, dry_run=True)
    assert dry.to_json()["force_needed"].startswith("memory://empty-src/misspelled/ holds no")
    assert "check SRC first" in dry.lines()[-1]

    done = sync(empty, nowhere, prod, DST, delete=True, force=True)
    assert done.to_json()["applied"] == {"copy": 0, "delete": 6}
    assert sync(empty, nowhere, prod, DST).plan.actions == 0  # without --delete: nothing


def test_a_destination_naming_one_object_is_refused() -> None:
    replica, prod = stores()
    prod.put("one.bin", b"an object, not a folder")
    with pytest.raises(UsageError, match=r"memory://prod/one.bin is an object, not a folder"):
        sync(replica, SRC, prod, parse_location("memory://prod/one.bin"), dry_run=True)
    assert not [i.key for i in prod.list("one.bin/")]


def test_dry_run_into_a_directory_foresees_the_copies_it_would_refuse(tmp_path: Path) -> None:
    source = MemoryStore("in-the-way-src")
    for key in ("ok", "b", "b/x", "d/f", "e", "../up"):
        source.put(f"lake/{key}", f"body {key}".encode())
    folder = tmp_path / "dst"
    (folder / "e").mkdir(parents=True)
    (folder / "d").write_text("a file where a folder is needed")
    local = LocalStore(folder)
    where = Location("file", str(folder))
    src = parse_location("memory://in-the-way-src/lake")
    dry = sync(source, src, local, where, dry_run=True)
    foreseen = {key: error for key, error in dry.would_fail.items}
    # "b" and "b/x" cannot both be written: whichever the plan holds second fails.
    assert len(foreseen) == 4 and {"../up", "d/f", "e"} < set(foreseen)
    assert len(set(foreseen) & {"b", "b/x"}) == 1
    assert "a folder of that name exists" in foreseen["e"]
    assert any(line.startswith("Would fail (4)") for line in dry.lines())
    assert dry.to_json()["would_fail_total"] == 4
    assert not (folder / "ok").exists()
    real = sync(source, src, local, where)
    assert real.outcome.failed.count == 4
    assert (folder / "ok").read_bytes() == b"body ok"

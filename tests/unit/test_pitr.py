"""pitr on the in-memory store: restores, re-runs, crashes, refusals, failures."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lakeguard.errors import StoreError, UsageError
from lakeguard.location import Location, parse_location
from lakeguard.ops.pitr import apply_in_place, pitr
from lakeguard.ops.pitr_plan import read_plan
from lakeguard.storage.base import ObjectInfo, PutResult, Store
from lakeguard.storage.local import LocalStore
from lakeguard.storage.memory import MemoryStore
from lakeguard.storage.wrappers import StoreWrapper

START = datetime(2026, 2, 11, 10, 0, 0, tzinfo=UTC)
LOC = parse_location("memory://lake/t")


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def tick(self, seconds: float = 60) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


GOOD = {
    "t/dt=2026-02-01/part-0.parquet": b"a" * 100,
    "t/dt=2026-02-01/part-1.parquet": b"b" * 100,
    "t/dt=2026-02-02/part-0.parquet": b"c" * 100,
    "t/dt=2026-02-02/part-1.parquet": b"d" * 100,
    "t/dt=2026-02-03/part-0.parquet": b"e" * 100,
    "t/a key with spaces +=.txt": b"f" * 10,
    "t/ünïcødé/ключ.txt": b"g" * 10,
}


def incident(clock: Clock, *, versioning: str = "Enabled") -> tuple[MemoryStore, datetime]:
    """A lake, the moment T, then overwrites, a deleted day, and junk keys."""
    store = MemoryStore("lake", versioning=versioning, clock=clock)
    MemoryStore._named["lake"] = store
    for key, body in GOOD.items():
        store.put(key, body)
    at = clock.tick()
    clock.tick()
    store.put("t/dt=2026-02-01/part-0.parquet", b"X" * 100)  # same size, other bytes
    store.put("t/ünïcødé/ключ.txt", b"short")
    for key in ("t/dt=2026-02-02/part-0.parquet", "t/dt=2026-02-02/part-1.parquet"):
        store.delete(key)
    store.delete("t/a key with spaces +=.txt")
    store.delete("t/a key with spaces +=.txt")  # a second marker on top
    store.put("t/dt=2026-02-01/_tmp_0.crc", b"junk")
    return store, at


def current(store: Store, prefix: str = "t/") -> dict[str, bytes]:
    return {info.key: store.get_bytes(info.key) for info in store.list(prefix)}


def versions(store: Store) -> set[tuple[str, str | None]]:
    return {(i.key, i.version_id) for i in store.list_versions("") if not i.is_delete_marker}


def test_restores_the_state_at_t_in_place_and_destroys_no_version() -> None:
    clock = Clock()
    store, at = incident(clock)
    before = versions(store)
    clock.tick()
    result = pitr(store, LOC, at=at, delete_newer=True)
    assert current(store) == GOOD
    assert result.ok
    doc = result.to_json()
    assert doc["plan"] == {
        "copy": 2,
        "undelete": 3,
        "delete": 1,
        "unchanged": 2,
        "bytes_to_copy": 110,
    }
    assert doc["applied"] == {"copy": 2, "undelete": 3, "delete": 1}
    assert doc["verified"] == {"ok": 6, "failed": 0}
    assert doc["failed"] == []
    assert doc["bytes_copied"] == 110  # the deleted day came back without a copy
    assert versions(store) >= before  # every version is still there


def test_dry_run_changes_nothing_and_a_rerun_after_success_plans_nothing(tmp_path: Path) -> None:
    clock = Clock()
    store, at = incident(clock)
    damaged = current(store)
    plan_file = tmp_path / "plan.jsonl"
    dry = pitr(store, LOC, at=at, dry_run=True, plan_out=plan_file)
    assert current(store) == damaged
    assert dry.to_json()["applied"] == {"copy": 0, "undelete": 0, "delete": 0}
    assert dry.plan.newer == 1 and dry.plan.first_newer == ["t/dt=2026-02-01/_tmp_0.crc"]
    rows = list(read_plan(plan_file))
    assert sorted(a.key for a in rows) == sorted(
        [
            "t/dt=2026-02-01/part-0.parquet",
            "t/ünïcødé/ключ.txt",
            "t/dt=2026-02-02/part-0.parquet",
            "t/dt=2026-02-02/part-1.parquet",
            "t/a key with spaces +=.txt",
        ]
    )
    overwritten = next(a for a in rows if a.key == "t/dt=2026-02-01/part-0.parquet")
    assert overwritten.before is not None and overwritten.before.size == 100  # the undo list
    assert "To apply it" in "\n".join(dry.lines())

    pitr(store, LOC, at=at)
    again = pitr(store, LOC, at=at)
    assert again.plan.actions == 0 and again.outcome.applied == {}
    assert again.plan.unchanged == 7 and again.plan.newer == 1


def test_crash_midway_then_rerun_finishes_and_copies_nothing_twice(tmp_path: Path) -> None:
    clock = Clock()
    store, at = incident(clock)
    plan_file = tmp_path / "plan.jsonl"
    pitr(store, LOC, at=at, dry_run=True, plan_out=plan_file)
    damaged = len(versions(store))
    # The first run dies after two actions.
    apply_in_place(store, itertools.islice(read_plan(plan_file), 2))
    rerun = pitr(store, LOC, at=at)
    assert rerun.plan.actions == 3  # only what the first run did not do
    assert current(store) == {**GOOD, "t/dt=2026-02-01/_tmp_0.crc": b"junk"}
    # The same plan applied once more finds every key done.
    replay = apply_in_place(store, read_plan(plan_file))
    assert replay.already == 5 and replay.applied == {} and replay.failed.count == 0
    # Each copy added exactly one version, over both runs and the replay.
    copies = [a for a in read_plan(plan_file) if a.action == "copy"]
    assert len(versions(store)) == damaged + len(copies)


def test_a_key_written_after_planning_is_not_overwritten(tmp_path: Path) -> None:
    clock = Clock()
    store, at = incident(clock)
    plan_file = tmp_path / "plan.jsonl"
    pitr(store, LOC, at=at, dry_run=True, plan_out=plan_file)
    store.put("t/dt=2026-02-01/part-0.parquet", b"fresh data written by the job")
    outcome = apply_in_place(store, read_plan(plan_file))
    assert [key for key, _ in outcome.failed.items] == ["t/dt=2026-02-01/part-0.parquet"]
    assert "changed since the plan was made" in outcome.failed.items[0][1]
    assert store.get_bytes("t/dt=2026-02-01/part-0.parquet") == b"fresh data written by the job"


def test_unversioned_locations_are_refused_naming_versioning(tmp_path: Path) -> None:
    store = MemoryStore("plain")
    store.put("t/x", b"1")
    with pytest.raises(UsageError, match="versioning was never enabled"):
        pitr(store, parse_location("memory://plain/t"), at=START)
    with pytest.raises(UsageError, match="versioning was never enabled"):
        pitr(store, parse_location("memory://plain/t"), at=START, to=(MemoryStore("o"), LOC))
    folder = LocalStore(tmp_path)
    with pytest.raises(UsageError, match="needs object versions"):
        pitr(folder, Location("file", str(tmp_path)), at=START)


def test_suspended_versioning_refuses_to_replace_a_null_version() -> None:
    clock = Clock()
    store = MemoryStore("lake", versioning="Enabled", clock=clock)
    store.put("t/k", b"good")
    at = clock.tick()
    clock.tick()
    store.set_versioning(False)  # suspended: the next write is the "null" version
    store.put("t/k", b"bad")
    dry = pitr(store, LOC, at=at, dry_run=True)
    assert dry.plan.counts["copy"] == 1
    assert any("suspended" in w and "'null' version" in w for w in dry.warnings)
    with pytest.raises(UsageError, match="versioning is suspended"):
        pitr(store, LOC, at=at)
    assert store.get_bytes("t/k") == b"bad"
    store.set_versioning(True)
    assert pitr(store, LOC, at=at).ok
    assert store.get_bytes("t/k") == b"good"
    assert {i.version_id for i in store.list_versions("t/")} >= {"null"}


def test_restore_to_another_bucket_and_to_a_local_directory(tmp_path: Path) -> None:
    clock = Clock()
    store, at = incident(clock)
    other = MemoryStore("other", versioning="Enabled")
    MemoryStore._named["other"] = other
    out = pitr(store, LOC, at=at, to=(other, parse_location("memory://other/restored")))
    assert out.ok and out.plan.counts["copy"] == 7
    assert current(other, "restored/") == {
        "restored/" + key[len("t/") :]: body for key, body in GOOD.items()
    }
    assert current(store)["t/dt=2026-02-01/part-0.parquet"] == b"X" * 100  # LOC untouched

    folder = tmp_path / "restore"  # created on the way
    local = LocalStore(folder)
    result = pitr(store, LOC, at=at, to=(local, Location("file", str(folder))))
    assert result.to_json()["verified"] == {"ok": 7, "failed": 0}
    assert (folder / "ünïcødé" / "ключ.txt").read_bytes() == b"g" * 10
    assert (folder / "a key with spaces +=.txt").read_bytes() == b"f" * 10
    again = pitr(store, LOC, at=at, to=(local, Location("file", str(folder))))
    assert again.plan.actions == 0 and again.plan.unchanged == 8


def test_an_empty_destination_gets_the_plan_a_diff_would_give(tmp_path: Path) -> None:
    """To an empty destination the copies stream as the listing goes (no diff):
    the same actions, counts and verification as a destination that must be diffed."""
    clock = Clock()
    store, at = incident(clock)
    streamed_to = MemoryStore("streamed", versioning="Enabled")
    diffed_to = MemoryStore("diffed", versioning="Enabled")
    MemoryStore._named.update(streamed=streamed_to, diffed=diffed_to)
    diffed_to.put("elsewhere/other.txt", b"not under the prefix")  # the bucket is not empty
    diffed_to.put("r/unrelated-but-under-prefix", b"?")  # this one forces a diff
    streamed_plan, diffed_plan = tmp_path / "streamed.jsonl", tmp_path / "diffed.jsonl"
    streamed = pitr(
        store,
        LOC,
        at=at,
        to=(streamed_to, parse_location("memory://streamed/r")),
        plan_out=streamed_plan,
    )
    diffed = pitr(
        store,
        LOC,
        at=at,
        to=(diffed_to, parse_location("memory://diffed/r")),
        plan_out=diffed_plan,
    )
    assert streamed.ok and diffed.ok
    for field in ("plan", "applied", "verified"):
        assert streamed.to_json()[field] == diffed.to_json()[field], field
    assert streamed.plan.keys == diffed.plan.keys == 8
    assert streamed.plan.versions == diffed.plan.versions
    assert sorted(map(repr, read_plan(streamed_plan))) == sorted(map(repr, read_plan(diffed_plan)))
    assert current(streamed_to, "r/") == {"r/" + k[len("t/") :]: v for k, v in GOOD.items()}


class _ListingBreaks(StoreWrapper):
    """The version listing fails after a few entries."""

    def list_versions(self, prefix: str = "") -> Iterator[ObjectInfo]:
        for n, info in enumerate(self.inner.list_versions(prefix)):
            if n == 3:
                raise StoreError("listing cut", op="list_versions")
            yield info


def test_a_listing_that_fails_while_copies_stream_fails_the_run(tmp_path: Path) -> None:
    clock = Clock()
    store, at = incident(clock)
    other = MemoryStore("other", versioning="Enabled")
    MemoryStore._named["other"] = other
    plan_file = tmp_path / "plan.jsonl"
    with pytest.raises(StoreError, match="listing cut"):
        pitr(
            _ListingBreaks(store),
            LOC,
            at=at,
            to=(other, parse_location("memory://other/r")),
            plan_out=plan_file,
        )
    assert not plan_file.exists()  # no plan file that looks whole
    # What landed is a prefix of the work; a re-run diffs and finishes it.
    again = pitr(store, LOC, at=at, to=(other, parse_location("memory://other/r")))
    assert again.ok and again.to_json()["verified"]["failed"] == 0
    assert current(other, "r/") == {"r/" + k[len("t/") :]: v for k, v in GOOD.items()}


def test_to_a_location_inside_loc_is_refused() -> None:
    clock = Clock()
    store, at = incident(clock)
    with pytest.raises(UsageError, match="overlaps"):
        pitr(store, LOC, at=at, to=(store, parse_location("memory://lake/t/restored")))


class _Poisoned(StoreWrapper):
    """Copies of keys containing 'part-1' fail; copies of 'part-0' write the wrong bytes."""

    def copy(
        self,
        src_key: str,
        dst_key: str,
        *,
        src_version_id: str | None = None,
        metadata: Mapping[str, str] | None = None,
        src_info: ObjectInfo | None = None,
    ) -> PutResult:
        if "part-1" in dst_key:
            raise StoreError(f"copy refused for {dst_key}", op="copy", key=dst_key)
        result = self.inner.copy(src_key, dst_key, src_version_id=src_version_id)
        if "part-0" in dst_key:
            self.inner.put(dst_key, b"?" * 100)  # someone else's write lands on top
        return result


def test_failed_and_unverified_keys_are_listed() -> None:
    clock = Clock()
    store, at = incident(clock)
    store.put("t/dt=2026-02-02/part-1.parquet", b"Z" * 100)  # over the marker: a copy
    result = pitr(_Poisoned(store), LOC, at=at)
    failed = dict(result.outcome.failed.items)
    assert set(failed) == {"t/dt=2026-02-02/part-1.parquet", "t/dt=2026-02-01/part-0.parquet"}
    assert "copy refused" in failed["t/dt=2026-02-02/part-1.parquet"]
    assert failed["t/dt=2026-02-01/part-0.parquet"].startswith("verification failed")
    assert not result.ok
    assert result.to_json()["verified"]["failed"] == 1
    text = "\n".join(result.lines())
    assert "Failed (2):" in text and "t/dt=2026-02-02/part-1.parquet: copy refused" in text


def test_plan_out_replaces_a_plan_but_not_another_file(tmp_path: Path) -> None:
    clock = Clock()
    store, at = incident(clock)
    plan_file = tmp_path / "plan.jsonl"
    pitr(store, LOC, at=at, dry_run=True, plan_out=plan_file)
    pitr(store, LOC, at=at, dry_run=True, plan_out=plan_file)  # an earlier plan: replaced
    assert len(list(read_plan(plan_file))) == 5
    empty = tmp_path / "empty.jsonl"
    empty.touch()
    pitr(store, LOC, at=at, dry_run=True, plan_out=empty)
    for name, body in (("notes.txt", "keep me\n"), ("rows.jsonl", '{"a": 1}\n')):
        precious = tmp_path / name
        precious.write_text(body)
        with pytest.raises(UsageError, match="exists and is not a plan file"):
            pitr(store, LOC, at=at, dry_run=True, plan_out=precious)
        assert precious.read_text() == body


def test_dry_run_to_a_directory_foresees_the_copies_it_would_refuse(tmp_path: Path) -> None:
    clock = Clock()
    store, at = incident(clock)
    folder = tmp_path / "restore"
    (folder / "dt=2026-02-02").mkdir(parents=True)
    (folder / "dt=2026-02-01").write_text("a file where a folder is needed")
    (tmp_path / "away").mkdir()
    (folder / "ünïcødé").symlink_to(tmp_path / "away")
    local = LocalStore(folder)
    where = Location("file", str(folder))
    dry = pitr(store, LOC, at=at, to=(local, where), dry_run=True)
    foreseen = dict(dry.would_fail.items)
    assert sorted(foreseen) == [
        "dt=2026-02-01/part-0.parquet",
        "dt=2026-02-01/part-1.parquet",
        "ünïcødé/ключ.txt",
    ]
    assert "a symbolic link" in foreseen["ünïcødé/ключ.txt"]
    assert dry.to_json()["would_fail_total"] == 3
    assert any(line.startswith("Would fail (3)") for line in dry.lines())
    real = pitr(store, LOC, at=at, to=(local, where), force=True)
    assert sorted(key for key, _ in real.outcome.failed.items) == sorted(foreseen)
    assert not list((tmp_path / "away").iterdir())

"""History: damage windows, their counts, and the last good time before each."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from lakeguard.errors import UsageError
from lakeguard.location import parse_location
from lakeguard.ops.history import history
from lakeguard.storage.memory import MemoryStore
from lakeguard.timeparse import iso

LOC = parse_location("memory://lake/data")
T0 = datetime(2026, 2, 11, 1, 0, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def at(self, minutes: float) -> None:
        self.now = T0 + timedelta(minutes=minutes)


def _store(versioning: str | None = "Enabled") -> tuple[MemoryStore, Clock]:
    clock = Clock()
    return MemoryStore("lake", versioning=versioning, clock=clock), clock


def test_creating_new_keys_is_not_damage() -> None:
    store, clock = _store()
    for index in range(50):
        clock.at(index)  # a steady stream of new files
        store.put(f"data/dt=2026-02-11/part-{index}.parquet", b"x")
    result = history(store, LOC)
    assert result.versions == 50 and result.delete_markers == 0
    assert result.damage_windows == []
    assert result.lines()[-1] == "Damage windows: none"


def test_a_burst_of_deletes_and_overwrites_is_one_window() -> None:
    store, clock = _store()
    for index in range(10):
        store.put(f"data/k{index}", b"good")
    clock.at(60)
    for index in range(4):
        store.delete(f"data/k{index}")
    clock.at(62)
    store.put("data/k5", b"junk")  # overwrite
    store.put("data/new", b"created inside the window")
    store.put("other/k0", b"outside the location")
    clock.at(63)
    store.delete("data/k0")  # a marker over a marker: no new damage
    result = history(store, LOC)
    doc = result.to_json()
    assert doc["versions"] == 12 and doc["delete_markers"] == 5
    assert doc["damage_windows"] == [
        {
            "start": "2026-02-11T02:00:00Z",
            "end": "2026-02-11T02:02:00Z",
            "deletes": 4,
            "overwrites": 1,
            "creates": 1,
            "keys": 5,
            "last_good": "2026-02-11T01:59:59Z",
            "sample_keys": ["data/k0", "data/k1", "data/k2", "data/k3", "data/k5"],
        }
    ]
    assert result.lines()[-1] == (
        "to restore: lakeguard pitr memory://lake/data/ --at 2026-02-11T01:59:59Z --dry-run"
    )


def test_quiet_time_longer_than_the_gap_splits_windows() -> None:
    store, clock = _store()
    for index in range(3):
        store.put(f"data/k{index}", b"v1")
    clock.at(30)
    store.delete("data/k0")
    clock.at(45)  # 15 minutes later: a second incident
    store.put("data/k1", b"v2")
    clock.at(47)
    store.put("data/k0", b"back")  # a re-create after a delete is a create
    windows = history(store, LOC).damage_windows
    assert [(iso(w.start), w.deletes, w.overwrites, w.creates) for w in windows] == [
        ("2026-02-11T01:30:00Z", 1, 0, 0),
        ("2026-02-11T01:45:00Z", 0, 1, 0),
    ]
    merged = history(store, LOC, gap=timedelta(minutes=20)).damage_windows
    assert len(merged) == 1 and (merged[0].deletes, merged[0].overwrites) == (1, 1)
    assert merged[0].creates == 0  # the re-create at 01:47 is after the window's end


def test_same_second_versions_keep_the_store_order() -> None:
    store, _clock = _store()
    # All at one instant: create, delete, re-create, delete. Only the listing order tells.
    store.put("data/a", b"1")
    store.delete("data/a")
    store.put("data/a", b"2")
    store.delete("data/a")
    result = history(store, LOC)
    (window,) = result.damage_windows
    assert (window.deletes, window.overwrites, window.keys) == (2, 0, 1)
    assert window.creates == 2
    assert window.last_good == T0 - timedelta(seconds=1)


def test_many_delete_markers_in_a_row() -> None:
    store, clock = _store()
    for index in range(2500):
        store.put(f"data/k{index:05d}", b"v")
    clock.at(5)
    for index in range(2500):
        store.delete(f"data/k{index:05d}")
    for index in range(0, 2500, 2):
        store.delete(f"data/k{index:05d}")  # markers on markers
    result = history(store, LOC)
    assert result.delete_markers == 3750 and result.current_objects == 0
    (window,) = result.damage_windows
    assert (window.deletes, window.keys) == (2500, 2500)
    assert len(window.sample_keys) == 10


def test_null_versions_of_suspended_versioning() -> None:
    store, clock = _store()
    store.put("data/a", b"1")
    store.set_versioning(False)  # Suspended: writes replace the null version
    clock.at(10)
    store.put("data/a", b"2")
    store.put("data/b", b"3")
    clock.at(11)
    store.put("data/b", b"4")  # replaces b's null version: no trace of the first
    result = history(store, LOC)
    assert result.versioning == "Suspended"
    (window,) = result.damage_windows
    assert (window.overwrites, window.keys, iso(window.start)) == (1, 1, "2026-02-11T01:10:00Z")
    assert "versioning is suspended on memory://" in (result.versioning_note or "")
    assert "versioning" not in "\n".join(result.lines())


def test_unversioned_location_lists_objects_and_says_so() -> None:
    store, _clock = _store(versioning=None)
    store.put("data/a", b"1")
    store.put("data/a", b"2")
    result = history(store, LOC)
    assert (result.versions, result.current_objects, result.damage_windows) == (1, 1, [])
    assert result.versioning is None
    assert (result.versioning_note or "").startswith("versioning is off on memory://")
    assert "versioning" not in "\n".join(result.lines())  # the report is the same either way


def test_since_and_until_bound_the_counts_and_windows() -> None:
    store, clock = _store()
    store.put("data/a", b"1")
    clock.at(30)
    store.put("data/a", b"2")
    clock.at(90)
    store.delete("data/a")
    result = history(store, LOC, since=T0 + timedelta(minutes=60))
    assert (result.versions, result.delete_markers) == (0, 1)
    assert [w.deletes for w in result.damage_windows] == [1]
    early = history(store, LOC, until=T0 + timedelta(minutes=60))
    assert (early.versions, early.delete_markers) == (2, 0)
    assert [w.overwrites for w in early.damage_windows] == [1]


def test_since_after_until_is_a_usage_error() -> None:
    store, _clock = _store()
    with pytest.raises(UsageError, match="after --until"):
        history(store, LOC, since=T0, until=T0 - timedelta(seconds=1))

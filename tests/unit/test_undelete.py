"""undelete on the in-memory store: the same versions come back, nothing is copied."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from lakeguard.errors import UsageError
from lakeguard.location import parse_location
from lakeguard.ops.undelete import undelete
from lakeguard.storage.memory import MemoryStore

LOC = parse_location("memory://lake/t")


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 2, 11, 10, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def tick(self) -> datetime:
        self.now += timedelta(minutes=1)
        return self.now


def lake() -> tuple[MemoryStore, Clock, dict[str, str | None]]:
    clock = Clock()
    store = MemoryStore("lake", versioning="Enabled", clock=clock)
    ids = {}
    for key in ("t/old-delete", "t/a", "t/b b+=", "t/straddles", "t/alive"):
        ids[key] = store.put(key, key.encode()).version_id
    clock.tick()
    store.delete("t/old-delete")
    store.delete("t/straddles")
    clock.tick()
    store.delete("t/a")
    store.delete("t/a")  # two markers on top
    store.delete("t/b b+=")
    store.delete("t/straddles")
    store.delete("t/only-markers")  # a key that never held data
    return store, clock, ids


def test_default_brings_back_every_deleted_key_by_its_version() -> None:
    store, _, ids = lake()
    data_versions = sum(1 for i in store.list_versions("") if not i.is_delete_marker)
    result = undelete(store, LOC)
    doc = result.to_json()
    assert doc["plan"]["undelete"] == 4 and doc["plan"]["delete_markers"] == 6
    assert doc["applied"] == {"undelete": 4} and doc["verified"] == {"ok": 4, "failed": 0}
    assert doc["bytes_copied"] == 0
    for key in ("t/old-delete", "t/a", "t/b b+=", "t/straddles"):
        assert store.head(key).version_id == ids[key]
    # Nothing copied: the data versions are the very same ones.
    assert sum(1 for i in store.list_versions("") if not i.is_delete_marker) == data_versions
    assert undelete(store, LOC).plan.actions == 0


def test_since_only_removes_later_markers_and_skips_straddling_keys() -> None:
    store, clock, _ = lake()
    since = clock.now  # the second burst of deletes
    dry = undelete(store, LOC, since=since, dry_run=True)
    assert sorted(dry.plan.first["undelete"]) == ["t/a", "t/b b+="]
    assert {i.key for i in store.list("t/")} == {"t/alive"}  # a dry run changes nothing
    result = undelete(store, LOC, since=since)
    assert result.ok and result.outcome.applied == {"undelete": 2}
    alive = {i.key for i in store.list("t/")}
    assert alive == {"t/a", "t/b b+=", "t/alive"}
    assert "undelete 2 keys" in "\n".join(dry.lines())


def test_unversioned_store_is_refused() -> None:
    store = MemoryStore("plain")
    with pytest.raises(UsageError, match="versioning"):
        undelete(store, parse_location("memory://plain/"))

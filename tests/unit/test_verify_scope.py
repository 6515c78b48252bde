"""Verify against an inventory of another location: inside it, above it, or a copy."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakeguard.errors import UsageError
from lakeguard.location import parse_location
from lakeguard.ops.inventory import take_inventory
from lakeguard.ops.verify import verify
from lakeguard.storage.local import LocalStore
from lakeguard.storage.memory import MemoryStore


def _lake() -> MemoryStore:
    store = MemoryStore("lake")
    for day in (1, 2, 3):
        for part in range(6):
            store.put(f"events/dt=2026-02-0{day}/part-{part}", f"{day}{part}".encode() * 10)
    for part in range(6):
        store.put(f"logs/part-{part}", b"log" * 10)
    return store


def test_an_inventory_of_a_folder_inside_the_location_is_refused(tmp_path: Path) -> None:
    store = _lake()
    inventory = tmp_path / "e.parquet"
    take_inventory(store, parse_location("memory://lake/events"), output=inventory)
    with pytest.raises(UsageError) as caught:
        verify(store, parse_location("memory://lake"), against=inventory)
    assert caught.value.message == (
        f"inventory {inventory} was taken of memory://lake/events/, which lies inside "
        "memory://lake/: verify memory://lake/events/ against it, "
        "or take an inventory of memory://lake/"
    )


def test_an_inventory_of_a_parent_still_verifies_a_folder_of_it(tmp_path: Path) -> None:
    store = _lake()
    inventory = tmp_path / "all.parquet"
    take_inventory(store, parse_location("memory://lake"), output=inventory)
    for inner in ("memory://lake/events", "memory://lake/events/dt=2026-02-02", "memory://lake"):
        result = verify(store, parse_location(inner), against=inventory)
        assert result.clean and result.ok > 0 and result.warnings == []
    store.delete("events/dt=2026-02-02/part-3")
    result = verify(store, parse_location("memory://lake/events"), against=inventory)
    assert result.missing.items == ["events/dt=2026-02-02/part-3"]
    assert result.extra.count == 0


def test_a_copy_elsewhere_is_compared_with_a_warning_naming_both(tmp_path: Path) -> None:
    store = _lake()
    inventory = tmp_path / "e.parquet"
    take_inventory(store, parse_location("memory://lake/events"), output=inventory)
    replica = MemoryStore("replica")
    for info in store.list("events/"):
        replica.put("copy/" + info.key[len("events/") :], store.get_bytes(info.key))
    result = verify(replica, parse_location("memory://replica/copy"), against=inventory)
    assert result.clean and result.ok == 18
    assert result.warnings == [
        f"inventory {inventory} was taken of memory://lake/events/, not of "
        "memory://replica/copy/: comparing memory://replica/copy/ as a copy "
        "('events/' in its keys read as 'copy/')"
    ]
    assert result.to_json()["warnings"] == result.warnings


def test_local_directories_inside_above_and_beside(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    for day in (1, 2):
        folder = lake / "events" / f"dt=2026-02-0{day}"
        folder.mkdir(parents=True)
        for part in range(3):
            (folder / f"part-{part}").write_bytes(b"p" * (10 + part))
    (lake / "other").mkdir()
    (lake / "other" / "x").write_bytes(b"x")
    whole, events = tmp_path / "whole.parquet", tmp_path / "events.parquet"
    take_inventory(LocalStore(str(lake)), parse_location(str(lake)), output=whole)
    take_inventory(
        LocalStore(str(lake / "events")), parse_location(str(lake / "events")), output=events
    )

    # A folder of the inventoried directory: its keys are relative to that folder.
    inner = parse_location(str(lake / "events"))
    result = verify(LocalStore(str(lake / "events")), inner, against=whole)
    assert result.clean and result.ok == 6 and result.warnings == []
    (lake / "events" / "dt=2026-02-02" / "part-1").unlink()
    result = verify(LocalStore(str(lake / "events")), inner, against=whole)
    assert result.missing.items == ["dt=2026-02-02/part-1"] and result.extra.count == 0

    with pytest.raises(UsageError, match=r"which lies inside .*: verify .*events against it"):
        verify(LocalStore(str(lake)), parse_location(str(lake)), against=events)

    copy = tmp_path / "copy"
    (copy / "dt=2026-02-01").mkdir(parents=True)
    for part in range(3):
        (copy / "dt=2026-02-01" / f"part-{part}").write_bytes(b"p" * (10 + part))
    result = verify(LocalStore(str(copy)), parse_location(str(copy)), against=events)
    assert result.ok == 3 and result.missing.count == 3  # the copy lacks dt=2026-02-02
    assert result.warnings and "as a copy (key for key)" in result.warnings[0]

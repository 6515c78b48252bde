"""Gaps: missing, empty and undersized partitions in each supported layout."""

from __future__ import annotations

from datetime import date

import pytest

from lakeguard.errors import UsageError
from lakeguard.location import parse_location
from lakeguard.ops.gaps import MAX_PARTITIONS, expected_labels, find_gaps, partition_count
from lakeguard.storage.memory import MemoryStore

LOC = parse_location("memory://lake/events")


def _fill(store: MemoryStore, folder: str, objects: int = 4, size: int = 100) -> None:
    for index in range(objects):
        store.put(f"{folder}part-{index:05d}.parquet", b"x" * size)
    store.put(f"{folder}_SUCCESS", b"")


def test_daily_partitions_missing_empty_and_outliers() -> None:
    store = MemoryStore("lake")
    for day in range(1, 11):
        if day == 4:
            continue  # a lost partition
        folder = f"events/dt=2026-02-{day:02d}/"
        if day == 6:
            store.put(f"{folder}_SUCCESS", b"")  # the job said done, the data is gone
            store.put(f"{folder}_temporary/0/part-0.parquet", b"x" * 100)
        elif day == 8:
            _fill(store, folder, objects=1)  # a partial write: far fewer objects
        elif day == 9:
            _fill(store, folder, objects=4, size=10)  # as many objects, but tiny
        else:
            _fill(store, folder)
    store.put("events/dt=2026-01-31/part-0.parquet", b"x")  # outside the range: ignored
    result = find_gaps(store, LOC, start=date(2026, 2, 1), end=date(2026, 2, 11))
    doc = result.to_json()
    assert doc["expected"] == 11
    assert doc["missing"] == ["2026-02-04", "2026-02-11"]
    assert doc["empty"] == ["2026-02-06"]
    assert doc["outliers"] == [
        {
            "partition": "2026-02-08",
            "objects": 1,
            "bytes": 100,
            "median_objects": 4,
            "median_bytes": 400,
        },
        {
            "partition": "2026-02-09",
            "objects": 4,
            "bytes": 40,
            "median_objects": 4,
            "median_bytes": 400,
        },
    ]
    assert not result.clean
    assert result.lines()[-1].startswith("Partitions expected: 11, present: 9, missing: 2")


def test_complete_range_is_clean() -> None:
    store = MemoryStore("lake")
    for day in range(1, 4):
        _fill(store, f"events/dt=2026-02-{day:02d}/")
    result = find_gaps(store, LOC, start=date(2026, 2, 1), end=date(2026, 2, 3))
    assert result.clean and result.to_json()["missing"] == []


def test_hourly_partitions_get_hour_labels() -> None:
    store = MemoryStore("lake")
    for day in (1, 2):
        for hour in range(24):
            if (day, hour) in {(1, 5), (2, 23)}:
                continue
            _fill(store, f"events/dt=2026-02-{day:02d}/hour={hour:02d}/", objects=2)
    result = find_gaps(store, LOC, start=date(2026, 2, 1), end=date(2026, 2, 3), granularity="hour")
    doc = result.to_json()
    assert doc["expected"] == 72
    assert doc["missing"][:2] == ["2026-02-01T05", "2026-02-02T23"]
    assert doc["missing"][2:] == [f"2026-02-03T{h:02d}" for h in range(24)]
    assert doc["empty"] == [] and doc["outliers"] == []
    assert "  2026-02-02T23 to 2026-02-03T23 (25)" in result.lines()


def test_year_month_day_layout_is_detected() -> None:
    store = MemoryStore("lake")
    for month, last in ((1, 31), (2, 3)):
        for day in range(1, last + 1):
            if (month, day) == (1, 30):
                continue
            _fill(store, f"events/year=2026/month={month:02d}/day={day:02d}/", objects=3)
    _fill(store, "events/year=2025/month=12/day=31/")  # outside the range
    result = find_gaps(store, LOC, start=date(2026, 1, 28), end=date(2026, 2, 2))
    assert result.layout.startswith("year=")
    assert result.to_json()["missing"] == ["2026-01-30"]
    assert result.expected == 6


def test_other_partition_key_is_named_with_partition() -> None:
    store = MemoryStore("lake")
    _fill(store, "events/date=2026-02-01/")
    with pytest.raises(UsageError, match="found date=2026-02-01/"):
        find_gaps(store, LOC, start=date(2026, 2, 1), end=date(2026, 2, 1))
    result = find_gaps(store, LOC, partition="date", start=date(2026, 2, 1), end=date(2026, 2, 1))
    assert result.clean


def test_nothing_there_means_everything_missing() -> None:
    result = find_gaps(MemoryStore("lake"), LOC, start=date(2026, 2, 1), end=date(2026, 2, 2))
    assert result.missing == ["2026-02-01", "2026-02-02"]


def test_start_after_end_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="after --end"):
        find_gaps(MemoryStore("lake"), LOC, start=date(2026, 2, 2), end=date(2026, 2, 1))


def test_expected_labels_cross_month_ends() -> None:
    assert expected_labels(date(2024, 2, 28), date(2024, 3, 1), "day") == [
        "2024-02-28",
        "2024-02-29",
        "2024-03-01",
    ]


def test_a_range_beyond_the_cap_is_refused_before_anything_is_listed() -> None:
    store = MemoryStore("lake")
    _fill(store, "events/dt=2026-02-01/")
    with pytest.raises(UsageError, match=r"3,652,059 daily partitions.*narrower --start/--end$"):
        find_gaps(store, LOC, start=date(1, 1, 1), end=date(9999, 12, 31))
    with pytest.raises(UsageError, match=r"1,761,936 hourly .* or --granularity day$"):
        find_gaps(store, LOC, start=date(1900, 1, 1), end=date(2100, 12, 31), granularity="hour")
    assert partition_count(date(1900, 1, 1), date(2100, 12, 31), "day") < MAX_PARTITIONS
    # Real ranges stay far below it: 100 years by day, 20 years by hour.
    assert partition_count(date(1950, 1, 1), date(2049, 12, 31), "day") * 5 < MAX_PARTITIONS
    assert partition_count(date(2010, 1, 1), date(2029, 12, 31), "hour") < MAX_PARTITIONS


def test_the_last_representable_days_are_a_range_like_any_other() -> None:
    result = find_gaps(MemoryStore("lake"), LOC, start=date(9999, 12, 30), end=date(9999, 12, 31))
    assert result.missing == ["9999-12-30", "9999-12-31"]
    assert expected_labels(date(9999, 12, 31), date(9999, 12, 31), "hour")[-1] == "9999-12-31T23"


def test_hourly_granularity_over_a_daily_layout_is_a_usage_error() -> None:
    store = MemoryStore("lake")
    for day in (1, 2, 3):
        _fill(store, f"events/dt=2026-01-{day:02d}/")
    with pytest.raises(UsageError, match=r"no hour=HH/ folders .*: use --granularity day$"):
        find_gaps(store, LOC, start=date(2026, 1, 1), end=date(2026, 1, 3), granularity="hour")
    _fill(store, "events/dt=2026-01-02/h=05/")
    with pytest.raises(UsageError, match=r"found dt=2026-01-02/h=05/"):
        find_gaps(store, LOC, start=date(2026, 1, 1), end=date(2026, 1, 3), granularity="hour")
    assert find_gaps(store, LOC, start=date(2026, 1, 1), end=date(2026, 1, 3)).clean


def test_an_hourly_layout_with_a_day_without_hours_reports_its_hours_missing() -> None:
    store = MemoryStore("lake")
    for hour in range(24):
        _fill(store, f"events/dt=2026-01-01/hour={hour:02d}/")
    _fill(store, "events/dt=2026-01-02/")  # written by a daily job: its hours are missing
    result = find_gaps(store, LOC, start=date(2026, 1, 1), end=date(2026, 1, 2), granularity="hour")
    assert result.missing == [f"2026-01-02T{h:02d}" for h in range(24)]


def test_partition_values_that_are_not_dates_are_a_usage_error() -> None:
    store = MemoryStore("lake")
    _fill(store, "events/dt=today/")
    _fill(store, "events/dt=yesterday/")
    with pytest.raises(UsageError, match=r"not dates \(found dt=today/, dt=yesterday/\)"):
        find_gaps(store, LOC, start=date(2026, 1, 1), end=date(2026, 1, 2))

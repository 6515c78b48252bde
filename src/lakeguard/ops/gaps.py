"""Gaps: missing, empty and undersized date partitions.

    list_prefixes(LOC)                         -> layout: dt=YYYY-MM-DD/ or year=YYYY/
    list_prefixes(...) one level at a time,    -> the partition folders in [start, end]
      only into folders inside the range          (hour=HH/ below a day for --granularity hour)
    list(partition) for each, in a thread pool -> data objects and bytes per partition
    compare with the expected labels           -> missing, empty, outliers

Layouts: ``dt=YYYY-MM-DD/`` (the key is ``partition``), ``dt=YYYY-MM-DD/hour=HH/``,
``year=YYYY/month=MM/day=DD/`` and ``.../day=DD/hour=HH/``. The layout is
detected from the folders under the location.

What counts as data: an object of more than zero bytes none of whose path
parts below the partition folder starts with ``_`` or ``.`` -- the convention
Hive, Spark and Hadoop use for markers and work files (``_SUCCESS``,
``_temporary/``, ``.crc``). A partition folder that holds only those is empty.

Outliers: partitions with data whose object count or bytes fall below half of
the median over the partitions with data in the range (a partial write, a
replay that stopped). Empty partitions are reported as empty, not outliers.

Limits: at most ``MAX_PARTITIONS`` partitions per run (273 years by day,
22 years by hour); a larger range is refused before anything is listed, as
is ``--granularity hour`` over day partitions that hold no ``hour=`` folders
(every hour would be reported missing).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from lakeguard.errors import UsageError
from lakeguard.location import Location
from lakeguard.storage.base import Store

GRANULARITIES = ("day", "hour")
# Each expected partition costs a label and a dict entry (about 200 bytes), and
# the report walks them all: 100 years by day is 36,525, 20 years by hour 175,320.
MAX_PARTITIONS = 200_000
_ADJECTIVE = {"day": "daily", "hour": "hourly"}


@dataclass(frozen=True, slots=True)
class Outlier:
    partition: str
    objects: int
    bytes: int
    median_objects: float
    median_bytes: float

    def to_json(self) -> dict[str, Any]:
        return {
            "partition": self.partition,
            "objects": self.objects,
            "bytes": self.bytes,
            "median_objects": _plain(self.median_objects),
            "median_bytes": _plain(self.median_bytes),
        }


@dataclass(frozen=True, slots=True)
class PartitionStats:
    partition: str  # "2026-02-11" or "2026-02-11T05"
    objects: int  # data objects (see the module docstring)
    bytes: int
    other: int  # markers and work files


@dataclass(slots=True)
class GapsResult:
    location: str
    layout: str
    granularity: str
    start: date
    end: date
    expected: int = 0
    missing: list[str] = field(default_factory=list)
    empty: list[str] = field(default_factory=list)
    outliers: list[Outlier] = field(default_factory=list)
    partitions: list[PartitionStats] = field(default_factory=list)  # present ones, in order
    median_objects: float = 0.0
    median_bytes: float = 0.0

    @property
    def clean(self) -> bool:
        return not (self.missing or self.empty or self.outliers)

    def to_json(self) -> dict[str, Any]:
        return {
            "expected": self.expected,
            "missing": self.missing,
            "empty": self.empty,
            "outliers": [o.to_json() for o in self.outliers],
            "present": len(self.partitions),
            "layout": self.layout,
            "granularity": self.granularity,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "location": self.location,
        }

    def lines(self) -> list[str]:
        out = [
            f"gaps in {self.location} ({self.layout}, by {self.granularity}, "
            f"{self.start.isoformat()} to {self.end.isoformat()})"
        ]
        order = {
            label: index
            for index, label in enumerate(expected_labels(self.start, self.end, self.granularity))
        }
        out.extend(_runs("missing", self.missing, order))
        out.extend(_runs("empty", self.empty, order))
        if self.outliers:
            out.append(
                f"outliers ({len(self.outliers)}): below half the median of "
                f"{_plain(self.median_objects)} objects / {_plain(self.median_bytes)} bytes"
            )
            out.extend(
                f"  {o.partition}: {o.objects} objects, {o.bytes} bytes" for o in self.outliers
            )
        out.append(
            f"Partitions expected: {self.expected}, present: {len(self.partitions)}, "
            f"missing: {len(self.missing)}, empty: {len(self.empty)}, "
            f"outliers: {len(self.outliers)}"
        )
        return out


def _plain(value: float) -> float | int:
    return int(value) if float(value).is_integer() else round(value, 1)


def _runs(name: str, labels: list[str], order: dict[str, int]) -> list[str]:
    """``missing (30):`` and one line per run of consecutive partitions."""
    if not labels:
        return []
    runs: list[list[str]] = []
    for label in labels:
        if runs and order.get(label, -2) == order.get(runs[-1][-1], -5) + 1:
            runs[-1].append(label)
        else:
            runs.append([label])
    lines = [
        f"  {run[0]}" if len(run) == 1 else f"  {run[0]} to {run[-1]} ({len(run)})" for run in runs
    ]
    if len(lines) > 50:
        lines = [*lines[:50], f"  ... and {len(lines) - 50} more runs (--json lists them)"]
    return [f"{name} ({len(labels)}):", *lines]


def _label(day: date, hour: int | None) -> str:
    return day.isoformat() if hour is None else f"{day.isoformat()}T{hour:02d}"


def partition_count(start: date, end: date, granularity: str) -> int:
    """How many partitions [start, end] holds at ``granularity`` (0 when start > end)."""
    days = max(0, end.toordinal() - start.toordinal() + 1)
    return days * 24 if granularity == "hour" else days


def expected_labels(start: date, end: date, granularity: str) -> list[str]:
    labels: list[str] = []
    # By ordinal: adding a day to 9999-12-31 would overflow.
    for ordinal in range(start.toordinal(), end.toordinal() + 1):
        day = date.fromordinal(ordinal)
        if granularity == "hour":
            labels.extend(_label(day, hour) for hour in range(24))
        else:
            labels.append(_label(day, None))
    return labels


def _check_range(start: date, end: date, granularity: str) -> None:
    if start > end:
        raise UsageError(f"--start {start.isoformat()} is after --end {end.isoformat()}: swap them")
    count = partition_count(start, end, granularity)
    if count > MAX_PARTITIONS:
        coarser = " or --granularity day" if granularity == "hour" else ""
        raise UsageError(
            f"{start.isoformat()} to {end.isoformat()} is {count:,} {_ADJECTIVE[granularity]} "
            "partitions, "
            f"more than the {MAX_PARTITIONS:,} gaps checks in one run: "
            f"give a narrower --start/--end{coarser}"
        )


def _value(folder: str, parent: str, key: str) -> str | None:
    """``2026-02-11`` for the folder ``parent + 'dt=2026-02-11/'`` and key ``dt``."""
    name = folder[len(parent) :].rstrip("/")
    head, sep, value = name.partition("=")
    return value if sep and head == key else None


def _shown(names: list[str], limit: int = 3) -> str:
    return ", ".join(names[:limit]) + (", ..." if len(names) > limit else "")


def _int(value: str | None) -> int | None:
    return int(value) if value is not None and value.isdigit() else None


def _day(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def _is_data(relative: str, size: int) -> bool:
    return size > 0 and not any(part.startswith(("_", ".")) for part in relative.split("/"))


class _Walker:
    """Finds the partition folders of a range, one folder level at a time."""

    def __init__(
        self,
        store: Store,
        pool: ThreadPoolExecutor,
        location: Location,
        start: date,
        end: date,
    ) -> None:
        self.store = store
        self.pool = pool
        self.location = location
        self.prefix = location.prefix
        self.start = start
        self.end = end

    def children(self, parents: Iterable[str]) -> list[tuple[str, list[str]]]:
        parents = list(parents)
        return list(zip(parents, self.pool.map(self.store.list_prefixes, parents), strict=True))

    def dt_days(self, top: list[str], prefix: str, key: str) -> list[tuple[date, str]]:
        found: list[tuple[date, str]] = []
        others: list[str] = []  # partition folders whose value is not a date
        dates = 0
        for folder in top:
            value = _value(folder, prefix, key)
            if value is None:
                continue
            day = _day(value)
            if day is None:
                others.append(folder[len(prefix) :])
                continue
            dates += 1
            if self.start <= day <= self.end:
                found.append((day, folder))
        if others and not dates:
            raise UsageError(
                f"the '{key}=' partitions under {self.location} are not dates "
                f"(found {_shown(others)}): gaps reads {key}=YYYY-MM-DD"
            )
        return found

    def ymd_days(self, top: list[str], prefix: str) -> list[tuple[date, str]]:
        years = [
            (year, folder)
            for folder in top
            if (year := _int(_value(folder, prefix, "year"))) is not None
            and self.start.year <= year <= self.end.year
        ]
        months: list[tuple[int, int, str]] = []
        for parent, folders in self.children(folder for _, folder in years):
            year = _int(_value(parent, prefix, "year"))
            assert year is not None
            for folder in folders:
                month = _int(_value(folder, parent, "month"))
                if month is None or not 1 <= month <= 12:
                    continue
                first = date(year, month, 1)
                if (year, month) >= (self.start.year, self.start.month) and first <= self.end:
                    months.append((year, month, folder))
        days: list[tuple[date, str]] = []
        by_parent = {folder: (year, month) for year, month, folder in months}
        for parent, folders in self.children(by_parent):
            year, month = by_parent[parent]
            for folder in folders:
                number = _int(_value(folder, parent, "day"))
                try:
                    day = date(year, month, number) if number is not None else None
                except ValueError:
                    day = None
                if day is not None and self.start <= day <= self.end:
                    days.append((day, folder))
        return days

    def hours(self, days: list[tuple[date, str]]) -> list[tuple[str, str]]:
        by_parent = dict((folder, day) for day, folder in days)
        found: list[tuple[str, str]] = []
        others: list[str] = []  # sub-folders that are not hour=HH
        for parent, folders in self.children(by_parent):
            for folder in folders:
                hour = _int(_value(folder, parent, "hour"))
                if hour is not None and 0 <= hour <= 23:
                    found.append((_label(by_parent[parent], hour), folder))
                else:
                    others.append(folder[len(self.prefix) :])
        if days and not found:
            # Day partitions with no hour=HH/ in any of them: a day layout, not an hourly one.
            inside = f"found {_shown(others)}" if others else "their objects lie directly in them"
            first = days[0][1][len(self.prefix) :]
            raise UsageError(
                f"--granularity hour, but the day partitions under {self.location} "
                f"({first}, ...) hold no hour=HH/ folders ({inside}): use --granularity day"
            )
        return found


def _count(store: Store, folder: str) -> tuple[int, int, int]:
    objects = nbytes = other = 0
    for info in store.list(folder):
        if _is_data(info.key[len(folder) :], info.size):
            objects += 1
            nbytes += info.size
        else:
            other += 1
    return objects, nbytes, other


def find_gaps(
    store: Store,
    location: Location,
    *,
    partition: str = "dt",
    start: date,
    end: date,
    granularity: str = "day",
    concurrency: int = 16,
) -> GapsResult:
    """Missing, empty and undersized partitions of ``location`` between ``start`` and ``end``."""
    if isinstance(start, datetime) or isinstance(end, datetime):
        start, end = _as_date(start), _as_date(end)
    if granularity not in GRANULARITIES:
        raise UsageError(f"invalid granularity {granularity!r}: use day or hour")
    _check_range(start, end, granularity)
    if not partition or "/" in partition or "=" in partition:
        raise UsageError(f"invalid --partition {partition!r}: give a key such as dt")
    prefix = location.prefix
    top = store.list_prefixes(prefix)
    names = [folder[len(prefix) : -1] for folder in top]
    if any(name.startswith(f"{partition}=") for name in names):
        layout = f"{partition}=YYYY-MM-DD"
    elif any(name.startswith("year=") for name in names):
        layout = "year=YYYY/month=MM/day=DD"
    elif names:
        raise UsageError(
            f"no '{partition}=' or 'year=' partitions under {location} "
            f"(found {_shown([f'{n}/' for n in names])}): "
            "name the partition key with --partition"
        )
    else:
        layout = f"{partition}=YYYY-MM-DD"  # nothing there at all: every partition is missing
    if granularity == "hour":
        layout += "/hour=HH"

    result = GapsResult(str(location), layout, granularity, start, end)
    labels = expected_labels(start, end, granularity)
    result.expected = len(labels)
    pool = ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="gaps")
    try:
        walker = _Walker(store, pool, location, start, end)
        days = (
            walker.ymd_days(top, prefix)
            if layout.startswith("year=")
            else walker.dt_days(top, prefix, partition)
        )
        folders = (
            walker.hours(days)
            if granularity == "hour"
            else [(_label(day, None), folder) for day, folder in days]
        )
        counts = list(pool.map(lambda item: _count(store, item[1]), folders))
    except BaseException:
        # Ctrl-C or a usage error: return now, not once every listing in flight is done.
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    totals: dict[str, tuple[int, int, int]] = {}
    for (label, _), (objects, nbytes, other) in zip(folders, counts, strict=True):
        # Two folders may name one partition (dt=2026-02-11 and dt=20260211): add them up.
        seen = totals.get(label, (0, 0, 0))
        totals[label] = (seen[0] + objects, seen[1] + nbytes, seen[2] + other)
    for label in labels:
        if label not in totals:
            result.missing.append(label)
            continue
        objects, nbytes, other = totals[label]
        result.partitions.append(PartitionStats(label, objects, nbytes, other))
        if objects == 0:
            result.empty.append(label)
    with_data = [p for p in result.partitions if p.objects > 0]
    if with_data:
        result.median_objects = float(statistics.median(p.objects for p in with_data))
        result.median_bytes = float(statistics.median(p.bytes for p in with_data))
        for stats in with_data:
            if stats.objects < result.median_objects / 2 or stats.bytes < result.median_bytes / 2:
                result.outliers.append(
                    Outlier(
                        stats.partition,
                        stats.objects,
                        stats.bytes,
                        result.median_objects,
                        result.median_bytes,
                    )
                )
    return result


def _as_date(value: date) -> date:
    return value.date() if isinstance(value, datetime) else value

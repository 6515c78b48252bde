"""History: versions and delete markers over time, and the damage windows in them.

    list_versions(LOC)            a key's versions together, newest first (streamed)
      -> one key's versions at a time, walked oldest -> newest:
           first version, or a version over a delete marker  -> create
           a version over an existing version                -> overwrite  (damage)
           a delete marker over an existing version          -> delete     (damage)
           a delete marker over a delete marker or nothing   -> (no event)
      -> damage events kept as compact arrays (time, kind, key number);
         create times kept as an array, to count creates inside windows
    sort damage events by time; a gap of more than ``gap`` starts a new window

The order of versions within a key is the store's listing order, never the
timestamps: two writes in one second keep their order. Events outside
[since, until] are not counted, but a key's earlier versions still decide
whether a version in the range creates or overwrites.

``last_good`` of a window is its start minus the store's timestamp resolution
(1 s): the state at ``last_good`` holds every event before the window and none
of the window's, which makes it the time to pass to ``pitr --at``. Each
window's ``last_good`` undoes that window (and the later ones, when used with
pitr), not earlier windows.

Memory: one key's versions, plus 17 bytes per damage event and 8 per create,
plus each damaged key's name once (they are the report).
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from lakeguard.errors import UsageError
from lakeguard.location import Location
from lakeguard.storage.base import ObjectInfo, Store
from lakeguard.timeparse import iso

DEFAULT_GAP = timedelta(minutes=10)
RESOLUTION = timedelta(seconds=1)  # S3 LastModified resolution
SAMPLE_KEYS = 10
_DELETE, _OVERWRITE = 0, 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(slots=True)
class DamageWindow:
    start: datetime
    end: datetime
    deletes: int = 0
    overwrites: int = 0
    creates: int = 0
    keys: int = 0  # distinct keys deleted or overwritten
    sample_keys: list[str] = field(default_factory=list)

    @property
    def last_good(self) -> datetime:
        return self.start - RESOLUTION

    def to_json(self) -> dict[str, Any]:
        return {
            "start": iso(self.start),
            "end": iso(self.end),
            "deletes": self.deletes,
            "overwrites": self.overwrites,
            "creates": self.creates,
            "keys": self.keys,
            "last_good": iso(self.last_good),
            "sample_keys": self.sample_keys,
        }


@dataclass(slots=True)
class HistoryResult:
    location: str
    versioning: str | None  # "Enabled", "Suspended", or None (never enabled)
    since: datetime | None
    until: datetime | None
    gap: timedelta
    versions: int = 0  # object versions in the range (delete markers not included)
    delete_markers: int = 0
    keys: int = 0  # keys seen (with any version)
    current_objects: int = 0
    first: datetime | None = None
    last: datetime | None = None
    damage_windows: list[DamageWindow] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "versions": self.versions,
            "delete_markers": self.delete_markers,
            "damage_windows": [w.to_json() for w in self.damage_windows],
            "versioning": self.versioning,
            "keys": self.keys,
            "current_objects": self.current_objects,
            "first": iso(self.first),
            "last": iso(self.last),
            "since": iso(self.since),
            "until": iso(self.until),
            "gap_seconds": self.gap.total_seconds(),
            "location": self.location,
        }

    @property
    def versioning_note(self) -> str | None:
        """What an unversioned location hides: for stderr, apart from the report."""
        if self.versioning == "Enabled":
            return None
        state = "suspended" if self.versioning == "Suspended" else "off"
        return (
            f"versioning is {state} on {self.location}: only current objects are listed, "
            "overwrites and deletes leave no trace (turn it on to make damage visible "
            "and recoverable)"
        )

    def lines(self) -> list[str]:
        span = ""
        if self.since or self.until:
            span = f" from {iso(self.since) or 'the start'} to {iso(self.until) or 'now'}"
        out = [f"history of {self.location}{span}"]
        out.append(
            f"Versions: {self.versions}  Delete markers: {self.delete_markers}  "
            f"Keys: {self.keys}  Current objects: {self.current_objects}"
        )
        if self.first is not None:
            out.append(f"Oldest: {iso(self.first)}  Newest: {iso(self.last)}")
        if not self.damage_windows:
            out.append("Damage windows: none")
            return out
        out.append(f"Damage windows: {len(self.damage_windows)}")
        out.append(
            f"  {'start':<21}{'end':<21}{'deletes':>8}{'overwr.':>8}{'creates':>8}"
            f"{'keys':>8}  last_good"
        )
        for w in self.damage_windows:
            out.append(
                f"  {iso(w.start)!s:<21}{iso(w.end)!s:<21}{w.deletes:>8}{w.overwrites:>8}"
                f"{w.creates:>8}{w.keys:>8}  {iso(w.last_good)}"
            )
            if w.sample_keys:
                shown = w.sample_keys[:3]
                more = f" (+{w.keys - len(shown)} more)" if w.keys > len(shown) else ""
                out.append(f"    keys: {', '.join(shown)}{more}")
        # The latest window is the likeliest incident; earlier ones show their own last_good.
        latest = self.damage_windows[-1]
        out.append(
            f"to restore: lakeguard pitr {self.location} --at {iso(latest.last_good)} --dry-run"
        )
        return out


def _groups(listing: Iterator[ObjectInfo]) -> Iterator[list[ObjectInfo]]:
    """One key's versions at a time (the listing keeps a key's versions together)."""
    group: list[ObjectInfo] = []
    for info in listing:
        if group and info.key != group[0].key:
            yield group
            group = []
        group.append(info)
    if group:
        yield group


def _seconds(moment: datetime | None) -> float:
    if moment is None:
        return 0.0
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH).total_seconds()


def _moment(seconds: float) -> datetime:
    return _EPOCH + timedelta(seconds=seconds)


def history(
    store: Store,
    location: Location,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    gap: timedelta = DEFAULT_GAP,
) -> HistoryResult:
    """Count versions and delete markers of ``location`` and find its damage windows."""
    if since is not None and until is not None and since > until:
        raise UsageError(f"--since {iso(since)} is after --until {iso(until)}: swap them")
    if gap < timedelta(0):
        raise UsageError("--gap must not be negative")
    result = HistoryResult(str(location), store.versioning(), since, until, gap)
    low = _seconds(since) if since is not None else float("-inf")
    high = _seconds(until) if until is not None else float("inf")

    times = array("d")  # damage events
    kinds = array("b")
    owners = array("q")  # index into damaged_keys
    damaged_keys: list[str] = []
    creates = array("d")
    first = float("inf")
    last = float("-inf")

    listing = store.list_versions(location.prefix)
    try:
        for group in _groups(listing):
            result.keys += 1
            if not group[0].is_delete_marker and group[0].is_latest:
                result.current_objects += 1
            exists = False
            owner = -1
            for info in reversed(group):  # oldest first
                when = _seconds(info.last_modified)
                inside = low <= when <= high
                if info.is_delete_marker:
                    if inside:
                        result.delete_markers += 1
                    kind = _DELETE if exists else None
                    exists = False
                else:
                    if inside:
                        result.versions += 1
                    kind = _OVERWRITE if exists else None
                    if not exists and inside:
                        creates.append(when)
                    exists = True
                if inside:
                    first, last = min(first, when), max(last, when)
                if kind is None or not inside:
                    continue
                if owner < 0:
                    owner = len(damaged_keys)
                    damaged_keys.append(info.key)
                times.append(when)
                kinds.append(kind)
                owners.append(owner)
    finally:
        close = getattr(listing, "close", None)
        if callable(close):
            close()

    if first <= last:
        result.first, result.last = _moment(first), _moment(last)
    result.damage_windows = _windows(times, kinds, owners, damaged_keys, creates, gap)
    return result


def _windows(
    times: array[float],
    kinds: array[int],
    owners: array[int],
    damaged_keys: list[str],
    creates: array[float],
    gap: timedelta,
) -> list[DamageWindow]:
    if not times:
        return []
    order = sorted(range(len(times)), key=times.__getitem__)
    create_times = sorted(creates)
    limit = gap.total_seconds()
    windows: list[DamageWindow] = []
    begin = 0
    for position in range(1, len(order) + 1):
        if position < len(order) and times[order[position]] - times[order[position - 1]] <= limit:
            continue
        members = order[begin:position]
        start, end = times[members[0]], times[members[-1]]
        window = DamageWindow(_moment(start), _moment(end))
        seen: set[int] = set()
        for index in members:
            if kinds[index] == _DELETE:
                window.deletes += 1
            else:
                window.overwrites += 1
            owner = owners[index]
            if owner not in seen:
                seen.add(owner)
                if len(window.sample_keys) < SAMPLE_KEYS:
                    window.sample_keys.append(damaged_keys[owner])
        window.keys = len(seen)
        window.creates = bisect.bisect_right(create_times, end) - bisect.bisect_left(
            create_times, start
        )
        windows.append(window)
        begin = position
    return windows

"""Retention policies: which snapshots ``forget`` keeps (restic's semantics, in UTC).

A pure function over (id, time, tags); no store. The rules are restic's
``forget`` rules, so a policy a team already runs there means the same here:

- snapshots are taken newest first;
- ``--keep-last n`` keeps the n newest; ``--keep-hourly/daily/weekly/monthly/
  yearly n`` keep, for the n most recent hours (days, ISO weeks, months,
  years) that have snapshots, the newest snapshot of each. When a rule still
  has counts left at the oldest snapshot, that snapshot is kept too, so the
  history kept is as long as the counts allow. ``-1`` means unlimited;
- ``--keep-within D`` keeps every snapshot newer than (newest snapshot - D),
  where D is ``1y2m3d4h`` (years, months, days, hours; months and years are
  calendar arithmetic, as Go's ``AddDate``). The newest snapshot is the
  newest one that is not in the future, so a clock gone wrong cannot make
  everything "recent";
- ``--keep-within-hourly/daily/weekly/monthly/yearly D`` keep the newest
  snapshot of each hour (...) within D of the newest snapshot;
- ``--keep-tag a,b`` keeps every snapshot that has all of ``a`` and ``b``
  (the option may repeat: any of the lists);
- a snapshot is kept when any rule keeps it; the reasons are reported.

Buckets are computed on UTC times: restic uses the local time zone the
snapshot recorded, lakeguard records UTC only.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Generic, Protocol, TypeVar

from lakeguard.errors import UsageError

UNLIMITED = -1
_DURATION_PART = re.compile(r"(\d+)([a-zA-Z])")


class Dated(Protocol):
    """What a policy needs of a snapshot (SnapshotHeader has these)."""

    @property
    def id(self) -> str: ...

    @property
    def time(self) -> datetime: ...

    @property
    def tags(self) -> Collection[str]: ...


S = TypeVar("S", bound=Dated)


def split_tags(value: str, option: str) -> list[str]:
    """``a, b`` -> [a, b], as restic reads tag lists; an empty tag is a UsageError."""
    tags = [tag.strip() for tag in value.split(",")]
    if any(not tag for tag in tags):
        raise UsageError(
            f"empty tag in {option} {value!r}: give tags such as 'monthly' or 'audit,q1'"
        )
    return tags


@dataclass(frozen=True, slots=True)
class Duration:
    """restic's duration: years, months, days, hours (``2y5m7d3h``)."""

    years: int = 0
    months: int = 0
    days: int = 0
    hours: int = 0

    @classmethod
    def parse(cls, text: str, *, what: str = "--keep-within") -> Duration:
        raw = text.strip()
        parts: dict[str, int] = {}
        position = 0
        for match in _DURATION_PART.finditer(raw):
            if match.start() != position:
                break
            number, unit = int(match.group(1)), match.group(2)
            if unit not in "ymdh" or unit in parts:
                raise UsageError(
                    f"invalid {what} {text!r}: unit {unit!r} "
                    + ("given twice" if unit in parts else "unknown")
                    + "; use y, m (months), d, h, e.g. 30d or 1y6m"
                )
            parts[unit] = number
            position = match.end()
        if not raw or position != len(raw):
            raise UsageError(
                f"invalid {what} {text!r}: use numbers with units y, m (months), d, h, "
                "e.g. 30d, 12h or 1y6m"
            )
        return cls(parts.get("y", 0), parts.get("m", 0), parts.get("d", 0), parts.get("h", 0))

    @property
    def zero(self) -> bool:
        return not (self.years or self.months or self.days or self.hours)

    def before(self, moment: datetime) -> datetime:
        """``moment`` minus this duration, normalised as Go's ``AddDate`` (Jan 31 - 2m: Dec 1)."""
        months = moment.year * 12 + (moment.month - 1) - self.years * 12 - self.months
        year, month = divmod(months, 12)
        # Day overflow (Mar 31 - 1m = "Feb 31") rolls into the next month, as in Go.
        first = date(year, month + 1, 1)
        day = first + timedelta(days=moment.day - 1 - self.days)
        shifted = moment.replace(year=day.year, month=day.month, day=day.day)
        return shifted - timedelta(hours=self.hours)

    def __str__(self) -> str:
        text = "".join(
            f"{value}{unit}"
            for value, unit in (
                (self.years, "y"),
                (self.months, "m"),
                (self.days, "d"),
                (self.hours, "h"),
            )
            if value
        )
        return text or "0h"


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """How many snapshots of each kind to keep; zero everywhere keeps everything."""

    last: int = 0
    hourly: int = 0
    daily: int = 0
    weekly: int = 0
    monthly: int = 0
    yearly: int = 0
    within: Duration = field(default_factory=Duration)
    within_hourly: Duration = field(default_factory=Duration)
    within_daily: Duration = field(default_factory=Duration)
    within_weekly: Duration = field(default_factory=Duration)
    within_monthly: Duration = field(default_factory=Duration)
    within_yearly: Duration = field(default_factory=Duration)
    tags: tuple[frozenset[str], ...] = ()

    def __post_init__(self) -> None:
        for name in ("last", "hourly", "daily", "weekly", "monthly", "yearly"):
            value = getattr(self, name)
            if value < UNLIMITED:
                raise UsageError(
                    f"invalid --keep-{name} {value}: give a count of 0 or more, or -1 for all"
                )
        for group in self.tags:
            if not group or any(not tag.strip() for tag in group):
                raise UsageError("empty --keep-tag: give tags such as 'monthly' or 'audit,q1'")

    @classmethod
    def tag_lists(cls, values: Sequence[str]) -> tuple[frozenset[str], ...]:
        """``--keep-tag a,b --keep-tag c`` -> ({a, b}, {c})."""
        return tuple(frozenset(split_tags(value, "--keep-tag")) for value in values)

    @property
    def empty(self) -> bool:
        counts = (self.last, self.hourly, self.daily, self.weekly, self.monthly, self.yearly)
        durations = (
            self.within,
            self.within_hourly,
            self.within_daily,
            self.within_weekly,
            self.within_monthly,
            self.within_yearly,
        )
        return not any(counts) and all(d.zero for d in durations) and not self.tags

    def describe(self) -> str:
        """``keep 3 last, 7 daily, all snapshots within 30d of the newest``."""
        parts = []
        for count, name in (
            (self.last, "last"),
            (self.hourly, "hourly"),
            (self.daily, "daily"),
            (self.weekly, "weekly"),
            (self.monthly, "monthly"),
            (self.yearly, "yearly"),
        ):
            if count:
                parts.append(f"{'all' if count == UNLIMITED else count} {name}")
        for duration, name in (
            (self.within_hourly, "hourly"),
            (self.within_daily, "daily"),
            (self.within_weekly, "weekly"),
            (self.within_monthly, "monthly"),
            (self.within_yearly, "yearly"),
        ):
            if not duration.zero:
                parts.append(f"{name} snapshots within {duration}")
        for group in self.tags:
            parts.append(f"snapshots tagged {','.join(sorted(group))}")
        if not self.within.zero:
            parts.append(f"all snapshots within {self.within} of the newest")
        return "keep " + (", ".join(parts) if parts else "everything")


@dataclass(slots=True)
class Kept(Generic[S]):
    snapshot: S
    reasons: list[str]


@dataclass(slots=True)
class Decision(Generic[S]):
    """The outcome for one group of snapshots, newest first."""

    keep: list[Kept[S]] = field(default_factory=list)
    remove: list[S] = field(default_factory=list)


def _hour(moment: datetime, _nr: int) -> int:
    return moment.year * 1_000_000 + moment.month * 10_000 + moment.day * 100 + moment.hour


def _day(moment: datetime, _nr: int) -> int:
    return moment.year * 10_000 + moment.month * 100 + moment.day


def _week(moment: datetime, _nr: int) -> int:
    year, week, _ = moment.isocalendar()
    return year * 100 + week


def _month(moment: datetime, _nr: int) -> int:
    return moment.year * 100 + moment.month


def _year(moment: datetime, _nr: int) -> int:
    return moment.year


def _each(_moment: datetime, nr: int) -> int:
    return nr


Bucket = Callable[[datetime, int], int]


@dataclass(slots=True)
class _Counter:
    count: int
    bucket: Bucket
    reason: str
    last: int | None = None


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def newest_first(snapshots: Sequence[S]) -> list[S]:
    """Newest first; equal times by id, newest id first (ids carry the start second)."""
    return sorted(snapshots, key=lambda snap: (_utc(snap.time), snap.id), reverse=True)


def apply_policy(
    snapshots: Sequence[S], policy: RetentionPolicy, *, now: datetime | None = None
) -> Decision[S]:
    """Split one group of snapshots (one source) into kept (with reasons) and removed."""
    ordered = newest_first(snapshots)
    decision: Decision[S] = Decision()
    if policy.empty:
        decision.keep = [Kept(snap, ["policy is empty"]) for snap in ordered]
        return decision
    if not ordered:
        return decision
    current = _utc(now or datetime.now(UTC))
    past = [_utc(snap.time) for snap in ordered if _utc(snap.time) < current]
    latest = max(past) if past else datetime.min.replace(tzinfo=UTC)

    counted = [
        _Counter(policy.last, _each, "last snapshot"),
        _Counter(policy.hourly, _hour, "hourly snapshot"),
        _Counter(policy.daily, _day, "daily snapshot"),
        _Counter(policy.weekly, _week, "weekly snapshot"),
        _Counter(policy.monthly, _month, "monthly snapshot"),
        _Counter(policy.yearly, _year, "yearly snapshot"),
    ]
    within: list[tuple[Duration, Bucket, str]] = [
        (policy.within_hourly, _hour, "hourly within"),
        (policy.within_daily, _day, "daily within"),
        (policy.within_weekly, _week, "weekly within"),
        (policy.within_monthly, _month, "monthly within"),
        (policy.within_yearly, _year, "yearly within"),
    ]
    within_last: list[int | None] = [None] * len(within)
    oldest = len(ordered) - 1
    for nr, snap in enumerate(ordered):
        moment = _utc(snap.time)
        reasons: list[str] = []
        for group in policy.tags:
            if group <= set(snap.tags):
                reasons.append(f"has tags {','.join(sorted(group))}")
        if not policy.within.zero and moment > policy.within.before(latest):
            reasons.append(f"within {policy.within}")
        for rule in counted:
            if rule.count > 0 or rule.count == UNLIMITED:
                value = rule.bucket(moment, nr)
                # A rule with counts left also keeps the oldest snapshot: the
                # longest history the counts allow (restic does the same).
                if value != rule.last or nr == oldest:
                    rule.last = value
                    if rule.count > 0:
                        rule.count -= 1
                    reasons.append(rule.reason)
        for index, (duration, bucket, reason) in enumerate(within):
            if duration.zero or not moment > duration.before(latest):
                continue
            value = bucket(moment, nr)
            if value != within_last[index]:
                within_last[index] = value
                reasons.append(f"{reason} {duration}")
        if reasons:
            decision.keep.append(Kept(snap, reasons))
        else:
            decision.remove.append(snap)
    return decision

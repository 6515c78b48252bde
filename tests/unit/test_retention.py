"""Retention policies: restic's forget rules on plain (id, time, tags) records, no store."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from lakeguard.errors import UsageError
from lakeguard.repository.retention import (
    UNLIMITED,
    Duration,
    RetentionPolicy,
    apply_policy,
)


@dataclass(frozen=True)
class Snap:
    id: str
    time: datetime
    tags: tuple[str, ...] = field(default=())


def at(text: str, tags: tuple[str, ...] = ()) -> Snap:
    moment = datetime.fromisoformat(text).replace(tzinfo=UTC)
    return Snap(moment.strftime("%Y%m%dT%H%M%SZ"), moment, tags)


NOW = datetime(2026, 3, 1, tzinfo=UTC)


def kept(snaps: list[Snap], policy: RetentionPolicy, now: datetime = NOW) -> list[str]:
    decision = apply_policy(snaps, policy, now=now)
    assert len(decision.keep) + len(decision.remove) == len(snaps)
    return [k.snapshot.time.strftime("%Y-%m-%d %H:%M") for k in decision.keep]


def daily(days: int, start: str = "2026-02-01 12:00") -> list[Snap]:
    first = datetime.fromisoformat(start).replace(tzinfo=UTC)
    return [Snap(f"d{i:03d}", first + timedelta(days=i)) for i in range(days)]


def test_empty_policy_keeps_everything() -> None:
    snaps = daily(5)
    decision = apply_policy(snaps, RetentionPolicy(), now=NOW)
    assert decision.remove == []
    assert {k.snapshot.id for k in decision.keep} == {s.id for s in snaps}
    assert all(k.reasons == ["policy is empty"] for k in decision.keep)
    assert RetentionPolicy().empty and not RetentionPolicy(last=1).empty


def test_keep_last_keeps_the_newest_regardless_of_input_order() -> None:
    snaps = daily(10)
    shuffled = snaps[5:] + snaps[:5]
    decision = apply_policy(shuffled, RetentionPolicy(last=3), now=NOW)
    assert [k.snapshot.id for k in decision.keep] == ["d009", "d008", "d007"]
    assert [s.id for s in decision.remove] == [f"d{i:03d}" for i in range(6, -1, -1)]
    assert decision.keep[0].reasons == ["last snapshot"]


def test_keep_last_larger_than_history_keeps_all() -> None:
    assert len(kept(daily(3), RetentionPolicy(last=10))) == 3
    assert len(kept(daily(3), RetentionPolicy(last=UNLIMITED))) == 3


def test_keep_daily_keeps_the_newest_of_each_day() -> None:
    snaps = [
        at("2026-02-10 23:00"),
        at("2026-02-10 08:00"),
        at("2026-02-11 01:00"),
        at("2026-02-11 13:00"),
        at("2026-02-12 09:00"),
    ]
    assert kept(snaps, RetentionPolicy(daily=2)) == ["2026-02-12 09:00", "2026-02-11 13:00"]
    # counts left at the oldest snapshot: it is kept too (longest history)
    assert kept(snaps, RetentionPolicy(daily=5)) == [
        "2026-02-12 09:00",
        "2026-02-11 13:00",
        "2026-02-10 23:00",
        "2026-02-10 08:00",
    ]


def test_keep_oldest_only_while_counts_are_left() -> None:
    # three days, keep 3 daily: the counts run out at 2026-02-10, so its older run is not kept
    snaps = [at("2026-02-12 09:00"), at("2026-02-11 09:00"), at("2026-02-10 09:00")]
    snaps.append(at("2026-02-10 01:00"))
    assert kept(snaps, RetentionPolicy(daily=3)) == [
        "2026-02-12 09:00",
        "2026-02-11 09:00",
        "2026-02-10 09:00",
    ]


def test_keep_hourly_buckets_by_hour() -> None:
    snaps = [at(f"2026-02-11 10:{m:02d}") for m in (5, 35)] + [at("2026-02-11 11:10")]
    assert kept(snaps, RetentionPolicy(hourly=1)) == ["2026-02-11 11:10"]
    assert kept(snaps, RetentionPolicy(hourly=2)) == ["2026-02-11 11:10", "2026-02-11 10:35"]


def test_keep_weekly_uses_iso_weeks_across_the_year_boundary() -> None:
    # 2025-12-29 (Mon) .. 2026-01-04 (Sun) are ISO week 2026-W01
    snaps = [at("2025-12-28 12:00"), at("2025-12-29 12:00"), at("2026-01-04 12:00")]
    snaps.append(at("2026-01-05 12:00"))
    assert kept(snaps, RetentionPolicy(weekly=3)) == [
        "2026-01-05 12:00",
        "2026-01-04 12:00",
        "2025-12-28 12:00",
    ]


def test_keep_monthly_and_yearly() -> None:
    snaps = [
        at("2024-06-01 00:00"),
        at("2025-01-15 00:00"),
        at("2025-12-31 00:00"),
        at("2026-01-31 00:00"),
        at("2026-02-01 00:00"),
        at("2026-02-20 00:00"),
    ]
    assert kept(snaps, RetentionPolicy(monthly=2)) == ["2026-02-20 00:00", "2026-01-31 00:00"]
    assert kept(snaps, RetentionPolicy(yearly=2)) == ["2026-02-20 00:00", "2025-12-31 00:00"]
    assert kept(snaps, RetentionPolicy(yearly=UNLIMITED)) == [
        "2026-02-20 00:00",
        "2025-12-31 00:00",
        "2024-06-01 00:00",
    ]


def test_rules_combine_and_report_every_reason() -> None:
    snaps = daily(10)
    decision = apply_policy(snaps, RetentionPolicy(last=2, daily=3), now=NOW)
    ids = [k.snapshot.id for k in decision.keep]
    assert ids == ["d009", "d008", "d007"]
    assert decision.keep[0].reasons == ["last snapshot", "daily snapshot"]
    assert decision.keep[2].reasons == ["daily snapshot"]


def test_keep_within_is_relative_to_the_newest_snapshot_not_now() -> None:
    snaps = daily(10)  # newest 2026-02-10 12:00
    assert kept(snaps, RetentionPolicy(within=Duration.parse("3d")), now=NOW) == [
        "2026-02-10 12:00",
        "2026-02-09 12:00",
        "2026-02-08 12:00",
    ]  # 2026-02-07 12:00 is exactly 3 days older: not "after", so removed (as restic)
    later = NOW + timedelta(days=365)
    assert len(kept(snaps, RetentionPolicy(within=Duration.parse("3d")), now=later)) == 3


def test_keep_within_ignores_snapshots_from_the_future() -> None:
    snaps = [*daily(5), at("2030-01-01 00:00")]
    result = kept(snaps, RetentionPolicy(within=Duration.parse("1d")), now=NOW)
    # the future one is newer than the cut, and the cut comes from 2026-02-05 12:00
    assert result == ["2030-01-01 00:00", "2026-02-05 12:00"]


def test_keep_within_months_use_calendar_arithmetic() -> None:
    duration = Duration.parse("1m")
    assert duration.before(datetime(2026, 3, 31, 6, tzinfo=UTC)) == datetime(
        2026, 3, 3, 6, tzinfo=UTC
    )  # "Feb 31" rolls over, as Go's AddDate
    assert Duration.parse("1y2m3d4h").before(datetime(2026, 5, 10, 12, tzinfo=UTC)) == datetime(
        2025, 3, 7, 8, tzinfo=UTC
    )
    assert Duration.parse("2m").before(datetime(2026, 1, 31, tzinfo=UTC)) == datetime(
        2025, 12, 1, tzinfo=UTC
    )


def test_keep_within_daily_keeps_one_a_day_inside_the_window() -> None:
    snaps = [at(f"2026-02-{d:02d} {h:02d}:00") for d in range(1, 11) for h in (6, 18)]
    result = kept(snaps, RetentionPolicy(within_daily=Duration.parse("3d")))
    assert result == ["2026-02-10 18:00", "2026-02-09 18:00", "2026-02-08 18:00"]


def test_keep_tag_needs_every_tag_of_a_list() -> None:
    snaps = [
        at("2026-02-01 00:00", ("monthly", "audit")),
        at("2026-02-02 00:00", ("monthly",)),
        at("2026-02-03 00:00", ("audit",)),
        at("2026-02-04 00:00"),
    ]
    policy = RetentionPolicy(tags=RetentionPolicy.tag_lists(["monthly,audit"]))
    assert kept(snaps, policy) == ["2026-02-01 00:00"]
    either = RetentionPolicy(tags=RetentionPolicy.tag_lists(["monthly", "audit"]))
    decision = apply_policy(snaps, either, now=NOW)
    assert [k.snapshot.time.day for k in decision.keep] == [3, 2, 1]
    assert decision.keep[-1].reasons == ["has tags monthly", "has tags audit"]
    assert [s.time.day for s in decision.remove] == [4]


def test_ties_in_time_are_ordered_by_id() -> None:
    moment = datetime(2026, 2, 1, tzinfo=UTC)
    snaps = [Snap("b", moment), Snap("a", moment), Snap("c", moment)]
    decision = apply_policy(snaps, RetentionPolicy(last=1), now=NOW)
    assert decision.keep[0].snapshot.id == "c"


def test_no_snapshots() -> None:
    decision = apply_policy([], RetentionPolicy(last=3), now=NOW)
    assert decision.keep == [] and decision.remove == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [("30d", Duration(days=30)), ("1y6m", Duration(1, 6)), ("12h", Duration(hours=12))],
)
def test_duration_parse(text: str, expected: Duration) -> None:
    assert Duration.parse(text) == expected
    assert str(Duration.parse(text)) == text


@pytest.mark.parametrize("text", ["", "30", "d", "3w", "-3d", "3d3d", "1.5d", "3 d", "30dx"])
def test_bad_durations_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError, match="keep-within"):
        Duration.parse(text)


def test_bad_counts_and_tags_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="--keep-daily -2"):
        RetentionPolicy(daily=-2)
    with pytest.raises(UsageError, match="keep-tag"):
        RetentionPolicy.tag_lists(["a,,b"])
    with pytest.raises(UsageError, match="keep-tag"):
        RetentionPolicy.tag_lists([" "])


def test_describe() -> None:
    policy = RetentionPolicy(
        last=3,
        daily=UNLIMITED,
        within=Duration.parse("30d"),
        tags=RetentionPolicy.tag_lists(["audit"]),
    )
    assert policy.describe() == (
        "keep 3 last, all daily, snapshots tagged audit, all snapshots within 30d of the newest"
    )

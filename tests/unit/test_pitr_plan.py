"""The per-key rule of point-in-time restore, on listings a test writes by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lakeguard.errors import UsageError
from lakeguard.ops.pitr_plan import (
    COPY,
    DELETE,
    UNDELETE,
    Action,
    Before,
    PlanSummary,
    PlanWriter,
    plan_in_place,
    read_plan,
)
from lakeguard.storage.base import ObjectInfo

T = datetime(2026, 2, 11, 12, 0, 0, tzinfo=UTC)


def v(key: str, vid: str, seconds: int, etag: str = "e", size: int = 10) -> ObjectInfo:
    return ObjectInfo(key, size, etag, T + timedelta(seconds=seconds), vid)


def m(key: str, vid: str, seconds: int) -> ObjectInfo:
    return ObjectInfo(key, 0, None, T + timedelta(seconds=seconds), vid, is_delete_marker=True)


def plan(
    listing: list[ObjectInfo], tmp_path: Path, *, at: datetime = T, delete_newer: bool = False
) -> tuple[dict[str, Action], PlanSummary]:
    with PlanWriter(tmp_path / "plan.jsonl") as writer:
        summary = plan_in_place(listing, at, writer, delete_newer=delete_newer)
    return {a.key: a for a in read_plan(tmp_path / "plan.jsonl")}, summary


def test_each_kind_of_damage_gets_the_cheapest_exact_action(tmp_path: Path) -> None:
    listing = [
        # untouched
        v("a", "a1", -60),
        # overwritten after T: copy the version at T on top
        v("b", "b2", 30, etag="bad"),
        v("b", "b1", -60, etag="good"),
        # deleted after T (twice): remove both markers, nothing copied
        m("c", "c3", 40),
        m("c", "c2", 30),
        v("c", "c1", -60, size=99),
        # overwritten, then deleted: the markers alone would bring back the bad one
        m("d", "d3", 40),
        v("d", "d2", 30, etag="bad"),
        v("d", "d1", -60, etag="good"),
        # created after T
        v("e", "e1", 30),
        # rewritten after T with the same bytes: nothing to do
        v("f", "f2", 30, etag="same"),
        v("f", "f1", -60, etag="same"),
        # deleted before T, and still deleted
        m("g", "g2", -30),
        v("g", "g1", -60),
        # deleted before T, brought back after T: it should not exist
        v("h", "h3", 30),
        m("h", "h2", -30),
        v("h", "h1", -60),
    ]
    actions, summary = plan(listing, tmp_path, delete_newer=True)
    assert {k: a.action for k, a in actions.items()} == {
        "b": COPY,
        "c": UNDELETE,
        "d": COPY,
        "e": DELETE,
        "h": DELETE,
    }
    assert actions["b"].version_id == "b1" and actions["b"].etag == "good"
    assert actions["b"].before == Before("b2", "bad", 10, False)
    assert actions["c"].delete_markers == ("c3", "c2")
    assert actions["c"].version_id == "c1" and actions["c"].size == 99
    assert actions["d"].version_id == "d1" and actions["d"].before == Before("d3", None, None, True)
    assert actions["e"].before == Before("e1", "e", 10, False)
    assert summary.unchanged == 3
    assert summary.bytes[COPY] == 20
    assert summary.keys == 8 and summary.versions == len(listing)


def test_keys_created_after_t_are_left_unless_asked(tmp_path: Path) -> None:
    listing = [v("new", "n1", 5), m("gone-before", "x2", -5), v("gone-before", "x1", -9)]
    actions, summary = plan(listing, tmp_path)
    assert actions == {}
    assert summary.newer == 1 and summary.first_newer == ["new"]
    assert summary.unchanged == 1


def test_same_second_ties_follow_the_stores_version_order(tmp_path: Path) -> None:
    # Three writes within T's second (1 s resolution), listed newest first:
    # the first listed at or before T is the target, whatever its id says.
    listing = [
        v("k", "bad", 1, etag="bad"),
        v("k", "zz-second", 0, etag="second"),
        v("k", "aa-first", 0, etag="first"),
    ]
    actions, _ = plan(listing, tmp_path)
    assert actions["k"].version_id == "zz-second" and actions["k"].etag == "second"
    # One second earlier, neither existed.
    earlier, summary = plan(listing, tmp_path, at=T - timedelta(seconds=1))
    assert earlier == {} and summary.newer == 1


def test_marker_and_version_in_one_second_the_listed_first_wins(tmp_path: Path) -> None:
    deleted_last = [m("k", "m", 0), v("k", "v", 0), v("k", "old", -5, etag="old")]
    actions, summary = plan(deleted_last, tmp_path, delete_newer=True)
    assert actions == {} and summary.unchanged == 1
    written_last = [v("k", "v2", 0, etag="new"), m("k", "m", 0), v("k", "v1", -5)]
    actions, summary = plan(written_last, tmp_path, delete_newer=True)
    assert actions == {} and summary.unchanged == 1


def test_thousands_of_versions_of_one_key(tmp_path: Path) -> None:
    # 5,000 overwrites after T (T+5000 s down to T+1 s), then the version at T.
    listing = [v("hot", f"v{n:05d}", 5000 - n, etag=f"e{n}") for n in range(5000)]
    listing.append(v("hot", "good", 0, etag="good"))
    actions, summary = plan(listing, tmp_path)
    assert actions["hot"].version_id == "good"
    assert summary.versions == 5001


def test_null_versions_are_restored_and_flagged(tmp_path: Path) -> None:
    listing = [v("k", "v1", 10, etag="bad"), v("k", "null", -10, etag="good")]
    actions, summary = plan(listing, tmp_path)
    assert actions["k"].version_id == "null"
    assert summary.null_writes == 1 and summary.first_null_write == "k"


def test_plan_file_round_trips_and_rejects_other_files(tmp_path: Path) -> None:
    action = Action(
        UNDELETE,
        "dt=2026-02-11/ünï code+=.parquet",
        version_id="v1",
        size=5,
        etag="abc",
        delete_markers=("m2", "m1"),
        before=Before("m2", delete_marker=True),
    )
    with PlanWriter(tmp_path / "p.jsonl") as writer:
        writer.write(action)
    assert list(read_plan(tmp_path / "p.jsonl")) == [action]
    assert not (tmp_path / "p.jsonl.partial").exists()
    (tmp_path / "bad.jsonl").write_text('{"no": "action"}\n')
    with pytest.raises(UsageError, match="line 1 is not a plan row"):
        list(read_plan(tmp_path / "bad.jsonl"))
    with pytest.raises(UsageError, match="does not exist"):
        PlanWriter(tmp_path / "missing-dir" / "p.jsonl")

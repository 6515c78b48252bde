"""Undelete: remove the delete markers that hide objects, bringing back the same versions.

    list_versions(LOC)            key order, newest first per key (streamed)
      -> per key whose current entry is a delete marker:
           the markers on top, down to the first version
           every one of them placed at or after --since (default: any time)
           and a version under them                          -> undelete
      -> plan file (JSONL, see pitr_plan) -> pitr.apply_in_place
           (re-check, remove the markers, verify that the version under them,
            by its id, is current again)

Nothing is copied and nothing is destroyed: a delete marker holds no data.
A key whose top markers straddle --since is left alone: removing only the
later ones would leave it deleted all the same.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from lakeguard.location import Location
from lakeguard.ops.pitr import apply_in_place, require_versions, versions_under
from lakeguard.ops.pitr_plan import (
    UNDELETE,
    Action,
    Before,
    PlanSummary,
    PlanWriter,
    aware,
    read_plan,
)
from lakeguard.ops.report import human_bytes
from lakeguard.ops.sync import Outcome, failed_lines, key_lines
from lakeguard.storage.base import ObjectInfo, Store
from lakeguard.timeparse import iso

ProgressCallback = Callable[[int, int], None]
UNDELETE_OBJECT_HINT = (
    "give the folder that holds it ({folder}), with --dry-run to see what would come back"
)


def _groups(listing: Iterable[ObjectInfo]) -> Iterator[tuple[list[ObjectInfo], ObjectInfo | None]]:
    """Per key: the delete markers on top (newest first) and the version under them.

    Only the top of each key is kept; the rest of its versions stream past.
    """
    key: str | None = None
    markers: list[ObjectInfo] = []
    below: ObjectInfo | None = None
    topped = False  # the top run of markers has ended for this key
    for info in listing:
        if info.key != key:
            if key is not None:
                yield markers, below
            key, markers, below, topped = info.key, [], None, False
        if topped:
            continue
        if info.is_delete_marker:
            markers.append(info)
        else:
            below, topped = info, True
    if key is not None:
        yield markers, below


def plan_undelete(
    listing: Iterable[ObjectInfo], writer: PlanWriter, *, since: datetime | None = None
) -> PlanSummary:
    summary = writer.summary
    since = aware(since)
    for markers, below in _groups(listing):
        summary.keys += 1
        if not markers or below is None:
            summary.unchanged += 1
            continue
        if since is not None and any(
            (when := aware(m.last_modified)) is None or when < since for m in markers
        ):
            summary.unchanged += 1
            continue
        ids = tuple(m.version_id for m in markers if m.version_id is not None)
        if len(ids) != len(markers):
            summary.unchanged += 1  # a marker without an id cannot be removed alone
            continue
        writer.write(
            Action(
                UNDELETE,
                below.key,
                version_id=below.version_id,
                size=below.size,
                etag=below.etag,
                delete_markers=ids,
                before=Before(version_id=ids[0], delete_marker=True),
            )
        )
    return summary


@dataclass(slots=True)
class UndeleteResult:
    location: str
    since: datetime | None
    dry_run: bool
    plan: PlanSummary
    markers: int = 0  # delete markers the plan removes
    outcome: Outcome = field(default_factory=Outcome)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.outcome.failed.count == 0

    def to_json(self) -> dict[str, Any]:
        return {
            "since": iso(self.since),
            "dry_run": self.dry_run,
            "plan": {
                "undelete": self.plan.counts[UNDELETE],
                "delete_markers": self.markers,
                "bytes": self.plan.bytes[UNDELETE],
                "unchanged": self.plan.unchanged,
            },
            "applied": {"undelete": self.outcome.applied.get(UNDELETE, 0)},
            "failed": self.outcome.failed_json(),
            "verified": {"ok": self.outcome.verified_ok, "failed": self.outcome.verified_failed},
            "failed_total": self.outcome.failed.count,  # "failed" keeps the first 1,000
            "location": self.location,
            "already_done": self.outcome.already,
            "first_keys": self.plan.first[UNDELETE],
            "bytes_copied": 0,
            "seconds": round(self.seconds, 3),
        }

    def lines(self) -> list[str]:
        since = f" since {iso(self.since)}" if self.since else ""
        head = f"undelete {self.location}{since}"
        out = [head + (" -- dry run: nothing changed" if self.dry_run else "")]
        count = self.plan.counts[UNDELETE]
        out.append(
            f"Plan: undelete {count:,} keys ({human_bytes(self.plan.bytes[UNDELETE])} brought "
            f"back, nothing copied) by removing {self.markers:,} delete markers"
        )
        out.extend(key_lines(UNDELETE, self.plan.first[UNDELETE], count))
        if self.dry_run:
            return out
        line = f"Applied: undelete {self.outcome.applied.get(UNDELETE, 0):,}"
        if self.outcome.already:
            line += f"; already done: {self.outcome.already:,}"
        out.append(line)
        out.append(
            f"Verified: {self.outcome.verified_ok:,} ok, {self.outcome.verified_failed:,} failed"
        )
        out.extend(failed_lines(self.outcome))
        return out


def undelete(
    store: Store,
    location: Location,
    *,
    since: datetime | None = None,
    dry_run: bool = False,
    concurrency: int = 16,
    on_progress: ProgressCallback | None = None,
) -> UndeleteResult:
    """Remove the delete markers on top of the keys under ``location`` (placed since ``since``)."""
    started = time.monotonic()
    require_versions(store, location, "undelete")
    with tempfile.TemporaryDirectory(prefix="lakeguard-undelete-") as scratch:
        plan_path = Path(scratch) / "plan.jsonl"
        with PlanWriter(plan_path) as writer:
            listing = versions_under(store, location, "undelete", UNDELETE_OBJECT_HINT)
            summary = plan_undelete(listing, writer, since=since)
        result = UndeleteResult(str(location), since, dry_run, summary)
        result.markers = sum(len(a.delete_markers) for a in read_plan(plan_path))
        if not dry_run:
            result.outcome = apply_in_place(
                store, read_plan(plan_path), concurrency=concurrency, on_progress=on_progress
            )
    result.seconds = time.monotonic() - started
    return result

"""``forget``: remove snapshots by policy (retention.py) or by id; ``--prune`` then prunes.

    headers, grouped by source (one policy per source, as restic per host+paths)
    apply_policy(group) -> keep (with reasons) / remove
    per removed snapshot:
        header under Object Lock?  -> kept, reported with its retain-until date
        runs/<id>.json, snapshots/<id>.json, manifests/<id>.parquet deleted, in that order

The run record goes first so that no moment exists where a run record has no
header and looks like a backup in progress (prune would then defer). Once the
header is gone, the snapshot is gone; the manifest after it is tidying (prune
deletes a manifest left behind by a crash here). Archives are prune's.

Snapshots are named as every command names them (full id, unique prefix or
random tail, ``latest``). A header that cannot be read can be named too:
forgetting it is the remedy for it (its run record, header and manifest go,
the manifest by its standard name). A policy leaves such a snapshot alone
(its source and time are unknown) and reports it: without it, a policy keeps
the same snapshots or more, never fewer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from lakeguard.errors import UsageError
from lakeguard.repository.cache import RepoCache
from lakeguard.repository.removal import Remover
from lakeguard.repository.repo import Repository
from lakeguard.repository.retention import RetentionPolicy, apply_policy
from lakeguard.repository.snapshot import DamagedHeader, SnapshotHeader, match_snapshot_id
from lakeguard.timeparse import iso


def _brief(header: SnapshotHeader) -> dict[str, Any]:
    return {"id": header.id, "time": iso(header.time), "tags": list(header.tags)}


@dataclass(slots=True)
class Group:
    source: str
    keep: list[tuple[SnapshotHeader, list[str]]] = field(default_factory=list)
    remove: list[SnapshotHeader] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "keep": [{**_brief(header), "reasons": reasons} for header, reasons in self.keep],
            "remove": [_brief(header) for header in self.remove],
        }


@dataclass(slots=True)
class ForgetResult:
    dry_run: bool
    policy: str
    groups: list[Group] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)  # dry run: would be removed
    locked: list[tuple[str, datetime]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    # headers that cannot be read: named (removed like the others) or left alone
    damaged_named: list[DamagedHeader] = field(default_factory=list)
    damaged_left: list[DamagedHeader] = field(default_factory=list)
    # --keep-tag lists no snapshot has (a typo keeps nothing, as in restic)
    unmatched_tags: list[str] = field(default_factory=list)

    @property
    def kept(self) -> int:
        return sum(len(group.keep) for group in self.groups) + len(self.locked)

    def to_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "policy": self.policy,
            "groups": [group.to_json() for group in self.groups],
            "removed": list(self.removed),
            "kept": self.kept,
            "locked": [{"id": sid, "retain_until": iso(until)} for sid, until in self.locked],
            "failed": [{"id": sid, "error": error} for sid, error in self.failed],
            "unmatched_tags": list(self.unmatched_tags),
            "damaged": [
                {**item.to_json(), "named": named}
                for named, items in ((True, self.damaged_named), (False, self.damaged_left))
                for item in items
            ],
        }


def _resolve(
    headers: list[SnapshotHeader], damaged: list[DamagedHeader], wanted: Sequence[str]
) -> set[str]:
    """The ids named by ``wanted`` (as restore and ls take them), damaged headers included."""
    ids = sorted([header.id for header in headers] + [item.id for item in damaged])
    chosen: set[str] = set()
    for raw in wanted:
        text = raw.strip()
        if not text:
            raise UsageError("empty snapshot id: give an id from 'lakeguard snapshots' or 'latest'")
        if text != "latest":
            chosen.add(match_snapshot_id(ids, text))
            continue
        if not headers:
            raise UsageError("no snapshot to forget as 'latest': the repository has none")
        newest = headers[-1]  # sorted by (time, finished, id)
        newer = [item.id for item in damaged if item.id[:16] > newest.id[:16]]
        if newer:
            raise UsageError(
                f"the newest snapshot, {newer[-1]}, has a damaged header: name it by its id "
                "instead of 'latest'"
            )
        chosen.add(newest.id)
    return chosen


def _by_ids(headers: list[SnapshotHeader], chosen: set[str]) -> list[Group]:
    groups: dict[str, Group] = {}
    for header in headers:
        group = groups.setdefault(header.source, Group(header.source))
        if header.id in chosen:
            group.remove.append(header)
        else:
            group.keep.append((header, ["not named"]))
    return list(groups.values())


def _by_policy(
    headers: list[SnapshotHeader], policy: RetentionPolicy, now: datetime | None
) -> list[Group]:
    sources: dict[str, list[SnapshotHeader]] = {}
    for header in headers:
        sources.setdefault(header.source, []).append(header)
    groups = []
    for source, members in sorted(sources.items()):
        decision = apply_policy(members, policy, now=now)
        group = Group(source)
        group.keep = [(kept.snapshot, kept.reasons) for kept in decision.keep]
        group.remove = list(decision.remove)
        groups.append(group)
    return groups


def forget(
    repo: Repository,
    policy: RetentionPolicy | None = None,
    *,
    snapshot_ids: Sequence[str] = (),
    source: str | None = None,
    dry_run: bool = False,
    now: datetime | None = None,
    cache_dir: Path | None = None,
) -> ForgetResult:
    """Remove the snapshots ``policy`` does not keep (or those named by ``snapshot_ids``).

    ``source`` limits the work to the snapshots of one source (its URL as
    ``snapshots`` shows it). An empty policy without ids is a UsageError: a
    bare ``forget`` must never mean "remove everything" or "do nothing" silently.
    """
    policy = policy or RetentionPolicy()
    if snapshot_ids and not policy.empty:
        raise UsageError("give snapshot ids or a --keep-* policy, not both")
    if not snapshot_ids and policy.empty:
        raise UsageError(
            "no policy: give --keep-last/--keep-daily/... N, --keep-within D, --keep-tag T, "
            "or the ids of the snapshots to forget"
        )
    # Headers never change: cached copies serve.
    headers, damaged = RepoCache(repo, cache_dir).read_headers()
    if source is not None:
        headers = [header for header in headers if header.source == source]
    if source is not None and not headers and not snapshot_ids:
        raise UsageError(f"no snapshot of {source} in this repository (see 'lakeguard snapshots')")
    chosen = _resolve(headers, damaged, snapshot_ids) if snapshot_ids else set()
    groups = _by_ids(headers, chosen) if snapshot_ids else _by_policy(headers, policy, now)
    description = "forget " + ", ".join(snapshot_ids) if snapshot_ids else policy.describe()
    result = ForgetResult(dry_run=dry_run, policy=description, groups=groups)
    result.unmatched_tags = [
        ",".join(sorted(wanted))
        for wanted in policy.tags
        if not any(wanted <= set(header.tags) for header in headers)
    ]
    result.damaged_named = [item for item in damaged if item.id in chosen]
    result.damaged_left = [item for item in damaged if item.id not in chosen]
    remover = Remover(repo, now=now)
    layout = repo.layout
    doomed = [(header.id, header.manifest) for group in groups for header in group.remove] + [
        (item.id, layout.manifest(item.id)) for item in result.damaged_named
    ]
    for snapshot_id, manifest in doomed:
        if dry_run:
            result.removed.append(snapshot_id)
            continue
        until = remover.locked_until(layout.snapshot(snapshot_id))
        if until is not None:
            result.locked.append((snapshot_id, until))
            continue
        for relative in (layout.run(snapshot_id), layout.snapshot(snapshot_id), manifest):
            removal = remover.remove(relative)
            if not removal.removed:
                error = removal.error or f"{relative} is locked"
                result.failed.append((snapshot_id, error))
                break
        else:
            result.removed.append(snapshot_id)
    return result

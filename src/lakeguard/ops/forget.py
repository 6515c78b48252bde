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
from lakeguard.repository.snapshot import SnapshotHeader, match_snapshot_id
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
        }


def _by_ids(headers: list[SnapshotHeader], wanted: Sequence[str]) -> list[Group]:
    ids = [header.id for header in headers]
    chosen = {match_snapshot_id(ids, text.strip()) for text in wanted}
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
    headers = RepoCache(repo, cache_dir).headers()  # headers never change: cached copies serve
    if source is not None:
        headers = [header for header in headers if header.source == source]
    if source is not None and not headers:
        raise UsageError(f"no snapshot of {source} in this repository (see 'lakeguard snapshots')")
    groups = _by_ids(headers, snapshot_ids) if snapshot_ids else _by_policy(headers, policy, now)
    description = "forget " + ", ".join(snapshot_ids) if snapshot_ids else policy.describe()
    result = ForgetResult(dry_run=dry_run, policy=description, groups=groups)
    remover = Remover(repo, now=now)
    layout = repo.layout
    for group in groups:
        for header in group.remove:
            if dry_run:
                result.removed.append(header.id)
                continue
            until = remover.locked_until(layout.snapshot(header.id))
            if until is not None:
                result.locked.append((header.id, until))
                continue
            for relative in (
                layout.run(header.id),
                layout.snapshot(header.id),
                header.manifest,
            ):
                removal = remover.remove(relative)
                if not removal.removed:
                    error = removal.error or f"{relative} is locked"
                    result.failed.append((header.id, error))
                    break
            else:
                result.removed.append(header.id)
    return result

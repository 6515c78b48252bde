"""Snapshot headers: ``snapshots/<id>.json``, written last by a backup (docs/format.md).

A header exists only once its manifest and every archive the manifest names
exist, so listing ``snapshots/`` lists complete snapshots only. Ids sort by
start time, so the listing is chronological.
"""

from __future__ import annotations

import json
import logging
import shlex
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from lakeguard.errors import NotFoundError, OperationalError, UsageError
from lakeguard.repository.layout import (
    FORMAT_VERSION,
    SNAPSHOTS,
    RepoLayout,
    is_snapshot_id,
)
from lakeguard.storage.base import Store
from lakeguard.timeparse import iso

HEADER_KIND = "lakeguard-snapshot"
log = logging.getLogger(__name__)


class HeaderDamaged(OperationalError):
    """A snapshot header that cannot be read. ``reason`` says why, without a remedy."""

    def __init__(self, reason: str, *, snapshot_id: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.snapshot_id = snapshot_id

    def with_remedy(self, repo_url: str) -> HeaderDamaged:
        """The same error, its message naming what to do."""
        error = HeaderDamaged(self.reason, snapshot_id=self.snapshot_id)
        if self.snapshot_id:
            error.message = f"{self.reason}; {header_remedy(repo_url, self.snapshot_id)}"
        return error


def header_remedy(repo_url: str, snapshot_id: str) -> str:
    """What to do about a damaged header (the snapshot is lost without it)."""
    return (
        f"remove it with 'lakeguard forget --repo {shlex.quote(repo_url)} {snapshot_id}' "
        f"or put back a good copy of snapshots/{snapshot_id}.json"
    )


@dataclass(frozen=True, slots=True)
class DamagedHeader:
    """A header listed in snapshots/ that cannot be read."""

    id: str
    error: str

    @property
    def time(self) -> datetime:
        from lakeguard.repository.layout import snapshot_id_time

        return snapshot_id_time(self.id)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "time": iso(self.time), "error": self.error}


@dataclass(slots=True)
class SnapshotStats:
    objects: int = 0
    bytes: int = 0
    new_objects: int = 0
    new_bytes: int = 0
    reused_objects: int = 0
    archives_written: int = 0
    stored_bytes: int = 0  # compressed bytes of the archives this run wrote
    failed: int = 0  # objects that could not be read (absent from the manifest)
    duration_s: float = 0.0


@dataclass(slots=True)
class SnapshotHeader:
    id: str
    time: datetime  # when the run started
    finished: datetime
    source: str  # SourceRef.url: identifies "the same source" for incremental runs
    source_bucket: str
    source_prefix: str
    manifest: str  # key relative to the repository
    manifest_sha256: str
    manifest_size: int
    stats: SnapshotStats = field(default_factory=SnapshotStats)
    tags: list[str] = field(default_factory=list)
    parent: str | None = None
    hostname: str = ""
    retain_until: datetime | None = None
    lakeguard_version: str = ""
    format: int = FORMAT_VERSION

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": HEADER_KIND,
            "format": self.format,
            "id": self.id,
            "time": iso(self.time),
            "finished": iso(self.finished),
            "source": self.source,
            "source_bucket": self.source_bucket,
            "source_prefix": self.source_prefix,
            "hostname": self.hostname,
            "tags": list(self.tags),
            "parent": self.parent,
            "manifest": self.manifest,
            "manifest_sha256": self.manifest_sha256,
            "manifest_size": self.manifest_size,
            "stats": asdict(self.stats),
            "retain_until": iso(self.retain_until),
            "lakeguard_version": self.lakeguard_version,
        }

    def summary(self) -> dict[str, Any]:
        """The ``snapshots --json`` entry."""
        return {
            "id": self.id,
            "time": iso(self.time),
            "source": self.source,
            "objects": self.stats.objects,
            "bytes": self.stats.bytes,
            "tags": list(self.tags),
        }

    def encode(self) -> bytes:
        return (json.dumps(self.to_json(), indent=2, sort_keys=False) + "\n").encode()

    @classmethod
    def decode(
        cls, data: bytes, *, where: str = "snapshot header", snapshot_id: str = ""
    ) -> SnapshotHeader:
        """Parse a header; HeaderDamaged (naming ``snapshot_id``) when it cannot be."""
        try:
            doc = json.loads(data)
            if doc.get("kind") != HEADER_KIND:
                raise ValueError("not a snapshot header")
            if int(doc["format"]) > FORMAT_VERSION:
                raise OperationalError(
                    f"{where} has format {doc['format']}; this lakeguard reads up to "
                    f"{FORMAT_VERSION}: upgrade lakeguard"
                )
            stats = SnapshotStats(
                **{
                    name: doc.get("stats", {}).get(name, 0)
                    for name in SnapshotStats.__dataclass_fields__
                }
            )
            retain = doc.get("retain_until")
            return cls(
                id=str(doc["id"]),
                time=_parse(doc["time"]),
                finished=_parse(doc["finished"]),
                source=str(doc["source"]),
                source_bucket=str(doc.get("source_bucket", "")),
                source_prefix=str(doc.get("source_prefix", "")),
                manifest=str(doc["manifest"]),
                manifest_sha256=str(doc.get("manifest_sha256", "")),
                manifest_size=int(doc.get("manifest_size", 0)),
                stats=stats,
                tags=[str(tag) for tag in doc.get("tags", [])],
                parent=doc.get("parent"),
                hostname=str(doc.get("hostname", "")),
                retain_until=_parse(retain) if retain else None,
                lakeguard_version=str(doc.get("lakeguard_version", "")),
                format=int(doc["format"]),
            )
        except OperationalError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise HeaderDamaged(f"{where} is damaged: {exc}", snapshot_id=snapshot_id) from None


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(str(text).replace("Z", "+00:00"))


def list_snapshot_ids(store: Store, layout: RepoLayout) -> Iterator[str]:
    """Ids of complete snapshots in id order (start time to the second, then random)."""
    prefix = layout.key(SNAPSHOTS)
    for info in store.list(prefix):
        name = info.key[len(prefix) :]
        if name.endswith(".json") and is_snapshot_id(name[:-5]):
            yield name[:-5]


def read_header(store: Store, layout: RepoLayout, snapshot_id: str) -> SnapshotHeader:
    key = layout.key(layout.snapshot(snapshot_id))
    try:
        data = store.get_bytes(key)
    except NotFoundError:
        raise UsageError(
            f"no snapshot {snapshot_id} in this repository (see 'lakeguard snapshots')"
        ) from None
    return SnapshotHeader.decode(data, where=f"snapshot {snapshot_id}", snapshot_id=snapshot_id)


def list_snapshots(
    store: Store,
    layout: RepoLayout,
    *,
    source: str | None = None,
    damaged: list[DamagedHeader] | None = None,
) -> list[SnapshotHeader]:
    """Headers of complete snapshots, oldest first by start time; only ``source``'s if given.

    A header that cannot be read raises HeaderDamaged, unless ``damaged`` is a
    list: then it is appended there and left out (its source is unknown, so
    it is left out whatever ``source`` is). Headers are small (a few hundred
    bytes) and there is one per backup run, so the list is held in memory.
    """
    ids = list(list_snapshot_ids(store, layout))

    def load(snapshot_id: str) -> SnapshotHeader | DamagedHeader | None:
        try:
            return read_header(store, layout, snapshot_id)
        except UsageError:
            return None  # forgotten between the listing and the read
        except HeaderDamaged as exc:
            if damaged is None:
                raise
            return DamagedHeader(snapshot_id, exc.reason)

    if len(ids) <= 1:
        loaded = [load(sid) for sid in ids]
    else:
        # One GET per header: in parallel, or a repository of a year of
        # nightly backups would wait for 365 round trips in a row.
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(min(16, len(ids)), thread_name_prefix="lakeguard-headers") as pool:
            loaded = list(pool.map(load, ids))
    headers = [item for item in loaded if isinstance(item, SnapshotHeader)]
    if damaged is not None:
        damaged.extend(item for item in loaded if isinstance(item, DamagedHeader))
    if source is not None:
        headers = [header for header in headers if header.source == source]
    # Ids carry whole seconds; two runs started in the same second sort by their headers.
    headers.sort(key=lambda header: (header.time, header.finished, header.id))
    return headers


def resolve_snapshot(
    store: Store, layout: RepoLayout, text: str, *, source: str | None = None
) -> SnapshotHeader:
    """A snapshot named by ``latest``, its full id, or a unique prefix or random tail."""
    wanted = text.strip()
    if not wanted:
        raise UsageError("empty snapshot id: give an id from 'lakeguard snapshots' or 'latest'")
    ids = list(list_snapshot_ids(store, layout))
    if wanted == "latest":
        if source is None:
            if not ids:
                raise UsageError("the repository has no snapshots yet: run 'lakeguard backup'")
            same_second = [sid for sid in ids if sid[:16] == ids[-1][:16]]
            newest = [read_header(store, layout, sid) for sid in same_second]
            return max(newest, key=lambda header: (header.time, header.finished, header.id))
        headers = list_snapshots(store, layout, source=source)
        if not headers:
            raise UsageError(f"no snapshot of {source} in this repository")
        return headers[-1]
    header = read_header(store, layout, match_snapshot_id(ids, wanted))
    if source is not None and header.source != source:
        raise UsageError(f"snapshot {header.id} is of {header.source}, not of {source}")
    return header


def match_snapshot_id(ids: Sequence[str], wanted: str) -> str:
    """The one id equal to, starting with, or whose random tail starts with ``wanted``."""
    if wanted in ids:
        return wanted
    found = [sid for sid in ids if sid.startswith(wanted) or sid[17:].startswith(wanted)]
    if len(found) == 1:
        return found[0]
    if not found:
        raise UsageError(f"no snapshot {wanted!r} in this repository (see 'lakeguard snapshots')")
    raise UsageError(f"snapshot {wanted!r} is ambiguous ({len(found)} match): give more of the id")

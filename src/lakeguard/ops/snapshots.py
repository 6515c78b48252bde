"""``snapshots``, ``ls`` and ``find``: what the repository holds, read from the local cache.

    snapshots   headers (cache.py: one listing, a GET per header not seen before)
    ls          one snapshot's manifest rows, filtered by a glob, streamed
    find        every snapshot's manifest, filtered by a glob: which snapshots
                and archives hold the matching keys

Globs follow ``restore --include``: ``fnmatch`` over the whole key (``*``
crosses ``/``) and over each folder it lies in, so a folder's name selects
what is under it (``manifest.KeyFilter``). ``find`` also
matches the full source key (``events/`` + key), so a path copied from a
Spark error finds its object.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lakeguard.errors import (
    AccessDeniedError,
    BucketNotFoundError,
    EndpointUnreachableError,
    OperationalError,
    UsageError,
)
from lakeguard.repository.cache import RepoCache
from lakeguard.repository.manifest import (
    COLUMNS,
    KeyFilter,
    ManifestRow,
    open_manifest,
    row_groups,
    rows_of_batch,
)
from lakeguard.repository.repo import Repository
from lakeguard.repository.snapshot import DamagedHeader, SnapshotHeader
from lakeguard.timeparse import iso

BATCH_ROWS = 16_384


def source_url(text: str) -> str:
    """A location as snapshot headers record it (``s3://lake/events`` -> ``s3://lake/events/``)."""
    from lakeguard.location import parse_location
    from lakeguard.repository.layout import SourceRef

    return SourceRef.of(parse_location(text)).url


def source_filter(text: str | None) -> str | None:
    """``--source``: None when not given; an empty one is bad input, not "every source"."""
    if text is None:
        return None
    if not text.strip():
        raise UsageError("--source needs a location (s3://bucket[/prefix] or a directory)")
    return source_url(text)


def list_snapshots(
    repo: Repository, *, source: str | None = None, cache_dir: Path | None = None
) -> list[SnapshotHeader]:
    """Complete snapshots, oldest first (only ``source``'s when given)."""
    headers = RepoCache(repo, cache_dir).headers()
    if source is not None:
        headers = [header for header in headers if header.source == source]
    return headers


@dataclass(slots=True)
class SnapshotListing:
    """``snapshots``: the readable headers, oldest first, and those that cannot be read."""

    headers: list[SnapshotHeader]
    damaged: list[DamagedHeader]

    def to_json(self) -> list[dict[str, Any]]:
        """One entry per snapshot in time order; a damaged one has only its id, its
        time (from the id) and ``damaged``, the reason (null for readable ones)."""
        entries = [
            (header.time, header.id, {**header.summary(), "damaged": None})
            for header in self.headers
        ]
        entries += [
            (
                item.time,
                item.id,
                {
                    "id": item.id,
                    "time": iso(item.time),
                    "source": None,
                    "objects": None,
                    "bytes": None,
                    "tags": [],
                    "damaged": item.error,
                },
            )
            for item in self.damaged
        ]
        return [entry for _, _, entry in sorted(entries, key=lambda e: (e[0], e[1]))]


def snapshot_listing(
    repo: Repository, *, source: str | None = None, cache_dir: Path | None = None
) -> SnapshotListing:
    """What ``snapshots`` shows: every readable header (only ``source``'s when given) and
    every header that cannot be read (whatever ``source``: its source is unknown)."""
    headers, damaged = RepoCache(repo, cache_dir).read_headers()
    if source is not None:
        headers = [header for header in headers if header.source == source]
    return SnapshotListing(headers, damaged)


def _glob(text: str | None) -> KeyFilter:
    if text is None:
        return KeyFilter()
    return KeyFilter.of([text])


@dataclass(slots=True)
class Listing:
    """``ls``: one snapshot and the rows matching the glob (a one-shot iterator)."""

    snapshot: SnapshotHeader
    rows: Iterator[ManifestRow]


def list_objects(
    repo: Repository,
    snapshot: str,
    *,
    glob: str | None = None,
    source: str | None = None,
    cache_dir: Path | None = None,
) -> Listing:
    """The objects of one snapshot whose key matches ``glob`` (all without one), key order.

    With ``source``, ``latest`` is that source's newest snapshot, and an id
    must name one of its snapshots.
    """
    key_filter = _glob(glob)
    header = repo.snapshot(snapshot, source=source)
    path = RepoCache(repo, cache_dir).manifest(header)
    return Listing(header, _matching_rows(path, key_filter, prefix=""))


def _matching_rows(path: Path, key_filter: KeyFilter, *, prefix: str) -> Iterator[ManifestRow]:
    """Rows whose key (or ``prefix + key``) matches; keys are tested before rows are built."""
    parquet = open_manifest(path)
    groups = [index for _number, index in row_groups(parquet, key_filter.key_starts(prefix))]
    if not groups:
        return
    for batch in parquet.iter_batches(
        batch_size=BATCH_ROWS, row_groups=groups, columns=list(COLUMNS)
    ):
        keys = batch.column(0).to_pylist()
        chosen = key_filter.select(keys)
        if prefix and len(chosen) < len(keys):
            also = key_filter.select([prefix + key for key in keys])
            chosen = sorted(set(chosen).union(also))
        if not chosen:
            continue
        for _index, row in rows_of_batch(
            batch.take(chosen) if len(chosen) < len(keys) else batch, None
        ):
            yield row


@dataclass(slots=True)
class Found:
    """One key held by one or more snapshots, all in the same archive member."""

    key: str
    size: int
    sha256: str
    archive: str
    member: str
    snapshots: list[str] = field(default_factory=list)
    source: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "source": self.source,
            "size": self.size,
            "sha256": self.sha256,
            "archive": self.archive,
            "member": self.member,
            "snapshots": list(self.snapshots),
        }


@dataclass(slots=True)
class FindResult:
    glob: str
    snapshots_searched: int = 0
    found: list[Found] = field(default_factory=list)
    damaged: list[tuple[str, str]] = field(default_factory=list)  # (snapshot id, why) not read

    @property
    def snapshot_ids(self) -> list[str]:
        return sorted({sid for item in self.found for sid in item.snapshots})

    @property
    def archives(self) -> list[str]:
        return sorted({item.archive for item in self.found})

    def to_json(self) -> dict[str, Any]:
        return {
            "glob": self.glob,
            "snapshots_searched": self.snapshots_searched,
            "matches": [item.to_json() for item in self.found],
            "snapshots": self.snapshot_ids,
            "archives": self.archives,
            "damaged": [{"id": sid, "error": error} for sid, error in self.damaged],
        }


def find(
    repo: Repository,
    glob: str,
    *,
    source: str | None = None,
    cache_dir: Path | None = None,
    limit: int = 100_000,
) -> FindResult:
    """Which snapshots and archives hold keys matching ``glob``.

    Matches are grouped by (source, key, archive member): a key unchanged over
    many snapshots is one entry listing them all, oldest first. At most
    ``limit`` entries are kept (UsageError beyond: narrow the glob). A
    manifest that cannot be read is named in ``damaged``; the others are
    still searched.
    """
    if not glob.strip():
        raise UsageError("empty glob: give a pattern such as 'dt=2026-02-11/*'")
    key_filter = KeyFilter.of([glob])
    cache = RepoCache(repo, cache_dir)
    headers = cache.headers()
    if source is not None:
        headers = [header for header in headers if header.source == source]
    result = FindResult(glob=glob, snapshots_searched=len(headers))
    grouped: dict[tuple[str, str, str, int], Found] = {}
    for header in headers:
        try:  # rows stream: a manifest damaged half-way keeps what was read
            for row in _matching_rows(
                cache.manifest(header), key_filter, prefix=header.source_prefix
            ):
                ident = (header.source, row.key, row.archive, row.frame_offset)
                entry = grouped.get(ident)
                if entry is None:
                    if len(grouped) >= limit:
                        raise UsageError(
                            f"more than {limit:,} matches for {glob!r}: narrow the glob"
                        )
                    entry = Found(
                        row.key, row.size, row.sha256, row.archive, row.member, [], header.source
                    )
                    grouped[ident] = entry
                entry.snapshots.append(header.id)
        except (EndpointUnreachableError, AccessDeniedError, BucketNotFoundError):
            raise
        except OperationalError as exc:  # one damaged manifest: search the others
            result.damaged.append((header.id, exc.message))
    # Stable: entries of one key stay in the order of their first snapshot (oldest first).
    result.found = sorted(grouped.values(), key=lambda item: (item.key, item.source))
    return result


def row_json(row: ManifestRow) -> dict[str, Any]:
    """An ``ls --json`` entry."""
    return {
        "key": row.key,
        "size": row.size,
        "sha256": row.sha256,
        "etag": row.etag,
        "version_id": row.version_id,
        "last_modified": iso(row.last_modified),
        "archive": row.archive,
    }

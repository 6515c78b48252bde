"""What an incremental backup may reuse instead of reading an object again.

Candidates come from the parent snapshot's manifest and from the archives of
crashed runs of the same source (each archive describes itself in its
manifest.json), all sorted by key (byte order). Most stores list in that
order too, and ``ReuseIndex`` is then a merge-join: one pass, one batch of
candidates in memory. SeaweedFS lists folder by folder, "a/b" and the rest
of folder "a/" before "a-b": on the way to "a/b" the join passes "a-b", which
the listing gives later. Such rows are kept aside until then (see
``ReuseIndex``), so an unchanged object is never read again for the order
its store lists in.

An object is unchanged when its version id equals the candidate's (both
known), else when size, ETag and last-modified all match.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from lakeguard.archive.reader import ArchiveDamaged
from lakeguard.errors import NotFoundError
from lakeguard.repository.layout import archive_id_of
from lakeguard.repository.manifest import ManifestRow, StoredRow
from lakeguard.repository.repo import Repository
from lakeguard.repository.runs import list_runs
from lakeguard.storage.base import ObjectInfo

log = logging.getLogger(__name__)


def _micros(moment: datetime | None) -> int | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1_000_000)


def unchanged(info: ObjectInfo, row: ManifestRow | StoredRow) -> bool:
    """Whether the listed object is the one the manifest row holds."""
    if info.size != row.size:
        return False
    if info.version_id and row.version_id:
        return info.version_id == row.version_id
    if (info.etag or None) != (row.etag or None):
        return False
    if info.last_modified == row.last_modified:  # both aware, or both None: the common case
        return True
    return _micros(info.last_modified) == _micros(row.last_modified)


# Candidates kept aside for a later lookup, at most (about 0.7 KB each); past
# that the oldest are dropped, and those objects, if listed later, are read
# again: slower, never wrong.
KEEP_ASIDE = 100_000


class ReuseIndex:
    """Merge-join of byte-ordered candidates with lookups in the listing's order.

    A candidate the join passes (its key sorts before the key looked up) is
    kept aside when folder-tree order lists it later: at the first character
    where the two keys differ, the key looked up has "/" ("a/b" passes "a-b"
    and "a.txt"). Candidates of deleted objects, the other ones passed, are
    dropped as before.
    """

    def __init__(
        self, candidates: Iterable[ManifestRow | StoredRow], *, keep: int = KEEP_ASIDE
    ) -> None:
        self._rows = iter(candidates)
        self._head: ManifestRow | StoredRow | None = next(self._rows, None)
        self._aside: dict[str, list[ManifestRow]] = {}
        self._keep = keep
        self.lookups = 0

    def find(self, key: str, info: ObjectInfo) -> ManifestRow | StoredRow | None:
        """The candidate holding this exact object, if any."""
        self.lookups += 1
        while self._head is not None and self._head.key < key:
            if _listed_later(self._head.key, key):
                self._set_aside(self._head)
            self._head = next(self._rows, None)
        found = None
        while self._head is not None and self._head.key == key:
            if found is None and unchanged(info, self._head):
                found = self._head
            self._head = next(self._rows, None)
        aside = self._aside.pop(key, None) if self._aside else None
        if found is None and aside:
            found = next((row for row in aside if unchanged(info, row)), None)
        return found

    def _set_aside(self, stored: ManifestRow | StoredRow) -> None:
        # Whole rows: one kept aside must not hold its batch (8,192 rows) in memory.
        row = stored.materialize() if isinstance(stored, StoredRow) else stored
        rows = self._aside.get(row.key)
        if rows is not None:
            rows.append(row)
            return
        if len(self._aside) >= self._keep:
            del self._aside[next(iter(self._aside))]
        self._aside[row.key] = [row]


def _listed_later(passed: str, key: str) -> bool:
    """Whether folder-tree order lists ``passed`` after ``key`` (``passed`` < ``key``)."""
    # Characters, not path parts, are what the two orders compare.
    at = len(os.path.commonprefix((passed, key)))  # noqa: RUF071
    return at < len(passed) and key[at] == "/"


@dataclass(slots=True)
class Orphans:
    """Archives of crashed runs of one source, and the rows they hold (sorted by key)."""

    runs: list[str] = field(default_factory=list)
    archives: dict[str, str] = field(default_factory=dict)  # archive key -> run id
    rows: list[ManifestRow] = field(default_factory=list)


def crashed_runs(repo: Repository, source: str, *, exclude: str = "") -> list[str]:
    """Runs of ``source`` that recorded a start but never wrote a snapshot header."""
    have_header = {
        info.key.rsplit("/", 1)[-1][:-5] for info in repo.store.list(repo.key("snapshots/"))
    }
    runs: list[str] = []
    for run_id in sorted(list_runs(repo).started):
        if run_id in have_header or run_id == exclude:
            continue
        try:
            doc = json.loads(repo.read_bytes(repo.layout.run(run_id)))
        except (NotFoundError, ValueError):
            continue
        if isinstance(doc, dict) and doc.get("source") == source:
            runs.append(run_id)
    return runs


def find_orphans(repo: Repository, source: str, *, exclude: str = "") -> Orphans:
    """The members written by crashed runs of ``source``, ready to be reused."""
    orphans = Orphans(runs=crashed_runs(repo, source, exclude=exclude))
    for run_id in orphans.runs:
        prefix = repo.key(repo.layout.run_archives(run_id))
        for info in repo.store.list(prefix):
            relative = repo.layout.relative(info.key)
            try:
                doc = repo.open_archive(relative).manifest()
            except ArchiveDamaged as exc:
                log.warning("skipping archive %s of crashed run %s: %s", relative, run_id, exc)
                continue
            orphans.archives[relative] = run_id
            orphans.rows.extend(_rows_of(doc, relative))
    orphans.rows.sort(key=lambda row: row.key)
    return orphans


def _rows_of(doc: dict[str, object], archive: str) -> Iterator[ManifestRow]:
    objects = doc.get("objects")
    if not isinstance(objects, list):
        return
    for entry in objects:
        if not isinstance(entry, dict):
            continue
        try:
            yield ManifestRow.from_record(
                {
                    **entry,
                    "key": entry["relative_key"],
                    "archive": archive,
                    "last_modified": entry.get("last_modified") or entry.get("creation_time"),
                }
            )
        except (KeyError, TypeError, ValueError):
            continue


def archive_of(row: ManifestRow) -> str:
    """The archive id a row's member lives in."""
    return archive_id_of(row.archive)

"""Collecting a snapshot's manifest rows on local disk, then writing them in key order.

Rows arrive as runs: the reused rows in listing order, and each archive's
rows, archives finishing in any order. Each run goes to a small Parquet file
in a temporary directory, sorted by key (byte order); ``write_to()`` writes
them all in key order. A listing is in byte order on most stores, but
SeaweedFS lists folder by folder ("a/b" before "a-b"): a run written row by
row starts a new file wherever its keys go down, so every file stays sorted
(an external merge sort whose runs are as long as the listing allows).
Memory stays bounded by one batch per run, and the number of open runs is
bounded by merging the oldest ones together when too many pile up.

Archives are cut from consecutive stretches of the listing, so their runs
rarely overlap: runs whose key ranges follow one another are concatenated as
Arrow batches, and need no compaction. Only overlapping runs (reused rows
among new ones) go through the k-way merge of Python rows. Measured: 200,000
rows in runs of 200 were spooled and written in 3.6 s, against 14.3 s when
every compaction and the final write merged row by row; the manifest of the
2,206-object bench backup took 36 ms instead of 77 ms.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from lakeguard.repository.manifest import ManifestRow, ManifestWriter, StoredRow, read_stored

MAX_RUNS = 128
_MERGE_AT_ONCE = 64


@dataclass(frozen=True, slots=True)
class _RunFile:
    path: Path
    first: str  # its lowest and highest key
    last: str


class RowSpool:
    """Sorted runs of manifest rows in ``directory``; see the module docstring."""

    def __init__(self, directory: Path, *, snapshot_id: str = "") -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._runs: list[_RunFile] = []  # in the order they came
        self._ranges: list[tuple[str, str]] = []  # their key ranges, in key order
        self._overlap = False  # whether some of those ranges overlap
        self._names = itertools.count()
        self._snapshot_id = snapshot_id
        self.rows = 0
        self.bytes = 0

    def _path(self) -> Path:
        return self.directory / f"run-{next(self._names):06d}.parquet"

    def add_run(self, rows: Sequence[ManifestRow]) -> None:
        """Add one batch of rows (sorted here when they are not)."""
        if not rows:
            return
        if any(before.key > after.key for before, after in itertools.pairwise(rows)):
            rows = sorted(rows, key=_key)
        path = self._path()
        with self._writer(path) as writer:
            writer.write_all(rows)
        self._adopt(path, len(rows), sum(row.size for row in rows), rows[0].key, rows[-1].key)

    def open_run(self) -> SpoolRun:
        """A run written row by row, in any order (see ``SpoolRun``)."""
        return SpoolRun(self, self._path())

    def _writer(self, path: Path) -> ManifestWriter:
        # Runs carry the snapshot id like the manifest: a lone run is the manifest.
        return ManifestWriter(path, snapshot_id=self._snapshot_id)

    def _adopt(self, path: Path, rows: int, nbytes: int, first: str, last: str) -> None:
        if not rows:
            path.unlink(missing_ok=True)
            return
        self._runs.append(_RunFile(path, first, last))
        self.rows += rows
        self.bytes += nbytes
        self._note_range(first, last)
        # Runs that do not overlap are concatenated one file at a time, however
        # many there are; only a k-way merge needs few files open at once.
        while len(self._runs) > MAX_RUNS and self._overlap:
            self._compact()

    def _note_range(self, first: str, last: str) -> None:
        at = bisect.bisect_left(self._ranges, (first, last))
        if at > 0 and self._ranges[at - 1][1] >= first:
            self._overlap = True
        if at < len(self._ranges) and last >= self._ranges[at][0]:
            self._overlap = True
        self._ranges.insert(at, (first, last))

    def _compact(self) -> None:
        oldest, self._runs = self._runs[:_MERGE_AT_ONCE], self._runs[_MERGE_AT_ONCE:]
        path = self._path()
        with self._writer(path) as writer:
            _write_runs(writer, oldest)
        for run in oldest:
            run.path.unlink(missing_ok=True)
        first = min(run.first for run in oldest)
        self._runs.append(_RunFile(path, first, max(run.last for run in oldest)))
        self._ranges = sorted((run.first, run.last) for run in self._runs)
        self._overlap = not _disjoint(self._ranges)

    def merged(self) -> Iterator[StoredRow]:
        """Every row, in key order."""
        return _merge([run.path for run in self._runs])

    def write_to(self, writer: ManifestWriter) -> None:
        """Every row, in key order, into ``writer``."""
        _write_runs(writer, self._runs)

    def only_run(self) -> Path | None:
        """The one run when there is exactly one: it already is the merged manifest
        (a no-change backup then writes its manifest once, not three times)."""
        return self._runs[0].path if len(self._runs) == 1 and self._snapshot_id else None


class SpoolRun:
    """A run written row by row. Its file is created with the first row: a run
    that gets none (a first backup reuses nothing) costs no Parquet writer, and
    pyarrow's import (0.17 s) stays off the start of the backup. A row whose
    key sorts before the last one's closes the file and starts the next, so
    each file holds one ascending stretch."""

    def __init__(self, spool: RowSpool, path: Path) -> None:
        self._spool = spool
        self._path = path
        self._writer: ManifestWriter | None = None
        self._bytes = 0
        self._first = self._last = ""

    def write(self, row: ManifestRow | StoredRow) -> None:
        if self._writer is not None and row.key < self._last:
            self.close()
            self._path = self._spool._path()
        if self._writer is None:
            self._writer = self._spool._writer(self._path)
            self._first = row.key
            self._bytes = 0
        self._writer.write(row)
        self._bytes += row.size
        self._last = row.key

    def close(self) -> None:
        if self._writer is None:
            return
        self._writer.close()
        self._spool._adopt(self._path, self._writer.rows, self._bytes, self._first, self._last)
        self._writer = None


def sorted_rows(rows: Iterable[ManifestRow | StoredRow], directory: Path) -> Iterator[StoredRow]:
    """``rows`` in key order, sorted on disk in ``directory`` (bounded memory)."""
    spool = RowSpool(directory)
    run = spool.open_run()
    try:
        for row in rows:
            run.write(row)
    finally:
        run.close()
    return spool.merged()


def _key(row: ManifestRow | StoredRow) -> str:
    return row.key


def _write_runs(writer: ManifestWriter, runs: Sequence[_RunFile]) -> None:
    """The rows of ``runs`` in key order: concatenated when their key ranges follow
    one another, else merged row by row."""
    ordered = sorted(runs, key=lambda run: run.first)
    if _disjoint([(run.first, run.last) for run in ordered]):
        for run in ordered:
            writer.write_file(run.path)
    else:
        writer.write_all(_merge([run.path for run in runs]))


def _disjoint(ranges: Sequence[tuple[str, str]]) -> bool:
    """Whether key ranges, sorted by their first key, follow one another."""
    return all(before[1] < after[0] for before, after in itertools.pairwise(ranges))


def _merge(paths: Sequence[Path]) -> Iterator[StoredRow]:
    # StoredRow: the rows pass into the writer as slices of their batches.
    streams = [read_stored(path) for path in paths]
    return heapq.merge(*streams, key=lambda row: row.key)

"""``check``: is every snapshot restorable? Structure always, data on request.

    headers          every snapshots/<id>.json parses, names its own id and manifest
    manifests        downloaded afresh (not from the cache: the repository is what
                     is checked), SHA-256 and size equal the header's, Parquet with
                     the manifest columns, row count and bytes equal the header's
                     stats, no key twice
    members          (DuckDB over all manifests) rows that share an archive member
                     agree on its name, length, size and SHA-256
    archives         each referenced archive exists; its seek table parses and
                     covers the file; each member's frames start and end on frame
                     boundaries before manifest.json, and decompress to tar blocks
                     that fit the object's size
    --read-data      each (selected) archive read whole: every referenced member
                     decompressed and re-hashed (check_data.py)

Damage found is reported (exit 1), never raised: a damaged header or a missing
archive does not stop the check of the rest. Failing to read the repository
at all (store unreachable, access denied) raises (exit 3).
"""

from __future__ import annotations

import hashlib
import math
import os
import random
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakeguard import duck
from lakeguard.archive.reader import ArchiveDamaged, ArchiveReader
from lakeguard.archive.seektable import SeekTable
from lakeguard.errors import NotFoundError, OperationalError, UsageError
from lakeguard.ops.check_data import ArchiveReport, MemberRef, read_archive
from lakeguard.ops.report import Capped
from lakeguard.repository.layout import ARCHIVE_SUFFIX, ARCHIVES
from lakeguard.repository.manifest import open_manifest
from lakeguard.repository.repo import ManifestDamaged, Repository
from lakeguard.repository.snapshot import HeaderDamaged, SnapshotHeader, list_snapshot_ids

if TYPE_CHECKING:
    import duckdb

ProgressCallback = Callable[[int, int], None]
TAR_BLOCK = 512
ERROR_CAP = 10_000
_SUBSET_GROUP = re.compile(r"^(\d+)/(\d+)$")
_SUBSET_PERCENT = re.compile(r"^(\d+(?:\.\d+)?)%$")


@dataclass(frozen=True, slots=True)
class Subset:
    """``--read-data-subset``: group ``n`` of ``t`` (``n/t``), or ``percent`` % at random."""

    text: str
    group: int = 0
    groups: int = 0
    percent: float = 0.0

    @classmethod
    def parse(cls, text: str) -> Subset:
        raw = text.strip()
        if match := _SUBSET_GROUP.match(raw):
            n, t = int(match.group(1)), int(match.group(2))
            if not 1 <= n <= t:
                raise UsageError(
                    f"invalid --read-data-subset {text!r}: n/t needs 1 <= n <= t, e.g. 1/5"
                )
            return cls(raw, group=n, groups=t)
        if match := _SUBSET_PERCENT.match(raw):
            percent = float(match.group(1))
            if not 0 < percent <= 100:
                raise UsageError(
                    f"invalid --read-data-subset {text!r}: a percentage above 0 and at most 100"
                )
            return cls(raw, percent=percent)
        raise UsageError(
            f"invalid --read-data-subset {text!r}: use n/t (group n of t, e.g. 2/7) "
            "or P% (e.g. 10%)"
        )

    def select(self, archives: list[str], *, rng: random.Random | None = None) -> set[str]:
        """The archives to read. Groups split archives by a hash of their key: over
        ``1/t`` .. ``t/t`` every archive is read exactly once."""
        if self.groups:
            return {
                key
                for key in archives
                if int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % self.groups
                == self.group - 1
            }
        count = min(len(archives), math.ceil(len(archives) * self.percent / 100))
        return set((rng or random.SystemRandom()).sample(archives, count))


@dataclass(frozen=True, slots=True)
class Problem:
    """Damage that is not (only) one object's: a header, a manifest, an archive."""

    kind: str  # header, manifest, archive, seek-table, data
    message: str
    snapshot: str | None = None
    archive: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "message": self.message,
            "snapshot": self.snapshot,
            "archive": self.archive,
        }


@dataclass(frozen=True, slots=True)
class DamagedObject:
    """An object that cannot be restored intact, and the snapshots that hold it."""

    key: str
    archive: str
    member: str
    error: str
    snapshots: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "snapshots": list(self.snapshots),
            "archive": self.archive,
            "member": self.member,
            "error": self.error,
        }


@dataclass(slots=True)
class CheckResult:
    snapshots: int = 0
    objects: int = 0  # manifest rows, over all snapshots
    members: int = 0  # distinct archive members they reference
    archives: int = 0  # distinct archives they reference
    unreferenced_archives: int = 0
    read_data: bool = False
    subset: str | None = None
    archives_read: int = 0
    members_read: int = 0
    bytes_read: int = 0
    seconds: float = 0.0
    problems: Capped[Problem] = field(default_factory=lambda: Capped(ERROR_CAP))
    damaged: Capped[DamagedObject] = field(default_factory=lambda: Capped(ERROR_CAP))

    @property
    def ok(self) -> bool:
        return not self.problems.count and not self.damaged.count

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "snapshots": self.snapshots,
            "objects": self.objects,
            "members": self.members,
            "archives": self.archives,
            "unreferenced_archives": self.unreferenced_archives,
            "read_data": (
                {
                    "subset": self.subset or "all",
                    "archives": self.archives_read,
                    "members": self.members_read,
                    "bytes": self.bytes_read,
                }
                if self.read_data
                else None
            ),
            "errors": [problem.to_json() for problem in self.problems.items],
            "errors_total": self.problems.count,
            "damaged": [item.to_json() for item in self.damaged.items],
            "damaged_total": self.damaged.count,
            "seconds": round(self.seconds, 3),
        }


def _headers(
    repo: Repository, result: CheckResult, pool: ThreadPoolExecutor
) -> list[SnapshotHeader]:
    def load(snapshot_id: str) -> SnapshotHeader | Problem:
        where = f"snapshot {snapshot_id}"
        try:
            header = SnapshotHeader.decode(
                repo.read_bytes(repo.layout.snapshot(snapshot_id)),
                where=where,
                snapshot_id=snapshot_id,
            )
        except NotFoundError:
            return Problem("header", f"{where}: header vanished while checking", snapshot_id)
        except HeaderDamaged as exc:
            return Problem("header", exc.with_remedy(repo.url).message, snapshot_id)
        except OperationalError as exc:
            return Problem("header", exc.message, snapshot_id)
        if header.id != snapshot_id:
            return Problem("header", f"{where}: header names snapshot {header.id}", snapshot_id)
        if header.manifest != repo.layout.manifest(snapshot_id):
            return Problem(
                "header", f"{where}: header names manifest {header.manifest}", snapshot_id
            )
        return header

    found = list(pool.map(load, list(list_snapshot_ids(repo.store, repo.layout))))
    headers: list[SnapshotHeader] = []
    for item in found:
        if isinstance(item, Problem):
            result.problems.append(item)
        else:
            headers.append(item)
    return headers


def _manifests(
    repo: Repository,
    headers: list[SnapshotHeader],
    directory: Path,
    result: CheckResult,
    pool: ThreadPoolExecutor,
) -> dict[str, Path]:
    def fetch(header: SnapshotHeader) -> Path | Problem:
        try:
            path = repo.fetch_manifest(header, directory)
            open_manifest(path)
        except ManifestDamaged as exc:  # its message says "run check": not here
            return Problem("manifest", exc.reason, header.id)
        except OperationalError as exc:
            return Problem("manifest", exc.message, header.id)
        return path

    paths: dict[str, Path] = {}
    for header, item in zip(headers, pool.map(fetch, headers), strict=True):
        if isinstance(item, Problem):
            result.problems.append(item)
        else:
            paths[header.id] = item
    return paths


def _connect(paths: dict[str, Path], scratch: Path) -> duckdb.DuckDBPyConnection:
    con = duck.connect(scratch / "spill")
    files = ", ".join("'" + str(path).replace("'", "''") + "'" for path in paths.values())
    con.execute(
        "CREATE VIEW rows AS SELECT "
        "regexp_extract(filename, '([^/\\\\]+)\\.parquet$', 1) AS snapshot_id, "
        "key, size, sha256, archive, member, frame_offset, frame_length "
        f"FROM read_parquet([{files}], filename = true)"
    )
    return con


def _check_rows(
    con: duckdb.DuckDBPyConnection, headers: dict[str, SnapshotHeader], result: CheckResult
) -> None:
    """Per-snapshot totals against the headers (``_members`` compares the members)."""
    totals = con.execute(
        "SELECT snapshot_id, count(*), coalesce(sum(size), 0)::BIGINT, count(DISTINCT key) "
        "FROM rows GROUP BY snapshot_id"
    ).fetchall()
    seen = {row[0]: row for row in totals}
    for snapshot_id, header in headers.items():
        _, count, nbytes, keys = seen.get(snapshot_id, (snapshot_id, 0, 0, 0))
        result.objects += count
        if (count, nbytes) != (header.stats.objects, header.stats.bytes):
            result.problems.append(
                Problem(
                    "manifest",
                    f"snapshot {snapshot_id}: manifest has {count} objects of {nbytes} bytes, "
                    f"header says {header.stats.objects} of {header.stats.bytes}",
                    snapshot_id,
                )
            )
        if keys != count:
            result.problems.append(
                Problem(
                    "manifest",
                    f"snapshot {snapshot_id}: manifest lists {count - keys} key(s) twice",
                    snapshot_id,
                )
            )


def _members(
    con: duckdb.DuckDBPyConnection, result: CheckResult
) -> Iterator[tuple[str, list[MemberRef]]]:
    """Distinct referenced members, grouped by archive, in offset order.

    A member that manifests describe differently (name, frames, size or
    SHA-256) is a problem of its own. It is found in the same pass: the
    descriptions of a member all hash alike unless they differ (one 64-bit
    hash, min against max). A separate ``count(DISTINCT (...))`` pass cost
    1-2 s of a 15 s check over three manifests of 1,000,000 rows.
    """
    cursor = con.execute(
        "SELECT archive, frame_offset, any_value(frame_length), any_value(member), "
        "any_value(size), any_value(sha256), min(described) <> max(described) "
        "FROM (SELECT *, hash(member, frame_length, size, sha256) AS described FROM rows) "
        "GROUP BY archive, frame_offset ORDER BY archive, frame_offset"
    )
    current: str | None = None
    refs: list[MemberRef] = []
    while batch := cursor.fetchmany(4096):
        for archive, offset, length, member, size, sha, differ in batch:
            if differ:
                result.problems.append(
                    Problem(
                        "manifest",
                        f"manifests disagree about the member at {offset} of {archive}",
                        archive=archive,
                    )
                )
            if archive != current:
                if current is not None:
                    yield current, refs
                current, refs = archive, []
            refs.append(MemberRef(offset, length, member, size, sha))
    if current is not None:
        yield current, refs


def _frame_errors(table: SeekTable, ref: MemberRef) -> str | None:
    """Why a member's frame range cannot be right, or None."""
    try:
        frames = table.frames_in(ref.frame_offset, ref.frame_length)
    except KeyError:
        return "its byte range does not start and end on frame boundaries"
    if len(table.frames) < 2 or frames[-1].index >= len(table.frames) - 2:
        return "its frames overlap manifest.json or the end of the archive"
    unpacked = sum(frame.decompressed_size for frame in frames)
    data = -(-ref.size // TAR_BLOCK) * TAR_BLOCK
    if unpacked <= data or (unpacked - data) % TAR_BLOCK:
        return f"its frames decompress to {unpacked} bytes, not tar blocks for {ref.size} bytes"
    return None


class _Checker:
    """The archive phase: structure per archive, data reads on a bounded pool."""

    def __init__(
        self,
        repo: Repository,
        result: CheckResult,
        chosen: set[str] | None,
        workers: int,
        on_progress: ProgressCallback | None,
    ) -> None:
        self.repo = repo
        self.result = result
        self.chosen = chosen  # archives to read whole (None: none)
        self.workers = workers
        self.on_progress = on_progress
        self.damaged: list[tuple[str, MemberRef, str]] = []

    def structure(
        self, archive: str, refs: list[MemberRef], sizes: dict[str, int]
    ) -> SeekTable | None:
        if archive not in sizes:
            self.result.problems.append(
                Problem("archive", f"archive {archive} is missing", archive=archive)
            )
            self.damaged.extend((archive, ref, f"archive {archive} is missing") for ref in refs)
            return None
        try:
            # The listed size: no HEAD per archive (nor botocore's 0.5 s start
            # for it: HEAD is the only call here that needs botocore).
            table = ArchiveReader(
                self.repo.store, self.repo.key(archive), name=archive, size=sizes[archive]
            ).seek_table()
        except ArchiveDamaged as exc:
            self.result.problems.append(Problem("seek-table", exc.message, archive=archive))
            self._unlocatable(archive, refs, sizes[archive], exc.message)
            return None
        for ref in refs:
            error = _frame_errors(table, ref)
            if error is not None:
                where = f"archive {archive} member {ref.member!r} at {ref.frame_offset}"
                self.damaged.append((archive, ref, f"{where}: {error}"))
        return table

    def _unlocatable(self, archive: str, refs: list[MemberRef], size: int, why: str) -> None:
        """Name the objects of an archive whose seek table is unreadable (truncated, or
        overwritten): those whose frames run past the end of the file are lost; the
        others cannot be checked against the table, and --read-data reads them."""
        reading = self.chosen is not None and archive in self.chosen
        for ref in refs:
            end = ref.frame_offset + ref.frame_length
            where = f"archive {archive} member {ref.member!r} at {ref.frame_offset}"
            if end > size:
                error = f"{where}: its frames end at byte {end}, the archive has {size} ({why})"
            elif reading:
                continue  # read whole below: judged by its bytes
            else:
                error = f"{where}: not checked, {why} (--read-data reads the member)"
            self.damaged.append((archive, ref, error))

    def record(self, report: ArchiveReport) -> None:
        result = self.result
        result.archives_read += 1
        result.members_read += report.members_read
        result.bytes_read += report.bytes_read
        for ref, error in report.damaged:
            self.damaged.append((report.archive, ref, error))
        for message in report.problems:
            result.problems.append(Problem("data", message, archive=report.archive))
        if self.on_progress is not None:
            self.on_progress(report.members_read, report.bytes_read)

    def run(self, members: Iterator[tuple[str, list[MemberRef]]], sizes: dict[str, int]) -> None:
        with ThreadPoolExecutor(self.workers, thread_name_prefix="lakeguard-check") as pool:
            pending: set[Future[ArchiveReport]] = set()
            for archive, refs in members:
                self.result.archives += 1
                self.result.members += len(refs)
                table = self.structure(archive, refs, sizes)
                if self.chosen is None or archive not in self.chosen or archive not in sizes:
                    continue
                if len(pending) >= 2 * self.workers:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        self.record(future.result())
                key = self.repo.key(archive)
                pending.add(pool.submit(read_archive, self.repo.store, key, archive, refs, table))
            for future in pending:
                self.record(future.result())


def _name_damaged(
    con: duckdb.DuckDBPyConnection, damaged: list[tuple[str, MemberRef, str]], result: CheckResult
) -> None:
    """Damaged members -> the keys they hold and the snapshots holding them."""
    import pyarrow as pa

    if not damaged:
        return
    errors = {(archive, ref.frame_offset): (ref, error) for archive, ref, error in damaged}
    table = pa.table(
        {
            "archive": [archive for archive, _ in errors],
            "frame_offset": pa.array([offset for _, offset in errors], pa.int64()),
        }
    )
    con.register("damaged_members", table)
    rows = con.execute(
        "SELECT r.archive, r.frame_offset, r.key, list(DISTINCT r.snapshot_id ORDER BY "
        "r.snapshot_id) FROM rows r JOIN damaged_members d USING (archive, frame_offset) "
        "GROUP BY ALL ORDER BY r.key, r.archive, r.frame_offset"
    ).fetchall()
    for archive, offset, key, snapshots in rows:
        ref, error = errors[(archive, offset)]
        result.damaged.append(DamagedObject(key, archive, ref.member, error, tuple(snapshots)))


def _archive_sizes(repo: Repository) -> dict[str, int]:
    prefix = repo.key(ARCHIVES)
    return {
        repo.layout.relative(info.key): info.size
        for info in repo.store.list(prefix)
        if info.key.endswith(ARCHIVE_SUFFIX)
    }


def check(
    repo: Repository,
    *,
    read_data: bool = False,
    subset: str | None = None,
    concurrency: int = 16,
    workers: int | None = None,
    on_progress: ProgressCallback | None = None,
    rng: random.Random | None = None,
) -> CheckResult:
    """Check the repository; ``subset`` (``n/t`` or ``P%``) implies reading data."""
    chosen_subset = Subset.parse(subset) if subset is not None else None
    clock = time.monotonic()
    result = CheckResult(
        read_data=read_data or chosen_subset is not None,
        subset=chosen_subset.text if chosen_subset else None,
    )
    with (
        tempfile.TemporaryDirectory(prefix="lakeguard-check-") as scratch,
        ThreadPoolExecutor(max(1, concurrency), thread_name_prefix="lakeguard-fetch") as pool,
    ):
        headers = _headers(repo, result, pool)
        result.snapshots = len(headers)
        paths = _manifests(repo, headers, Path(scratch) / "manifests", result, pool)
        sizes = _archive_sizes(repo)
        if not paths:
            result.unreferenced_archives = len(sizes)
            result.seconds = time.monotonic() - clock
            return result
        con = _connect(paths, Path(scratch))
        try:
            by_id = {header.id: header for header in headers if header.id in paths}
            _check_rows(con, by_id, result)
            referenced = [
                row[0]
                for row in con.execute("SELECT DISTINCT archive FROM rows ORDER BY 1").fetchall()
            ]
            result.unreferenced_archives = len(set(sizes) - set(referenced))
            chosen: set[str] | None = None
            if chosen_subset is not None:
                present = [archive for archive in referenced if archive in sizes]
                chosen = chosen_subset.select(present, rng=rng)
            elif read_data:
                chosen = set(referenced)
            checker = _Checker(
                repo, result, chosen, workers or max(2, os.cpu_count() or 2), on_progress
            )
            checker.run(_members(con, result), sizes)
            _name_damaged(con, checker.damaged, result)
        finally:
            con.close()
    result.seconds = time.monotonic() - clock
    return result

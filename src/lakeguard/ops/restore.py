"""``restore``: objects of a snapshot back into a location, each verified.

    header = repo.snapshot("latest" | id)
    rows   = manifest rows (streamed) matching --include/--exclude
    rows grouped: adjacent small members of one archive share one GET
    for each group, on a bounded pool:
        one ranged GET of archive[frame_offset : frame_offset + frame_length]
          -> zstd (frame checksums) -> tar header (member name checked)
          small members (<= 8 MiB): frames decompressed whole, SHA-256
            checked, then one PUT of the checked bytes
          large ones: data -> SHA-256 and size on the way -> target.put
            (streaming); the last chunk is only released after the SHA-256
            matched, so a bad object is never completed in the target (the
            upload is aborted)
    -> RestoreResult: restored, bytes, verified, failed[{key, error}]

Failures are per object. ``damaged`` says whether any was the repository's
fault (missing archive, bad frames, checksum mismatch): the CLI exits 3 then,
4 when only writes failed. A local target keeps every key inside the target
directory: the local store refuses keys that would escape it, and such keys
are reported as failed (a dry run reports them as failing, by the same rule).

Before anything is written:

    target overlaps the repository        -> refused (UsageError)
    a local target under a regular file   -> refused (UsageError)
    target bucket missing                 -> BucketNotFoundError (dry run too)
    existing = one listing of the target prefix (selected keys only),
               spooled to Parquet and joined with the manifest by key in
               DuckDB (the two sides list in different orders; neither is
               held in memory); an empty or missing target costs nothing more
    per selected row with a key in ``existing``:
        sizes differ                              -> different
        ETags of one shape (two MD5s, or two
        multipart ETags of one part count)        -> same iff equal
        the listing has the object's SHA-256      -> same iff it is the row's
        else                                      -> the object is read and
                                                     hashed (SHA-256)
    same      -> skipped, counted as ``unchanged`` (a re-run writes nothing)
    different -> overwritten; in a target that keeps no versions (a directory,
                 an unversioned or suspended bucket) only with ``force``, else
                 refused before the first write. A versioned bucket keeps the
                 old bytes as a noncurrent version.

A local target keeps the source's ETag (``Store.put(etag=)``), so a re-run
into a directory compares ETags and reads nothing; a file changed by another
program has no recorded ETag and is hashed.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lakeguard import cpu, duck
from lakeguard.archive.reader import (
    ArchiveDamaged,
    ArchiveReader,
    Member,
    is_member,
    read_member,
)
from lakeguard.errors import (
    AccessDeniedError,
    BucketNotFoundError,
    EndpointUnreachableError,
    LakeguardError,
    NotFoundError,
    OperationalError,
    UsageError,
)
from lakeguard.location import Location
from lakeguard.repository.manifest import KeyFilter, ManifestRow, read_numbered
from lakeguard.repository.repo import Repository, default_cache_dir
from lakeguard.storage.base import ObjectInfo, Store, read_buffer
from lakeguard.storage.pump import pump
from lakeguard.transfer.parts import adjust_part_size

ProgressCallback = Callable[[int, int], None]
# A dry run's planned object: key, size, whether it overwrites one the target holds.
PlanCallback = Callable[[str, int, bool], None]
_FATAL = (BucketNotFoundError, EndpointUnreachableError)
# Up to this size an object is checked in memory and written with one PUT.
SMALL_OBJECT = 8 * 1024 * 1024
# Large objects stream through multipart uploads that buffer a few parts each;
# two at a time keep memory bounded whatever the concurrency.
_LARGE_SLOTS = threading.BoundedSemaphore(2)
# Adjacent small members of one archive are fetched together, up to this much.
# SeaweedFS's cost follows the number of ranged GETs more than their bytes:
# reading an 84 MB archive cost its server 0.42 CPU-s in 1 MiB ranges and
# 0.12 s in 8 MiB ones (bench/backup.py), for a few MB more memory in flight.
GROUP_BYTES = 8 * 1024 * 1024
GROUP_ROWS = 512
# An S3 ETag: the MD5 of a single-part upload, or <md5>-<parts> of a multipart one.
_S3_ETAG = re.compile(r"[0-9a-f]{32}(-[0-9]+)?")


class DataMismatch(OperationalError):
    """Restored bytes differ from what the manifest recorded."""


@dataclass(slots=True)
class RestoreResult:
    snapshot_id: str
    target: str
    restored: int = 0
    bytes: int = 0
    verified: int = 0
    planned: int = 0
    planned_bytes: int = 0
    seconds: float = 0.0
    dry_run: bool = False
    damaged: int = 0  # failures that are the repository's fault
    first_damaged: tuple[str, str] | None = None  # (key, error) of the first of those
    # failed writes; in a dry run, the keys the target would refuse
    failed: list[tuple[str, str]] = field(default_factory=list)
    # dry run without an on_plan callback: what would be written (key, size,
    # whether it overwrites an object)
    keys: list[tuple[str, int, bool]] = field(default_factory=list)
    unchanged: int = 0  # already in the target with the snapshot's bytes: not written
    replaced: int = 0  # existing objects with other bytes, written over (dry run: would be)
    first_replaced: list[str] = field(default_factory=list)
    # dry run: why the real run would refuse (overwrites that need --force), else None
    refusal: str | None = None
    would_fail: int = 0  # dry run: keys the target would refuse (``failed`` keeps the first)

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "restored": self.restored,
            "bytes": self.bytes,
            "verified": self.verified,
            "failed": [{"key": key, "error": error} for key, error in self.failed],
            "unchanged": self.unchanged,
            "replaced": self.replaced,
            "first_replaced": self.first_replaced,
            "snapshot_id": self.snapshot_id,
            "target": self.target,
            "seconds": round(self.seconds, 3),
            "dry_run": self.dry_run,
        }
        if self.dry_run:
            doc["planned"] = {"objects": self.planned, "bytes": self.planned_bytes}
            doc["objects"] = [
                {"key": key, "size": size, "action": "overwrite" if over else "restore"}
                for key, size, over in self.keys
            ]
            doc["needs_force"] = self.refusal is not None
            doc["would_fail"] = self.would_fail
        return doc


@dataclass(frozen=True, slots=True)
class _Done:
    key: str
    size: int
    error: str | None = None
    damaged: bool = False
    exception: BaseException | None = None


def _check(row: ManifestRow, size: int, sha256: str) -> None:
    if size != row.size or sha256 != row.sha256:
        raise DataMismatch(
            f"restored bytes do not match the manifest's SHA-256 "
            f"(archive {row.archive} at {row.frame_offset}): run 'lakeguard check'"
        )


def _source_etag(etag: str | None) -> str | None:
    """The source's ETag, to be kept by a target that records ETags of its own.

    The bytes written are the ones the source served with that ETag (backup
    records the ETag of the same GET) and are checked by SHA-256 before the
    write completes, so a local target can keep it, a multipart
    ``<md5>-<parts>`` ETag included, instead of hashing every byte again.
    """
    return etag if etag is not None and _S3_ETAG.fullmatch(etag) else None


def restore_row(repo: Repository, row: ManifestRow, target: Store, location: Location) -> int:
    """Restore a large object, streamed from one ranged GET; returns its size.

    Raises on any mismatch.
    """
    reader = ArchiveReader(repo.store, repo.key(row.archive), name=row.archive)
    return write_member(
        row, reader.open_member(row.frame_offset, row.frame_length), target, location
    )


def _check_member(row: ManifestRow, name: str, size: int, is_dir: bool) -> None:
    if not is_member(name, is_dir, row.member):
        raise ArchiveDamaged(
            f"archive {row.archive} at {row.frame_offset} holds {name!r}, not {row.member!r}"
        )
    if size != row.size and not is_dir:
        raise ArchiveDamaged(
            f"archive {row.archive}: member {row.member!r} has {size} bytes, "
            f"manifest says {row.size}"
        )


def write_small(
    row: ManifestRow, frames: bytes | memoryview, target: Store, location: Location, where: str
) -> int:
    """Decode a small member from its frames in memory, check it, write it with one PUT."""
    member = read_member(frames, where=where)
    _check_member(row, member.name, member.size, member.is_dir)
    digest = hashlib.sha256()
    for piece in member.data:
        digest.update(piece)
    _check(row, member.size, digest.hexdigest())
    data: bytes | memoryview = member.data[0] if len(member.data) == 1 else b"".join(member.data)
    target.put(
        location.key(row.key),
        data,
        content_type=row.content_type,
        metadata=dict(row.metadata) or None,
        etag=_source_etag(row.etag),
    )
    return row.size


def write_member(row: ManifestRow, member: Member, target: Store, location: Location) -> int:
    """Check a streamed member against its row and write it to the target; returns its size."""
    _check_member(row, member.name, member.size, member.is_dir)
    key = location.key(row.key)
    metadata = dict(row.metadata) or None
    etag = _source_etag(row.etag)
    raised: list[BaseException] = []

    def body() -> Iterator[bytes]:
        digest = hashlib.sha256()
        size = 0
        held: bytes | None = None
        try:
            for chunk in member.data:
                if held is not None:
                    yield held
                digest.update(chunk)
                size += len(chunk)
                held = chunk
            _check(row, size, digest.hexdigest())
        except BaseException as exc:
            raised.append(exc)
            raise
        if held is not None:
            yield held

    try:
        with _LARGE_SLOTS:
            target.put(
                key,
                pump(body()),
                content_type=row.content_type,
                metadata=metadata,
                part_size=adjust_part_size(row.size),
                etag=etag,
            )
    except Exception as exc:
        # A store may wrap what the body raised; report the body's own error.
        if raised:
            raise raised[0] from None
        raise exc from None
    return row.size


def _run_one(repo: Repository, row: ManifestRow, target: Store, location: Location) -> _Done:
    return _done_for(row, lambda: restore_row(repo, row, target, location))


def _done_for(row: ManifestRow, run: Callable[[], int]) -> _Done:
    try:
        size = run()
    except (ArchiveDamaged, DataMismatch) as exc:
        return _Done(row.key, row.size, exc.message, damaged=True, exception=exc)
    except LakeguardError as exc:
        return _Done(row.key, row.size, exc.message, exception=exc)
    except Exception as exc:  # an unexpected library error: report it against the key
        return _Done(row.key, row.size, f"{type(exc).__name__}: {exc}", exception=exc)
    return _Done(row.key, size)


def _run_group(
    repo: Repository, rows: Sequence[ManifestRow], target: Store, location: Location
) -> list[_Done]:
    """Restore adjacent small members of one archive (or one large one) from one ranged GET."""
    if rows[0].size > SMALL_OBJECT:
        return [_run_one(repo, rows[0], target, location)]
    first, last = rows[0], rows[-1]
    start = first.frame_offset
    length = last.frame_offset + last.frame_length - start
    reader = ArchiveReader(repo.store, repo.key(first.archive), name=first.archive)
    try:
        with reader.open_range(start, length) as stream:
            blob = read_buffer(stream)
        if len(blob) > length:
            raise ArchiveDamaged(
                f"archive {first.archive}: got {len(blob)} of {length} bytes at {start}"
            )
    except Exception as exc:
        error: BaseException = exc
        failure = _done_for(first, lambda: _raise(error))
        return [
            _Done(row.key, row.size, failure.error, failure.damaged, failure.exception)
            for row in rows
        ]
    done = []
    view = memoryview(blob)
    with cpu.SLOTS:  # checking and writing is CPU work: one thread per core
        for row in rows:
            begin = row.frame_offset - start
            frames = view[begin : begin + row.frame_length]
            where = f"archive {row.archive} at {row.frame_offset}"
            if len(frames) < row.frame_length:  # a truncated archive: members before the cut
                into = start + len(blob) - row.frame_offset  # still restore
                cut = ArchiveDamaged(
                    f"{where}: the archive ends {into} bytes into the member's {row.frame_length}"
                    if into > 0
                    else f"{where}: the archive ends before this member"
                )
                done.append(_done_for(row, lambda cut=cut: _raise(cut)))  # type: ignore[misc]
                continue
            done.append(
                _done_for(
                    row,
                    lambda row=row, frames=frames, where=where: write_small(  # type: ignore[misc]
                        row, frames, target, location, where
                    ),
                )
            )
    return done


def _raise(exc: BaseException) -> int:
    raise exc


def _groups(rows: Iterable[ManifestRow]) -> Iterator[list[ManifestRow]]:
    """Rows in runs of adjacent small members of one archive (key order keeps them adjacent)."""
    group: list[ManifestRow] = []
    span = 0
    for row in rows:
        small = row.size <= SMALL_OBJECT and row.frame_length <= GROUP_BYTES
        if group:
            last = group[-1]
            adjacent = (
                small
                and row.archive == last.archive
                and row.frame_offset == last.frame_offset + last.frame_length
                and span + row.frame_length <= GROUP_BYTES
                and len(group) < GROUP_ROWS
            )
            if not adjacent:
                yield group
                group, span = [], 0
        group.append(row)
        span += row.frame_length
        if not small:
            yield group
            group, span = [], 0
    if group:
        yield group


# -- the target before the restore ------------------------------------------------


def _check_apart(repo: Repository, location: Location) -> None:
    if location.overlaps(repo.location):
        raise UsageError(
            f"{location} overlaps the repository {repo.location}: "
            "restore to a location outside the repository"
        )


def _check_local_parents(location: Location) -> None:
    """A local target under a regular file can never be created: bad input, not a failure."""
    if location.scheme != "file":
        return
    from lakeguard.storage.local import blocking_file

    path = Path(location.root) / location.prefix
    blocker = blocking_file(path)
    if blocker is not None:
        raise UsageError(f"{blocker} is not a directory: cannot restore into {path}")


def _etag_shape(etag: str) -> str | None:
    """``""`` for an MD5, ``-<parts>`` for a multipart ETag, None for anything else."""
    match = _S3_ETAG.fullmatch(etag)
    return None if match is None else match.group(1) or ""


def same_content(row: ManifestRow, info: ObjectInfo) -> bool | None:
    """Whether ``info`` holds the row's bytes; None when only reading it can tell.

    Equal ETags of one shape say "same". Two MD5s that differ say "different";
    two multipart ETags that differ say nothing (other part sizes give another
    ETag for the same bytes), nor do an MD5 and a multipart ETag.
    """
    if info.size != row.size:
        return False
    mine = row.etag.strip('"').lower() if row.etag else None
    theirs = info.etag.strip('"').lower() if info.etag else None
    if mine and theirs:
        shape = _etag_shape(mine)
        if shape is not None and shape == _etag_shape(theirs):
            if mine == theirs:
                return True
            if shape == "":  # two MD5s of the whole object: they differ, the bytes do
                return False
            # two multipart ETags of one part count: other part sizes give other
            # ETags for the same bytes, so they settle nothing

    if info.checksum_sha256:
        return info.checksum_sha256.lower() == row.sha256
    return None


# -- comparing with what the target holds -------------------------------------------
#
# Manifests are in byte order of keys (those of earlier versions may be in the
# source's listing order), and stores list in orders of their own (SeaweedFS
# puts "a/b" before "a-b", S3 puts it after), so the two sides are joined by
# key in DuckDB, which spills to disk: neither side is held in memory, whatever
# their size.

_BATCH = 10_000


def _quote(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _write_target(target: Store, location: Location, key_filter: KeyFilter, path: Path) -> int:
    """The target's current objects among the selected keys, as Parquet; how many."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema(
        [
            ("key", pa.string()),
            ("size", pa.int64()),
            ("etag", pa.string()),
            ("checksum_sha256", pa.string()),
        ]
    )
    prefix = location.prefix
    count = 0
    columns: dict[str, list[Any]] = {name: [] for name in schema.names}
    with pq.ParquetWriter(path, schema) as writer:

        def flush() -> None:
            if columns["key"]:
                writer.write_table(pa.table(columns, schema=schema))
                for values in columns.values():
                    values.clear()

        for info in target.list(prefix):
            if info.is_delete_marker or not info.key.startswith(prefix):
                continue
            relative = info.key[len(prefix) :]
            if not (key_filter.selects_all or key_filter.matches(relative)):
                continue
            if not relative.isascii():
                try:  # a local name that is not UTF-8 (held as surrogates): no manifest
                    relative.encode("utf-8")  # key can name it, and Parquet cannot hold it
                except UnicodeEncodeError:
                    continue
            columns["key"].append(relative)
            columns["size"].append(info.size)
            columns["etag"].append(info.etag)
            columns["checksum_sha256"].append(info.checksum_sha256)
            count += 1
            if len(columns["key"]) >= _BATCH:
                flush()
        flush()
    return count


def _pairs(manifest: Path, listed: Path, scratch: Path) -> Iterator[tuple[ManifestRow, ObjectInfo]]:
    """Rows whose key the target holds, with what it holds (a join by key, any order)."""
    con = duck.connect(scratch / "spill")
    try:
        reader = con.sql(
            "SELECT m.key, m.size, m.etag, m.sha256, t.size, t.etag, t.checksum_sha256 "
            f"FROM read_parquet({_quote(manifest)}) m "
            f"JOIN read_parquet({_quote(listed)}) t ON m.key = t.key"
        ).to_arrow_reader(_BATCH)
        for batch in reader:
            for key, size, etag, sha256, t_size, t_etag, t_sum in zip(
                *(column.to_pylist() for column in batch.columns), strict=True
            ):
                row = ManifestRow(
                    key=key,
                    size=size,
                    sha256=sha256,
                    archive="",
                    member=key,
                    frame_offset=0,
                    frame_length=0,
                    etag=etag,
                )
                yield row, ObjectInfo(key=key, size=t_size, etag=t_etag, checksum_sha256=t_sum)
    finally:
        con.close()


def _verdicts(
    pairs: Iterable[tuple[ManifestRow, ObjectInfo]],
    target: Store,
    location: Location,
    concurrency: int,
) -> Iterator[tuple[str, bool]]:
    """(key, same) per existing object; undecided ones read and hashed on a pool."""
    from lakeguard.ops.sync import bounded_map, sha256_of

    def hashed(item: tuple[str, str]) -> tuple[str, bool | None]:
        key, sha256 = item
        try:
            return key, sha256_of(target, location.key(key)) == sha256
        except NotFoundError:
            return key, None  # gone since listed: a new object

    unsure: list[tuple[str, str]] = []
    with ThreadPoolExecutor(max(1, concurrency), thread_name_prefix="restore-compare") as pool:

        def hash_some() -> Iterator[tuple[str, bool]]:
            for key, same in bounded_map(pool, unsure, hashed, window=2 * concurrency):
                if same is not None:
                    yield key, same
            unsure.clear()

        for row, info in pairs:
            verdict = same_content(row, info)
            if verdict is not None:
                yield row.key, verdict
                continue
            unsure.append((row.key, row.sha256))
            if len(unsure) >= _BATCH:
                yield from hash_some()
        yield from hash_some()


class _Verdicts:
    """The verdicts of the first pass, spooled to Parquet (the first pass must end
    before anything is written: overwrites may need --force)."""

    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch
        self.path = scratch / "verdicts.parquet"
        self.count = 0

    def write(self, verdicts: Iterable[tuple[str, bool]], result: RestoreResult) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = pa.schema([("key", pa.string()), ("same", pa.bool_())])
        keys: list[str] = []
        sames: list[bool] = []
        replaced: list[str] = []
        with pq.ParquetWriter(self.path, schema) as writer:
            for key, same in verdicts:
                keys.append(key)
                sames.append(same)
                self.count += 1
                if not same:
                    result.replaced += 1
                    replaced.append(key)
                    if len(replaced) > 100:
                        replaced = sorted(replaced)[:10]
                if len(keys) >= _BATCH:
                    writer.write_table(pa.table({"key": keys, "same": sames}, schema=schema))
                    keys, sames = [], []
            if keys:
                writer.write_table(pa.table({"key": keys, "same": sames}, schema=schema))
        result.first_replaced = sorted(replaced)[:10]

    def by_row(self, manifest: Path) -> Iterator[tuple[int, bool]]:
        """(row number in the manifest, same) for every key with a verdict, in row order."""
        if not self.count:
            return
        con = duck.connect(self.scratch / "spill")
        try:
            reader = con.sql(
                "SELECT m.file_row_number, v.same "
                f"FROM read_parquet({_quote(manifest)}, file_row_number = true) m "
                f"JOIN read_parquet({_quote(self.path)}) v ON m.key = v.key "
                "ORDER BY m.file_row_number"
            ).to_arrow_reader(_BATCH)
            for batch in reader:
                yield from zip(*(column.to_pylist() for column in batch.columns), strict=True)
        finally:
            con.close()


def _marked(
    manifest: Path,
    key_filter: KeyFilter,
    verdicts: Iterator[tuple[int, bool]],
    result: RestoreResult,
) -> Iterator[tuple[ManifestRow, bool]]:
    """(row, overwrites) for each selected row to write, in manifest order; rows the
    target holds already are counted as unchanged."""
    pending = next(verdicts, None)
    selected = None if key_filter.selects_all else key_filter
    for number, row in read_numbered(manifest, key_filter=selected):
        while pending is not None and pending[0] < number:
            pending = next(verdicts, None)
        if pending is not None and pending[0] == number:
            if pending[1]:
                result.unchanged += 1
                continue
            yield row, True
        else:
            yield row, False


def _refusal(
    target: Store, location: Location, result: RestoreResult, *, force: bool
) -> str | None:
    """Why the restore may not overwrite what it would, or None when it may."""
    if force or not result.replaced or target.versioning() == "Enabled":
        return None
    count = result.replaced
    return (
        f"{location} keeps no versions: restore would overwrite {count:,} "
        f"{'objects that differ' if count != 1 else 'object that differs'} from the snapshot "
        "for good "
        f"(first: {result.first_replaced[0]}); "
        + (
            "add --force"
            if location.scheme == "file"
            else "enable versioning on it, or add --force"
        )
    )


def restore(
    repo: Repository,
    snapshot: str,
    target: Store,
    location: Location,
    *,
    includes: Sequence[str] = (),
    excludes: Sequence[str] = (),
    dry_run: bool = False,
    force: bool = False,
    concurrency: int = 16,
    cache_dir: Path | None = None,
    on_progress: ProgressCallback | None = None,
    keep_failures: int = 1000,
    on_plan: PlanCallback | None = None,
    source: str | None = None,
) -> RestoreResult:
    """Restore the objects of ``snapshot`` matching the globs into ``location``.

    Objects the target already holds are skipped; overwriting others in a
    target without versions needs ``force`` (see the module docstring). A dry
    run hands each object it would write to ``on_plan`` as it is planned (a
    snapshot of millions of objects is never held), else collects them in
    ``result.keys``. Either way at most ``keep_failures`` failures are kept.
    With ``source`` (a snapshot header's source URL), ``latest`` is that
    source's newest snapshot and an id must be one of its snapshots.
    """
    from lakeguard.ops.sync import object_not_folder, prepare_destination

    _check_apart(repo, location)
    _check_local_parents(location)
    key_filter = KeyFilter.of(includes, excludes)
    clock = time.monotonic()
    header = repo.snapshot(snapshot, source=source)
    result = RestoreResult(snapshot_id=header.id, target=str(location), dry_run=dry_run)
    cache = (cache_dir or default_cache_dir(repo)) / "manifests"
    manifest = repo.fetch_manifest(header, cache)
    exists = prepare_destination(target, scheme=location.scheme, dry_run=dry_run)
    with tempfile.TemporaryDirectory(prefix="lakeguard-restore-") as scratch_dir:
        scratch = Path(scratch_dir)
        verdicts = _Verdicts(scratch)
        listed = scratch / "target.parquet"
        held = _write_target(target, location, key_filter, listed) if exists else 0
        if exists and not held and location.scheme != "file":
            # A prefix naming an object: writing under "key/" beside it is never meant.
            object_not_folder(target, location, "restore", "give a folder as --to")
        if held:
            pairs = _pairs(manifest, listed, scratch)
            verdicts.write(_verdicts(pairs, target, location, concurrency), result)
            refusal = _refusal(target, location, result, force=force)
            if refusal is not None and not dry_run:
                raise UsageError(refusal)
            result.refusal = refusal
        rows = _marked(manifest, key_filter, verdicts.by_row(manifest), result)
        if dry_run:
            _plan(rows, location, result, on_plan, keep_failures)
        else:
            result.replaced = 0  # counted again as written
            _restore_rows(
                repo, rows, target, location, result, concurrency, on_progress, keep_failures
            )
    result.seconds = time.monotonic() - clock
    return result


def _plan(
    rows: Iterable[tuple[ManifestRow, bool]],
    location: Location,
    result: RestoreResult,
    on_plan: PlanCallback | None,
    keep_failures: int,
) -> None:
    """A dry run: what would be written, and the keys a local target would refuse
    (their shape, or what is in their way on disk: see ``WriteForecast``)."""
    from lakeguard.storage.local import WriteForecast

    forecast = WriteForecast(Path(location.root)) if location.scheme == "file" else None
    for row, overwrites in rows:
        if forecast is not None:
            why = forecast.obstacle(location.key(row.key))
            if why is not None:
                result.would_fail += 1
                if len(result.failed) < keep_failures:
                    result.failed.append((row.key, why))
                continue
        result.planned += 1
        result.planned_bytes += row.size
        if on_plan is not None:
            on_plan(row.key, row.size, overwrites)
        else:
            result.keys.append((row.key, row.size, overwrites))


def _restore_rows(
    repo: Repository,
    marked: Iterable[tuple[ManifestRow, bool]],
    target: Store,
    location: Location,
    result: RestoreResult,
    concurrency: int,
    on_progress: ProgressCallback | None,
    keep_failures: int,
) -> None:
    failures = 0
    overwriting: set[str] = set()  # keys in flight that overwrite an object

    def rows() -> Iterator[ManifestRow]:
        for row, overwrites in marked:
            if overwrites:
                overwriting.add(row.key)
            yield row

    def record(done: _Done) -> None:
        nonlocal failures
        overwrote = done.key in overwriting
        overwriting.discard(done.key)
        if done.error is None:
            result.restored += 1
            result.verified += 1
            result.bytes += done.size
            result.replaced += overwrote
            if on_progress is not None:
                on_progress(1, done.size)
            return
        failures += 1
        result.damaged += done.damaged
        if done.damaged and result.first_damaged is None:
            result.first_damaged = (done.key, done.error)
        if len(result.failed) < keep_failures:
            result.failed.append((done.key, done.error))
        exc = done.exception
        if isinstance(exc, _FATAL) or (isinstance(exc, AccessDeniedError) and not result.restored):
            raise exc

    with ThreadPoolExecutor(concurrency, thread_name_prefix="lakeguard-restore") as pool:
        pending: set[Future[list[_Done]]] = set()
        try:
            for group in _groups(rows()):
                result.planned += len(group)
                result.planned_bytes += sum(row.size for row in group)
                if len(pending) >= 2 * concurrency:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        for item in future.result():
                            record(item)
                pending.add(pool.submit(_run_group, repo, group, target, location))
            for future in pending:
                for item in future.result():
                    record(item)
        except BaseException:
            for future in pending:
                future.cancel()
            raise

"""Sync: restore from a replica by copying what is missing or different.

    take_inventory(SRC) -> src.parquet        (or, for pitr --to, the targets at T)
    take_inventory(DST) -> dst.parquet
    DuckDB: FULL OUTER JOIN on the key relative to each location (spills to disk)
        only in SRC                        -> copy
        sizes differ                       -> copy
        ETags comparable (both MD5s, or
        multipart with one part count)     -> equal: unchanged, else copy
        --checksum, or ETags not comparable
        (an MD5 against a multipart ETag,
        e.g. S3 against a local directory) -> check: SHA-256 of both (the store's
                                              checksum when it keeps one, else read)
        only in DST                        -> delete with --delete (sync), else left
        SRC says "absent" (pitr --to)      -> delete with --delete-newer, else left
    -> plan file (JSONL, see pitr_plan) -> apply:
        copies: transfer.copy_objects (server-side on one endpoint, else streamed;
                each copy checked against the source's ETag and size)
        deletes: a thread pool (a delete marker in a versioned bucket)

A join rather than a merge of two sorted listings: stores disagree on key
order (SeaweedFS lists a folder's keys before a sibling ``a-b``).

Replacing or deleting objects in a DST without versioning destroys them for
good: that needs ``force`` (a dry run says so, and why). Copying what is
missing never does.

A location is a folder: ``s3://b/a`` lists ``a/``. When that lists nothing
and an object ``a`` exists, the command is refused rather than run on an
empty folder (an empty SRC with ``--delete`` would empty DST).
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from lakeguard import duck
from lakeguard.errors import (
    BucketNotFoundError,
    EndpointUnreachableError,
    LakeguardError,
    NotFoundError,
    UsageError,
)
from lakeguard.location import Location
from lakeguard.ops.pitr_plan import (
    COPY,
    DELETE,
    Action,
    Before,
    PlanSummary,
    PlanWriter,
    read_plan,
)
from lakeguard.ops.report import Capped, human_bytes
from lakeguard.storage.base import ObjectInfo, Store
from lakeguard.storage.local import not_a_directory

if TYPE_CHECKING:
    import pyarrow as pa

ProgressCallback = Callable[[int, int], None]
T = TypeVar("T")
R = TypeVar("R")
FAILURES_KEPT = 1000
ROWS_PER_BATCH = 50_000


# -- small shared pieces ---------------------------------------------------------


def bounded_map(
    pool: ThreadPoolExecutor,
    items: Iterable[T],
    work: Callable[[T], R],
    *,
    window: int,
) -> Iterator[R]:
    """``work`` over ``items`` on ``pool``, at most ``window`` in flight; results as they finish."""
    pending: set[Future[R]] = set()
    try:
        for item in items:
            if len(pending) >= window:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield future.result()
            pending.add(pool.submit(work, item))
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                yield future.result()
    finally:
        for future in pending:
            future.cancel()


def aborts_run(exc: BaseException) -> bool:
    """Errors about the whole run, not one key: stop instead of failing every key."""
    return isinstance(exc, BucketNotFoundError | EndpointUnreachableError)


def describe(exc: BaseException) -> str:
    if isinstance(exc, LakeguardError):
        return exc.message.splitlines()[0] if exc.message else type(exc).__name__
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@dataclass(slots=True)
class Outcome:
    """What applying a plan did: counts per action, failures, verification."""

    applied: dict[str, int] = field(default_factory=dict)
    already: int = 0  # found done when re-checked (a re-run, or a concurrent writer)
    bytes_copied: int = 0
    failed: Capped[tuple[str, str]] = field(default_factory=lambda: Capped(FAILURES_KEPT))
    verified_ok: int = 0
    verified_failed: int = 0
    unverifiable: int = 0  # copied, but nothing comparable came back to check against

    def count(self, action: str) -> None:
        self.applied[action] = self.applied.get(action, 0) + 1

    def fail(self, key: str, error: str) -> None:
        self.failed.append((key, error))

    def failed_json(self) -> list[dict[str, str]]:
        return [{"key": key, "error": error} for key, error in self.failed.items]


# -- writing the source side of a diff ---------------------------------------------


def _row_schema() -> pa.Schema:
    import pyarrow as pa

    return pa.schema(
        [
            pa.field("key", pa.string(), nullable=False),
            pa.field("size", pa.int64()),
            pa.field("etag", pa.string()),
            pa.field("version_id", pa.string()),
            pa.field("is_delete_marker", pa.bool_()),
            pa.field("checksum_sha256", pa.string()),
            pa.field("storage_class", pa.string()),
        ]
    )


def write_rows(path: Path, rows: Iterable[ObjectInfo]) -> int:
    """Write objects as Parquet rows a diff reads (a delete marker: "should not exist")."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = _row_schema()
    columns: dict[str, list[Any]] = {name: [] for name in schema.names}
    written = 0

    def flush(writer: pq.ParquetWriter) -> None:
        arrays = [pa.array(columns[f.name], type=f.type) for f in schema]
        writer.write_batch(pa.RecordBatch.from_arrays(arrays, schema=schema))
        for values in columns.values():
            values.clear()

    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        for info in rows:
            columns["key"].append(info.key)
            columns["size"].append(info.size)
            columns["etag"].append(info.etag)
            columns["version_id"].append(info.version_id)
            columns["is_delete_marker"].append(info.is_delete_marker)
            columns["checksum_sha256"].append(info.checksum_sha256)
            columns["storage_class"].append(info.storage_class)
            written += 1
            if len(columns["key"]) >= ROWS_PER_BATCH:
                flush(writer)
        flush(writer)
    return written


# -- the diff ----------------------------------------------------------------------


def _text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _side_sql(path: Path, prefix: str, columns: set[str], *, source: bool) -> str:
    rel = f"substr(key, {len(prefix) + 1})" if prefix else "key"
    latest = "coalesce(is_latest, true)" if "is_latest" in columns else "true"
    marker = "coalesce(is_delete_marker, false)" if "is_delete_marker" in columns else "false"
    sha = "lower(checksum_sha256)" if "checksum_sha256" in columns else "NULL::VARCHAR"
    version = "version_id" if "version_id" in columns else "NULL::VARCHAR"
    sclass = "storage_class" if "storage_class" in columns else "NULL::VARCHAR"
    where = f"starts_with(key, {_text(prefix)}) AND {latest}"
    if source:
        present = f"NOT {marker}"
    else:
        where += f" AND NOT {marker}"
        present = "true"
    return (
        f"SELECT {rel} AS rel, key, size::BIGINT AS size, lower(trim(etag, '\"')) AS etag,"
        f" {version}::VARCHAR AS version_id, {sha}::VARCHAR AS sha, {present} AS present,"
        f" {sclass}::VARCHAR AS sclass"
        f" FROM read_parquet({_text(str(path))}) WHERE {where}"
    )


# Equal ETags of one shape (two MD5s, or two multipart ETags of one part
# count) say "same"; two MD5s that differ say "different". Two multipart ETags
# that differ say nothing: other part sizes give another ETag for the same
# bytes (restore.same_content applies the same rule).
_MD5S = """(s.etag IS NOT NULL AND d.etag IS NOT NULL
    AND NOT contains(s.etag, '-') AND NOT contains(d.etag, '-')
    AND length(s.etag) = 32 AND length(d.etag) = 32)"""
_COMPARABLE = f"""({_MD5S} OR (s.etag IS NOT NULL AND d.etag IS NOT NULL
    AND contains(s.etag, '-') AND contains(d.etag, '-')
    AND split_part(s.etag, '-', 2) = split_part(d.etag, '-', 2)))"""

_DIFF = """
CREATE TEMP TABLE diff AS
SELECT s.key AS skey, s.size AS ssize, s.etag AS setag, s.version_id AS sversion,
       d.key AS dkey, d.size AS dsize, d.etag AS detag, s.sclass AS sclass,
  CASE
    WHEN s.rel IS NULL THEN 'extra'
    WHEN NOT s.present THEN (CASE WHEN d.rel IS NULL THEN 'same' ELSE 'absent' END)
    WHEN d.rel IS NULL THEN 'copy'
    WHEN s.size IS DISTINCT FROM d.size THEN 'copy'
    WHEN {md5s} AND s.etag <> d.etag THEN 'copy'
    WHEN {checksum} THEN 'check'
    WHEN {comparable} AND s.etag = d.etag THEN 'same'
    WHEN s.sha IS NOT NULL AND d.sha IS NOT NULL THEN
        (CASE WHEN s.sha = d.sha THEN 'same' ELSE 'copy' END)
    ELSE 'check'
  END AS status
FROM ({src}) AS s FULL OUTER JOIN ({dst}) AS d ON s.rel = d.rel
"""


@dataclass(frozen=True, slots=True)
class _Row:
    status: str
    skey: str | None
    ssize: int
    setag: str | None
    sversion: str | None
    dkey: str | None
    dsize: int | None
    detag: str | None
    sclass: str | None


def sha256_of(store: Store, key: str, version_id: str | None = None) -> str:
    """The SHA-256 of an object: the store's checksum when it keeps one, else read."""
    if store.capabilities.checksums:
        info = store.head(key, version_id=version_id)
        if info.checksum_sha256:
            return info.checksum_sha256.lower()
    digest = hashlib.sha256()
    with store.get(key, version_id=version_id) as stream:
        for chunk in stream:
            digest.update(chunk)
    return digest.hexdigest()


def _same_bytes(src: Store, dst: Store, row: _Row) -> bool:
    assert row.skey is not None and row.dkey is not None
    try:
        return sha256_of(src, row.skey, row.sversion) == sha256_of(dst, row.dkey)
    except NotFoundError:
        return False  # changed since listed: copying re-checks it


@dataclass(slots=True)
class DiffSummary:
    plan: PlanSummary
    replaced: int = 0  # copies over an existing object
    checked: int = 0  # pairs compared by SHA-256


def diff(
    src: Store,
    src_rows: Path,
    src_location: Location,
    dst: Store,
    dst_rows: Path,
    dst_location: Location,
    writer: PlanWriter,
    *,
    checksum: bool = False,
    delete_extra: bool = False,
    delete_absent: bool = False,
    concurrency: int = 16,
    scratch: Path,
) -> DiffSummary:
    """Compare the two sides and write the copies and deletes to ``writer``."""
    import pyarrow.parquet as pq

    src_columns = set(pq.read_schema(src_rows).names)
    dst_columns = set(pq.read_schema(dst_rows).names)
    result = DiffSummary(writer.summary)
    con = duck.connect(scratch / "spill")
    try:
        con.execute(
            _DIFF.format(
                comparable=_COMPARABLE,
                md5s=_MD5S,
                checksum="true" if checksum else "false",
                src=_side_sql(src_rows, src_location.prefix, src_columns, source=True),
                dst=_side_sql(dst_rows, dst_location.prefix, dst_columns, source=False),
            )
        )
        equal = con.execute("SELECT count(*) FROM diff WHERE status = 'same'").fetchall()[0]
        result.plan.unchanged += int(equal[0]) if equal else 0
        wanted = ["copy", "check"]
        if delete_extra:
            wanted.append("extra")
        if delete_absent:
            wanted.append("absent")
        rows = con.sql(
            "SELECT status, skey, ssize, setag, sversion, dkey, dsize, detag, sclass FROM diff"
            f" WHERE status IN ({', '.join(_text(w) for w in wanted)})"
            " ORDER BY coalesce(dkey, skey)"  # a plan file in key order reads better
        )
        to_reader = getattr(rows, "to_arrow_reader", None) or rows.fetch_arrow_reader
        reader = to_reader(10_000)

        def stream() -> Iterator[_Row]:
            for batch in reader:
                columns = [batch.column(i).to_pylist() for i in range(batch.num_columns)]
                for values in zip(*columns, strict=True):
                    yield _Row(*values)

        with ThreadPoolExecutor(max(1, concurrency), thread_name_prefix="sync-check") as pool:

            def settle(row: _Row) -> tuple[_Row, bool]:
                return row, row.status == "check" and _same_bytes(src, dst, row)

            for row, same in bounded_map(pool, stream(), settle, window=2 * concurrency):
                if row.status == "check":
                    result.checked += 1
                if same:
                    result.plan.unchanged += 1
                    continue
                writer.write(_action(row, src_location, dst_location))
                if row.status in ("copy", "check") and row.dkey is not None:
                    result.replaced += 1
    finally:
        con.close()
    return result


def _action(row: _Row, src_location: Location, dst_location: Location) -> Action:
    if row.status in ("extra", "absent"):
        assert row.dkey is not None
        return Action(DELETE, row.dkey, before=Before(etag=row.detag, size=row.dsize))
    assert row.skey is not None
    key = row.dkey or dst_location.key(src_location.relative(row.skey))
    before = Before(etag=row.detag, size=row.dsize) if row.dkey is not None else None
    return Action(
        COPY,
        key,
        source=row.skey,
        version_id=row.sversion,
        size=int(row.ssize or 0),
        etag=row.setag,
        before=before,
        storage_class=row.sclass,
    )


def _emptying(src: Location, dst: Location, listed: int, deletes: int) -> str | None:
    """Why --delete from an empty SRC needs --force: it would delete all of DST.

    A misspelled or not yet written SRC lists nothing, and deleting every
    object of a replica is never what that run meant, versioned DST or not.
    """
    if listed or not deletes:
        return None
    what = "the 1 object" if deletes == 1 else f"all {deletes:,} objects"
    return f"{src} holds no objects: --delete would delete {what} of {dst}"


# -- applying copies and deletes between two stores ---------------------------------


def force_reason(dst: Store, summary: DiffSummary, *, what: str) -> str | None:
    """Why applying the plan needs ``--force``: it replaces or deletes objects for good.

    None when it does not (nothing replaced or deleted, or DST keeps versions).
    """
    deletes = summary.plan.counts[DELETE]
    if summary.replaced == 0 and deletes == 0:
        return None
    if dst.versioning() == "Enabled":
        return None
    return (
        f"{dst.url} keeps no versions: {what} would replace {summary.replaced:,} and delete "
        f"{deletes:,} objects for good"
    )


def require_force(dst: Store, summary: DiffSummary, *, force: bool, what: str) -> None:
    """Refuse to replace or delete objects for good in a DST that keeps no versions."""
    reason = None if force else force_reason(dst, summary, what=what)
    if reason is not None:
        raise UsageError(f"{reason}; enable versioning on it, or add --force")


def apply_hint(*, actions: int, force_needed: str | None, blocked: str | None = None) -> list[str]:
    """The dry run's last line: the command that applies the plan, and what it needs."""
    if not actions:
        return []
    if blocked is not None:
        return [f"To apply it: {blocked}"]
    if force_needed is not None:
        return [
            "To apply it: the same command without --dry-run and with --force "
            f"({force_needed}; or enable versioning on it first)"
        ]
    return ["To apply it: the same command without --dry-run"]


def apply_copies(
    src: Store,
    dst: Store,
    actions: Iterable[Action],
    *,
    concurrency: int = 16,
    on_progress: ProgressCallback | None = None,
) -> Outcome:
    """Run the copy actions (taken as they come); each copy is checked as it is written."""
    from lakeguard.transfer import ChecksumMismatch, CopyItem, ItemResult, copy_objects

    outcome = Outcome()

    def copied(item: ItemResult) -> None:
        if item.ok:
            outcome.count(COPY)
            outcome.bytes_copied += item.bytes
            if item.verified:
                outcome.verified_ok += 1
            else:
                outcome.unverifiable += 1
            return
        outcome.fail(item.dst_key, item.error or "copy failed")
        if isinstance(item.exception, ChecksumMismatch):
            outcome.verified_failed += 1

    items = (
        CopyItem(
            a.source_key,
            a.key,
            size=a.size,
            src_version_id=a.version_id,
            etag=a.etag,
            storage_class=a.storage_class,
        )
        for a in actions
    )
    copy_objects(
        src,
        dst,
        items,
        concurrency=concurrency,
        on_item=copied,
        on_progress=on_progress or (lambda objects, nbytes: None),
        keep_failures=FAILURES_KEPT,
    )
    return outcome


def apply_transfer(
    src: Store,
    dst: Store,
    plan_path: Path,
    *,
    concurrency: int = 16,
    on_progress: ProgressCallback | None = None,
) -> Outcome:
    """Copy and delete as the plan says; each copy is checked as it is written."""
    outcome = apply_copies(
        src,
        dst,
        read_plan(plan_path, only=[COPY]),
        concurrency=concurrency,
        on_progress=on_progress,
    )
    progress = on_progress or (lambda objects, nbytes: None)

    def remove(action: Action) -> tuple[Action, BaseException | None]:
        try:
            dst.delete(action.key)
        except NotFoundError:
            pass  # already gone
        except Exception as exc:
            return action, exc
        return action, None

    with ThreadPoolExecutor(max(1, concurrency), thread_name_prefix="sync-delete") as pool:
        deletes = read_plan(plan_path, only=[DELETE])
        for action, error in bounded_map(pool, deletes, remove, window=2 * concurrency):
            if error is not None:
                if aborts_run(error):
                    raise error
                outcome.fail(action.key, describe(error))
            else:
                outcome.count(DELETE)
            progress(1, 0)
    return outcome


# -- sync ----------------------------------------------------------------------------


@dataclass(slots=True)
class SyncResult:
    source: str
    destination: str
    dry_run: bool
    checksum: bool
    delete: bool
    plan: PlanSummary
    replaced: int = 0
    checked: int = 0
    outcome: Outcome = field(default_factory=Outcome)
    plan_file: str | None = None
    force_needed: str | None = None  # a dry run: why applying it needs --force
    emptying: str | None = None  # --delete from an empty SRC: why it needs --force
    # a dry run into a directory: copies a real run would fail, and why
    would_fail: Capped[tuple[str, str]] = field(default_factory=Capped)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.outcome.failed.count == 0

    def to_json(self) -> dict[str, Any]:
        applied = self.outcome.applied
        return {
            "plan": {
                "copy": self.plan.counts[COPY],
                "delete": self.plan.counts[DELETE],
                "unchanged": self.plan.unchanged,
                "bytes_to_copy": self.plan.bytes_to_copy,
            },
            "applied": {"copy": applied.get(COPY, 0), "delete": applied.get(DELETE, 0)},
            "failed": self.outcome.failed_json(),
            "verified": {"ok": self.outcome.verified_ok, "failed": self.outcome.verified_failed},
            "failed_total": self.outcome.failed.count,  # "failed" keeps the first 1,000
            "dry_run": self.dry_run,
            "source": self.source,
            "destination": self.destination,
            "checksum": self.checksum,
            "replaced": self.replaced,
            "compared_by_sha256": self.checked,
            "bytes_copied": self.outcome.bytes_copied,
            "unverifiable": self.outcome.unverifiable,
            "first_keys": {COPY: self.plan.first[COPY], DELETE: self.plan.first[DELETE]},
            "plan_file": self.plan_file,
            "force_needed": self.force_needed,
            "would_fail": [{"key": key, "error": error} for key, error in self.would_fail.items],
            "would_fail_total": self.would_fail.count,  # "would_fail" keeps the first 1,000
            "seconds": round(self.seconds, 3),
        }

    def lines(self) -> list[str]:
        head = f"sync {self.source} -> {self.destination}"
        out = [head + (" (dry run: nothing changed)" if self.dry_run else "")]
        out.append(
            f"Plan: copy {self.plan.counts[COPY]:,} ({human_bytes(self.plan.bytes_to_copy)}), "
            f"delete {self.plan.counts[DELETE]:,}, unchanged {self.plan.unchanged:,}"
        )
        if self.checked:
            out.append(f"Compared by SHA-256: {self.checked:,}")
        for action in (COPY, DELETE):
            out.extend(key_lines(action, self.plan.first[action], self.plan.counts[action]))
        if self.dry_run:
            out.extend(would_fail_lines(self.would_fail))
            if self.emptying is not None:
                out.append(
                    f"To apply it: check SRC first ({self.emptying}); if that is meant, "
                    "the same command without --dry-run and with --force"
                )
                return out
            out.extend(apply_hint(actions=self.plan.actions, force_needed=self.force_needed))
            return out
        applied = self.outcome.applied
        out.append(
            f"Applied: copy {applied.get(COPY, 0):,} "
            f"({human_bytes(self.outcome.bytes_copied)}), delete {applied.get(DELETE, 0):,}"
        )
        out.append(
            f"Verified: {self.outcome.verified_ok:,} ok, {self.outcome.verified_failed:,} failed"
            + (
                f", {self.outcome.unverifiable:,} not verifiable"
                if self.outcome.unverifiable
                else ""
            )
        )
        out.extend(failed_lines(self.outcome))
        return out


def key_lines(title: str, keys: list[str], count: int) -> list[str]:
    """``title (count):`` and the first keys, one a line."""
    if not count:
        return []
    out = [f"  {title} ({count:,}):"]
    out.extend(f"    {key}" for key in keys)
    if count > len(keys):
        out.append(f"    ... and {count - len(keys):,} more")
    return out


def would_fail_lines(would_fail: Capped[tuple[str, str]]) -> list[str]:
    """A dry run's copies that a directory would refuse, the first 50 of them."""
    if not would_fail.count:
        return []
    out = [f"Would fail ({would_fail.count:,}): these keys cannot be files there"]
    out.extend(f"  {key}: {error}" for key, error in would_fail.items[:50])
    if would_fail.count > 50:
        out.append(f"  ... and {would_fail.count - 50:,} more (--json lists them)")
    return out


def forecast_failures(plan_path: Path, location: Location) -> Capped[tuple[str, str]]:
    """The copies of a plan that a directory at ``location`` would refuse, and why:
    a key's shape, or what is in its way on disk (``WriteForecast``)."""
    from lakeguard.storage.local import WriteForecast

    forecast = WriteForecast(Path(location.root))
    refused: Capped[tuple[str, str]] = Capped()
    for action in read_plan(plan_path, only=(COPY,)):
        why = forecast.obstacle(action.key)
        if why is not None:
            refused.append((action.key, why))
    return refused


def failed_lines(outcome: Outcome) -> list[str]:
    if not outcome.failed.count:
        return []
    out = [f"Failed ({outcome.failed.count:,}):"]
    out.extend(f"  {key}: {error}" for key, error in outcome.failed.items[:50])
    if outcome.failed.count > 50:
        out.append(f"  ... and {outcome.failed.count - 50:,} more (--json lists them)")
    return out


def prepare_destination(dst: Store, *, scheme: str, dry_run: bool) -> bool:
    """Whether DST exists; a local directory is created (not in a dry run)."""
    if dst.exists():
        return True
    if scheme == "file":
        in_the_way = not_a_directory(Path(dst.url), "the destination")
        if in_the_way is not None:
            raise in_the_way
        if dry_run:
            return False
        dst.create()
        return True
    raise BucketNotFoundError(
        f"the destination {dst.url} does not exist: create it first", op="sync"
    )


def require_source(src: Store, location: Location, command: str) -> None:
    """Refuse a source that does not exist, or is a file rather than a directory."""
    if src.exists():
        return
    if location.scheme == "file":
        in_the_way = not_a_directory(Path(location.root), "the source")
        if in_the_way is not None:
            raise in_the_way
    raise BucketNotFoundError(f"the source {src.url} does not exist", op=command)


def object_not_folder(store: Store, location: Location, command: str, hint: str) -> None:
    """Refuse a location that names one object: its folder ``key/`` listed empty.

    Called only after an empty listing: one HEAD of the bare key.
    """
    bare = location.prefix.rstrip("/")
    if not bare:
        return
    try:
        store.head(bare)
    except NotFoundError:
        return
    refuse_object(location, command, hint)


def refuse_object(location: Location, command: str, hint: str) -> None:
    """Raise: ``location`` (a bucket's prefix) names one object, not a folder.

    ``hint`` may name ``{folder}``, the location of the folder that holds the object.
    """
    bare = location.prefix.rstrip("/")
    folder = Location(location.scheme, location.root, _folder_of(bare))
    raise UsageError(
        f"{location.scheme}://{location.root}/{bare} is an object, not a folder: {command} "
        f"takes a folder and acts on every key under it; {hint.format(folder=folder)}"
    )


def _folder_of(key: str) -> str:
    parent = key.rpartition("/")[0]
    return f"{parent}/" if parent else ""


def empty_rows(path: Path) -> Path:
    write_rows(path, ())
    return path


def sync(
    src: Store,
    src_location: Location,
    dst: Store,
    dst_location: Location,
    *,
    dry_run: bool = False,
    delete: bool = False,
    checksum: bool = False,
    force: bool = False,
    concurrency: int = 16,
    plan_out: Path | None = None,
    on_progress: ProgressCallback | None = None,
) -> SyncResult:
    """Make DST hold what SRC holds: copy what is missing or different (see module doc)."""
    from lakeguard.ops.inventory import take_inventory

    if src_location.overlaps(dst_location):
        raise UsageError(
            f"{src_location} and {dst_location} overlap: sync needs two separate locations"
        )
    started = time.monotonic()
    require_source(src, src_location, "sync")
    with tempfile.TemporaryDirectory(prefix="lakeguard-sync-") as scratch_dir:
        scratch = Path(scratch_dir)
        src_rows = scratch / "src.parquet"
        dst_rows = scratch / "dst.parquet"
        listed = take_inventory(src, src_location, output=src_rows, concurrency=concurrency)
        if listed.objects == 0:
            # An empty source with --delete would empty DST: first make sure
            # the source is not one object named as a folder.
            object_not_folder(
                src, src_location, "sync", "give the folder that holds it ({folder}) as SRC"
            )
        dst_exists = prepare_destination(dst, scheme=dst_location.scheme, dry_run=dry_run)
        if dst_exists:
            held = take_inventory(dst, dst_location, output=dst_rows, concurrency=concurrency)
            if held.objects == 0 and dst_location.scheme != "file":
                # Writing under "key/" beside an object "key" is allowed by S3,
                # and never what naming that object as DST meant.
                object_not_folder(dst, dst_location, "sync", "give a folder as DST")
        else:
            empty_rows(dst_rows)
        plan_path = plan_out or scratch / "plan.jsonl"
        with PlanWriter(plan_path) as writer:
            found = diff(
                src,
                src_rows,
                src_location,
                dst,
                dst_rows,
                dst_location,
                writer,
                checksum=checksum,
                delete_extra=delete,
                concurrency=concurrency,
                scratch=scratch,
            )
        result = SyncResult(
            source=str(src_location),
            destination=str(dst_location),
            dry_run=dry_run,
            checksum=checksum,
            delete=delete,
            plan=found.plan,
            replaced=found.replaced,
            checked=found.checked,
            plan_file=str(plan_out) if plan_out else None,
        )
        emptying = _emptying(src_location, dst_location, listed.objects, found.plan.counts[DELETE])
        if dry_run:
            if dst_location.scheme == "file":
                result.would_fail = forecast_failures(plan_path, dst_location)
            if not force:
                result.emptying = emptying
                result.force_needed = emptying or force_reason(dst, found, what="sync")
        else:
            if emptying is not None and not force:
                raise UsageError(f"{emptying}: check SRC, or add --force")
            require_force(dst, found, force=force, what="sync")
            result.outcome = apply_transfer(
                src, dst, plan_path, concurrency=concurrency, on_progress=on_progress
            )
    result.seconds = time.monotonic() - started
    return result

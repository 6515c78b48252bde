"""Verify: compare what a location holds with what an inventory says it should hold.

    live listing -> scratch Parquet (take_inventory: bounded memory)
    inventory current entries (latest, not deleted) under LOC
    DuckDB: FULL OUTER JOIN on key (spills to disk; no order assumed on either side)
        only in the inventory        -> missing
        only live                    -> extra
        size / ETag / SHA-256 differ -> changed
        equal                        -> ok          (fast mode: nothing is downloaded)
                                     -> deep mode: GET, hash while streaming (thread
                                        pool, bounded in flight), compare with the
                                        inventory's ETag and SHA-256 -> ok, corrupted, error

The inventory is the recorded truth: an overwrite that kept the size but not
the ETag is ``changed`` without reading a byte; bit rot under an unchanged ETag
is ``corrupted``, found only by reading (``deep``). A sample (``sample`` =
fraction) is chosen by a hash of the key, so a re-run reads the same objects.

A join rather than a merge of two sorted streams, because stores disagree on
key order: S3 lists in byte order, a store built on a file tree (SeaweedFS)
lists a folder's keys before a sibling ``a-b`` that sorts first in bytes.

Keys: the inventory holds full keys (of a local directory: relative to it),
and its metadata names the location it was taken of. Where LOC stands to it:

    LOC is that location, or inside it  -> the entries under LOC, key for key
    LOC contains it (same bucket or     -> refused (UsageError): everything
      directory tree, LOC above it)        else under LOC would be "extra",
                                           and keys would be mapped wrongly
    LOC is elsewhere (another bucket,   -> LOC is a copy (a replica): the
      prefix or directory)                 inventory's prefix is replaced by
                                           LOC's, with a warning naming both

An inventory without that metadata (S3 Inventory, another tool) is compared
key for key under LOC's prefix. Reports name full keys of LOC.
"""

from __future__ import annotations

import hashlib
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lakeguard import duck
from lakeguard.errors import LakeguardError, NotFoundError, UsageError
from lakeguard.hashing import (
    StreamHasher,
    candidate_part_sizes,
    multipart_parts,
    strip_etag,
)
from lakeguard.location import Location, parse_location
from lakeguard.ops.inventory import Inventory, InventoryEntry, read_inventory, take_inventory
from lakeguard.ops.report import DEFAULT_CAP, Capped, human_bytes
from lakeguard.storage.base import Store

ProgressCallback = Callable[[int, int], None]
SHOWN = 20  # problem keys listed per category in the human report


@dataclass(slots=True)
class VerifyResult:
    location: str
    inventory: str
    mode: str  # "fast" or "deep"
    sample: float | None = None
    ok: int = 0
    missing: Capped[str] = field(default_factory=Capped)
    changed: Capped[str] = field(default_factory=Capped)
    corrupted: Capped[str] = field(default_factory=Capped)
    extra: Capped[str] = field(default_factory=Capped)
    errors: Capped[tuple[str, str]] = field(default_factory=Capped)
    total_bytes: int = 0  # recorded size of every inventory entry compared
    checked: int = 0  # objects whose bytes were read (deep)
    checksums_valid: int = 0  # of those, bytes matched the recorded ETag/SHA-256
    unverifiable: int = 0  # read, but no MD5 ETag and no SHA-256 to compare with
    bytes_read: int = 0
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)  # for stderr, not the report

    @property
    def verified(self) -> int:
        """Inventory entries compared with the live location."""
        return (
            self.ok
            + self.missing.count
            + self.changed.count
            + self.corrupted.count
            + self.errors.count
        )

    @property
    def clean(self) -> bool:
        return not (
            self.missing.count
            or self.changed.count
            or self.corrupted.count
            or self.extra.count
            or self.errors.count
        )

    @property
    def truncated(self) -> bool:
        return any(
            c.truncated for c in (self.missing, self.changed, self.corrupted, self.extra)
        ) or (self.errors.truncated)

    def counts(self) -> dict[str, int]:
        return {
            "ok": self.ok,
            "missing": self.missing.count,
            "changed": self.changed.count,
            "corrupted": self.corrupted.count,
            "extra": self.extra.count,
            "errors": self.errors.count,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "counts": self.counts(),
            "missing": sorted(self.missing.items),
            "changed": sorted(self.changed.items),
            "corrupted": sorted(self.corrupted.items),
            "extra": sorted(self.extra.items),
            "errors": [{"key": k, "error": e} for k, e in sorted(self.errors.items)],
            "total_bytes": self.total_bytes,
            "mode": self.mode,
            "verified": self.verified,
            "checksums_valid": self.checksums_valid if self.mode == "deep" else None,
            "checked": self.checked,
            "unverifiable": self.unverifiable,
            "sample": self.sample,
            "bytes_read": self.bytes_read,
            "seconds": round(self.seconds, 3),
            "truncated": self.truncated,
            "location": self.location,
            "inventory": self.inventory,
            "warnings": self.warnings,
        }

    def lines(self) -> list[str]:
        """The human report; it ends with the runbook's summary lines."""
        out = [f"verify {self.location} against {self.inventory} ({self.mode})"]
        sections: list[tuple[str, list[str], int]] = [
            ("missing", sorted(self.missing.items), self.missing.count),
            ("changed", sorted(self.changed.items), self.changed.count),
            ("corrupted", sorted(self.corrupted.items), self.corrupted.count),
            ("extra", sorted(self.extra.items), self.extra.count),
            (
                "errors",
                [f"{k}: {e}" for k, e in sorted(self.errors.items)],
                self.errors.count,
            ),
        ]
        for name, keys, count in sections:
            if not count:
                continue
            out.append(f"{name} ({count}):")
            out.extend(f"  {key}" for key in keys[:SHOWN])
            if count > SHOWN:
                out.append(f"  ... and {count - SHOWN} more (--json lists them)")
        if self.changed.count:
            out.append(f"Changed objects: {self.changed.count}")
        if self.extra.count:
            out.append(f"Extra objects: {self.extra.count}")
        if self.errors.count:
            out.append(f"Errors: {self.errors.count}")
        if self.mode == "deep":
            objects = "object" if self.checked == 1 else "objects"
            read = f"Bytes read: {human_bytes(self.bytes_read)} from {self.checked} {objects}"
            if self.sample is not None:
                read += f" (a {_percent(self.sample)} sample)"
            out.append(read)
            if self.unverifiable:
                out.append(
                    f"Checksums not verifiable: {self.unverifiable} "
                    "(ETag is not an MD5 and no SHA-256 was recorded)"
                )
        out.append(f"Objects verified: {self.verified}")
        out.append(
            f"Checksums valid: {self.checksums_valid}"
            if self.mode == "deep"
            else "Checksums valid: not checked (use --deep)"
        )
        out.append(f"Missing objects: {self.missing.count}")
        out.append(f"Corrupted objects: {self.corrupted.count}")
        out.append(f"Total size: {human_bytes(self.total_bytes)}")
        return out


def parse_sample(text: str) -> float:
    """``0.1`` or ``10%`` -> 0.1; ``UsageError`` outside (0, 1]."""
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise UsageError(
            f"invalid --sample {text!r}: give a fraction (0.1) or a percentage (10%)"
        ) from None
    if not 0 < value <= 1:
        raise UsageError(f"invalid --sample {text!r}: it must be above 0 and at most 1 (100%)")
    return value


def _sample_point(key: str) -> int:
    """Where ``key`` falls in [0, 2**64): a sample of ``f`` takes the keys below ``f * 2**64``."""
    digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def in_sample(key: str, fraction: float | None) -> bool:
    """Whether ``key`` is in a ``fraction`` sample: stable across runs and machines."""
    if fraction is None or fraction >= 1:
        return True
    return _sample_point(key) < fraction * 2**64


def _percent(fraction: float) -> str:
    """0.1 -> '10%', 0.001 -> '0.1%', 1/3 -> '33.3%'."""
    return f"{fraction * 100:.3g}%"


@dataclass(frozen=True, slots=True)
class _Outcome:
    key: str
    status: str  # "valid", "unverifiable", "corrupted", "error"
    nbytes: int
    error: str = ""


class _PartSizes:
    """Part sizes that matched multipart ETags so far, most recent first.

    To check a multipart ETag the part size must be guessed, and each guess is
    one more MD5 over the whole object. The objects of one lake are mostly
    written by one tool, so the size that matched last is tried alone first;
    only when it does not fit is the object read again against every guess.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: list[int] = []

    def first(self, candidates: list[int]) -> int | None:
        with self._lock:
            return next((size for size in self._seen if size in candidates), None)

    def matched(self, size: int) -> None:
        with self._lock:
            if size in self._seen:
                self._seen.remove(size)
            self._seen.insert(0, size)
            del self._seen[4:]


def _digest(
    store: Store,
    entry: InventoryEntry,
    version_id: str | None,
    *,
    md5: bool = False,
    sha256: bool = False,
    part_sizes: list[int] | None = None,
) -> StreamHasher:
    hasher = StreamHasher(md5=md5, sha256=sha256, part_sizes=part_sizes)
    with store.get(entry.key, version_id=version_id) as stream:
        for chunk in stream:
            hasher.update(chunk)
    return hasher


def _check_bytes(
    store: Store, entry: InventoryEntry, version_id: str | None, sizes: _PartSizes
) -> _Outcome:
    """Read one object (the version just listed) and check it against the recorded entry.

    One digest decides, the cheapest that can: the ETag (MD5, or the multipart
    MD5 of MD5s), else the recorded SHA-256; any change of the bytes changes
    either. An object with neither is read (its size is checked) but not verifiable.
    """
    key = entry.key
    etag = strip_etag(entry.etag)
    parts = multipart_parts(etag)
    read = 0
    try:
        if parts:
            candidates = candidate_part_sizes(entry.size, parts)
            likely = sizes.first(candidates)
            if likely is not None:
                hasher = _digest(store, entry, version_id, part_sizes=[likely])
                read += hasher.size
                if hasher.size == entry.size and hasher.multipart_etags() == [etag]:
                    return _Outcome(key, "valid", read)
            if candidates:
                hasher = _digest(store, entry, version_id, part_sizes=candidates)
                read += hasher.size
                if hasher.size != entry.size:
                    return _Outcome(key, "corrupted", read)
                etags = hasher.multipart_etags()
                if etag in etags:
                    sizes.matched(candidates[etags.index(etag)])
                    return _Outcome(key, "valid", read)
                return _Outcome(key, "corrupted", read)
        if etag and not parts and len(etag) == 32:
            hasher = _digest(store, entry, version_id, md5=True)
            read += hasher.size
            valid = hasher.size == entry.size and hasher.md5 == etag
            return _Outcome(key, "valid" if valid else "corrupted", read)
        expected_sha = (entry.checksum_sha256 or "").lower()
        hasher = _digest(store, entry, version_id, sha256=bool(expected_sha))
        read += hasher.size
        if hasher.size != entry.size:
            return _Outcome(key, "corrupted", read)
        if not expected_sha:
            return _Outcome(key, "unverifiable", read)
        return _Outcome(key, "valid" if hasher.sha256 == expected_sha else "corrupted", read)
    except NotFoundError:
        return _Outcome(key, "error", read, "deleted while being verified")
    except LakeguardError as exc:
        return _Outcome(key, "error", read, exc.message)


def _text(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


@dataclass(frozen=True, slots=True)
class Scope:
    """Which inventory entries stand for LOC: those under ``source``, whose
    ``source`` is replaced by LOC's prefix; ``warning`` when LOC is a copy."""

    source: str
    warning: str | None = None


def inventory_scope(inventory: Inventory, location: Location) -> Scope:
    """Where LOC stands to the inventory's location (see the module docstring)."""
    recorded = _recorded_location(inventory)
    if recorded is None:  # not lakeguard's, or from before the metadata: trust the keys
        return Scope(location.prefix)
    named = f"inventory {inventory.path} was taken of {recorded}"
    if recorded.scheme == "file" and location.scheme == "file":
        mine, theirs = _path(location), _path(recorded)
        if mine == theirs or theirs in mine.parents:
            inside = mine.relative_to(theirs).as_posix()
            return Scope("" if inside == "." else f"{inside}/")
        if mine in theirs.parents:
            raise UsageError(_contains(named, recorded, location))
    elif recorded.scheme == location.scheme and recorded.root == location.root:
        if location.prefix.startswith(recorded.prefix):
            return Scope(location.prefix)
        if recorded.prefix.startswith(location.prefix):
            raise UsageError(_contains(named, recorded, location))
    source = inventory.prefix if inventory.prefix is not None else recorded.prefix
    if source == location.prefix:
        mapping = "key for key"
    else:
        mapping = f"'{source}' in its keys read as '{location.prefix}'"
    return Scope(source, f"{named}, not of {location}: comparing {location} as a copy ({mapping})")


def _recorded_location(inventory: Inventory) -> Location | None:
    if not inventory.location:
        return None
    try:
        return parse_location(inventory.location)
    except UsageError:
        return None


def _path(location: Location) -> Path:
    return (Path(location.root) / location.prefix).resolve()


def _contains(named: str, recorded: Location, location: Location) -> str:
    return (
        f"{named}, which lies inside {location}: verify {recorded} against it, "
        f"or take an inventory of {location}"
    )


def _expected_sql(inventory: Inventory, location: Location, scope: Scope) -> str:
    """The inventory's current entries under LOC, keyed by LOC's full keys, one row per key."""
    columns = inventory.columns
    latest = "coalesce(is_latest, true)" if "is_latest" in columns else "true"
    alive = "NOT coalesce(is_delete_marker, false)" if "is_delete_marker" in columns else "true"
    sha = "checksum_sha256" if "checksum_sha256" in columns else "NULL::VARCHAR"
    under = scope.source
    if under == location.prefix:
        key = "key"
    else:  # a copy elsewhere, or a folder of a local inventory: swap the prefixes
        key = f"{_text(location.prefix)} || substr(key, {len(under) + 1})"
    return (
        f"SELECT {key} AS key, any_value(size)::BIGINT AS size, any_value(etag)::VARCHAR AS etag,"
        f" any_value({sha})::VARCHAR AS sha"
        f" FROM read_parquet({_text(str(inventory.path))})"
        f" WHERE {latest} AND {alive} AND starts_with(key, {_text(under)}) GROUP BY 1"
    )


_COMPARE = """
CREATE TEMP TABLE cmp AS
SELECT coalesce(e.key, l.key) AS key,
  CASE
    WHEN l.key IS NULL THEN 'missing'
    WHEN e.key IS NULL THEN 'extra'
    WHEN e.size IS DISTINCT FROM l.size THEN 'changed'
    WHEN e.etag IS NOT NULL AND l.etag IS NOT NULL
         AND lower(trim(e.etag, '"')) <> lower(trim(l.etag, '"')) THEN 'changed'
    WHEN e.sha IS NOT NULL AND l.sha IS NOT NULL AND lower(e.sha) <> lower(l.sha) THEN 'changed'
    ELSE 'ok'
  END AS status,
  e.size AS size, e.etag AS etag, e.sha AS sha, l.version_id AS version_id
FROM ({expected}) AS e
FULL OUTER JOIN (
  SELECT key, any_value(size) AS size, any_value(etag) AS etag,
         any_value(checksum_sha256) AS sha, any_value(version_id) AS version_id
  FROM read_parquet({live}) GROUP BY key
) AS l ON e.key = l.key
"""


def verify(
    store: Store,
    location: Location,
    *,
    against: Path,
    deep: bool = False,
    sample: float | None = None,
    concurrency: int = 16,
    parallel_listing: bool = False,
    on_progress: ProgressCallback | None = None,
) -> VerifyResult:
    """Compare the current objects of ``location`` with the inventory ``against``."""
    import duckdb

    if sample is not None and not 0 < sample <= 1:
        raise UsageError(f"invalid sample {sample}: it must be above 0 and at most 1")
    inventory = read_inventory(against)
    scope = inventory_scope(inventory, location)  # a refusal comes before any listing
    started = time.monotonic()
    result = VerifyResult(
        location=str(location),
        inventory=str(against),
        mode="deep" if deep else "fast",
        sample=sample if deep and sample is not None and sample < 1 else None,
        warnings=[scope.warning] if scope.warning else [],
    )
    progress = on_progress or (lambda objects, nbytes: None)
    with tempfile.TemporaryDirectory(prefix="lakeguard-verify-") as scratch:
        live = Path(scratch) / "live.parquet"
        take_inventory(store, location, output=live, concurrency=concurrency, on_progress=progress)
        con = duck.connect(Path(scratch) / "spill")
        try:
            try:
                con.execute(
                    _COMPARE.format(
                        expected=_expected_sql(inventory, location, scope), live=_text(str(live))
                    )
                )
            except duckdb.Error as exc:
                raise UsageError(
                    f"inventory file {against} cannot be compared: {_first_line(exc)}"
                ) from None
            _tally(con, result)
            if deep:
                _read_back(con, store, result, sample, concurrency, progress)
        finally:
            con.close()
    result.seconds = time.monotonic() - started
    return result


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _tally(con: Any, result: VerifyResult) -> None:
    for status, count, nbytes in con.execute(
        "SELECT status, count(*), coalesce(sum(size), 0) FROM cmp GROUP BY status"
    ).fetchall():
        if status != "extra":
            result.total_bytes += int(nbytes)
        if status == "ok":
            result.ok = int(count)
            continue
        found: Capped[str] = Capped(
            DEFAULT_CAP,
            [
                row[0]
                for row in con.execute(
                    "SELECT key FROM cmp WHERE status = ? ORDER BY key LIMIT ?",
                    [status, DEFAULT_CAP],
                ).fetchall()
            ],
            int(count),
        )
        setattr(result, status, found)


def _read_back(
    con: Any,
    store: Store,
    result: VerifyResult,
    sample: float | None,
    concurrency: int,
    progress: ProgressCallback,
) -> None:
    """Deep mode: read every ok object (or the sample) and check its bytes.

    A sample reads at least one object: when the share is too small to take
    any, the object nearest to being taken (lowest sample point) is read, so a
    re-run still reads the same one.
    """
    rows = con.sql("SELECT key, size, etag, sha, version_id FROM cmp WHERE status = 'ok'")
    # DuckDB 2 renamed the relation's fetch_arrow_reader to to_arrow_reader.
    to_reader = getattr(rows, "to_arrow_reader", None) or rows.fetch_arrow_reader
    reader = to_reader(10_000)
    in_flight: set[Future[_Outcome]] = set()
    sizes = _PartSizes()

    def collect(done: set[Future[_Outcome]]) -> None:
        for future in done:
            outcome = future.result()
            result.checked += 1
            result.bytes_read += outcome.nbytes
            if outcome.status == "valid":
                result.checksums_valid += 1
            elif outcome.status == "unverifiable":
                result.unverifiable += 1
            elif outcome.status == "corrupted":
                result.ok -= 1
                result.corrupted.append(outcome.key)
            else:
                result.ok -= 1
                result.errors.append((outcome.key, outcome.error))
            progress(0, outcome.nbytes)

    limit = 2**64 if sample is None or sample >= 1 else sample * 2**64
    taken = 0
    nearest: tuple[int, InventoryEntry, str | None] | None = None  # below the sample
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="verify")
    try:
        for batch in reader:
            columns = [batch.column(i).to_pylist() for i in range(5)]
            for key, size, etag, sha, version_id in zip(*columns, strict=True):
                entry = InventoryEntry(key, int(size or 0), etag, sha)
                if limit < 2**64:
                    point = _sample_point(key)
                    if point >= limit:
                        if not taken and (nearest is None or point < nearest[0]):
                            nearest = (point, entry, version_id)
                        continue
                taken += 1
                if len(in_flight) >= concurrency * 2:
                    done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                    collect(done)
                in_flight.add(pool.submit(_check_bytes, store, entry, version_id, sizes))
        if not taken and nearest is not None:
            _, entry, version_id = nearest
            in_flight.add(pool.submit(_check_bytes, store, entry, version_id, sizes))
        collect(wait(in_flight).done)
    except BaseException:
        # Ctrl-C or a failed callback: stop now, not once every GET in flight
        # has come back (a stalled one would hold the exit for its timeout).
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()

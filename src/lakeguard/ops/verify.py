"""Verify: compare what a location holds with what an inventory says it should hold.

    live listing (key order, parallel by key range) ──┐
                                                      ├─ merge-join by key
    inventory current entries (key order, streamed) ──┘
        key only live        -> extra
        key only in inventory -> missing
        size/ETag/SHA-256 differ -> changed
        equal                -> ok          (fast mode: nothing is downloaded)
                             -> deep mode: GET, hash while streaming (thread pool,
                                bounded in flight), compare with the inventory's
                                ETag and SHA-256 -> ok or corrupted (or error)

The inventory is the recorded truth: an overwrite that kept the size but not
the ETag is ``changed`` without reading a byte; bit rot under an unchanged ETag
is ``corrupted``, found only by reading (``deep``). A sample of the objects
(``sample`` = fraction) is chosen by a hash of the key, so a re-run reads the
same objects.

Keys: the inventory holds full keys. When LOC lies inside the inventory's
location, the entries under LOC's prefix are compared key for key. When LOC is
elsewhere (a replica under another prefix), the inventory's prefix is replaced
by LOC's. Reports name full keys of LOC.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lakeguard.errors import LakeguardError, NotFoundError, UsageError
from lakeguard.hashing import EtagChecker, strip_etag
from lakeguard.location import Location
from lakeguard.ops.inventory import InventoryEntry, read_inventory
from lakeguard.ops.listing import list_objects
from lakeguard.ops.report import Capped, human_bytes
from lakeguard.storage.base import ObjectInfo, Store

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
            read = f"Bytes read: {human_bytes(self.bytes_read)} from {self.checked} objects"
            if self.sample is not None:
                read += f" (a {self.sample:.0%} sample)"
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


def in_sample(key: str, fraction: float | None) -> bool:
    """Whether ``key`` is in a ``fraction`` sample: stable across runs and machines."""
    if fraction is None or fraction >= 1:
        return True
    digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") < fraction * 2**64


def _differs(live: ObjectInfo, entry: InventoryEntry) -> bool:
    if live.size != entry.size:
        return True
    recorded, current = strip_etag(entry.etag), strip_etag(live.etag)
    if recorded and current and recorded != current:
        return True
    return bool(
        entry.checksum_sha256
        and live.checksum_sha256
        and entry.checksum_sha256.lower() != live.checksum_sha256.lower()
    )


@dataclass(frozen=True, slots=True)
class _Outcome:
    key: str
    status: str  # "valid", "unverifiable", "corrupted", "error"
    nbytes: int
    error: str = ""


def _check_bytes(store: Store, live: ObjectInfo, entry: InventoryEntry) -> _Outcome:
    checker = EtagChecker(entry.etag, entry.size, sha256=bool(entry.checksum_sha256))
    try:
        with store.get(live.key, version_id=live.version_id) as stream:
            for chunk in stream:
                checker.update(chunk)
    except NotFoundError:
        return _Outcome(live.key, "error", checker.hasher.size, "deleted while being verified")
    except LakeguardError as exc:
        return _Outcome(live.key, "error", checker.hasher.size, exc.message)
    size = checker.hasher.size
    if size != entry.size:
        return _Outcome(live.key, "corrupted", size)
    if entry.checksum_sha256 and checker.hasher.sha256 != entry.checksum_sha256.lower():
        return _Outcome(live.key, "corrupted", size)
    verdict = checker.verdict()
    if verdict is False:
        return _Outcome(live.key, "corrupted", size)
    if verdict is None and not entry.checksum_sha256:
        return _Outcome(live.key, "unverifiable", size)
    return _Outcome(live.key, "valid", size)


def _pairs(
    live: Iterator[ObjectInfo], expected: Iterator[InventoryEntry]
) -> Iterator[tuple[ObjectInfo | None, InventoryEntry | None]]:
    """Merge-join two key-ordered streams: (live, entry), either side None when absent."""
    a = next(live, None)
    b = next(expected, None)
    previous: str | None = None
    while a is not None or b is not None:
        if b is not None and previous is not None and b.key <= previous:
            b = next(expected, None)  # a repeated key in the inventory: the first one counts
            continue
        if b is None or (a is not None and a.key < b.key):
            yield a, None
            a = next(live, None)
        elif a is None or b.key < a.key:
            previous = b.key
            yield None, b
            b = next(expected, None)
        else:
            previous = b.key
            yield a, b
            a = next(live, None)
            b = next(expected, None)


def _mapped(entries: Iterator[InventoryEntry], old: str, new: str) -> Iterator[InventoryEntry]:
    for entry in entries:
        yield entry._replace(key=new + entry.key[len(old) :])


def verify(
    store: Store,
    location: Location,
    *,
    against: Path,
    deep: bool = False,
    sample: float | None = None,
    concurrency: int = 16,
    on_progress: ProgressCallback | None = None,
) -> VerifyResult:
    """Compare the current objects of ``location`` with the inventory ``against``."""
    if sample is not None and not 0 < sample <= 1:
        raise UsageError(f"invalid sample {sample}: it must be above 0 and at most 1")
    inventory = read_inventory(against)
    started = time.monotonic()
    result = VerifyResult(
        location=str(location),
        inventory=str(against),
        mode="deep" if deep else "fast",
        sample=sample if deep and sample is not None and sample < 1 else None,
    )
    inv_prefix = inventory.prefix
    if inv_prefix is None or location.prefix.startswith(inv_prefix):
        expected = inventory.current(location.prefix)
    else:
        expected = _mapped(inventory.current(inv_prefix), inv_prefix, location.prefix)
    live = list_objects(store, location.prefix, concurrency=concurrency)
    progress = on_progress or (lambda objects, nbytes: None)

    pool = (
        ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="verify") if deep else None
    )
    in_flight: set[Future[_Outcome]] = set()

    def collect(done: set[Future[_Outcome]]) -> None:
        for future in done:
            outcome = future.result()
            result.checked += 1
            result.bytes_read += outcome.nbytes
            if outcome.status == "valid":
                result.ok += 1
                result.checksums_valid += 1
            elif outcome.status == "unverifiable":
                result.ok += 1
                result.unverifiable += 1
            elif outcome.status == "corrupted":
                result.corrupted.append(outcome.key)
            else:
                result.errors.append((outcome.key, outcome.error))
            progress(0, outcome.nbytes)

    try:
        for current, entry in _pairs(live, expected):
            if entry is None:
                assert current is not None
                result.extra.append(current.key)
                continue
            result.total_bytes += entry.size
            progress(1, 0)
            if current is None:
                result.missing.append(entry.key)
            elif _differs(current, entry):
                result.changed.append(entry.key)
            elif pool is not None and in_sample(entry.key, sample):
                if len(in_flight) >= concurrency * 2:
                    done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                    collect(done)
                in_flight.add(pool.submit(_check_bytes, store, current, entry))
            else:
                result.ok += 1
        if in_flight:
            collect(wait(in_flight).done)
            in_flight = set()
    finally:
        for future in in_flight:
            future.cancel()
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        for stream in (live, expected):
            close = getattr(stream, "close", None)
            if callable(close):
                close()
    result.seconds = time.monotonic() - started
    return result

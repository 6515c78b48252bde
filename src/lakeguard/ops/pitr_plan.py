"""Restore plans: the per-key rule of point-in-time restore, and the plan file.

    list_versions(LOC)                   key order, newest first per key (streamed)
      -> one key at a time, entry by entry (a key's versions are never all held):
           current  = the first entry (the store's latest)
           target   = the first entry with LastModified <= T
           above    = the entries before the target (all written after T)
      -> decide (below) -> Action rows -> PlanWriter (JSONL file) + PlanSummary

The rule, per key:

    target is a version:
        current is the target, or has its ETag and size   -> unchanged
        current is a delete marker, and every entry above
        the target is a delete marker                       -> undelete (remove those markers)
        otherwise                                           -> copy (target on top)
    target is a delete marker, or there is none:
        current is a delete marker                          -> unchanged
        otherwise                                           -> delete (with --delete-newer),
                                                               else left alone ("newer")

Same-second ties. S3 keeps LastModified to the second (SeaweedFS too), so
several versions of one key can carry the same time. The store's version order
decides: the target is the *first* entry, in the store's newest-first order,
whose LastModified is at or before T. Everything written within T's second
counts as written at or before T, and of two versions written in that second
the one the store lists first (its newer one) is the target. T itself is
compared as given; sub-second digits only matter for stores that keep them.

Removing a delete marker destroys nothing: a marker holds no data, and the
version under it, kept all along, becomes current again. That is why undelete
is allowed by the rule "never destroy a version", and why it copies no bytes.

The plan file is JSON Lines, one line per key that changes::

    {"action": "copy", "key": ..., "source": ..., "version_id": ..., "size": ...,
     "etag": ..., "delete_markers": [...], "before": {"version_id": ..., "etag": ...,
     "size": ..., "delete_marker": false}}

``before`` is the object that was current before (the undo list): to undo a
copy, copy ``before.version_id`` back on top; to undo an undelete or a delete,
place or remove a delete marker. Keys that stay as they are get no line.

Memory: the current entry, the target, and the ids of the delete markers above
the target of one key, plus the summary's first keys per action.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from lakeguard.errors import UsageError
from lakeguard.storage.base import ObjectInfo

COPY, UNDELETE, DELETE = "copy", "undelete", "delete"
ACTIONS = (COPY, UNDELETE, DELETE)
FIRST_KEYS = 10  # keys shown per action in a plan's summary
NULL_VERSION = "null"


@dataclass(frozen=True, slots=True)
class Before:
    """What was current at a key before the plan ran (None fields: nothing was)."""

    version_id: str | None = None
    etag: str | None = None
    size: int | None = None
    delete_marker: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "version_id": self.version_id,
            "etag": self.etag,
            "size": self.size,
            "delete_marker": self.delete_marker,
        }


@dataclass(frozen=True, slots=True)
class Action:
    """One change at one key.

    ``key`` is the key acted on (in the destination), ``source`` the key read
    from (the same key in place). ``version_id``/``size``/``etag`` (and
    ``storage_class``, None when unknown) describe the version to restore (copy,
    undelete); ``delete_markers`` are the markers an undelete removes, newest
    first. ``before`` is None when nothing was there.
    """

    action: str
    key: str
    source: str | None = None
    version_id: str | None = None
    size: int = 0
    etag: str | None = None
    delete_markers: tuple[str, ...] = ()
    before: Before | None = None
    storage_class: str | None = None  # lets a server-side copy skip its HEAD

    @property
    def source_key(self) -> str:
        return self.key if self.source is None else self.source

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "key": self.key,
            "source": self.source_key,
            "version_id": self.version_id,
            "size": self.size,
            "etag": self.etag,
            "delete_markers": list(self.delete_markers),
            "before": self.before.to_json() if self.before is not None else None,
            "storage_class": self.storage_class,
        }

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> Action:
        before = row.get("before")
        key = str(row["key"])
        source = row.get("source")
        return cls(
            action=str(row["action"]),
            key=key,
            source=None if source in (None, key) else str(source),
            version_id=row.get("version_id"),
            size=int(row.get("size") or 0),
            etag=row.get("etag"),
            storage_class=row.get("storage_class"),
            delete_markers=tuple(row.get("delete_markers") or ()),
            before=Before(
                version_id=before.get("version_id"),
                etag=before.get("etag"),
                size=before.get("size"),
                delete_marker=bool(before.get("delete_marker")),
            )
            if isinstance(before, dict)
            else None,
        )


@dataclass(slots=True)
class PlanSummary:
    """Counts, bytes and the first keys of each action; what --dry-run shows."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ACTIONS, 0))
    bytes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ACTIONS, 0))
    first: dict[str, list[str]] = field(default_factory=lambda: {a: [] for a in ACTIONS})
    unchanged: int = 0
    newer: int = 0  # keys created after T, left alone (no --delete-newer)
    first_newer: list[str] = field(default_factory=list)
    keys: int = 0
    versions: int = 0  # entries listed (versions and delete markers)
    # Writes that would replace a key's "null" version in a suspended bucket.
    null_writes: int = 0
    first_null_write: str | None = None

    @property
    def actions(self) -> int:
        return sum(self.counts.values())

    @property
    def bytes_to_copy(self) -> int:
        return self.bytes[COPY]

    def add(self, action: Action) -> None:
        self.counts[action.action] += 1
        self.bytes[action.action] += action.size if action.action != DELETE else 0
        shown = self.first[action.action]
        if len(shown) < FIRST_KEYS:
            shown.append(action.key)

    def add_newer(self, key: str) -> None:
        self.newer += 1
        if len(self.first_newer) < FIRST_KEYS:
            self.first_newer.append(key)


class PlanWriter:
    """Writes actions as JSON Lines to ``path`` and sums them up.

    The file is written as ``path.partial`` and renamed once complete, so a
    plan file that exists is a whole plan.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise UsageError(f"cannot write the plan to {self.path}: it is a directory")
        if not self.path.parent.is_dir():
            raise UsageError(
                f"cannot write the plan to {self.path}: directory {self.path.parent} does not exist"
            )
        if self.path.exists() and not _is_plan(self.path):
            raise UsageError(
                f"{self.path} exists and is not a plan file: choose another --plan-out, "
                "or remove it first"
            )
        self.summary = PlanSummary()
        self._partial = self.path.with_name(self.path.name + ".partial")
        self._out: IO[str] | None = None

    def __enter__(self) -> PlanWriter:
        try:
            self._out = self._partial.open("w", encoding="utf-8")
        except OSError as err:
            raise UsageError(f"cannot write the plan to {self.path}: {err.strerror}") from None
        return self

    def write(self, action: Action) -> None:
        assert self._out is not None, "PlanWriter used outside 'with'"
        self._out.write(json.dumps(action.to_json(), ensure_ascii=False, separators=(",", ":")))
        self._out.write("\n")
        self.summary.add(action)

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        assert self._out is not None
        self._out.close()
        if exc_type is None:
            self._partial.replace(self.path)
        else:
            with contextlib.suppress(OSError):
                self._partial.unlink()


def _is_plan(path: Path) -> bool:
    """Whether ``path`` is empty or a plan file (replacing one is what --plan-out is for)."""
    try:
        with path.open(encoding="utf-8") as handle:
            first = handle.readline(1 << 20)
    except (OSError, UnicodeDecodeError):
        return False
    if not first.strip():
        return path.stat().st_size == len(first.encode())
    try:
        Action.from_json(json.loads(first))
    except (ValueError, KeyError, TypeError, AttributeError):
        return False
    return True


def read_plan(path: Path, *, only: Iterable[str] | None = None) -> Iterator[Action]:
    """The actions of a plan file, in file order (``only``: these kinds)."""
    wanted = set(only) if only is not None else None
    with Path(path).open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                action = Action.from_json(json.loads(line))
            except (ValueError, KeyError, TypeError, AttributeError) as err:
                raise UsageError(
                    f"plan file {path} line {number} is not a plan row: {err}"
                ) from None
            if wanted is None or action.action in wanted:
                yield action


# -- the per-key rule ----------------------------------------------------------


def aware(moment: datetime | None) -> datetime | None:
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


def _before_of(info: ObjectInfo) -> Before:
    if info.is_delete_marker:
        return Before(version_id=info.version_id, delete_marker=True)
    return Before(version_id=info.version_id, etag=info.etag, size=info.size)


def same_content(a: ObjectInfo, b: ObjectInfo) -> bool:
    """The same version, or two versions with one ETag and one size."""
    if a.is_delete_marker or b.is_delete_marker:
        return False
    if a.version_id is not None and a.version_id == b.version_id:
        return True
    return a.etag is not None and a.etag == b.etag and a.size == b.size


class KeyState:
    """What planning keeps of one key while its entries stream by."""

    __slots__ = ("above_all_markers", "current", "has_null", "key", "markers", "target")

    def __init__(self, first: ObjectInfo) -> None:
        self.key = first.key
        self.current = first
        self.target: ObjectInfo | None = None
        self.above_all_markers = True
        self.markers: list[str] = []
        self.has_null = False

    def add(self, info: ObjectInfo, at: datetime) -> None:
        if not info.is_delete_marker and info.version_id == NULL_VERSION:
            self.has_null = True
        if self.target is not None:
            return
        when = aware(info.last_modified)
        if when is None or when <= at:
            self.target = info
        elif info.is_delete_marker:
            if info.version_id is not None:
                self.markers.append(info.version_id)
        else:
            self.above_all_markers = False

    def decide(self, *, delete_newer: bool) -> Action | str:
        """The action for this key, or ``"unchanged"`` / ``"newer"``."""
        current, target = self.current, self.target
        if target is None or target.is_delete_marker:
            if current.is_delete_marker:
                return "unchanged"
            if not delete_newer:
                return "newer"
            return Action(DELETE, self.key, before=_before_of(current))
        if target is current or same_content(current, target):
            return "unchanged"
        kind = COPY
        if current.is_delete_marker and self.above_all_markers and self.markers:
            kind = UNDELETE
        return Action(
            kind,
            self.key,
            version_id=target.version_id,
            size=target.size,
            etag=target.etag,
            delete_markers=tuple(self.markers) if kind == UNDELETE else (),
            before=_before_of(current),
            storage_class=target.storage_class,
        )


def key_states(listing: Iterable[ObjectInfo], at: datetime) -> Iterator[KeyState]:
    """One finished KeyState per key of a version listing (versions of a key together)."""
    at = aware(at) or at
    state: KeyState | None = None
    for info in listing:
        if state is None or info.key != state.key:
            if state is not None:
                yield state
            state = KeyState(info)
        state.add(info, at)
    if state is not None:
        yield state


def plan_in_place(
    listing: Iterable[ObjectInfo],
    at: datetime,
    writer: PlanWriter,
    *,
    delete_newer: bool = False,
) -> PlanSummary:
    """Decide every key of ``listing`` and write the actions; return the summary."""
    summary = writer.summary
    counted = _Counted(listing)
    for state in key_states(counted, at):
        summary.keys += 1
        decision = state.decide(delete_newer=delete_newer)
        if decision == "unchanged":
            summary.unchanged += 1
        elif decision == "newer":
            summary.add_newer(state.key)
        else:
            assert isinstance(decision, Action)
            # In a suspended bucket a write replaces the "null" version: flagged
            # here, refused before anything is applied.
            if decision.action in (COPY, DELETE) and state.has_null:
                summary.null_writes += 1
                if summary.first_null_write is None:
                    summary.first_null_write = state.key
            writer.write(decision)
    summary.versions = counted.count
    return summary


class _Counted:
    """An iterable that counts what passes through it."""

    def __init__(self, inner: Iterable[ObjectInfo]) -> None:
        self._inner = inner
        self.count = 0

    def __iter__(self) -> Iterator[ObjectInfo]:
        for info in self._inner:
            self.count += 1
            yield info

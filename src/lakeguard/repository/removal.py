"""Removing repository files for good, and never one under Object Lock.

``forget`` and ``prune`` are the only code that deletes from a repository.
Deleting means reclaiming the space: in a versioned bucket (every bucket with
Object Lock is one) a plain DELETE only hides the object behind a delete
marker, so each version of the key is deleted by id. Before that, in a
repository written with Object Lock, each version's retention is read: a
version still locked is left alone and reported with its retain-until date
(deleting it would fail anyway; asking first gives a clear message and keeps
the other versions of the key). A store that refuses a delete for another
reason (a bucket default retention, a policy) is reported as refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from lakeguard.errors import (
    AccessDeniedError,
    BucketNotFoundError,
    NotFoundError,
    StoreError,
    TransientError,
)
from lakeguard.repository.repo import Repository


@dataclass(frozen=True, slots=True)
class Removal:
    """The outcome for one file: removed, locked until a date, or failed."""

    relative: str
    removed: bool
    locked_until: datetime | None = None
    error: str | None = None


class Remover:
    """Deletes repository files (every version), checking Object Lock first."""

    def __init__(self, repo: Repository, *, now: datetime | None = None) -> None:
        self.repo = repo
        self.now = (now or datetime.now(UTC)).astimezone(UTC)
        self.locking = repo.config.object_lock is not None
        self._versioned: bool | None = None

    @property
    def versioned(self) -> bool:
        if self._versioned is None:
            store = self.repo.store
            self._versioned = bool(store.capabilities.versioning and store.versioning())
        return self._versioned

    def _versions(self, key: str) -> list[tuple[str | None, bool]]:
        """(version id, is delete marker) of every version of exactly ``key``."""
        if not self.versioned:
            return [(None, False)]
        return [
            (info.version_id, info.is_delete_marker)
            for info in self.repo.store.list_versions(key)
            if info.key == key
        ]

    def _locked_until(self, key: str, versions: list[tuple[str | None, bool]]) -> datetime | None:
        if not self.locking:
            return None
        from lakeguard.storage.s3_lock import get_retention

        latest: datetime | None = None
        for version_id, marker in versions:
            if marker:
                continue  # delete markers carry no retention
            retention = get_retention(self.repo.store, key, version_id=version_id)
            if retention is None:
                continue
            until = retention[1].astimezone(UTC)
            if until > self.now and (latest is None or until > latest):
                latest = until
        return latest

    def locked_until(self, relative: str) -> datetime | None:
        """When the last locked version of a file may be deleted, or None if none is locked."""
        key = self.repo.key(relative)
        return self._locked_until(key, self._versions(key))

    def remove(self, relative: str) -> Removal:
        key = self.repo.key(relative)
        try:
            versions = self._versions(key)
            until = self._locked_until(key, versions)
            if until is not None:
                return Removal(relative, False, locked_until=until)
            for version_id, _marker in versions:
                try:
                    self.repo.store.delete(key, version_id=version_id)
                except NotFoundError:
                    continue  # already gone: deleting is idempotent
        except AccessDeniedError as exc:
            return Removal(
                relative,
                False,
                error=f"the store refused to delete it (Object Lock or permissions): {exc.message}",
            )
        except (TransientError, BucketNotFoundError):
            raise  # the store itself is failing: stop, do not report every file
        except StoreError as exc:  # a refusal of this one file (e.g. "object is locked")
            return Removal(relative, False, error=exc.message)
        return Removal(relative, True)

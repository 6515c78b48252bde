"""Opening and creating repositories; writes that honour Object Lock retention.

init_repository(store, location, object_lock_days=N)   -> Repository
open_repository(store, location)                       -> Repository
    reads lakeguard-repo.json (RepoConfig)
Repository
    .write(rel, data)          new key, with a retention date when the repo has one
    .snapshots(source=)        complete snapshots, oldest first
    .snapshot("latest"|id)     one header
    .fetch_manifest(header, directory)   the Parquet file, checked against the header
    .open_archive(rel)         an ArchiveReader (seek table, members, ranged reads)
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shlex
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakeguard import __version__
from lakeguard.errors import (
    BucketNotFoundError,
    NotFoundError,
    OperationalError,
    UnsupportedError,
    UsageError,
)
from lakeguard.location import Location
from lakeguard.repository.layout import FORMAT_VERSION, RepoLayout
from lakeguard.repository.snapshot import (
    DamagedHeader,
    HeaderDamaged,
    SnapshotHeader,
    header_remedy,
    list_snapshots,
    resolve_snapshot,
)
from lakeguard.storage.base import DEFAULT_PART_SIZE, PutResult, Store
from lakeguard.timeparse import iso

if TYPE_CHECKING:
    from lakeguard.archive.reader import ArchiveReader

log = logging.getLogger(__name__)

REPO_KIND = "lakeguard-repo"
LOCK_MODES = ("COMPLIANCE", "GOVERNANCE")
DEFAULT_ARCHIVE_SIZE = 128 * 1024 * 1024
DEFAULT_BLOCK_SIZE = 1024 * 1024  # data per zstd frame (see archive/writer.py)
DEFAULT_LEVEL = 3


@dataclass(frozen=True, slots=True)
class ObjectLock:
    mode: str  # COMPLIANCE or GOVERNANCE
    days: int


@dataclass(frozen=True, slots=True)
class RepoConfig:
    id: str
    created: datetime
    object_lock: ObjectLock | None = None
    archive_size: int = DEFAULT_ARCHIVE_SIZE
    compression_level: int = DEFAULT_LEVEL
    block_size: int = DEFAULT_BLOCK_SIZE
    format: int = FORMAT_VERSION
    lakeguard_version: str = __version__

    def to_json(self) -> dict[str, Any]:
        lock = self.object_lock
        return {
            "kind": REPO_KIND,
            "format": self.format,
            "id": self.id,
            "created": iso(self.created),
            "object_lock": {"mode": lock.mode, "days": lock.days} if lock else None,
            "defaults": {
                "archive_size": self.archive_size,
                "compression_level": self.compression_level,
                "block_size": self.block_size,
            },
            "lakeguard_version": self.lakeguard_version,
        }

    @classmethod
    def decode(cls, data: bytes, where: str) -> RepoConfig:
        try:
            doc = json.loads(data)
            if doc.get("kind") != REPO_KIND:
                raise ValueError("not a lakeguard-repo.json")
            fmt = int(doc["format"])
            if fmt > FORMAT_VERSION:
                raise OperationalError(
                    f"repository {where} has format {fmt}; this lakeguard reads up to "
                    f"{FORMAT_VERSION}: upgrade lakeguard"
                )
            lock = doc.get("object_lock")
            defaults = doc.get("defaults") or {}
            return cls(
                id=str(doc["id"]),
                created=datetime.fromisoformat(str(doc["created"]).replace("Z", "+00:00")),
                object_lock=ObjectLock(str(lock["mode"]), int(lock["days"])) if lock else None,
                archive_size=int(defaults.get("archive_size", DEFAULT_ARCHIVE_SIZE)),
                compression_level=int(defaults.get("compression_level", DEFAULT_LEVEL)),
                block_size=int(defaults.get("block_size", DEFAULT_BLOCK_SIZE)),
                format=fmt,
                lakeguard_version=str(doc.get("lakeguard_version", "")),
            )
        except OperationalError:
            raise
        except (ValueError, KeyError, TypeError) as exc:
            raise OperationalError(
                f"repository {where}: lakeguard-repo.json is damaged ({exc})"
            ) from None


class ManifestDamaged(OperationalError):
    """A snapshot's manifest is missing or not the one its header names.

    ``reason`` says what is wrong; the message adds what to do. ``check``
    reports the reason only (the rest of the message points at check).
    """

    def __init__(self, repo_url: str, header: SnapshotHeader, reason: str) -> None:
        quoted = shlex.quote(repo_url)
        super().__init__(
            f"repository {repo_url} is damaged: {reason}: the snapshot cannot be read; put "
            f"back a good copy of {header.manifest}, or remove the snapshot with 'lakeguard "
            f"forget --repo {quoted} {header.id}' ('lakeguard check --repo {quoted}' "
            "lists all damage)"
        )
        self.reason = reason
        self.snapshot_id = header.id


@dataclass(slots=True)
class Repository:
    """An open repository: its store, its folder in the store, and its settings."""

    store: Store
    location: Location
    config: RepoConfig
    layout: RepoLayout = field(default_factory=RepoLayout)

    @property
    def url(self) -> str:
        return str(self.location)

    def key(self, relative: str) -> str:
        """The store key of a repository-relative path."""
        return self.layout.key(relative)

    # -- writing -----------------------------------------------------------------

    def retain_until(self, now: datetime | None = None) -> datetime | None:
        lock = self.config.object_lock
        if lock is None:
            return None
        return (now or datetime.now(UTC)) + timedelta(days=lock.days)

    def write(
        self,
        relative: str,
        data: bytes | memoryview | Iterable[bytes],
        *,
        content_type: str | None = None,
        part_size: int = DEFAULT_PART_SIZE,
    ) -> PutResult:
        """Write a repository file; under Object Lock it gets a retention date at once.

        An iterable body is produced on a helper thread (see ``pump``).
        """
        key = self.key(relative)
        if not isinstance(data, bytes | bytearray | memoryview):
            from lakeguard.storage.pump import pump

            data = pump(data)
        result = self.store.put(key, data, content_type=content_type, part_size=part_size)
        self.retain(relative, result.version_id)
        return result

    def retain(self, relative: str, version_id: str | None) -> None:
        lock = self.config.object_lock
        if lock is None:
            return
        from lakeguard.storage.s3_lock import put_retention

        until = self.retain_until()
        assert until is not None
        put_retention(
            self.store, self.key(relative), version_id=version_id, mode=lock.mode, until=until
        )

    # -- reading -----------------------------------------------------------------

    def read_bytes(self, relative: str) -> bytes:
        return self.store.get_bytes(self.key(relative))

    def exists(self, relative: str) -> bool:
        try:
            self.store.head(self.key(relative))
        except NotFoundError:
            return False
        return True

    def snapshots(self, *, source: str | None = None) -> list[SnapshotHeader]:
        """Complete snapshots, oldest first (only those of ``source`` if given).

        A header that cannot be read is left out with a warning: its source is
        unknown, so a backup choosing its parent here only loses the reuse it
        would have offered (it picks an older parent, or none), which is safe.
        Commands that must see every snapshot (prune) read headers otherwise.
        """
        damaged: list[DamagedHeader] = []
        headers = list_snapshots(self.store, self.layout, source=source, damaged=damaged)
        for item in damaged:
            log.warning(
                "warning: skipping snapshot %s: %s; %s",
                item.id,
                item.error,
                header_remedy(self.url, item.id),
            )
        return headers

    def snapshot(self, text: str, *, source: str | None = None) -> SnapshotHeader:
        """``latest``, a full id, a unique id prefix or a unique random tail."""
        try:
            return resolve_snapshot(self.store, self.layout, text, source=source)
        except HeaderDamaged as exc:
            raise exc.with_remedy(self.url) from None

    def fetch_manifest(self, header: SnapshotHeader, directory: Path) -> Path:
        """The snapshot's manifest as a local file in ``directory``, checked by SHA-256.

        Manifests never change once written, so a file already in ``directory``
        with the header's size and digest is used as is (a cache).
        """
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{header.id}.parquet"
        if (
            path.exists()
            and path.stat().st_size == header.manifest_size
            and (not header.manifest_sha256 or _file_sha256(path) == header.manifest_sha256)
        ):
            return path
        digest = hashlib.sha256()
        partial = path.with_suffix(f".part{os.getpid()}")
        try:
            with self.store.get(self.key(header.manifest)) as stream, partial.open("wb") as out:
                for chunk in stream:
                    digest.update(chunk)
                    out.write(chunk)
        except NotFoundError:
            partial.unlink(missing_ok=True)
            raise ManifestDamaged(
                self.url, header, f"snapshot {header.id} has no manifest ({header.manifest})"
            ) from None
        if header.manifest_sha256 and digest.hexdigest() != header.manifest_sha256:
            partial.unlink(missing_ok=True)
            raise ManifestDamaged(
                self.url,
                header,
                f"the manifest of snapshot {header.id} ({header.manifest}) does not match "
                "the SHA-256 in its header",
            )
        partial.replace(path)
        return path

    def open_archive(self, relative: str) -> ArchiveReader:
        from lakeguard.archive.reader import ArchiveReader

        return ArchiveReader(self.store, self.key(relative), name=relative)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def default_cache_dir(repo: Repository) -> Path:
    """Where manifests and catalog files of a repository are cached locally."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lakeguard" / repo.config.id


def open_repository(store: Store, location: Location) -> Repository:
    """Open the repository at ``location`` (UsageError when there is none)."""
    layout = RepoLayout(location.prefix)
    try:
        data = store.get_bytes(layout.key(layout.config))
    except (NotFoundError, BucketNotFoundError):
        raise UsageError(
            f"{location} is not a lakeguard repository (no lakeguard-repo.json): "
            f"create one with 'lakeguard init {location}'"
        ) from None
    config = RepoConfig.decode(data, str(location))
    return Repository(store=store, location=location, config=config, layout=layout)


@dataclass(frozen=True, slots=True)
class InitResult:
    repository: Repository
    created: bool  # False: the repository already existed with these settings

    def to_json(self) -> dict[str, Any]:
        config = self.repository.config.to_json()
        return {"repository": self.repository.url, "created": self.created, **config}


def init_repository(
    store: Store,
    location: Location,
    *,
    object_lock_days: int | None = None,
    object_lock_mode: str = "COMPLIANCE",
    now: datetime | None = None,
) -> InitResult:
    """Create a repository at ``location``; idempotent when one with these settings exists.

    With ``object_lock_days`` the store must be S3; a missing bucket is created
    with Object Lock enabled, an existing one must already have it.
    """
    mode = object_lock_mode.upper()
    if mode not in LOCK_MODES:
        raise UsageError(f"invalid object lock mode {object_lock_mode!r}: COMPLIANCE or GOVERNANCE")
    if object_lock_days is not None and object_lock_days < 1:
        raise UsageError(f"--object-lock-days must be at least 1, got {object_lock_days}")
    lock = ObjectLock(mode, object_lock_days) if object_lock_days else None
    if lock is not None:
        from lakeguard.storage.s3_lock import ensure_lock_enabled

        try:
            ensure_lock_enabled(store)
        except UnsupportedError as exc:
            raise UsageError(f"--object-lock-days: {exc}") from None
    elif not store.exists():
        store.create()
    layout = RepoLayout(location.prefix)
    try:
        existing = store.get_bytes(layout.key(layout.config))
    except NotFoundError:
        existing = None
    if existing is not None:
        config = RepoConfig.decode(existing, str(location))
        repo = Repository(store=store, location=location, config=config, layout=layout)
        if config.object_lock != lock:
            have = f"{config.object_lock.days} days" if config.object_lock else "no object lock"
            raise UsageError(
                f"{location} is already a lakeguard repository (id {config.id}) with {have}: "
                "settings of an existing repository cannot change"
            )
        return InitResult(repo, created=False)
    try:
        next(iter(store.list(layout.prefix)))
        raise UsageError(f"{location} is not empty: a repository needs an empty folder or bucket")
    except StopIteration:
        pass
    config = RepoConfig(
        id=uuid.uuid4().hex, created=(now or datetime.now(UTC)).astimezone(UTC), object_lock=lock
    )
    repo = Repository(store=store, location=location, config=config, layout=layout)
    body = (json.dumps(config.to_json(), indent=2) + "\n").encode()
    try:
        repo.write(layout.config, body, content_type="application/json")
    except UnsupportedError as exc:
        raise UsageError(f"cannot create a repository at {location}: {exc}") from None
    return InitResult(repo, created=True)

"""Storage: the Store protocol, its backends, and the wrappers stacked on them.

    open_store(location, settings)
        -> base store by scheme:  s3 -> S3Store (obstore data plane, boto3 control plane)
                                  file -> LocalStore, memory -> MemoryStore
        -> FaultStore   (only when LAKEGUARD_FAULTS is set: tests and drills)
        -> RetryStore   (transient errors only, exponential backoff with jitter)

Nothing above this package imports boto3 or obstore.
"""

from __future__ import annotations

import dataclasses
import os

from lakeguard.location import Location
from lakeguard.storage.base import (
    Capabilities,
    DeleteResult,
    ObjectInfo,
    ObjectStream,
    PutResult,
    Store,
)

__all__ = [
    "Capabilities",
    "DeleteResult",
    "ObjectInfo",
    "ObjectStream",
    "PutResult",
    "Store",
    "StoreSettings",
    "open_store",
]


@dataclasses.dataclass(frozen=True, slots=True)
class StoreSettings:
    """How to reach stores. Unset fields fall back to the standard AWS settings."""

    endpoint_url: str | None = None
    profile: str | None = None
    region: str | None = None
    concurrency: int = 16
    retries: int = 4  # attempts for a transient error, at this layer
    fast_retry: bool = False  # tiny backoff, for tests
    connect_timeout: float = 5.0
    read_timeout: float = 60.0
    # Ask S3 to check and keep a SHA-256 of every PUT (x-amz-checksum-sha256).
    # The repository turns it off for its archives: they carry their own
    # hashes, and the server's check costs as much CPU as the client's.
    server_checksums: bool = True
    # fsync new local files before they appear (see LocalStore): a repository
    # needs that order; data targets only sync files that replace others.
    sync_new_files: bool = False
    # Parts in flight per multipart upload (memory: this many x part size).
    parts_in_flight: int = 4

    def for_repository(self) -> StoreSettings:
        """These settings for a backup repository's store: a backup uploads one
        archive per packing worker at once, so each needs fewer parts in flight."""
        return dataclasses.replace(
            self, server_checksums=False, sync_new_files=True, parts_in_flight=2
        )


def open_base_store(location: Location, settings: StoreSettings) -> Store:
    """The store behind ``location``, without wrappers."""
    if location.scheme == "s3":
        from lakeguard.storage.s3 import S3Store

        return S3Store(location.root, settings)
    if location.scheme == "file":
        from lakeguard.storage.local import LocalStore

        return LocalStore(location.root, sync_new=settings.sync_new_files)
    from lakeguard.storage.memory import MemoryStore

    return MemoryStore.named(location.root)


def open_store(location: Location, settings: StoreSettings | None = None) -> Store:
    """The store behind ``location`` with the standard wrappers composed."""
    from lakeguard.storage.faults import FaultPlan, FaultStore
    from lakeguard.storage.wrappers import RetryPolicy, RetryStore

    settings = settings or StoreSettings()
    store = open_base_store(location, settings)
    faults = os.environ.get("LAKEGUARD_FAULTS")
    if faults:
        store = FaultStore(store, FaultPlan.parse(faults))
    policy = RetryPolicy(attempts=settings.retries, fast=settings.fast_retry)
    return RetryStore(store, policy)

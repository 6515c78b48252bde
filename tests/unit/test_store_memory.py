"""MemoryStore passes the shared store suite (plain and versioned)."""

from __future__ import annotations

import pytest

from lakeguard.errors import BucketNotFoundError
from lakeguard.storage.memory import MemoryStore
from storage_suite import StoreSuite, VersionedStoreSuite


class TestMemoryStore(StoreSuite):
    @pytest.fixture
    def store(self) -> MemoryStore:
        return MemoryStore("plain")

    @pytest.fixture
    def other_store(self) -> MemoryStore:
        return MemoryStore("other")


class TestMemoryStoreVersioned(VersionedStoreSuite):
    @pytest.fixture
    def store(self) -> MemoryStore:
        return MemoryStore("plain")

    @pytest.fixture
    def versioned_store(self) -> MemoryStore:
        return MemoryStore("versioned", versioning="Enabled")


def test_a_dropped_bucket_is_reported_as_missing() -> None:
    store = MemoryStore("gone")
    store.drop()
    assert not store.exists()
    with pytest.raises(BucketNotFoundError, match="memory://gone"):
        list(store.list())

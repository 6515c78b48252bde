"""Listings broken mid-way by injected faults resume exactly on SeaweedFS.

SeaweedFS answers StartAfter in its own way (``a/x`` gives back ``a-b``,
``a-b`` skips ``a-b/c`` and ``a/...``), so resuming a listing by key would
repeat or lose objects there. Keys below mix ``-``, ``.`` and ``/`` around one
name, where byte order and folder order disagree.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from lakeguard.location import parse_location
from lakeguard.storage import StoreSettings, open_store
from lakeguard.storage.faults import FaultStore
from lakeguard.storage.wrappers import RetryStore

pytestmark = pytest.mark.s3

KEYS = ["a-b", "a-b/c", "a.c", "a/x", "a/y", "a/z/q", "a0", "ab", "b", "b-c/d", "b/e"]


@pytest.fixture
def lake(versioned_bucket: str, s3_client: Any) -> Iterator[str]:
    """The versioned bucket, removed afterwards: the test server has few volume slots."""
    yield versioned_bucket
    for page in s3_client.get_paginator("list_object_versions").paginate(Bucket=versioned_bucket):
        for item in [*page.get("Versions", ()), *page.get("DeleteMarkers", ())]:
            s3_client.delete_object(
                Bucket=versioned_bucket, Key=item["Key"], VersionId=item["VersionId"]
            )
    s3_client.delete_bucket(Bucket=versioned_bucket)


def test_listings_resumed_after_faults_miss_and_repeat_nothing(
    lake: str, s3_settings: StoreSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    location = parse_location(f"s3://{lake}")
    plain = open_store(location, s3_settings)
    for index, key in enumerate(KEYS):
        plain.put(key, b"1")
        if index % 3 == 0:
            plain.put(key, b"2")
    expected = [(i.key, i.version_id) for i in plain.list()]
    expected_versions = [(i.key, i.version_id) for i in plain.list_versions()]
    assert sorted(k for k, _ in expected) == sorted(KEYS)
    assert len(expected_versions) == len(KEYS) + 4
    injected = 0
    for seed in range(4):
        monkeypatch.setenv(
            "LAKEGUARD_FAULTS", f"fail=0.2,page=2,seed={seed},ops=list+list_versions"
        )
        store = open_store(location, replace(s3_settings, retries=30))
        assert isinstance(store, RetryStore) and isinstance(store.inner, FaultStore)
        assert [(i.key, i.version_id) for i in store.list()] == expected
        assert [(i.key, i.version_id) for i in store.list_versions()] == expected_versions
        injected += store.inner.injected
    assert injected >= 4

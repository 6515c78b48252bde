"""A listing broken mid-way resumes exactly, whatever order the store lists in.

SeaweedFS walks folders: it may list ``a/x`` before ``a-b`` although ``-``
sorts before ``/``, and its StartAfter filters neither in byte order nor in
its own. ``FolderFirst`` reproduces that on the in-memory store.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterator

import pytest

from lakeguard.errors import StoreError, TransientError, UsageError
from lakeguard.storage.base import ObjectInfo
from lakeguard.storage.faults import FaultPlan, FaultStore
from lakeguard.storage.memory import MemoryStore
from lakeguard.storage.wrappers import RetryPolicy, RetryStore, StoreWrapper

KEYS = [
    "a-b",
    "a-b/c",
    "a.c",
    "a/x",
    "a/y/1",
    "a/y/2",
    "a/y-z",
    "a/z",
    "a0",
    "b/a/b",
    "b/a-b",
    "b/a.b",
    "b-c",
    "c",
]
LISTINGS = frozenset({"list", "list_versions"})


def folder_first(key: str) -> builtins.list[str]:
    return key.split("/")


class FolderFirst(StoreWrapper):
    """Lists folder by folder (``a/x`` before ``a-b``); start_after filters in byte order."""

    def list(self, prefix: str = "", *, start_after: str | None = None) -> Iterator[ObjectInfo]:
        items = sorted(self.inner.list(prefix), key=lambda i: folder_first(i.key))
        return iter([i for i in items if start_after is None or i.key > start_after])

    def list_versions(self, prefix: str = "") -> Iterator[ObjectInfo]:
        # Stable sort: a key's versions stay newest first.
        return iter(sorted(self.inner.list_versions(prefix), key=lambda i: folder_first(i.key)))


def lake() -> MemoryStore:
    store = MemoryStore("m", versioning="Enabled")
    for index, key in enumerate(KEYS):
        store.put(key, b"1")
        if index % 3 == 0:
            store.put(key, b"2")
        if index % 5 == 4:
            store.delete(key)
    return store


def identities(items: Iterator[ObjectInfo]) -> builtins.list[tuple[str, str | None]]:
    return [(i.key, i.version_id) for i in items]


def test_the_folder_first_order_differs_from_byte_order() -> None:
    listed = [i.key for i in FolderFirst(lake()).list()]
    assert listed != sorted(listed)
    assert listed.index("a/x") < listed.index("a-b")


def test_resumed_listings_yield_each_item_once_in_the_store_order() -> None:
    store = FolderFirst(lake())
    expected = identities(store.list())
    expected_versions = identities(store.list_versions())
    assert len(expected_versions) > len(expected)
    injected = 0
    for seed in range(8):
        faulty = FaultStore(store, FaultPlan(fail_rate=0.15, page=2, seed=seed, ops=LISTINGS))
        retrying = RetryStore(faulty, RetryPolicy(attempts=30, fast=True))
        assert identities(retrying.list()) == expected
        assert identities(retrying.list_versions()) == expected_versions
        assert retrying.retries == faulty.injected
        injected += faulty.injected
    assert injected >= 8


def test_a_caller_start_after_is_kept_when_resuming() -> None:
    store = lake()  # byte order, as S3
    expected = identities(store.list(start_after="a/x"))
    faulty = FaultStore(store, FaultPlan(fail_rate=0.2, page=2, seed=4, ops=LISTINGS))
    retrying = RetryStore(faulty, RetryPolicy(attempts=30, fast=True))
    assert identities(retrying.list(start_after="a/x")) == expected
    assert faulty.injected > 0


class BreaksOnce(StoreWrapper):
    """The first listing breaks after ``after`` items, once ``meanwhile`` has run."""

    def __init__(self, inner: MemoryStore, after: int, meanwhile: Callable[[], None]) -> None:
        super().__init__(inner)
        self.after = after
        self.meanwhile = meanwhile
        self.calls = 0

    def list(self, prefix: str = "", *, start_after: str | None = None) -> Iterator[ObjectInfo]:
        self.calls += 1
        first = self.calls == 1
        for index, item in enumerate(self.inner.list(prefix, start_after=start_after)):
            if first and index == self.after:
                self.meanwhile()
                raise TransientError("connection reset")
            yield item


def test_items_added_and_removed_during_a_break_are_seen_as_a_listing_would() -> None:
    inner = MemoryStore("m")
    for index in range(10):
        inner.put(f"k{index}", b"x")

    def meanwhile() -> None:
        inner.delete("k1")  # listed already
        inner.delete("k7")  # not listed yet: gone
        inner.put("k55", b"x")  # after the break point: seen
        inner.put("k00", b"x")  # before it: not seen, as with a paged listing

    store = RetryStore(BreaksOnce(inner, 4, meanwhile), RetryPolicy(attempts=3, fast=True))
    keys = [i.key for i in store.list()]
    assert keys == ["k0", "k1", "k2", "k3", "k4", "k5", "k55", "k6", "k8", "k9"]


def test_a_new_current_version_does_not_repeat_versions_listed() -> None:
    inner = MemoryStore("m", versioning="Enabled")
    for body in (b"1", b"2", b"3"):
        inner.put("k", body)
    inner.put("z", b"1")
    before = identities(inner.list_versions())

    class Breaks(StoreWrapper):
        calls = 0

        def list_versions(self, prefix: str = "") -> Iterator[ObjectInfo]:
            self.calls += 1
            items = builtins.list(self.inner.list_versions(prefix))
            if self.calls == 1:
                yield from items[:2]
                raise TransientError("connection reset")
            # A store that puts a key's current version first may reorder its
            # versions when another becomes current: the first one listed moves.
            yield from [items[1], items[0], *items[2:]]

    store = RetryStore(Breaks(inner), RetryPolicy(attempts=3, fast=True))
    listed = identities(store.list_versions())
    assert listed == before


def test_a_listing_whose_last_item_is_gone_resumes_after_the_one_before() -> None:
    inner = MemoryStore("m")
    for index in range(10):
        inner.put(f"k{index}", b"x")

    def meanwhile() -> None:
        inner.delete("k3")  # the last item listed before the break
        inner.put("k30", b"x")  # where it was: new, so seen

    store = RetryStore(BreaksOnce(inner, 4, meanwhile), RetryPolicy(attempts=3, fast=True))
    keys = [i.key for i in store.list()]
    assert keys == ["k0", "k1", "k2", "k3", "k30", "k4", "k5", "k6", "k7", "k8", "k9"]


def test_a_listing_whose_recent_items_are_all_gone_fails_loudly() -> None:
    inner = MemoryStore("m")
    for index in range(10):
        inner.put(f"k{index}", b"x")

    def meanwhile() -> None:
        for index in range(4):
            inner.delete(f"k{index}")

    store = RetryStore(BreaksOnce(inner, 4, meanwhile), RetryPolicy(attempts=3, fast=True))
    seen: builtins.list[str] = []
    with pytest.raises(StoreError, match="the last items it gave are no longer listed"):
        seen.extend(i.key for i in store.list())
    assert seen == ["k0", "k1", "k2", "k3"]


def test_fault_plan_page_setting() -> None:
    assert FaultPlan.parse("fail=0.2,page=50,ops=list").page == 50
    assert FaultPlan().page is None  # listings fail only when they start
    for text in ("page=0", "page=x"):
        with pytest.raises(UsageError, match="fault setting 'page'"):
            FaultPlan.parse(text)

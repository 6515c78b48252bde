"""The one test suite every Store passes: memory, local directory, S3.

A backend's test module subclasses ``StoreSuite`` (and ``VersionedStoreSuite``
when it keeps versions) and provides the fixtures:

- ``store``: a new, empty, unversioned store;
- ``other_store``: a second empty store of the same kind on the same endpoint
  (for ``copy_from``);
- ``versioned_store``: a new, empty store with versioning enabled.

Class attributes say what a backend keeps, so the same tests hold for all.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from lakeguard.errors import NotFoundError, UnsupportedError
from lakeguard.hashing import StreamHasher
from lakeguard.storage.base import MIN_PART_SIZE, Store, read_all, read_buffer
from lakeguard.storage.memory import MemoryStore

ODD_KEYS = [
    "with space/file name.txt",
    "unicode/données-日本-😀.csv",
    "plus+sign/a+b=c.txt",
    "equals/dt=2026-02-11/part=1.parquet",
    "punct/a&b;c,d@e!f(g)h'i~j$k.txt",
    "percent/100%/x%2Fy",
]


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def put_many(store: Store, keys: list[str], body: bytes = b"x") -> None:
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda key: store.put(key, body), keys))


def delete_many(store: Store, keys: list[str]) -> None:
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(store.delete, keys))


class StoreSuite:
    """Behaviour every store shares."""

    # The store returns the ETag of what was written on head/list.
    etag_on_head = True
    # The store keeps content type and user metadata.
    keeps_attributes = True
    # An iterable body larger than part_size gets an S3 multipart ETag ("...-N").
    multipart_etag = True
    # More than one listing page (S3 pages hold 1,000 keys).
    many_keys = 1_050
    # Listings put "a-b" before "a/x" (S3's byte order) even where the store
    # keeps folders; SeaweedFS lists the folder first.
    bytewise_folder_order = True
    # The folder of a deleted last object leaves list_prefixes at once
    # (SeaweedFS removes empty folders a little later).
    empty_folders_vanish = True

    # -- put / get -------------------------------------------------------------

    def test_put_get_roundtrip_bytes(self, store: Store) -> None:
        data = bytes(range(256)) * 1000
        result = store.put("dir/object.bin", data)
        assert result.etag == md5(data)
        assert result.key == "dir/object.bin"
        assert store.get_bytes("dir/object.bin") == data
        assert read_all(store.get("dir/object.bin")) == data

    def test_put_iterable_streams_and_roundtrips(self, store: Store) -> None:
        chunks = [bytes([n]) * 100_000 for n in range(5)]
        result = store.put("streamed", iter(chunks))
        assert store.get_bytes("streamed") == b"".join(chunks)
        assert result.etag == md5(b"".join(chunks))

    def test_empty_object(self, store: Store) -> None:
        store.put("empty", b"")
        assert store.get_bytes("empty") == b""
        assert store.head("empty").size == 0

    def test_large_iterable_uses_parts_of_part_size(self, store: Store) -> None:
        data = bytes(range(256)) * (MIN_PART_SIZE * 2 // 256 + 1000)  # 2 parts and a bit
        chunks = [data[i : i + 1_000_000] for i in range(0, len(data), 1_000_000)]
        result = store.put("big", iter(chunks), part_size=MIN_PART_SIZE)
        hasher = StreamHasher(part_sizes=[MIN_PART_SIZE])
        hasher.update(data)
        expected = hasher.multipart_etags()[0] if self.multipart_etag else hasher.md5
        assert result.etag == expected
        if self.multipart_etag:
            assert expected.endswith("-3")
        assert store.head("big").size == len(data)
        assert md5(store.get_bytes("big")) == hasher.md5

    def test_overwrite_replaces_content(self, store: Store) -> None:
        store.put("k", b"old")
        store.put("k", b"new content")
        assert store.get_bytes("k") == b"new content"
        assert [i.key for i in store.list()] == ["k"]

    def test_ranged_get(self, store: Store) -> None:
        data = bytes(range(256)) * 40
        store.put("r", data)
        assert store.get_bytes("r", offset=100, length=50) == data[100:150]
        assert store.get_bytes("r", offset=10_000) == data[10_000:]
        assert store.get_bytes("r", offset=10_200, length=1_000) == data[10_200:]
        assert store.get_bytes("r", length=3) == data[:3]
        with store.get("r", offset=5, length=5) as stream:
            assert stream.info.size == len(data)
            assert b"".join(stream) == data[5:10]

    def test_read_buffer_gives_the_whole_body_or_the_range(self, store: Store) -> None:
        data = bytes(range(256)) * 8192 + b"tail"  # 2 MiB + 4: more than one read chunk
        store.put("b", data)
        with store.get("b") as stream:
            assert stream.info.size == len(data)
            whole = read_buffer(stream)
            assert bytes(whole) == data
        with store.get("b", offset=1_000, length=5_000) as stream:
            assert bytes(read_buffer(stream)) == data[1_000:6_000]
        with store.get("b") as stream:  # a stream begun chunk by chunk gives the rest
            chunks = iter(stream)
            first = next(chunks)
            assert first + bytes(read_buffer(stream)) == data

    def test_head_fields(self, store: Store) -> None:
        before = datetime.now(UTC) - timedelta(seconds=5)
        store.put("h/one.json", b'{"a": 1}', content_type="application/json", metadata={"k": "v"})
        info = store.head("h/one.json")
        assert info.key == "h/one.json"
        assert info.size == 8
        assert info.last_modified is not None
        assert before <= info.last_modified <= datetime.now(UTC) + timedelta(seconds=5)
        assert not info.is_delete_marker
        assert info.is_latest
        if self.etag_on_head:
            assert info.etag == md5(b'{"a": 1}')
        if self.keeps_attributes:
            assert info.content_type == "application/json"
            assert dict(info.metadata or {}) == {"k": "v"}

    def test_get_stream_describes_the_object(self, store: Store) -> None:
        store.put("g", b"12345", content_type="text/plain")
        with store.get("g") as stream:
            assert stream.info.size == 5
            assert stream.info.key == "g"
            if self.keeps_attributes:
                assert stream.info.content_type == "text/plain"
            assert b"".join(stream) == b"12345"

    def test_missing_objects_raise_not_found(self, store: Store) -> None:
        with pytest.raises(NotFoundError):
            store.head("nope")
        with pytest.raises(NotFoundError):
            store.get_bytes("nope")
        with pytest.raises(NotFoundError):
            store.copy("nope", "dst")
        assert list(store.list("nope")) == []

    def test_odd_keys_roundtrip(self, store: Store) -> None:
        for index, key in enumerate(ODD_KEYS):
            store.put(key, f"body {index}".encode())
        for index, key in enumerate(ODD_KEYS):
            assert store.get_bytes(key) == f"body {index}".encode()
            assert store.head(key).size == len(f"body {index}")
        assert [i.key for i in store.list()] == sorted(ODD_KEYS)
        assert [i.key for i in store.list("plus+sign/")] == ["plus+sign/a+b=c.txt"]
        store.copy(ODD_KEYS[1], "copy/" + ODD_KEYS[1])
        assert store.get_bytes("copy/" + ODD_KEYS[1]) == b"body 1"
        for key in ODD_KEYS:
            store.delete(key)
        assert [i.key for i in store.list()] == ["copy/" + ODD_KEYS[1]]

    # -- listings --------------------------------------------------------------

    def test_list_order_prefix_and_start_after(self, store: Store) -> None:
        keys = ["a/x", "a/y/z", "a0", "b", "dt=1/p", "dt=10/p", "dt=2/p", "é"]
        for key in reversed(keys):
            store.put(key, key.encode())
        listed = list(store.list())
        assert [i.key for i in listed] == sorted(keys)
        assert {i.key: i.size for i in listed} == {k: len(k.encode()) for k in keys}
        assert all(i.version_id is None and i.is_latest for i in listed)
        assert all(i.last_modified is not None for i in listed)
        if self.etag_on_head:
            assert all(i.etag == md5(i.key.encode()) for i in listed)
        assert [i.key for i in store.list("a/")] == ["a/x", "a/y/z"]
        assert [i.key for i in store.list("a")] == ["a/x", "a/y/z", "a0"]
        assert [i.key for i in store.list("dt=1")] == ["dt=1/p", "dt=10/p"]
        assert [i.key for i in store.list(start_after="a/x")] == keys[1:]
        assert [i.key for i in store.list("a/", start_after="a/x")] == ["a/y/z"]
        assert [i.key for i in store.list("dt=", start_after="dt=10/p")] == ["dt=2/p"]
        assert [i.key for i in store.list(start_after="zzz")] == ["é"]
        assert [i.key for i in store.list("dt=", start_after="b")] == keys[4:7]

    def test_list_order_is_bytewise_around_folders(self, store: Store) -> None:
        # S3 orders keys by their UTF-8 bytes: "a-b" < "a/x" < "a0". Servers that
        # keep folders (SeaweedFS) list a folder before its "a-..." siblings.
        if not self.bytewise_folder_order:
            pytest.skip("this server lists folders first")
        keys = ["a-b", "a/x", "a/y/z", "a0"]
        for key in reversed(keys):
            store.put(key, b"1")
        assert [i.key for i in store.list()] == keys
        assert [i.key for i in store.list(start_after="a/")] == keys[1:]
        assert [i.key for i in store.list(start_after="a-b")] == keys[1:]

    def test_list_prefixes(self, store: Store) -> None:
        for key in ["top", "dt=1/a", "dt=1/b/c", "dt=2/a", "other/x/y", "dt=10/z"]:
            store.put(key, b"1")
        assert store.list_prefixes() == ["dt=1/", "dt=10/", "dt=2/", "other/"]
        assert store.list_prefixes("dt=1/") == ["dt=1/b/"]
        assert store.list_prefixes("dt=") == ["dt=1/", "dt=10/", "dt=2/"]
        assert store.list_prefixes("other/x/") == []
        assert store.list_prefixes("missing/") == []

    def test_listing_pages_beyond_one_thousand_keys(self, store: Store) -> None:
        keys = [f"many/{n:05d}" for n in range(self.many_keys)]
        put_many(store, keys)
        listed = [i.key for i in store.list("many/")]
        assert listed == keys
        assert [i.key for i in store.list("many/", start_after=keys[999])] == keys[1000:]
        assert len(list(store.list_versions("many/"))) == len(keys)

    def test_list_versions_of_unversioned_store(self, store: Store) -> None:
        store.put("a", b"1")
        store.put("a", b"2")
        versions = list(store.list_versions())
        assert [(v.key, v.version_id, v.is_latest) for v in versions] == [("a", None, True)]
        assert store.versioning() is None

    # -- copy and delete -------------------------------------------------------

    def test_copy_keeps_content_type_and_metadata(self, store: Store) -> None:
        store.put("src", b"payload", content_type="text/csv", metadata={"owner": "team-a"})
        result = store.copy("src", "dst")
        assert result.etag == md5(b"payload")
        assert store.get_bytes("dst") == b"payload"
        if self.keeps_attributes:
            info = store.head("dst")
            assert info.content_type == "text/csv"
            assert dict(info.metadata or {}) == {"owner": "team-a"}
            store.copy("src", "dst2", metadata={"owner": "team-b"})
            assert dict(store.head("dst2").metadata or {}) == {"owner": "team-b"}
        assert store.get_bytes("src") == b"payload"

    def test_copy_with_what_a_listing_says_of_the_source(
        self, store: Store, other_store: Store
    ) -> None:
        store.put("src", b"listed", content_type="text/csv", metadata={"owner": "team-a"})
        result = store.copy("src", "dst", src_info=next(iter(store.list("src"))))
        assert (result.etag, result.size) == (md5(b"listed"), 6)
        assert store.get_bytes("dst") == b"listed"
        if self.keeps_attributes:
            info = store.head("dst")
            assert info.content_type == "text/csv"
            assert dict(info.metadata or {}) == {"owner": "team-a"}
        other_store.put("there", b"cross")
        listed = next(iter(other_store.list("there")))
        store.copy_from(other_store, "there", "here", src_info=listed)
        assert store.get_bytes("here") == b"cross"

    def test_copy_onto_itself_keeps_bytes(self, store: Store) -> None:
        store.put("same", b"payload", metadata={"a": "1"})
        store.copy("same", "same", metadata={"a": "2"})
        assert store.get_bytes("same") == b"payload"
        if self.keeps_attributes:
            assert dict(store.head("same").metadata or {}) == {"a": "2"}

    def test_copy_from_another_store_of_the_same_kind(
        self, store: Store, other_store: Store
    ) -> None:
        other_store.put("in-other", b"cross", content_type="text/plain")
        result = store.copy_from(other_store, "in-other", "here")
        assert store.get_bytes("here") == b"cross"
        assert result.etag == md5(b"cross")
        assert other_store.get_bytes("in-other") == b"cross"

    def test_copy_from_a_foreign_store_is_unsupported(self, store: Store) -> None:
        foreign: Store = MemoryStore("foreign")
        if isinstance(store, MemoryStore):
            from lakeguard.storage.local import LocalStore

            foreign = LocalStore("/nonexistent-lakeguard-dir")
        foreign_key = "k"
        with pytest.raises(UnsupportedError):
            store.copy_from(foreign, foreign_key, "dst")

    def test_delete(self, store: Store) -> None:
        store.put("d/1", b"1")
        store.put("d/2", b"2")
        result = store.delete("d/1")
        assert result.key == "d/1"
        assert not result.delete_marker
        assert [i.key for i in store.list()] == ["d/2"]
        with pytest.raises(NotFoundError):
            store.head("d/1")
        store.delete("d/1")  # deleting what is gone succeeds, as in S3
        store.delete("d/2")
        assert list(store.list()) == []
        if self.empty_folders_vanish:
            assert store.list_prefixes() == []

    def test_store_exists(self, store: Store) -> None:
        assert store.exists()
        store.create()  # no error when it exists
        assert store.exists()
        assert store.url


class VersionedStoreSuite:
    """Behaviour of stores that keep versions (memory, S3)."""

    def test_versioning_states(self, store: Store, versioned_store: Store) -> None:
        assert store.versioning() is None
        assert versioned_store.versioning() == "Enabled"
        versioned_store.set_versioning(False)
        assert versioned_store.versioning() == "Suspended"
        versioned_store.set_versioning(True)
        assert versioned_store.versioning() == "Enabled"
        assert versioned_store.capabilities.versioning

    def test_list_versions_newest_first_with_delete_markers(self, versioned_store: Store) -> None:
        s = versioned_store
        v1 = s.put("k", b"one").version_id
        v2 = s.put("k", b"two").version_id
        s.put("j", b"other")
        marker = s.delete("k")
        assert marker.delete_marker
        assert v1 and v2 and marker.version_id and len({v1, v2, marker.version_id}) == 3
        versions = [v for v in s.list_versions() if v.key == "k"]
        assert [v.version_id for v in versions] == [marker.version_id, v2, v1]
        assert [v.is_latest for v in versions] == [True, False, False]
        assert [v.is_delete_marker for v in versions] == [True, False, False]
        assert [v.size for v in versions[1:]] == [3, 3]
        assert versions[1].etag == md5(b"two")
        assert [v.key for v in s.list_versions()] == ["j", "k", "k", "k"]
        assert [i.key for i in s.list()] == ["j"]
        with pytest.raises(NotFoundError):
            s.head("k")
        assert s.get_bytes("k", version_id=v1) == b"one"
        assert s.head("k", version_id=v2).size == 3
        with s.get("k", version_id=v2) as stream:
            assert stream.info.version_id == v2
            assert b"".join(stream) == b"two"

    def test_copy_of_a_version_creates_a_new_version_on_top(self, versioned_store: Store) -> None:
        s = versioned_store
        v1 = s.put("k", b"good", metadata={"m": "1"}).version_id
        s.put("k", b"bad")
        result = s.copy("k", "k", src_version_id=v1)
        assert result.version_id not in (None, v1)
        assert s.get_bytes("k") == b"good"
        versions = list(s.list_versions("k"))
        assert next(v.version_id for v in versions) == result.version_id
        assert len(versions) == 3

    def test_delete_a_version_removes_it_for_good(self, versioned_store: Store) -> None:
        s = versioned_store
        v1 = s.put("k", b"one").version_id
        v2 = s.put("k", b"two").version_id
        removed = s.delete("k", version_id=v2)
        assert removed.version_id == v2
        assert s.get_bytes("k") == b"one"
        assert [v.version_id for v in s.list_versions("k")] == [v1]
        with pytest.raises(NotFoundError):
            s.get_bytes("k", version_id=v2)

    def test_removing_a_delete_marker_undeletes(self, versioned_store: Store) -> None:
        s = versioned_store
        s.put("k", b"alive")
        marker = s.delete("k")
        with pytest.raises(NotFoundError):
            s.get_bytes("k")
        result = s.delete("k", version_id=marker.version_id)
        assert result.delete_marker
        assert s.get_bytes("k") == b"alive"

    def test_null_versions_from_before_versioning(self, store: Store) -> None:
        store.put("old", b"before")
        assert [v.version_id for v in store.list_versions()] == [None]
        store.set_versioning(True)
        assert [v.version_id for v in store.list_versions()] == ["null"]
        assert store.head("old").version_id == "null"
        new = store.put("old", b"after").version_id
        assert new not in (None, "null")
        versions = list(store.list_versions())
        assert [(v.version_id, v.is_latest) for v in versions] == [(new, True), ("null", False)]
        assert store.get_bytes("old", version_id="null") == b"before"
        store.set_versioning(False)
        assert store.versioning() == "Suspended"
        # S3 may omit the version header of a PUT into a suspended bucket.
        assert store.put("old", b"suspended").version_id in ("null", None)
        assert [v.version_id for v in store.list_versions()] == ["null", new]
        assert store.get_bytes("old") == b"suspended"

    def test_pages_of_only_delete_markers(self, versioned_store: Store) -> None:
        # Deleting keys that never existed leaves only delete markers: the first
        # listing page(s) hold nothing else.
        s = versioned_store
        keys = [f"a/{n:05d}" for n in range(1_050)]
        delete_many(s, keys)
        s.put("b", b"live")
        versions = list(s.list_versions())
        assert [v.key for v in versions] == [*keys, "b"]
        assert all(v.is_delete_marker and v.is_latest for v in versions[:-1])
        assert not versions[-1].is_delete_marker
        assert [i.key for i in s.list()] == ["b"]

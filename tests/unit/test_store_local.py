"""LocalStore passes the shared store suite, and keys never escape its root."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from lakeguard.errors import BucketNotFoundError, UnsupportedError, UsageError
from lakeguard.storage.local import TMP_PREFIX, LocalStore
from storage_suite import StoreSuite


class TestLocalStore(StoreSuite):
    multipart_etag = False  # a file has one MD5, however it was written

    @pytest.fixture
    def store(self, tmp_path: Path) -> LocalStore:
        return LocalStore(tmp_path / "root")

    @pytest.fixture(autouse=True)
    def _root(self, store: LocalStore) -> None:
        store.create()

    @pytest.fixture
    def other_store(self, tmp_path: Path) -> LocalStore:
        other = LocalStore(tmp_path / "other")
        other.create()
        return other


@pytest.mark.parametrize(
    "key",
    [
        "../escape",
        "a/../../escape",
        "/etc/passwd",
        "a//b",
        "a/./b",
        "a/",
        "",
        "nul\x00byte",
        f"a/{TMP_PREFIX}x",
    ],
)
def test_keys_that_would_escape_or_alias_are_refused(tmp_path: Path, key: str) -> None:
    store = LocalStore(tmp_path / "root")
    store.create()
    with pytest.raises(UsageError):
        store.put(key, b"x")
    with pytest.raises(UsageError):
        store.get_bytes(key)
    with pytest.raises(UsageError):
        store.delete(key)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["root"]
    assert list((tmp_path / "root").iterdir()) == []


def test_files_land_under_the_root_and_temp_files_are_invisible(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put("dt=1/part-0.parquet", b"data")
    assert (tmp_path / "dt=1" / "part-0.parquet").read_bytes() == b"data"
    (tmp_path / "dt=1" / f"{TMP_PREFIX}leftover").write_bytes(b"half")
    assert [i.key for i in store.list()] == ["dt=1/part-0.parquet"]


def test_failed_streaming_put_leaves_no_file(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put("k", b"old")

    def broken() -> list[bytes]:
        raise RuntimeError("source failed")

    def body():  # type: ignore[no-untyped-def]
        yield b"partial"
        broken()

    with pytest.raises(RuntimeError):
        store.put("k", body())
    assert store.get_bytes("k") == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k"]


def test_etag_is_dropped_when_another_program_changes_the_file(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put("k", b"original", content_type="text/plain")
    assert store.head("k").etag is not None
    (tmp_path / "k").write_bytes(b"changed by hand")
    info = store.head("k")
    assert info.etag is None
    assert info.size == len(b"changed by hand")


def test_a_missing_root_is_a_missing_bucket(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "nope")
    assert not store.exists()
    with pytest.raises(BucketNotFoundError, match="nope"):
        list(store.list())
    with pytest.raises(BucketNotFoundError):
        store.put("k", b"x")
    with pytest.raises(BucketNotFoundError):
        store.head("k")


def test_a_key_cannot_also_be_a_folder(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put("a/b", b"1")
    with pytest.raises(UnsupportedError, match="folder"):
        store.put("a", b"2")
    store.put("c", b"3")
    with pytest.raises(UnsupportedError):
        store.put("c/d", b"4")
    assert store.get_bytes("a/b") == b"1"


def test_versions_are_refused(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put("k", b"1")
    assert store.get_bytes("k", version_id="null") == b"1"
    with pytest.raises(UnsupportedError):
        store.set_versioning(True)


@pytest.mark.parametrize(
    "vouched", ["0123456789abcdef0123456789abcdef", "0123456789abcdef0123456789abcdef-6"]
)
def test_a_vouched_etag_is_kept_without_hashing(tmp_path: Path, vouched: str) -> None:
    store = LocalStore(tmp_path)
    result = store.put("a/x", iter([b"abc", b"def"]), etag=vouched)
    assert result.etag == vouched
    assert store.head("a/x").etag == vouched
    # Without one, the ETag is the MD5 of what was written.
    assert store.put("a/y", iter([b"abc"])).etag == "900150983cd24fb0d6963f7d28e17f72"


def test_a_memoryview_is_written_as_is(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    blob = bytearray(b"..abcdef..")
    result = store.put("v", memoryview(blob)[2:8])
    assert (tmp_path / "v").read_bytes() == b"abcdef"
    assert (result.size, result.etag) == (6, hashlib.md5(b"abcdef").hexdigest())


def test_replacing_a_file_always_syncs_a_new_one_only_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    synced: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real(fd))[1])
    data = LocalStore(tmp_path / "data", sync_new=False)
    data.create()
    data.put("k", b"first")
    assert synced == []  # a new file: nothing to protect
    data.put("k", b"second")
    assert len(synced) == 1  # replaces good bytes: synced before the rename
    repo = LocalStore(tmp_path / "repo")
    repo.create()
    repo.put("k", b"first")
    assert len(synced) == 2  # a repository syncs every new file

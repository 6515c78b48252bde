"""LocalStore passes the shared store suite, and keys never escape its root."""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from lakeguard.errors import BucketNotFoundError, UnsupportedError, UsageError
from lakeguard.storage.local import TMP_PREFIX, XATTR, LocalStore, WriteForecast
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


def test_short_writes_are_continued_and_chunks_of_any_size_land_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write may take fewer bytes than asked: every byte still lands, in order,
    whether the chunks are gathered (small ones) or written as they come."""
    real_write = os.write
    calls: list[int] = []

    def short_write(fd: int, data: bytes | memoryview) -> int:
        calls.append(len(data))
        return real_write(fd, memoryview(data)[:7000])

    monkeypatch.setattr(os, "write", short_write)
    store = LocalStore(tmp_path, sync_new=False)
    chunks = [bytes([n]) * size for n, size in enumerate([3, 70_000, 10, 20, 65_536, 5, 1])]
    whole = b"".join(chunks)
    result = store.put("k", iter(chunks))
    assert (tmp_path / "k").read_bytes() == whole
    assert result.etag == hashlib.md5(whole).hexdigest() and result.size == len(whole)
    assert sum(1 for n in calls if n >= 7000) > 10  # short writes were continued
    store.put("one", b"x" * 100_000)
    assert (tmp_path / "one").read_bytes() == b"x" * 100_000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k", "one"]


def test_temporary_names_never_repeat_across_threads(tmp_path: Path) -> None:
    store = LocalStore(tmp_path, sync_new=False)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: store.put(f"d/{n % 3}/k{n}", str(n).encode()), range(300)))
    assert sum(1 for _ in store.list()) == 300
    assert not [p for p in tmp_path.rglob(f"{TMP_PREFIX}*")]


def test_etag_is_dropped_when_another_program_changes_the_file(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put("k", b"original", content_type="text/plain")
    assert store.head("k").etag is not None
    (tmp_path / "k").write_bytes(b"changed by hand")
    info = store.head("k")
    assert info.etag is None
    assert info.size == len(b"changed by hand")


MD5 = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    ("etag", "content_type", "metadata", "packed"),
    [
        (None, "application/octet-stream", None, True),  # the MD5 computed as written
        (MD5, "text/plain; charset=utf-8", None, True),
        (f"{MD5}-17", "binary/octet-stream", None, True),  # a multipart ETag
        (MD5, None, None, True),
        (MD5, "application/vnd.apache.parquet; charset=utf-8", None, False),  # too long
        (MD5, "text/plain", {"owner": "etl"}, False),  # user metadata: JSON
        (f"{MD5}-007", None, None, False),  # would not read back as the same text
        ("W/not-an-md5", "text/csv", None, False),
        (MD5.upper(), "text/csv", None, False),
    ],
)
def test_attributes_round_trip_packed_in_the_inode_or_as_json(
    tmp_path: Path,
    etag: str | None,
    content_type: str | None,
    metadata: dict[str, str] | None,
    packed: bool,
) -> None:
    store = LocalStore(tmp_path)
    body = "é".encode() * 3000
    result = store.put("dt=1/k", body, content_type=content_type, metadata=metadata, etag=etag)
    info = store.head("dt=1/k")
    assert info.etag == result.etag == (etag or hashlib.md5(body).hexdigest())
    assert (info.content_type, info.metadata, info.size) == (content_type, metadata or {}, 6000)
    assert [i.etag for i in store.list()] == [info.etag]
    value = os.getxattr(tmp_path / "dt=1" / "k", XATTR)
    if packed:  # fits ext4's room in the inode: no extra block per file
        assert len(value) <= 60 and not value.startswith(b"{")
    else:
        assert json.loads(value)["etag"] == info.etag


def test_attributes_of_earlier_versions_and_damaged_ones(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put("old", b"data")
    path = tmp_path / "old"
    st = path.stat()
    earlier = {"etag": MD5, "size": 4, "mtime_ns": st.st_mtime_ns, "content_type": "text/csv"}
    os.setxattr(path, XATTR, json.dumps(earlier).encode())  # as earlier versions wrote it
    info = store.head("old")
    assert (info.etag, info.content_type) == (MD5, "text/csv")
    for damaged in (b"\x01short", b"\x02" + bytes(32), b"\x09" + bytes(40), b"{nope", b"[1]"):
        os.setxattr(path, XATTR, damaged)
        info = store.head("old")
        assert info.etag is None and info.size == 4
    store.put("new", b"data", content_type="text/csv")
    value = bytearray(os.getxattr(tmp_path / "new", XATTR))
    value[-3:] = b"\xff\xfe\xfd"  # a content type that is not UTF-8
    os.setxattr(tmp_path / "new", XATTR, bytes(value))
    assert store.head("new").etag is None


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


def _linked_store(tmp_path: Path) -> tuple[LocalStore, Path]:
    """A store whose root holds ``linkdir``, a link to a folder outside it."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "kept.txt").write_bytes(b"theirs")
    store = LocalStore(tmp_path / "root")
    store.create()
    (tmp_path / "root" / "linkdir").symlink_to(outside)
    return store, outside


@pytest.mark.parametrize("key", ["linkdir/pwned.txt", "linkdir/deeper/pwned.txt"])
def test_writes_never_go_through_a_linked_folder(tmp_path: Path, key: str) -> None:
    store, outside = _linked_store(tmp_path)
    source = LocalStore(tmp_path / "source")
    source.create()
    source.put("x", b"data")
    writes = [
        lambda: store.put(key, b"x"),
        lambda: store.put(key, iter([b"a", b"b"])),  # streamed
        lambda: store.copy_from(source, "x", key),
    ]
    for write in writes:
        with pytest.raises(UsageError, match="symbolic link"):
            write()
    store.put("real/x", b"1")
    with pytest.raises(UsageError, match="symbolic link"):
        store.copy("real/x", key)
    assert sorted(p.name for p in outside.iterdir()) == ["kept.txt"]


def test_a_link_to_a_folder_inside_the_root_is_refused_too(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "root")
    store.create()
    store.put("a/inside.txt", b"1")
    (tmp_path / "root" / "b").symlink_to(tmp_path / "root" / "a")
    with pytest.raises(UsageError, match=r"root/b, a symbolic link"):
        store.put("b/x", b"2")
    assert sorted(p.name for p in (tmp_path / "root" / "a").iterdir()) == ["inside.txt"]


def test_delete_never_goes_through_a_linked_folder(tmp_path: Path) -> None:
    store, outside = _linked_store(tmp_path)
    with pytest.raises(UsageError, match="symbolic link"):
        store.delete("linkdir/kept.txt")
    assert (outside / "kept.txt").read_bytes() == b"theirs"
    assert (tmp_path / "root" / "linkdir").is_symlink()


def test_a_link_named_as_the_key_is_replaced_not_followed(tmp_path: Path) -> None:
    store, outside = _linked_store(tmp_path)
    (tmp_path / "root" / "file").symlink_to(outside / "kept.txt")
    store.put("file", b"ours")
    assert not (tmp_path / "root" / "file").is_symlink()
    assert store.get_bytes("file") == b"ours"
    store.put("linkdir", b"ours too")  # the link to a folder, as the key's own name
    assert store.get_bytes("linkdir") == b"ours too"
    assert (outside / "kept.txt").read_bytes() == b"theirs"
    store.delete("file")
    assert (outside / "kept.txt").read_bytes() == b"theirs"


def test_a_linked_root_is_followed(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "real")
    store = LocalStore(tmp_path / "alias")
    store.put("a/b", b"1")
    assert (tmp_path / "real" / "a" / "b").read_bytes() == b"1"
    store.delete("a/b")
    assert list((tmp_path / "real").iterdir()) == []


def test_a_file_in_the_way_of_the_root_is_not_a_directory(tmp_path: Path) -> None:
    (tmp_path / "afile").write_bytes(b"x")
    store = LocalStore(tmp_path / "afile" / "sub")
    with pytest.raises(UsageError, match=r"afile/sub is not a directory: .*afile is a file"):
        store.create()
    with pytest.raises(UsageError, match="is not a directory"):
        list(store.list())
    with pytest.raises(UsageError, match=r"afile is not a directory$"):
        LocalStore(tmp_path / "afile").put("k", b"x")


def test_a_missing_root_names_no_command_that_does_not_apply(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "nope")
    with pytest.raises(BucketNotFoundError) as read:
        list(store.list())
    assert str(read.value) == f"directory {tmp_path / 'nope'} does not exist"
    with pytest.raises(BucketNotFoundError, match=r"does not exist: create it first$"):
        store.put("k", b"x")


def test_writers_and_deletes_side_by_side_share_folders_without_losing_a_file(
    tmp_path: Path,
) -> None:
    """Folder descriptors are shared by writers and dropped by deletes (which prune
    folders): every write lands, and no descriptor outlives the store's cache."""
    import threading

    store = LocalStore(tmp_path / "root")
    store.create()
    fds_before = len(list(Path("/proc/self/fd").iterdir()))
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for n in range(150):
                folder = f"dt={n % 3}/h={n % 2}"
                store.put(f"{folder}/w{worker}-{n}", b"x" * n)
                if n % 5 == 0:  # deletes may prune a folder another writer is using
                    store.delete(f"{folder}/w{worker}-{n}")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    kept = {info.key for info in store.list("")}
    assert kept == {f"dt={n % 3}/h={n % 2}/w{w}-{n}" for w in range(8) for n in range(150) if n % 5}
    store._folders.clear()
    assert len(list(Path("/proc/self/fd").iterdir())) == fds_before


def test_write_forecast_names_what_a_put_would_refuse(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put("dt=1/part-0", b"x")
    (tmp_path / "dir").mkdir()
    (tmp_path / "away").mkdir()
    (tmp_path / "dt=1" / "link").symlink_to(tmp_path / "away")
    forecast = WriteForecast(tmp_path)
    assert forecast.obstacle("dt=1/part-1") is None
    assert forecast.obstacle("fresh/a/b/c") is None
    assert forecast.obstacle("dt=1/part-0") is None  # replacing a file is fine
    why = forecast.obstacle("dt=1/part-0/under")
    assert why is not None and "a parent folder is an object" in why
    why = forecast.obstacle("dt=1/link/x")
    assert why is not None and "a symbolic link" in why
    why = forecast.obstacle("dir")
    assert why is not None and "a folder of that name exists" in why
    assert forecast.obstacle("fresh/a/b/c/d") is not None  # planned as a file just above
    assert forecast.obstacle("later/x") is None
    why = forecast.obstacle("later")  # the folder the key before makes
    assert why is not None and "a folder of that name exists" in why
    store.put("dt=1/part-1", b"real")  # what was foreseen as fine is fine
    store.put("fresh/a/b/c", b"real")
    with pytest.raises(UnsupportedError, match="a parent folder is an object"):
        store.put("dt=1/part-0/under", b"y")
    with pytest.raises(UsageError, match="a symbolic link"):
        store.put("dt=1/link/x", b"y")
    with pytest.raises(UnsupportedError, match="a folder of that name exists"):
        store.put("dir", b"y")


def test_write_forecast_remembers_a_bounded_number_of_planned_files(tmp_path: Path) -> None:
    forecast = WriteForecast(tmp_path, remember=3)
    for name in ("a", "b", "c", "d"):
        assert forecast.obstacle(name) is None
    assert forecast.obstacle("a/x") is None  # forgotten: a forecast, not a promise
    assert forecast.obstacle("d/x") is not None

"""restore into a place that holds data: skip what is there, refuse overwrites; overlaps; keys."""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from repo_testing import CountingStore, lake_location, make_lake, new_repo

from lakeguard.errors import UsageError
from lakeguard.location import parse_location
from lakeguard.ops.backup import backup
from lakeguard.ops.restore import RestoreResult, restore, same_content
from lakeguard.repository.manifest import ManifestRow
from lakeguard.repository.repo import Repository
from lakeguard.storage import open_store
from lakeguard.storage.base import ObjectInfo, Store
from lakeguard.storage.local import XATTR
from lakeguard.storage.memory import MemoryStore
from lakeguard.storage.wrappers import StoreWrapper

KEY = "dt=2026-02-02/part-001.csv"


class ListingCounter(CountingStore):
    """Counts listings and HEADs as well as GETs and PUTs."""

    def __init__(self, inner: Store) -> None:
        super().__init__(inner)
        self.lists = 0
        self.heads = 0

    def list(self, prefix: str = "", *, start_after: str | None = None) -> Iterator[ObjectInfo]:
        self.lists += 1
        return self.inner.list(prefix, start_after=start_after)

    def head(self, key: str, *, version_id: str | None = None) -> ObjectInfo:
        self.heads += 1
        return self.inner.head(key, version_id=version_id)


def _repo(tmp_path: Path) -> tuple[Repository, dict[str, bytes]]:
    data = make_lake()
    repo = new_repo(tmp_path)
    backup(MemoryStore.named("lake"), lake_location(), repo, cache_dir=tmp_path / "cache")
    return repo, data


def _restore(
    repo: Repository, tmp_path: Path, target: str, store: Store | None = None, **options: object
) -> RestoreResult:
    location = parse_location(target)
    return restore(
        repo,
        "latest",
        store or open_store(location),
        location,
        cache_dir=tmp_path / "cache",
        **options,  # type: ignore[arg-type]
    )


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def _drop_xattr(path: Path) -> None:
    """As if another program wrote the file: no recorded ETag."""
    with contextlib.suppress(OSError):
        os.removexattr(path, XATTR)


def test_different_data_in_a_directory_needs_force_and_nothing_is_written(tmp_path: Path) -> None:
    repo, data = _repo(tmp_path)
    out = tmp_path / "out"
    (out / "dt=2026-02-02").mkdir(parents=True)
    (out / KEY).write_bytes(b"precious")
    with pytest.raises(UsageError) as refused:
        _restore(repo, tmp_path, str(out))
    message = refused.value.message
    assert "\n" not in message and "1 object that differs" in message
    assert KEY in message and "add --force" in message
    assert _files(out) == {KEY: b"precious"}  # nothing else written either

    result = _restore(repo, tmp_path, str(out), force=True)
    assert (result.restored, result.replaced, result.unchanged) == (len(data), 1, 0)
    assert _files(out) == data


def test_same_size_other_bytes_without_a_recorded_etag_are_hashed_and_refused(
    tmp_path: Path,
) -> None:
    repo, data = _repo(tmp_path)
    out = tmp_path / "out"
    (out / "dt=2026-02-02").mkdir(parents=True)
    other = bytes(b ^ 1 for b in data[KEY])
    (out / KEY).write_bytes(other)
    _drop_xattr(out / KEY)
    with pytest.raises(UsageError, match="add --force"):
        _restore(repo, tmp_path, str(out))
    assert _files(out) == {KEY: other}


def test_identical_files_written_by_another_program_are_unchanged(tmp_path: Path) -> None:
    repo, data = _repo(tmp_path)
    out = tmp_path / "out"
    for key in list(data)[:5]:
        (out / key).parent.mkdir(parents=True, exist_ok=True)
        (out / key).write_bytes(data[key])
        _drop_xattr(out / key)
    result = _restore(repo, tmp_path, str(out))
    assert (result.unchanged, result.replaced, result.restored) == (5, 0, len(data) - 5)
    assert _files(out) == data


def test_a_rerun_is_one_listing_and_writes_nothing(tmp_path: Path) -> None:
    repo, data = _repo(tmp_path)
    out = tmp_path / "out"
    assert _restore(repo, tmp_path, str(out)).restored == len(data)
    counting = ListingCounter(open_store(parse_location(str(out))))
    again = _restore(repo, tmp_path, str(out), store=counting)
    assert (again.restored, again.unchanged, again.replaced, again.failed) == (0, len(data), 0, [])
    assert counting.lists == 1
    assert (counting.heads, counting.gets, counting.puts) == (0, 0, [])


def test_an_empty_target_costs_one_empty_listing(tmp_path: Path) -> None:
    repo, data = _repo(tmp_path)
    out = MemoryStore.named("out")
    out.create()
    counting = ListingCounter(out)
    result = _restore(repo, tmp_path, "memory://out/r", store=counting)
    assert result.restored == len(data) and result.unchanged == 0
    # one listing, and one HEAD of 'r': a prefix naming an object is refused
    assert (counting.lists, counting.heads, counting.gets) == (1, 1, 0)


def test_dry_run_names_overwrites_and_the_need_for_force(tmp_path: Path) -> None:
    repo, data = _repo(tmp_path)
    out = tmp_path / "out"
    first = sorted(data)[0]
    (out / KEY).parent.mkdir(parents=True)
    (out / KEY).write_bytes(b"precious")
    (out / first).parent.mkdir(parents=True, exist_ok=True)
    (out / first).write_bytes(data[first])
    result = _restore(repo, tmp_path, str(out), dry_run=True)
    assert result.refusal is not None and "add --force" in result.refusal
    assert (result.replaced, result.unchanged, result.first_replaced) == (1, 1, [KEY])
    assert [k for k, _, over in result.keys if over] == [KEY]
    assert result.planned == len(data) - 1
    doc = result.to_json()
    assert doc["needs_force"] is True and doc["unchanged"] == 1 and doc["replaced"] == 1
    assert _files(out) == {KEY: b"precious", first: data[first]}
    # with --force the dry run has no objection
    assert _restore(repo, tmp_path, str(out), dry_run=True, force=True).refusal is None


def test_a_versioned_target_is_overwritten_without_force(tmp_path: Path) -> None:
    repo, data = _repo(tmp_path)
    out = MemoryStore.named("out")
    out.create()
    out.set_versioning(True)
    out.put(f"r/{KEY}", b"older")
    result = _restore(repo, tmp_path, "memory://out/r")
    assert (result.restored, result.replaced) == (len(data), 1)
    versions = [v for v in out.list_versions(f"r/{KEY}") if v.key == f"r/{KEY}"]
    assert len(versions) == 2  # the old bytes stay as a noncurrent version
    assert _restore(repo, tmp_path, "memory://out/r").restored == 0


def test_dry_run_lists_keys_a_directory_would_refuse_as_failing(tmp_path: Path) -> None:
    lake = MemoryStore.named("evil")
    for key, body in {
        "t/ok.txt": b"fine",
        "t/../x": b"up",
        "t//abs": b"abs",
        "t/a/./dot": b"dot",
        "t/..": b"dots",
    }.items():
        lake.put(key, body)
    repo = new_repo(tmp_path)
    backup(lake, parse_location("memory://evil/t"), repo, cache_dir=tmp_path / "cache")
    out = tmp_path / "out"
    dry = _restore(repo, tmp_path, str(out), dry_run=True)
    assert [key for key, _, _ in dry.keys] == ["ok.txt"]
    assert sorted(key for key, _ in dry.failed) == ["..", "../x", "/abs", "a/./dot"]
    assert not out.exists()
    real = _restore(repo, tmp_path, str(out))
    assert sorted(key for key, _ in real.failed) == sorted(key for key, _ in dry.failed)
    planned: list[tuple[str, int, bool]] = []
    streamed = _restore(
        repo,
        tmp_path,
        str(tmp_path / "other"),
        dry_run=True,
        on_plan=lambda *item: planned.append(item),
        keep_failures=2,
    )
    assert planned == [("ok.txt", 4, False)] and streamed.keys == []  # handed over, not held
    assert (streamed.would_fail, len(streamed.failed)) == (4, 2)


@pytest.mark.parametrize("where", ["repo", "repo/sub", "."])
def test_a_target_overlapping_the_repository_is_refused(tmp_path: Path, where: str) -> None:
    repo, _ = _repo(tmp_path)
    before = _files(tmp_path / "repo")
    target = tmp_path / where
    for dry_run in (True, False):
        with pytest.raises(UsageError, match="overlaps the repository"):
            _restore(repo, tmp_path, str(target), dry_run=dry_run)
    assert _files(tmp_path / "repo") == before
    assert not (tmp_path / "repo" / "sub").exists()


def test_a_target_under_a_regular_file_is_bad_input(tmp_path: Path) -> None:
    repo, _ = _repo(tmp_path)
    (tmp_path / "afile").write_text("x")
    for dry_run in (True, False):
        with pytest.raises(UsageError, match="afile is not a directory"):
            _restore(repo, tmp_path, str(tmp_path / "afile" / "sub"), dry_run=dry_run)
    assert (tmp_path / "afile").read_text() == "x"


def _row(size: int = 3, etag: str | None = None, sha: str = "0" * 64) -> ManifestRow:
    return ManifestRow("k", size, sha, "a", "k", 0, 1, etag=etag)


def test_the_same_content_rule() -> None:
    md5 = hashlib.md5(b"abc").hexdigest()
    other = hashlib.md5(b"abd").hexdigest()
    sha = hashlib.sha256(b"abc").hexdigest()
    # sizes differ: different, whatever the ETags say
    assert same_content(_row(4, md5), ObjectInfo("k", 3, md5)) is False
    # ETags of one shape decide
    assert same_content(_row(3, md5), ObjectInfo("k", 3, f'"{md5.upper()}"')) is True
    assert same_content(_row(3, md5), ObjectInfo("k", 3, other)) is False
    assert same_content(_row(3, md5 + "-2"), ObjectInfo("k", 3, md5 + "-2")) is True
    # two multipart ETags of one part count that differ: other part sizes, maybe the
    # same bytes; the SHA-256 decides (restore's parts need not be the source's)
    assert same_content(_row(3, md5 + "-2"), ObjectInfo("k", 3, other + "-2")) is None
    assert same_content(
        _row(3, md5 + "-2", sha), ObjectInfo("k", 3, other + "-2", checksum_sha256=sha)
    )
    # shapes differ (single part vs multipart, part counts, no ETag): the SHA-256 decides
    for theirs in (md5 + "-2", None, "not-an-etag"):
        assert same_content(_row(3, md5 + "-3", sha), ObjectInfo("k", 3, theirs)) is None
        assert same_content(_row(3, md5, sha), ObjectInfo("k", 3, theirs, checksum_sha256=sha))
        assert (
            same_content(_row(3, md5, sha), ObjectInfo("k", 3, theirs, checksum_sha256="1" * 64))
            is False
        )
    assert same_content(_row(3, None, sha), ObjectInfo("k", 3, md5)) is None


class TreeOrderStore(StoreWrapper):
    """Lists in folder-tree order, as SeaweedFS's filer does ('a/b' before 'a-b')."""

    def list(self, prefix: str = "", *, start_after: str | None = None) -> Iterator[ObjectInfo]:
        listed = list(self.inner.list(prefix, start_after=start_after))
        return iter(sorted(listed, key=lambda info: info.key.split("/")))


def test_a_source_listed_in_another_order_is_still_compared_key_by_key(tmp_path: Path) -> None:
    """The manifest keeps the source's order, the target lists in its own."""
    source = MemoryStore.named("tree")
    keys = ["a/b", "a/c", "a-b", "a.txt", "a0", "b"]
    for key in keys:
        source.put(f"t/{key}", f"snap {key}".encode())
    repo = new_repo(tmp_path)
    backup(
        TreeOrderStore(source), parse_location("memory://tree/t"), repo, cache_dir=tmp_path / "c"
    )
    out = tmp_path / "out"
    assert _restore(repo, tmp_path, str(out)).restored == len(keys)
    (out / "a-b").write_bytes(b"precious local edit")
    with pytest.raises(UsageError, match=r"overwrite 1 object .*first: a-b"):
        _restore(repo, tmp_path, str(out))
    assert (out / "a-b").read_bytes() == b"precious local edit"
    forced = _restore(repo, tmp_path, str(out), force=True)
    assert (forced.restored, forced.replaced, forced.unchanged) == (1, 1, len(keys) - 1)
    again = _restore(repo, tmp_path, str(out))
    assert (again.restored, again.unchanged) == (0, len(keys))


def test_a_rerun_over_a_target_with_other_keys_between_skips_exactly_the_restored(
    tmp_path: Path,
) -> None:
    repo, data = _repo(tmp_path)
    out = tmp_path / "out"
    _restore(repo, tmp_path, str(out))
    for name in ("0first", "dt=2026-02-02/zz-extra", "dt=2026-02-03/part-000.csv0", "zlast"):
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_bytes(b"not in the snapshot")
    (out / KEY).write_bytes(b"changed")
    again = _restore(repo, tmp_path, str(out), force=True)
    assert again.unchanged == len(data) - 1 and again.restored == again.replaced == 1
    assert (out / KEY).read_bytes() == data[KEY]
    assert (out / "zlast").read_bytes() == b"not in the snapshot"


def test_a_local_name_that_is_not_utf8_beside_the_restore_is_left_alone(tmp_path: Path) -> None:
    repo, data = _repo(tmp_path)
    out = tmp_path / "out"
    _restore(repo, tmp_path, str(out))
    stray = out / os.fsdecode(b"bad\xffname")  # held as a surrogate in Python
    stray.write_bytes(b"not in the snapshot")
    again = _restore(repo, tmp_path, str(out))
    assert (again.restored, again.unchanged) == (0, len(data))
    assert stray.read_bytes() == b"not in the snapshot"


def test_a_target_naming_one_object_is_refused(tmp_path: Path) -> None:
    repo, _data = _repo(tmp_path)
    out = MemoryStore.named("tgt")
    out.put("r/a0", b"an object, not a folder")
    with pytest.raises(UsageError, match="memory://tgt/r/a0 is an object, not a folder"):
        _restore(repo, tmp_path, "memory://tgt/r/a0", store=out)
    assert [i.key for i in out.list("")] == ["r/a0"]


def test_dry_run_foresees_what_is_in_the_way_on_disk(tmp_path: Path) -> None:
    """A file where a folder is needed, a folder where a file goes, a symbolic
    link on the way, and "b" beside "b/x" in the snapshot itself."""
    lake = MemoryStore.named("in-the-way")
    for key in ("ok", "b", "b/x", "d/f", "e", "lnk/z", "new/deep/g"):
        lake.put(f"t/{key}", f"body {key}".encode())
    repo = new_repo(tmp_path)
    backup(lake, parse_location("memory://in-the-way/t"), repo, cache_dir=tmp_path / "cache")
    out = tmp_path / "out"
    out.mkdir()
    (out / "d").write_text("a file where a folder is needed")
    (out / "e").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (out / "lnk").symlink_to(tmp_path / "elsewhere")
    dry = _restore(repo, tmp_path, str(out), dry_run=True)
    foreseen = dict(dry.failed)
    assert sorted(foreseen) == ["b/x", "d/f", "e", "lnk/z"]
    assert "a parent folder is an object" in foreseen["b/x"]
    assert "a symbolic link" in foreseen["lnk/z"]
    assert "a folder of that name exists" in foreseen["e"]
    assert sorted(key for key, _, _ in dry.keys) == ["b", "new/deep/g", "ok"]
    assert not (out / "ok").exists()
    real = _restore(repo, tmp_path, str(out))
    failed = sorted(key for key, _ in real.failed)
    assert len(failed) == len(foreseen) and {"d/f", "e", "lnk/z"} <= set(failed)
    assert set(failed) - {"d/f", "e", "lnk/z"} <= {"b", "b/x"}  # whichever came second
    assert not list((tmp_path / "elsewhere").iterdir())

"""restore into buckets that hold data (SeaweedFS): versioned, unversioned, suspended, missing."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path
from typing import Any

import pytest

from lakeguard.cli import run
from lakeguard.errors import UsageError
from lakeguard.location import parse_location
from lakeguard.ops.backup import backup
from lakeguard.ops.restore import RestoreResult, restore
from lakeguard.repository.repo import Repository, init_repository
from lakeguard.storage import StoreSettings, open_store

pytestmark = pytest.mark.s3

MiB = 1024 * 1024
KEY = "dt=2026-02-02/part-1.csv"


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))


def _data() -> dict[str, bytes]:
    data = {f"dt=2026-02-0{i % 2 + 1}/part-{i}.csv": f"{i},row\n".encode() * 50 for i in range(4)}
    data["big.bin"] = hashlib.sha256(b"big").digest() * (
        9 * MiB // 32 + 3
    )  # multipart when restored
    return data


def _repo(tmp_path: Path) -> tuple[Repository, dict[str, bytes]]:
    data = _data()
    lake = tmp_path / "lake"
    for key, body in data.items():
        (lake / key).parent.mkdir(parents=True, exist_ok=True)
        (lake / key).write_bytes(body)
    repo_loc = parse_location(str(tmp_path / "repo"))
    repo = init_repository(open_store(repo_loc), repo_loc).repository
    backup(open_store(parse_location(str(lake))), parse_location(str(lake)), repo)
    return repo, data


def _restore(
    repo: Repository, bucket: str, settings: StoreSettings, **options: object
) -> RestoreResult:
    location = parse_location(f"s3://{bucket}/r")
    return restore(
        repo,
        "latest",
        open_store(location, settings),
        location,
        **options,  # type: ignore[arg-type]
    )


def _versions(s3_client: Any, bucket: str) -> int:
    return len(s3_client.list_object_versions(Bucket=bucket).get("Versions", []))


def test_rerun_into_a_versioned_bucket_adds_no_versions(
    s3_client: Any, versioned_bucket: str, s3_settings: StoreSettings, tmp_path: Path
) -> None:
    repo, data = _repo(tmp_path)
    first = _restore(repo, versioned_bucket, s3_settings)
    assert (first.restored, first.unchanged) == (len(data), 0)
    assert _versions(s3_client, versioned_bucket) == len(data)
    # the large object came back multipart: its ETag cannot be compared, its SHA-256 can
    etag = s3_client.head_object(Bucket=versioned_bucket, Key="r/big.bin")["ETag"]
    assert "-" in etag
    again = _restore(repo, versioned_bucket, s3_settings)
    assert (again.restored, again.unchanged, again.replaced) == (0, len(data), 0)
    assert _versions(s3_client, versioned_bucket) == len(data)


def test_a_versioned_bucket_is_overwritten_without_force_and_keeps_the_old_bytes(
    s3_client: Any, versioned_bucket: str, s3_settings: StoreSettings, tmp_path: Path
) -> None:
    repo, data = _repo(tmp_path)
    s3_client.put_object(Bucket=versioned_bucket, Key=f"r/{KEY}", Body=b"newer")
    result = _restore(repo, versioned_bucket, s3_settings)
    assert (result.restored, result.replaced) == (len(data), 1)
    got = s3_client.get_object(Bucket=versioned_bucket, Key=f"r/{KEY}")["Body"].read()
    assert got == data[KEY]
    versions = s3_client.list_object_versions(Bucket=versioned_bucket, Prefix=f"r/{KEY}")
    assert len(versions["Versions"]) == 2


@pytest.mark.parametrize("suspended", [False, True])
def test_an_unversioned_bucket_needs_force_and_nothing_is_written_without(
    s3_client: Any, bucket: str, s3_settings: StoreSettings, tmp_path: Path, suspended: bool
) -> None:
    repo, data = _repo(tmp_path)
    if suspended:
        for status in ("Enabled", "Suspended"):
            s3_client.put_bucket_versioning(
                Bucket=bucket, VersioningConfiguration={"Status": status}
            )
    s3_client.put_object(Bucket=bucket, Key=f"r/{KEY}", Body=b"precious")
    with pytest.raises(UsageError, match=rf"overwrite 1 object .*{KEY}.*add --force"):
        _restore(repo, bucket, s3_settings)
    listed = s3_client.list_objects_v2(Bucket=bucket)["Contents"]
    assert [o["Key"] for o in listed] == [f"r/{KEY}"]
    dry = _restore(repo, bucket, s3_settings, dry_run=True)
    assert dry.refusal is not None and dry.first_replaced == [KEY]
    forced = _restore(repo, bucket, s3_settings, force=True)
    assert (forced.restored, forced.replaced) == (len(data), 1)
    assert s3_client.get_object(Bucket=bucket, Key=f"r/{KEY}")["Body"].read() == data[KEY]


def test_cli_dry_run_into_a_missing_bucket_exits_3_as_the_real_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sandbox: object
) -> None:
    _repo(tmp_path)
    missing = f"s3://nosuch-{uuid.uuid4().hex[:12]}"
    errors = []
    for extra in (["--dry-run"], []):
        capsys.readouterr()
        code = run(["restore", "latest", "--repo", str(tmp_path / "repo"), "--to", missing, *extra])
        captured = capsys.readouterr()
        assert code == 3 and captured.out == ""
        assert len(captured.err.strip().splitlines()) == 1 and "does not exist" in captured.err
        errors.append(captured.err)
    assert errors[0] == errors[1]


@pytest.mark.parametrize("to", ["", "/backups", "/backups/inner", "/other"])
def test_cli_restore_into_the_repository_bucket_is_refused(
    s3_client: Any,
    bucket: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    to: str,
) -> None:
    lake = tmp_path / "lake"
    lake.mkdir()
    (lake / "lakeguard-repo.json").write_text("{}")  # would clobber the repository's own
    repo = f"s3://{bucket}/backups"
    assert run(["init", repo, "-q"]) == 0
    assert run(["backup", str(lake), "--repo", repo, "-q"]) == 0
    before = {o["Key"]: o["ETag"] for o in s3_client.list_objects_v2(Bucket=bucket)["Contents"]}
    capsys.readouterr()
    code = run(["restore", "latest", "--repo", repo, "--to", f"s3://{bucket}{to}"])
    captured = capsys.readouterr()
    after = {o["Key"]: o["ETag"] for o in s3_client.list_objects_v2(Bucket=bucket)["Contents"]}
    if to == "/other":  # beside the repository, not in it
        assert code == 0 and after["other/lakeguard-repo.json"]
        return
    assert code == 2 and captured.out == ""
    assert len(captured.err.strip().splitlines()) == 1 and "overlaps the repository" in captured.err
    assert after == before


def test_keys_seaweedfs_lists_in_tree_order_are_compared_key_by_key(
    s3_client: Any, bucket: str, s3_settings: StoreSettings, tmp_path: Path
) -> None:
    """SeaweedFS lists 'a/b' before 'a-b': the manifest keeps that order, a
    directory lists 'a-b' first; a changed 'a-b' must still be seen."""
    keys = ["a/b", "a/c", "a-b", "a.txt", "a0", "b"]
    for key in keys:
        s3_client.put_object(Bucket=bucket, Key=f"ord/{key}", Body=f"snap {key}".encode())
    source = parse_location(f"s3://{bucket}/ord")
    repo_loc = parse_location(str(tmp_path / "repo"))
    repo = init_repository(open_store(repo_loc), repo_loc).repository
    backup(open_store(source, s3_settings), source, repo)
    out = parse_location(str(tmp_path / "out"))
    first = restore(repo, "latest", open_store(out), out)
    assert first.restored == len(keys)
    (tmp_path / "out" / "a-b").write_bytes(b"precious local edit")
    with pytest.raises(UsageError, match=r"overwrite 1 object .*first: a-b"):
        restore(repo, "latest", open_store(out), out)
    assert (tmp_path / "out" / "a-b").read_bytes() == b"precious local edit"
    again = restore(repo, "latest", open_store(out), out, force=True)
    assert (again.restored, again.replaced, again.unchanged) == (1, 1, len(keys) - 1)


def test_a_multipart_object_with_other_part_sizes_is_unchanged_on_a_rerun(
    s3_client: Any, bucket: str, versioned_bucket: str, s3_settings: StoreSettings, tmp_path: Path
) -> None:
    """Source parts of 5 MiB, restored parts of another size, both 2 parts: the ETags
    differ for the same bytes, so the SHA-256 decides."""
    from boto3.s3.transfer import TransferConfig

    body = hashlib.sha256(b"parts").digest() * ((9 * MiB + 123) // 32)
    (tmp_path / "mp.bin").write_bytes(body)
    five = TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB)
    s3_client.upload_file(str(tmp_path / "mp.bin"), bucket, "m/mp.bin", Config=five)
    source = parse_location(f"s3://{bucket}/m")
    repo_loc = parse_location(str(tmp_path / "repo"))
    repo = init_repository(open_store(repo_loc), repo_loc).repository
    backup(open_store(source, s3_settings), source, repo)
    first = _restore(repo, versioned_bucket, s3_settings)
    restored_etag = s3_client.head_object(Bucket=versioned_bucket, Key="r/mp.bin")["ETag"]
    source_etag = s3_client.head_object(Bucket=bucket, Key="m/mp.bin")["ETag"]
    assert first.restored == 1 and restored_etag.endswith('-2"') and source_etag.endswith('-2"')
    assert restored_etag != source_etag
    again = _restore(repo, versioned_bucket, s3_settings)
    assert (again.restored, again.unchanged, again.replaced) == (0, 1, 0)
    assert _versions(s3_client, versioned_bucket) == 1

"""backup and restore against a real S3 server (SeaweedFS): multipart archives, object lock."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from lakeguard.errors import UsageError
from lakeguard.location import parse_location
from lakeguard.ops.backup import backup
from lakeguard.ops.restore import restore
from lakeguard.repository.repo import init_repository, open_repository
from lakeguard.storage import StoreSettings, open_store
from lakeguard.storage.s3_lock import get_retention

pytestmark = pytest.mark.s3

MiB = 1024 * 1024


def payload(index: int, size: int) -> bytes:
    seed = hashlib.sha256(f"object-{index}".encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]


def fill(s3_client: Any, bucket: str) -> dict[str, bytes]:
    data = {
        f"events/dt=2026-02-0{i % 3 + 1}/part-{i:03d}.json": payload(i, 2000 + i * 300)
        for i in range(30)
    }
    data["events/big/blob.bin"] = payload(99, 11 * MiB + 5)  # > archive size: its own, multipart
    for key, body in data.items():
        s3_client.put_object(
            Bucket=bucket,
            Key=key,
            Body=body,
            ContentType="application/json",
            Metadata={"team": "data"},
        )
    return data


def test_backup_incremental_and_restore_on_s3(
    s3_client: Any, bucket: str, s3_settings: StoreSettings, tmp_path: Path
) -> None:
    data = fill(s3_client, bucket)
    repo_bucket = f"r-{uuid.uuid4().hex[:12]}"
    repo_loc = parse_location(f"s3://{repo_bucket}/backups")
    repo = init_repository(open_store(repo_loc, s3_settings), repo_loc).repository
    src_loc = parse_location(f"s3://{bucket}/events")
    src = open_store(src_loc, s3_settings)

    first = backup(src, src_loc, repo, archive_size=4 * MiB, cache_dir=tmp_path / "c")
    assert first.objects == len(data) and first.new_bytes == sum(map(len, data.values()))
    assert first.archives_written == 2 and not first.failed
    listed = s3_client.list_objects_v2(Bucket=repo_bucket, Prefix="backups/archives/")["Contents"]
    assert len(listed) == 2
    assert s3_client.list_multipart_uploads(Bucket=repo_bucket).get("Uploads", []) == []

    second = backup(src, src_loc, repo, archive_size=4 * MiB, cache_dir=tmp_path / "c")
    assert (second.new_objects, second.new_bytes, second.reused_objects) == (0, 0, len(data))

    target = f"o-{uuid.uuid4().hex[:12]}"
    s3_client.create_bucket(Bucket=target)
    out_loc = parse_location(f"s3://{target}/restored")
    reopened = open_repository(open_store(repo_loc, s3_settings), repo_loc)
    result = restore(
        reopened, "latest", open_store(out_loc, s3_settings), out_loc, cache_dir=tmp_path / "c2"
    )
    assert (result.restored, result.verified, result.failed) == (len(data), len(data), [])
    for key, body in data.items():
        got = s3_client.get_object(Bucket=target, Key=f"restored/{key[len('events/') :]}")
        assert got["Body"].read() == body
        assert got["ContentType"] == "application/json"
        assert got["Metadata"] == {"team": "data"}


def test_object_lock_repository_locks_what_it_writes(
    s3_client: Any, bucket: str, s3_settings: StoreSettings, tmp_path: Path
) -> None:
    s3_client.put_object(Bucket=bucket, Key="lake/a.csv", Body=b"a,b\n1,2\n")
    repo_bucket = f"l-{uuid.uuid4().hex[:12]}"
    repo_loc = parse_location(f"s3://{repo_bucket}")
    store = open_store(repo_loc, s3_settings)
    created = init_repository(store, repo_loc, object_lock_days=2, object_lock_mode="GOVERNANCE")
    repo = created.repository
    src_loc = parse_location(f"s3://{bucket}/lake")
    result = backup(open_store(src_loc, s3_settings), src_loc, repo, cache_dir=tmp_path / "c")
    keys = [o["Key"] for o in s3_client.list_objects_v2(Bucket=repo_bucket)["Contents"]]
    written = [
        k for k in keys if k.startswith(("archives/", "manifests/", "snapshots/", "catalog/"))
    ]
    assert len(written) == 4
    soon = datetime.now(UTC) + timedelta(days=1)
    for key in written:
        retention = get_retention(store, key)
        assert retention is not None and retention[0] == "GOVERNANCE" and retention[1] > soon
    header_key = f"snapshots/{result.snapshot_id}.json"
    version = s3_client.head_object(Bucket=repo_bucket, Key=header_key)["VersionId"]
    with pytest.raises(Exception, match=r"AccessDenied|locked|retention"):
        s3_client.delete_object(Bucket=repo_bucket, Key=header_key, VersionId=version)
    # same settings again: harmless; different settings: refused
    assert not init_repository(
        store, repo_loc, object_lock_days=2, object_lock_mode="GOVERNANCE"
    ).created
    with pytest.raises(UsageError, match="cannot change"):
        init_repository(store, repo_loc, object_lock_days=5, object_lock_mode="GOVERNANCE")


def test_object_lock_needs_a_bucket_with_lock(
    bucket: str, s3_settings: StoreSettings, tmp_path: Path
) -> None:
    loc = parse_location(f"s3://{bucket}/repo")
    with pytest.raises(UsageError, match="Object Lock"):
        init_repository(open_store(loc, s3_settings), loc, object_lock_days=1)
    local = parse_location(str(tmp_path / "r"))
    with pytest.raises(Exception, match="Object Lock needs an S3 bucket"):
        init_repository(open_store(local), local, object_lock_days=1)


def test_seaweedfs_tree_order_listing_reuses_every_unchanged_object(
    s3_client: Any, bucket: str, s3_settings: StoreSettings, tmp_path: Path
) -> None:
    """SeaweedFS lists folder "a/" before "a-b"; the manifest is in byte order.
    After the last key of a folder is deleted, nothing unchanged is read again."""
    keys = ["a/b", "a/c", "a/d/e", "a-b", "a.txt", "a0", "b", "b/x", "b-1/y", "b!"]
    for key in keys:
        s3_client.put_object(Bucket=bucket, Key=f"ord/{key}", Body=f"body {key}".encode())
    source = parse_location(f"s3://{bucket}/ord")
    store = open_store(source, s3_settings)
    listed = [info.key[len("ord/") :] for info in store.list("ord/")]
    assert listed != sorted(keys)  # the order this test is about
    repo_loc = parse_location(str(tmp_path / "repo"))
    repo = init_repository(open_store(repo_loc), repo_loc).repository
    assert backup(store, source, repo, cache_dir=tmp_path / "c").new_objects == len(keys)
    s3_client.delete_object(Bucket=bucket, Key="ord/a/d/e")
    s3_client.delete_object(Bucket=bucket, Key="ord/b/x")
    again = backup(store, source, repo, cache_dir=tmp_path / "c")
    assert (again.new_objects, again.new_bytes, again.reused_objects) == (0, 0, len(keys) - 2)
    header = repo.snapshots()[-1]
    manifest = repo.fetch_manifest(header, tmp_path / "m")
    from lakeguard.repository.manifest import read_manifest

    assert [row.key for row in read_manifest(manifest)] == sorted(set(keys) - {"a/d/e", "b/x"})

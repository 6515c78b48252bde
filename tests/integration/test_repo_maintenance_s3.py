"""forget, prune, check and query against a real S3 server (SeaweedFS), with Object Lock."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from lakeguard.cli import run
from lakeguard.errors import TransientError
from lakeguard.location import parse_location
from lakeguard.ops.backup import backup
from lakeguard.ops.check import check
from lakeguard.ops.forget import forget
from lakeguard.ops.prune import prune
from lakeguard.ops.query import query
from lakeguard.repository.repo import init_repository, open_repository
from lakeguard.repository.retention import RetentionPolicy
from lakeguard.storage import StoreSettings, open_store
from lakeguard.storage.base import DEFAULT_PART_SIZE, PutResult
from lakeguard.storage.wrappers import StoreWrapper

pytestmark = pytest.mark.s3


class _NoHeaders(StoreWrapper):
    """A backup through this store crashes right before its snapshot header."""

    def put(
        self,
        key: str,
        data: bytes | memoryview | Iterable[bytes],
        *,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
        part_size: int = DEFAULT_PART_SIZE,
        etag: str | None = None,
    ) -> PutResult:
        if "snapshots/" in key:
            raise TransientError("connection reset (test)", op="put", key=key)
        return self.inner.put(
            key, data, content_type=content_type, metadata=metadata, part_size=part_size, etag=etag
        )


def _versions(s3_client: Any, bucket: str, prefix: str) -> list[dict[str, Any]]:
    page = s3_client.list_object_versions(Bucket=bucket, Prefix=prefix)
    return [*page.get("Versions", []), *page.get("DeleteMarkers", [])]


def test_forget_and_prune_never_delete_locked_objects(
    s3_client: Any,
    bucket: str,
    s3_settings: StoreSettings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    s3_client.put_object(Bucket=bucket, Key="lake/a.csv", Body=b"a,b\n1,2\n" * 100)
    s3_client.put_object(Bucket=bucket, Key="other/b.csv", Body=b"b\n" * 100)
    repo_bucket = f"l-{uuid.uuid4().hex[:12]}"
    repo_url = f"s3://{repo_bucket}/r"
    repo_loc = parse_location(repo_url)
    store = open_store(repo_loc, s3_settings)
    repo = init_repository(
        store, repo_loc, object_lock_days=1, object_lock_mode="GOVERNANCE"
    ).repository
    # a backup of another prefix crashed three days ago, before its header: its
    # archive is referenced by nothing, and locked
    other_loc = parse_location(f"s3://{bucket}/other")
    crashed_at = datetime.now(UTC) - timedelta(days=3)
    with pytest.raises(TransientError):
        backup(
            open_store(other_loc, s3_settings),
            other_loc,
            open_repository(_NoHeaders(store), repo_loc),
            now=crashed_at,
        )
    src_loc = parse_location(f"s3://{bucket}/lake")
    src = open_store(src_loc, s3_settings)
    first = backup(src, src_loc, repo, cache_dir=tmp_path / "c")
    s3_client.put_object(Bucket=bucket, Key="lake/a.csv", Body=b"changed\n")
    newest = backup(src, src_loc, repo, cache_dir=tmp_path / "c")

    # forget: the older snapshot's header is locked, so the snapshot stays, reported
    result = forget(repo, RetentionPolicy(last=1))
    assert result.removed == [] and [sid for sid, _ in result.locked] == [first.snapshot_id]
    assert [h.id for h in repo.snapshots()] == [first.snapshot_id, newest.snapshot_id]
    assert run(["forget", "--repo", repo_url, "--keep-last", "1"]) == 4
    err = capsys.readouterr().err
    assert f"kept {first.snapshot_id}: under Object Lock until" in err

    # prune: the crashed run's archive, manifest and run record are due, all locked
    assert run(["prune", "--repo", repo_url, "--json"]) == 4
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    locked = {entry["key"].split("/")[0]: entry for entry in doc["locked"]}
    assert set(locked) == {"archives", "manifests", "runs"}
    archive = locked["archives"]["key"]
    assert crashed_at.strftime("%Y%m%dT%H%M%S") in archive
    until = datetime.fromisoformat(locked["archives"]["retain_until"].replace("Z", "+00:00"))
    assert timedelta(hours=23) < until - datetime.now(UTC) < timedelta(days=1, hours=1)
    assert doc["deleted"]["archives"] == 0 and doc["failed"] == []
    assert "under Object Lock" in captured.err and "prune again after" in captured.err
    # nothing was deleted nor hidden behind a delete marker: every version is still there
    versions = _versions(s3_client, repo_bucket, f"r/{archive}")
    assert len(versions) == 1 and "VersionId" in versions[0] and versions[0]["IsLatest"]
    assert not any("DeleteMarker" in str(v) for v in versions)
    assert check(repo, read_data=True).ok


def test_prune_on_s3_reclaims_every_version(
    s3_client: Any, bucket: str, versioned_bucket: str, s3_settings: StoreSettings, tmp_path: Path
) -> None:
    s3_client.put_object(Bucket=bucket, Key="lake/a.csv", Body=b"one\n" * 100)
    repo_loc = parse_location(f"s3://{versioned_bucket}/r")
    repo = init_repository(open_store(repo_loc, s3_settings), repo_loc).repository
    src_loc = parse_location(f"s3://{bucket}/lake")
    src = open_store(src_loc, s3_settings)
    old = backup(src, src_loc, repo, cache_dir=tmp_path / "c")
    s3_client.put_object(Bucket=bucket, Key="lake/a.csv", Body=b"two\n" * 100)
    backup(src, src_loc, repo, cache_dir=tmp_path / "c")
    assert forget(repo, RetentionPolicy(last=1)).removed == [old.snapshot_id]
    result = prune(repo, cache_dir=tmp_path / "c")
    assert result.deleted_archives.count == 1 and result.deleted_catalog_files == 1
    left = [v["Key"] for v in _versions(s3_client, versioned_bucket, "r/")]
    assert not [key for key in left if old.snapshot_id in key]  # no versions, no markers
    assert check(repo, read_data=True).ok
    with query(repo, "SELECT count(*) AS n FROM catalog", cache_dir=tmp_path / "q") as rows:
        assert list(rows.rows()) == [{"n": 1}]

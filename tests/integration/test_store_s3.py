"""S3Store against a real S3 server (SeaweedFS): the shared suite and S3 specifics."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from conftest import new_bucket_name
from lakeguard.errors import NotFoundError, StoreError, UnsupportedError
from lakeguard.hashing import StreamHasher
from lakeguard.storage import StoreSettings
from lakeguard.storage.base import MIN_PART_SIZE
from lakeguard.storage.faults import FaultPlan, FaultStore
from lakeguard.storage.s3 import S3Store
from lakeguard.storage.wrappers import RetryPolicy, RetryStore
from storage_suite import StoreSuite, VersionedStoreSuite

pytestmark = pytest.mark.s3


class TestS3Store(StoreSuite):
    bytewise_folder_order = False  # SeaweedFS walks its folders
    empty_folders_vanish = False  # SeaweedFS removes them a little later

    @pytest.fixture
    def store(self, bucket: str, s3_settings: StoreSettings) -> S3Store:
        return S3Store(bucket, s3_settings)

    @pytest.fixture
    def other_store(self, s3_client: Any, s3_settings: StoreSettings) -> S3Store:
        name = new_bucket_name("o")
        s3_client.create_bucket(Bucket=name)
        return S3Store(name, s3_settings)


class TestS3StoreListedByBotocore(TestS3Store):
    """The same suite with botocore listing (what a profile or a config file gets):
    the stores above list without it (storage/s3_env.py)."""

    @pytest.fixture
    def store(
        self,
        bucket: str,
        s3_settings: StoreSettings,
        monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path,
    ) -> S3Store:
        config = tmp_path / "aws-config"
        config.write_text("")
        monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
        store = S3Store(bucket, s3_settings)
        assert store._env is None
        return store


class TestS3StoreVersioned(VersionedStoreSuite):
    @pytest.fixture
    def store(self, bucket: str, s3_settings: StoreSettings) -> S3Store:
        return S3Store(bucket, s3_settings)

    @pytest.fixture
    def versioned_store(self, versioned_bucket: str, s3_settings: StoreSettings) -> S3Store:
        return S3Store(versioned_bucket, s3_settings)


@pytest.fixture
def s3(bucket: str, s3_settings: StoreSettings) -> S3Store:
    return S3Store(bucket, s3_settings)


def test_streamed_put_etag_is_md5_of_part_md5s(s3: S3Store) -> None:
    part = MIN_PART_SIZE + 1024 * 1024  # 6 MiB: not obstore's default 5 MiB
    data = os.urandom(part * 2 + 12_345)
    chunks = (data[i : i + 700_000] for i in range(0, len(data), 700_000))
    result = s3.put("mp/object", chunks, part_size=part, content_type="application/x-test")
    hasher = StreamHasher(part_sizes=[part])
    hasher.update(data)
    assert result.etag == hasher.multipart_etags()[0]
    assert result.etag is not None and result.etag.endswith("-3")
    assert result.size == len(data)
    info = s3.head("mp/object")
    assert info.etag == result.etag
    assert info.content_type == "application/x-test"
    assert hashlib.md5(s3.get_bytes("mp/object")).hexdigest() == hasher.md5


def test_a_failed_streaming_put_leaves_no_upload_and_no_object(s3: S3Store, s3_client: Any) -> None:
    def body() -> Any:
        yield os.urandom(MIN_PART_SIZE)
        yield os.urandom(MIN_PART_SIZE)
        raise RuntimeError("the source went away")

    with pytest.raises(RuntimeError, match="went away"):
        s3.put("broken", body(), part_size=MIN_PART_SIZE)
    uploads = s3_client.list_multipart_uploads(Bucket=s3.bucket).get("Uploads", [])
    assert uploads == []
    with pytest.raises(NotFoundError):
        s3.head("broken")


def test_multipart_copy_of_a_version_keeps_bytes_and_attributes(
    versioned_bucket: str, s3_settings: StoreSettings, s3_client: Any
) -> None:
    store = S3Store(versioned_bucket, s3_settings)
    store.multipart_copy_threshold = MIN_PART_SIZE  # as if the source were above 5 GiB
    store.copy_part_size = MIN_PART_SIZE
    old = os.urandom(2 * MIN_PART_SIZE + 100)
    first = store.put("big", old, content_type="text/plain", metadata={"team": "a"})
    store.put("big", b"overwritten")
    result = store.copy("big", "restored", src_version_id=first.version_id)
    assert result.etag is not None and result.etag.endswith("-3")
    assert store.get_bytes("restored") == old
    info = store.head("restored")
    assert info.content_type == "text/plain"
    assert dict(info.metadata or {}) == {"team": "a"}
    assert s3_client.list_multipart_uploads(Bucket=versioned_bucket).get("Uploads", []) == []


def test_failed_multipart_copy_is_aborted(s3: S3Store, s3_client: Any) -> None:
    s3.multipart_copy_threshold = MIN_PART_SIZE
    s3.copy_part_size = MIN_PART_SIZE
    s3.put("src", os.urandom(2 * MIN_PART_SIZE))
    original = s3.client.upload_part_copy
    calls = {"n": 0}

    def failing(**kwargs: Any) -> Any:
        calls["n"] += 1
        if kwargs["PartNumber"] == 2:
            raise ConnectionResetError("reset by peer")
        return original(**kwargs)

    s3.client.upload_part_copy = failing  # type: ignore[method-assign]
    with pytest.raises(StoreError, match="copy"):
        s3.copy("src", "dst")
    assert s3_client.list_multipart_uploads(Bucket=s3.bucket).get("Uploads", []) == []
    with pytest.raises(NotFoundError):
        s3.head("dst")


def test_sha256_checksum_is_reported_when_the_server_keeps_one(s3: S3Store, s3_client: Any) -> None:
    data = b"checksummed"
    s3_client.put_object(Bucket=s3.bucket, Key="c", Body=data, ChecksumAlgorithm="SHA256")
    info = s3.head("c")
    assert info.checksum_sha256 in (None, hashlib.sha256(data).hexdigest())


def test_keys_obstore_cannot_address_go_through_boto3(s3: S3Store, s3_client: Any) -> None:
    # A folder marker ("dir/", as consoles and Hadoop write them) is a key of
    # its own; obstore would read it as "dir". (SeaweedFS drops a leading "/".)
    # (SeaweedFS keeps no bytes in a key ending in "/": markers are empty anyway.)
    s3.put("folder/", b"", metadata={"kind": "marker"})
    s3.put("folder/inside", b"in")
    assert [i.key for i in s3.list()] == ["folder/", "folder/inside"]
    assert s3.get_bytes("folder/") == b""
    assert s3.head("folder/").size == 0
    with s3.get("folder/") as stream:
        assert stream.info.key == "folder/"
        assert b"".join(stream) == b""
    s3.delete("folder/")
    assert [i.key for i in s3.list()] == ["folder/inside"]


def test_copy_from_another_bucket_is_server_side_and_sees_through_wrappers(
    s3: S3Store, s3_client: Any, s3_settings: StoreSettings
) -> None:
    other_name = new_bucket_name("x")
    s3_client.create_bucket(Bucket=other_name)
    other = S3Store(other_name, s3_settings)
    other.put("k", b"v", metadata={"a": "b"})
    assert s3.same_endpoint(other)
    wrapped = RetryStore(FaultStore(other, FaultPlan()), RetryPolicy(fast=True))
    s3.copy_from(wrapped, "k", "copied")
    assert s3.get_bytes("copied") == b"v"
    assert dict(s3.head("copied").metadata or {}) == {"a": "b"}
    elsewhere = S3Store(other_name, StoreSettings(endpoint_url="http://127.0.0.1:9"))
    assert not s3.same_endpoint(elsewhere)
    with pytest.raises(UnsupportedError):
        s3.copy_from(elsewhere, "k", "nope")


def test_cut_reads_resume_against_the_server(versioned_bucket: str, s3_settings: Any) -> None:
    base = S3Store(versioned_bucket, s3_settings)
    data = os.urandom(3 * 1024 * 1024 + 7)
    base.put("k", data)
    store = RetryStore(FaultStore(base, FaultPlan(cut_after=1024 * 1024)), RetryPolicy(fast=True))
    assert store.get_bytes("k") == data
    assert store.retries == 3


def test_opening_a_store_makes_no_request() -> None:
    store = S3Store("any-bucket", StoreSettings(endpoint_url="http://127.0.0.1:9"))
    assert store.url == "s3://any-bucket"
    assert store.capabilities.versioning

"""The transfer engine against a real S3 server (SeaweedFS): copies, multipart, aborts."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lakeguard.errors import BucketNotFoundError
from lakeguard.location import parse_location
from lakeguard.storage import StoreSettings, open_store
from lakeguard.storage.base import Store, chunked
from lakeguard.storage.local import LocalStore
from lakeguard.storage.memory import MemoryStore
from lakeguard.transfer import CopyItem, ItemResult, copy_objects, items_from_listing

pytestmark = pytest.mark.s3

MiB = 1024 * 1024


def payload(index: int, size: int) -> bytes:
    seed = hashlib.sha256(f"object-{index}".encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]


def s3(bucket: str, settings: StoreSettings) -> Store:
    return open_store(parse_location(f"s3://{bucket}"), settings)


def another_bucket(s3_client: Any) -> str:
    name = f"t-{uuid.uuid4().hex[:12]}"
    s3_client.create_bucket(Bucket=name)
    return name


def incomplete_uploads(s3_client: Any, bucket: str) -> list[dict[str, Any]]:
    uploads: list[dict[str, Any]] = s3_client.list_multipart_uploads(Bucket=bucket).get(
        "Uploads", []
    )
    return uploads


@pytest.fixture
def lake(bucket: str, s3_settings: StoreSettings) -> dict[str, bytes]:
    """A few small objects and one multipart object (5 MiB parts) in ``bucket``."""
    store = s3(bucket, s3_settings)
    written = {f"dt=2026-02-1{i % 3}/part-{i:03d}.parquet": payload(i, 3000 + i) for i in range(12)}
    for key, data in written.items():
        store.put(key, data)
    big = payload(99, 12 * MiB + 17)
    store.put("dt=2026-02-12/big.bin", chunked(big), part_size=5 * MiB)
    written["dt=2026-02-12/big.bin"] = big
    return written


def test_server_side_copy_between_two_buckets_keeps_bytes_and_etags(
    bucket: str, lake: dict[str, bytes], s3_client: Any, s3_settings: StoreSettings
) -> None:
    target = another_bucket(s3_client)
    src, dst = s3(bucket, s3_settings), s3(target, s3_settings)
    seen: list[ItemResult] = []
    result = copy_objects(src, dst, items_from_listing(src.list()), on_item=seen.append)

    assert result.ok, result.failed
    assert result.objects == len(lake)
    assert result.server_side == len(lake)
    assert result.bytes == sum(len(data) for data in lake.values())
    assert result.verified == len(lake)
    for key, data in lake.items():
        assert dst.get_bytes(key) == data
        assert dst.head(key).etag == src.head(key).etag
    assert all(item.server_side for item in seen)


def test_streaming_copy_between_buckets_of_a_multipart_object(
    bucket: str, lake: dict[str, bytes], s3_client: Any, s3_settings: StoreSettings
) -> None:
    # S3 -> S3 through the client: the upload's body is itself an S3 read.
    target = another_bucket(s3_client)
    src, dst = s3(bucket, s3_settings), s3(target, s3_settings)
    result = copy_objects(src, dst, items_from_listing(src.list()), server_side=False)

    assert result.ok, result.failed
    assert result.server_side == 0
    assert result.objects == len(lake)
    for key, data in lake.items():
        assert dst.get_bytes(key) == data
    assert incomplete_uploads(s3_client, target) == []


def test_streaming_copy_to_a_directory_and_back_keeps_every_byte(
    bucket: str,
    lake: dict[str, bytes],
    s3_client: Any,
    s3_settings: StoreSettings,
    tmp_path: Path,
) -> None:
    src = s3(bucket, s3_settings)
    local = LocalStore(tmp_path / "copy")
    local.create()
    down = copy_objects(src, local, items_from_listing(src.list()))
    assert down.ok, down.failed
    assert down.objects == len(lake) and down.server_side == 0
    for key, data in lake.items():
        assert (tmp_path / "copy" / key).read_bytes() == data

    target = another_bucket(s3_client)
    dst = s3(target, s3_settings)
    seen: list[ItemResult] = []
    up = copy_objects(local, dst, items_from_listing(local.list()), on_item=seen.append)
    assert up.ok, up.failed
    assert up.objects == len(lake) and up.verified == len(lake)
    for key, data in lake.items():
        assert dst.get_bytes(key) == data
    sha = {item.dst_key: item.sha256 for item in seen}
    assert sha == {key: hashlib.sha256(data).hexdigest() for key, data in lake.items()}
    # A file's ETag is its MD5, so the big one went up in default 8 MiB parts.
    assert dst.head("dt=2026-02-12/big.bin").etag == next(
        item.etag for item in seen if item.dst_key == "dt=2026-02-12/big.bin"
    )


def test_multipart_upload_etag_computed_in_stream_equals_the_servers(
    bucket: str, s3_client: Any, s3_settings: StoreSettings
) -> None:
    source = MemoryStore("src")
    data = payload(5, 12 * MiB)
    source.put("big.bin", data)
    dst = s3(bucket, s3_settings)
    seen: list[ItemResult] = []
    result = copy_objects(
        source, dst, [CopyItem("big.bin", "x/big.bin")], part_size=5 * MiB, on_item=seen.append
    )

    assert result.ok, result.failed
    (item,) = seen
    server_etag = s3_client.head_object(Bucket=bucket, Key="x/big.bin")["ETag"].strip('"')
    assert item.etag == server_etag
    assert server_etag.endswith("-3")
    assert item.verified
    assert dst.get_bytes("x/big.bin") == data


def test_failed_streaming_put_leaves_no_incomplete_multipart_upload(
    bucket: str, s3_client: Any, s3_settings: StoreSettings
) -> None:
    store = s3(bucket, s3_settings)

    def breaks_half_way() -> Iterator[bytes]:
        yield payload(1, 6 * MiB)  # more than a part: the upload has begun
        yield payload(2, 1 * MiB)
        raise RuntimeError("source went away")

    with pytest.raises(Exception, match="source went away"):
        store.put("broken.bin", breaks_half_way(), part_size=5 * MiB)
    assert incomplete_uploads(s3_client, bucket) == []
    assert list(store.list()) == []


def test_copy_whose_source_fails_its_checksum_is_never_committed(
    bucket: str, s3_client: Any, s3_settings: StoreSettings
) -> None:
    source = MemoryStore("src")
    source.put("big.bin", payload(8, 11 * MiB))
    dst = s3(bucket, s3_settings)
    wrong = hashlib.sha256(b"not these bytes").hexdigest()
    result = copy_objects(source, dst, [CopyItem("big.bin", sha256=wrong)], part_size=5 * MiB)

    assert result.errors == 1 and result.objects == 0
    assert "SHA-256" in result.failed[0][1]
    assert list(dst.list()) == []
    assert incomplete_uploads(s3_client, bucket) == []


def test_copy_into_a_missing_bucket_stops_with_an_error_naming_it(
    bucket: str, lake: dict[str, bytes], s3_settings: StoreSettings
) -> None:
    src = s3(bucket, s3_settings)
    missing = f"missing-{uuid.uuid4().hex[:8]}"
    with pytest.raises(BucketNotFoundError, match=missing):
        copy_objects(src, s3(missing, s3_settings), items_from_listing(src.list()))

"""Server-side copies of listed objects cost one request each (SeaweedFS).

A caller that listed the source hands what it knows (size, ETag, version,
storage class) to the copy, so the store skips its HEAD of the source; the
transfer engine, pitr --to and in-place pitr do so. What the copy keeps
(bytes, content type, metadata, storage class) and how a failure reads
must not change.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import pytest

from lakeguard.errors import NotFoundError
from lakeguard.location import Location, parse_location
from lakeguard.ops.pitr import pitr
from lakeguard.ops.pitr_plan import Action
from lakeguard.storage import StoreSettings, open_store
from lakeguard.storage.base import ObjectInfo, Store
from lakeguard.storage.wrappers import unwrap
from lakeguard.transfer import CopyItem, copy_objects, items_from_listing

pytestmark = pytest.mark.s3


def s3(bucket: str, settings: StoreSettings) -> Store:
    return open_store(parse_location(f"s3://{bucket}"), settings)


@pytest.fixture(scope="module")
def buckets(sandbox: object) -> Iterator[tuple[str, str]]:
    """A versioned and a plain bucket for the whole module, removed at its end.

    Few buckets: each is a SeaweedFS collection holding volumes, and the test
    server has few volume slots.
    """
    import boto3

    from lakeguard.sandbox import ACCESS_KEY, REGION, SECRET_KEY, Sandbox

    assert isinstance(sandbox, Sandbox)
    client = boto3.client(
        "s3",
        endpoint_url=sandbox.endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )
    names = (f"cv-{uuid.uuid4().hex[:12]}", f"cp-{uuid.uuid4().hex[:12]}")
    for name in names:
        client.create_bucket(Bucket=name)
    client.put_bucket_versioning(Bucket=names[0], VersioningConfiguration={"Status": "Enabled"})
    yield names
    for name in names:
        for page in client.get_paginator("list_object_versions").paginate(Bucket=name):
            for item in [*page.get("Versions", ()), *page.get("DeleteMarkers", ())]:
                client.delete_object(Bucket=name, Key=item["Key"], VersionId=item["VersionId"])
        client.delete_bucket(Bucket=name)


@pytest.fixture
def pair(buckets: tuple[str, str], s3_settings: StoreSettings) -> tuple[Store, Store]:
    """The two buckets, the versioned one first; each test writes under its own keys."""
    return s3(buckets[0], s3_settings), s3(buckets[1], s3_settings)


def count_requests(*stores: Store) -> Counter[str]:
    """Counts the S3 requests the stores send from now on, by operation.

    Counted where both of the store's senders meet, botocore's connection
    pool: copies go out through the light CopyObject path (s3_light), the
    rest through botocore's client.
    """
    calls: Counter[str] = Counter()
    sessions = {id(s): s for s in (unwrap(store).client._endpoint.http_session for store in stores)}  # type: ignore[attr-defined]
    for session in sessions.values():
        send = session.send

        def counted(request: Any, send: Any = send) -> Any:
            calls.update([operation(request)])
            return send(request)

        session.send = counted
    return calls


def operation(request: Any) -> str:
    """The S3 operation of a prepared request, for the few this module sends."""
    if request.method == "HEAD":
        path = urlsplit(request.url).path.strip("/")
        return "HeadObject" if "/" in path else "HeadBucket"
    if request.method == "PUT" and "x-amz-copy-source" in request.headers:
        return "UploadPartCopy" if "uploadId=" in request.url else "CopyObject"
    if request.method == "GET" and "versions" in request.url:
        return "ListObjectVersions"
    if request.method == "GET" and "list-type=2" in request.url:
        return "ListObjectsV2"
    return f"{request.method} {request.url}"


def listed(store: Store, key: str) -> ObjectInfo:
    return next(info for info in store.list(key) if info.key == key)


def test_copy_of_a_listed_object_is_one_request_and_keeps_attributes(
    pair: tuple[Store, Store],
) -> None:
    store = pair[1]
    store.put("t1/src.csv", b"a,b\n1,2\n", content_type="text/csv", metadata={"owner": "team-a"})
    info = listed(store, "t1/src.csv")
    assert info.storage_class == "STANDARD"
    calls = count_requests(store)
    result = store.copy("t1/src.csv", "t1/dst.csv", src_info=info)
    assert dict(calls) == {"CopyObject": 1}
    assert result.etag == info.etag and result.size == info.size
    copied = store.head("t1/dst.csv")
    assert store.get_bytes("t1/dst.csv") == b"a,b\n1,2\n"
    assert copied.content_type == "text/csv"
    assert dict(copied.metadata or {}) == {"owner": "team-a"}


def test_copy_from_another_bucket_keeps_a_listed_storage_class(
    pair: tuple[Store, Store], s3_client: Any
) -> None:
    source, target = pair
    s3_client.put_object(
        Bucket=unwrap(source).bucket,  # type: ignore[attr-defined]
        Key="t2/cold",
        Body=b"cold bytes",
        StorageClass="STANDARD_IA",
    )
    info = listed(source, "t2/cold")
    assert info.storage_class == "STANDARD_IA"
    calls = count_requests(source, target)
    target.copy_from(source, "t2/cold", "t2/cold", src_info=info)
    assert dict(calls) == {"CopyObject": 1}
    assert target.head("t2/cold").storage_class == "STANDARD_IA"
    assert target.get_bytes("t2/cold") == b"cold bytes"


def test_what_a_listing_cannot_say_is_still_looked_up(pair: tuple[Store, Store]) -> None:
    store = pair[1]
    store.put("t3/src", b"payload", content_type="text/plain", metadata={"a": "1"})
    info = listed(store, "t3/src")
    unknown_class = ObjectInfo("t3/src", info.size, etag=info.etag)
    calls = count_requests(store)
    store.copy("t3/src", "t3/one", src_info=unknown_class)
    assert calls["HeadObject"] == 1  # a storage class of None is unknown, not STANDARD
    calls.clear()
    # Replacing the metadata sets the content type anew: a listing does not know it.
    store.copy("t3/src", "t3/two", src_info=info, metadata={"a": "2"})
    assert calls["HeadObject"] == 1
    two = store.head("t3/two")
    assert two.content_type == "text/plain" and dict(two.metadata or {}) == {"a": "2"}
    calls.clear()
    store.copy("t3/src", "t3/three", src_info=listed(store, "t3/one"))  # another key's
    assert calls["HeadObject"] == 1
    assert store.get_bytes("t3/three") == b"payload"


def test_copy_of_a_listed_object_that_is_gone_names_the_source(
    pair: tuple[Store, Store],
) -> None:
    target, source = pair
    source.put("t4/gone", b"x")
    info = listed(source, "t4/gone")
    source.delete("t4/gone")
    with pytest.raises(NotFoundError, match=f"{source.url}/t4/gone does not exist"):
        target.copy_from(source, "t4/gone", "t4/copy", src_info=info)
    with pytest.raises(NotFoundError, match=f"{source.url}/t4/gone does not exist"):
        source.copy("t4/gone", "t4/copy", src_info=info)


def test_transfer_from_a_listing_sends_one_request_per_object_and_verifies(
    pair: tuple[Store, Store],
) -> None:
    target, source = pair
    for index in range(20):
        source.put(f"t5/{index:02d}.bin", f"object {index}".encode() * 100)
    calls = count_requests(source, target)
    result = copy_objects(
        source,
        target,
        items_from_listing(source.list("t5/"), src_prefix="t5/", dst_prefix="t5-out/"),
    )
    assert (result.objects, result.server_side, result.verified) == (20, 20, 20)
    assert calls["CopyObject"] == 20 and calls["HeadObject"] == 0
    for index in (0, 19):
        assert target.get_bytes(f"t5-out/{index:02d}.bin") == f"object {index}".encode() * 100
    # The result is still checked against what was listed: a stale ETag fails.
    stale = CopyItem("t5/00.bin", "t5-bad", size=1000, etag="0" * 32, storage_class="STANDARD")
    failed = copy_objects(source, target, [stale])
    assert failed.errors == 1 and "differs from its source" in failed.failed[0][1]


def test_pitr_to_another_bucket_copies_without_a_head_per_object(
    pair: tuple[Store, Store],
) -> None:
    store, replica = pair
    for index in range(8):
        store.put(f"t6/{index}.txt", f"good {index}".encode())
    time.sleep(1.1)  # LastModified has 1-second resolution
    at = datetime.now(UTC)
    time.sleep(1.1)
    for index in range(4):
        store.put(f"t6/{index}.txt", f"bad {index}".encode())
    calls = count_requests(store, replica)
    src_bucket = unwrap(store).bucket  # type: ignore[attr-defined]
    dst_bucket = unwrap(replica).bucket  # type: ignore[attr-defined]
    done = pitr(
        store,
        Location("s3", src_bucket, "t6/"),
        at=at,
        to=(replica, Location("s3", dst_bucket, "t6-restored/")),
    )
    assert done.ok and done.plan.counts["copy"] == 8, done.to_json()
    assert calls["CopyObject"] == 8 and calls["HeadObject"] == 0
    for index in range(8):
        assert replica.get_bytes(f"t6-restored/{index}.txt") == f"good {index}".encode()


def test_plan_rows_carry_the_storage_class() -> None:
    action = Action("copy", "k", version_id="v1", size=3, etag="e", storage_class="GLACIER_IR")
    assert Action.from_json(action.to_json()) == action
    older = action.to_json()
    del older["storage_class"]  # a plan written before rows had one: looked up
    assert Action.from_json(older).storage_class is None

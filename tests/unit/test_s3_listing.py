"""Listing pages read in one pass: entries, decoded keys, order, what is left to botocore."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakeguard.storage.s3_listing import (
    CONTENTS,
    VERSIONS,
    ListedObject,
    fast_objects_page,
    fast_versions_page,
)

NS = 'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'


def test_objects_page_is_read_and_only_the_rest_left_to_botocore() -> None:
    body = (
        f"<ListBucketResult {NS}><Name>b</Name><EncodingType>url</EncodingType>"
        "<IsTruncated>true</IsTruncated><NextContinuationToken>tok</NextContinuationToken>"
        "<Contents><Key>a+b%2Bc%3D.parquet</Key><Size>7</Size><ETag>&quot;e1&quot;</ETag>"
        "<LastModified>2026-01-01T00:00:00.000Z</LastModified>"
        "<StorageClass>STANDARD</StorageClass></Contents>"
        "<Contents><Key>z</Key><Size>0</Size></Contents></ListBucketResult>"
    ).encode()
    response = {"status_code": 200, "body": body}
    custom: dict[str, object] = {}
    fast_objects_page(response, custom)
    assert custom[CONTENTS] == [
        ListedObject("a b+c=.parquet", 7, '"e1"', "2026-01-01T00:00:00.000Z", "STANDARD"),
        ListedObject("z", 0, None, None, None),
    ]
    left = response["body"]
    assert b"Contents" not in left and b"NextContinuationToken>tok<" in left


def test_versions_keep_their_interleaving() -> None:
    body = (
        f"<ListVersionsResult {NS}><IsTruncated>false</IsTruncated>"
        "<DeleteMarker><Key>k</Key><VersionId>3</VersionId><IsLatest>true</IsLatest>"
        "<LastModified>2026-01-03T00:00:00Z</LastModified></DeleteMarker>"
        "<Version><Key>k</Key><VersionId>2</VersionId><IsLatest>false</IsLatest>"
        "<Size>5</Size><ETag>&quot;e&quot;</ETag></Version>"
        "<DeleteMarker><Key>k</Key><VersionId>1</VersionId><IsLatest>false</IsLatest>"
        "</DeleteMarker></ListVersionsResult>"
    ).encode()
    response = {"status_code": 200, "body": body}
    custom: dict[str, list[object]] = {}
    fast_versions_page(response, custom)
    entries = custom[VERSIONS]
    assert [(e.version_id, e.is_delete_marker, e.is_latest) for e in entries] == [  # type: ignore[attr-defined]
        ("3", True, True),
        ("2", False, False),
        ("1", True, False),
    ]
    assert entries[1].size == 5 and entries[0].etag is None  # type: ignore[attr-defined]


def test_a_page_that_does_not_parse_is_left_to_botocore() -> None:
    for response in (
        {"status_code": 200, "body": b"<not xml"},
        {"status_code": 500, "body": b"<Error/>"},
        {
            "status_code": 200,
            "body": f"<ListBucketResult {NS}><Contents><Size>1</Size></Contents>"
            "</ListBucketResult>".encode(),
        },
    ):
        before = dict(response)
        custom: dict[str, object] = {}
        fast_objects_page(response, custom)
        assert custom == {} and response == before


def test_a_listing_that_repeats_its_continuation_token_stops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from botocore.stub import Stubber

    from lakeguard.errors import StoreError
    from lakeguard.storage import StoreSettings
    from lakeguard.storage.s3 import FIRST_PAGE_KEYS, S3Store

    config = tmp_path / "config"
    config.write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))  # botocore lists (s3_env.py)
    store = S3Store(
        "b", StoreSettings(endpoint_url="http://127.0.0.1:9", region="us-east-1", retries=1)
    )
    with Stubber(store.client) as stub:
        page = {"IsTruncated": True, "NextContinuationToken": "t1", "KeyCount": 0}
        stub.add_response(
            "list_objects_v2",
            page,
            {"Bucket": "b", "Prefix": "p/", "MaxKeys": FIRST_PAGE_KEYS},
        )
        for _ in range(2):
            stub.add_response(
                "list_objects_v2",
                page,
                {"Bucket": "b", "Prefix": "p/", "ContinuationToken": "t1"},
            )
        with pytest.raises(StoreError, match="repeats a continuation token"):
            list(store.list("p/"))


def test_the_environment_lister_stops_on_a_repeated_token_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from lakeguard.errors import StoreError
    from lakeguard.storage import StoreSettings
    from lakeguard.storage.s3 import FIRST_PAGE_KEYS, S3Store

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    store = S3Store("b", StoreSettings(endpoint_url="http://127.0.0.1:9", region="us-east-1"))
    asked: list[dict[str, object]] = []

    class Repeating:
        def list_objects_v2(self, **kwargs: object) -> dict[str, object]:
            asked.append(kwargs)
            return {CONTENTS: [], "IsTruncated": True, "NextContinuationToken": "t1"}

    monkeypatch.setattr(store, "_env_lister", Repeating())
    with pytest.raises(StoreError, match="repeats a continuation token"):
        list(store.list("p/"))
    assert asked == [
        {"Bucket": "b", "Prefix": "p/", "MaxKeys": FIRST_PAGE_KEYS},
        {"Bucket": "b", "Prefix": "p/", "ContinuationToken": "t1"},
    ]

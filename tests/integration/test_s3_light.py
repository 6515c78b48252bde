"""CopyObject without botocore's model layer (storage/s3_light.py), on SeaweedFS.

The light path must copy exactly what botocore's copy_object copies (the
named version, content type, metadata, storage class), address every key
botocore can, and fail the same way.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from lakeguard.errors import (
    AccessDeniedError,
    EndpointUnreachableError,
    LakeguardError,
    NotFoundError,
    TransientError,
)
from lakeguard.location import parse_location
from lakeguard.sandbox import free_port
from lakeguard.storage import StoreSettings, open_store
from lakeguard.storage.base import Store
from lakeguard.storage.s3 import S3Store
from lakeguard.storage.s3_clients import connect
from lakeguard.storage.s3_errors import Where, from_botocore
from lakeguard.storage.s3_light import LightCopier, SigV4, host_header
from lakeguard.storage.wrappers import unwrap

pytestmark = pytest.mark.s3

ODD_KEYS = [
    "dt=2026-02-11/part 00000.parquet",
    "région/données-ü.parquet",
    "a+b=c/x%41y~z.bin",
    "deep//double/slash",
    "quote'and\"double/&?#.bin",
]


def s3(bucket: str, settings: StoreSettings) -> Store:
    return open_store(parse_location(f"s3://{bucket}"), settings)


def base(store: Store) -> S3Store:
    inner = unwrap(store)
    assert isinstance(inner, S3Store)
    return inner


def test_light_path_copies_a_named_version_with_its_attributes(
    versioned_bucket: str, bucket: str, s3_settings: StoreSettings, s3_client: Any
) -> None:
    source, target = s3(versioned_bucket, s3_settings), s3(bucket, s3_settings)
    assert base(target)._light() is not None  # a custom endpoint: the light path is on
    for key in ODD_KEYS:
        first = source.put(key, b"old " + key.encode(), content_type="text/x-old")
        source.put(key, b"new bytes", metadata={"state": "newer"})
        info = source.head(key, version_id=first.version_id)
        s3_client.put_object(
            Bucket=versioned_bucket, Key=f"cold/{key}", Body=b"c" * 10, StorageClass="STANDARD_IA"
        )
        result = target.copy_from(source, key, f"copy/{key}", src_version_id=first.version_id)
        assert target.get_bytes(f"copy/{key}") == b"old " + key.encode(), key
        copied = target.head(f"copy/{key}")
        assert copied.content_type == "text/x-old"
        assert dict(copied.metadata or {}) == {}
        assert result.etag == info.etag == copied.etag
        assert result.size == info.size
        cold = source.head(f"cold/{key}")
        target.copy_from(source, f"cold/{key}", f"cold/{key}")
        assert target.head(f"cold/{key}").storage_class == cold.storage_class == "STANDARD_IA"


def test_light_copy_in_a_versioned_bucket_reports_the_new_version(
    versioned_bucket: str, s3_settings: StoreSettings
) -> None:
    store = s3(versioned_bucket, s3_settings)
    first = store.put("k", b"first", metadata={"owner": "a"})
    store.put("k", b"second")
    result = store.copy("k", "k", src_version_id=first.version_id)
    assert result.version_id is not None and result.version_id != first.version_id
    current = store.head("k")
    assert current.version_id == result.version_id
    assert store.get_bytes("k") == b"first"
    assert dict(current.metadata or {}) == {"owner": "a"}


def test_light_copy_failures_read_as_botocore_ones(
    versioned_bucket: str, bucket: str, s3_settings: StoreSettings
) -> None:
    source = s3(versioned_bucket, s3_settings)
    source.put("here", b"x")
    light = base(source)._light()
    assert light is not None

    def where(key: str) -> Where:
        return Where(versioned_bucket, "sandbox", "copy", key)

    with pytest.raises(NotFoundError):
        light.copy(
            {"Bucket": versioned_bucket, "Key": "absent"},
            bucket,
            "x",
            storage_class=None,
            where=where("x"),
        )
    with pytest.raises(NotFoundError):
        light.copy(
            {"Bucket": versioned_bucket, "Key": "here", "VersionId": "no-such-version"},
            bucket,
            "x",
            storage_class=None,
            where=where("x"),
        )
    # A missing destination bucket: whatever the server answers (SeaweedFS: a
    # 500 InternalError), the light path maps it as botocore's answer maps.
    missing = f"gone-{uuid.uuid4().hex[:10]}"
    there = Where(missing, "sandbox", "copy", "x")
    with pytest.raises(LakeguardError) as light_error:
        light.copy(
            {"Bucket": versioned_bucket, "Key": "here"},
            missing,
            "x",
            storage_class=None,
            where=there,
        )
    try:
        base(source).client.copy_object(
            Bucket=missing, Key="x", CopySource={"Bucket": versioned_bucket, "Key": "here"}
        )
    except Exception as err:
        expected = from_botocore(err, there)
    else:
        pytest.fail("botocore copied to a missing bucket")
    assert type(light_error.value) is type(expected)
    assert str(light_error.value) == str(expected)
    # Through the store: the error names what is missing.
    with pytest.raises(NotFoundError, match="absent"):
        s3(bucket, s3_settings).copy_from(source, "absent", "x")


def test_light_copy_with_wrong_credentials_is_access_denied(
    versioned_bucket: str, s3_settings: StoreSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = s3(versioned_bucket, s3_settings)
    good.put("secret", b"x")
    info = good.head("secret")  # known: the copy is its only request
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    store = S3Store(versioned_bucket, s3_settings)
    with pytest.raises(AccessDeniedError):
        store.copy("secret", "copy", src_info=info)


def test_light_copy_to_an_endpoint_that_is_down_fails_fast(s3_settings: StoreSettings) -> None:
    settings = StoreSettings(
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        region="us-east-1",
        connect_timeout=1,
        fast_retry=True,
    )
    light = LightCopier.for_clients(connect("nowhere", settings))
    assert light is not None
    with pytest.raises(EndpointUnreachableError):
        light.copy(
            {"Bucket": "nowhere", "Key": "a"},
            "nowhere",
            "b",
            storage_class=None,
            where=Where("nowhere", "down", "copy", "b"),
        )


def test_aws_endpoints_keep_botocore(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    clients = connect("any-bucket", StoreSettings(region="eu-west-1"))
    assert not clients.custom_endpoint
    assert LightCopier.for_clients(clients) is None  # virtual hosts, FIPS ...: botocore's


class _Response:
    def __init__(self, status: int, body: bytes) -> None:
        self.status_code, self.content, self.headers = status, body, {}


class _Transport:
    """Answers every request with one canned response (what S3 may send)."""

    def __init__(self, status: int, body: bytes) -> None:
        self.response = _Response(status, body)
        self.sent: list[Any] = []

    def send(self, request: Any) -> _Response:
        self.sent.append(request)
        return self.response


def _copier(transport: _Transport) -> LightCopier:
    clients = connect("b", StoreSettings(endpoint_url="http://127.0.0.1:9", region="us-east-1"))
    return LightCopier(clients, transport)


ERROR_IN_200 = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InternalError</Code>'
    b"<Message>We encountered an internal error. Please try again.</Message></Error>"
)


def test_an_error_inside_a_200_is_a_transient_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")
    where = Where("b", "test", "copy", "dst")
    for body in (ERROR_IN_200, b"", b"<not xml"):
        light = _copier(_Transport(200, body))
        with pytest.raises(TransientError):
            light.copy({"Bucket": "a", "Key": "k"}, "b", "dst", storage_class=None, where=where)
    ok = _Transport(
        200,
        b'<CopyObjectResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        b"<LastModified>2026-01-01T00:00:00Z</LastModified><ETag>&quot;abc&quot;</ETag>"
        b"</CopyObjectResult>",
    )
    copied = _copier(ok).copy(
        {"Bucket": "src", "Key": "a b/ü+=", "VersionId": "v1"},
        "b",
        "dst key+1",
        storage_class="GLACIER_IR",
        where=where,
    )
    assert copied.etag == '"abc"'
    sent = ok.sent[0]
    assert sent.method == "PUT"
    assert sent.url == "http://127.0.0.1:9/b/dst%20key%2B1"
    assert sent.headers["x-amz-copy-source"] == "src/a%20b/%C3%BC%2B%3D?versionId=v1"
    assert sent.headers["x-amz-metadata-directive"] == "COPY"
    assert sent.headers["x-amz-storage-class"] == "GLACIER_IR"
    assert sent.headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=k/")


SIGNED_CASES = [
    ("dst/plain.parquet", "src/plain.parquet", None, None),
    ("dst/a key with spaces +=.txt", "src/a key+=.txt", "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY", None),
    ("dst/ünï/çødé ключ", "src/x%41y~z", "null", "STANDARD_IA"),
    ("deep//double/slash", "src/quote'and\"&?#", None, "GLACIER_IR"),
]


@pytest.mark.parametrize("token", [None, "FwoGZXIvYXdzEJr//////////wEaDOPsessiontoken="])
@pytest.mark.parametrize(
    "endpoint",
    [
        "http://127.0.0.1:8333",
        "https://s3.example.com",
        "https://S3.Example.com:443",
        "http://minio.local:80/prefix",
        "http://[::1]:9000",
    ],
)
def test_the_signature_is_botocores(
    endpoint: str, token: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every header and the Authorization equal what botocore's S3 SigV4 signer makes."""
    import botocore.auth
    import botocore.session
    from botocore.awsrequest import AWSRequest
    from botocore.utils import percent_encode

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    if token:
        monkeypatch.setenv("AWS_SESSION_TOKEN", token)
    else:
        monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    session = botocore.session.Session()
    fixed = datetime(2026, 2, 11, 23, 59, 58, tzinfo=UTC)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: fixed)
    assert host_header(endpoint) == botocore.auth._host_from_url(endpoint)  # type: ignore[attr-defined]
    base_path = endpoint.split("//", 1)[1].partition("/")[2]
    signer = SigV4(session, "eu-central-1", endpoint)
    for day in (fixed, fixed + timedelta(seconds=3)):  # the second crosses midnight
        monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, d=day, **k: d)
        for key, src, version, storage_class in SIGNED_CASES:
            headers = {
                "x-amz-copy-source": percent_encode(f"b/{src}", safe="-._~/")
                + (f"?versionId={version}" if version else ""),
                "x-amz-metadata-directive": "COPY",
            }
            if storage_class:
                headers["x-amz-storage-class"] = storage_class
            path = f"/bucket/{percent_encode(key, safe='/~')}"
            ours = signer.sign(
                "PUT", ("/" + base_path if base_path else "") + path, headers, now=day
            )
            theirs = AWSRequest("PUT", endpoint + path, headers=dict(headers), data=b"")
            frozen = session.get_credentials().get_frozen_credentials()
            botocore.auth.S3SigV4Auth(frozen, "s3", "eu-central-1").add_auth(theirs)
            expected = {k.lower(): v for k, v in theirs.headers.items()}
            assert {k.lower(): v for k, v in ours.items()} == expected, key


LISTING_CASES = [
    {"list-type": "2", "encoding-type": "url"},
    {"list-type": "2", "encoding-type": "url", "prefix": "lake/dt=2026-02-11/", "max-keys": "400"},
    {
        "list-type": "2",
        "encoding-type": "url",
        "prefix": "a b/ünï+çødé ключ/~x*y'z(1)!",
        "start-after": "a b/ünï+/k=v&w",
        "continuation-token": "1/K+xP3q==/AbC",
    },
]


@pytest.mark.parametrize("params", LISTING_CASES)
@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:8333", "http://minio.local:80/prefix"])
def test_a_listing_signature_is_botocores(
    endpoint: str, params: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A GET with a query string (ListObjectsV2, s3_env.py) is signed as botocore signs it."""
    import botocore.auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    from lakeguard.storage.s3_env import EnvAccess, FrozenCredentials
    from lakeguard.storage.s3_light import canonical_query

    fixed = datetime(2026, 11, 22, 9, 30, 0, tzinfo=UTC)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: fixed)
    access = EnvAccess(endpoint, "us-east-1", FrozenCredentials("AKID", "secret", "tok"))
    signer = SigV4(access, "us-east-1", endpoint)
    query = canonical_query(params)
    base_path = endpoint.split("//", 1)[1].partition("/")[2]
    ours = signer.sign(
        "GET", ("/" + base_path if base_path else "") + "/bucket", {}, query=query, now=fixed
    )
    theirs = AWSRequest("GET", f"{endpoint}/bucket?{query}", data=b"")
    botocore.auth.S3SigV4Auth(Credentials("AKID", "secret", "tok"), "s3", "us-east-1").add_auth(
        theirs
    )
    expected = {k.lower(): v for k, v in theirs.headers.items()}
    assert {k.lower(): v for k, v in ours.items()} == expected
    # The query as sent: every name and value percent-encoded but - _ . ~, in name order.
    assert query.split("&") == sorted(query.split("&"))
    assert all(ch.isalnum() or ch in "-_.~%=&" for ch in query)

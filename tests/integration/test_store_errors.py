"""Store errors a user meets: bad scheme, missing bucket, wrong credentials, endpoint down."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from conftest import new_bucket_name
from lakeguard.errors import (
    AccessDeniedError,
    BucketNotFoundError,
    EndpointUnreachableError,
    LakeguardError,
    UsageError,
)
from lakeguard.location import parse_location
from lakeguard.sandbox import free_port
from lakeguard.storage import Store, StoreSettings, open_store

pytestmark = pytest.mark.s3

WRONG_SECRET = "wrong-secret-Zq81vXk2Lmn0"

OPERATIONS: list[tuple[str, Callable[[Store], Any]]] = [
    ("list", lambda s: list(s.list())),
    ("list_versions", lambda s: list(s.list_versions())),
    ("list_prefixes", lambda s: s.list_prefixes()),
    ("head", lambda s: s.head("k")),
    ("get", lambda s: s.get_bytes("k")),
    ("put", lambda s: s.put("k", b"v")),
    ("put_stream", lambda s: s.put("k", iter([b"v"]))),
    ("copy", lambda s: s.copy("k", "k2")),
    ("delete", lambda s: s.delete("k")),
    ("versioning", lambda s: s.versioning()),
]


def _chain(err: BaseException) -> str:
    parts = []
    current: BaseException | None = err
    while current is not None:
        parts.append(f"{type(current).__name__}: {current!s} {current!r}")
        current = current.__cause__ or current.__context__
    return "\n".join(parts)


@pytest.mark.parametrize("text", ["ftp://host/x", "gs://bucket/data", "hdfs://nn/x"])
def test_unknown_scheme_is_a_usage_error(text: str) -> None:
    with pytest.raises(UsageError, match="unknown location scheme") as info:
        open_store(parse_location(text))
    assert info.value.exit_code == 2


# SeaweedFS creates a missing bucket on PUT, so puts are not in this list.
READS = [(name, op) for name, op in OPERATIONS if not name.startswith("put")]


@pytest.mark.parametrize(("name", "operation"), READS, ids=[n for n, _ in READS])
def test_missing_bucket_is_named(
    s3_settings: StoreSettings, name: str, operation: Callable[[Store], Any]
) -> None:
    missing = new_bucket_name("missing")
    store = open_store(parse_location(f"s3://{missing}"), s3_settings)
    with pytest.raises(BucketNotFoundError, match=missing) as info:
        operation(store)
    assert info.value.exit_code == 3
    assert not store.exists()


@pytest.mark.parametrize(("name", "operation"), OPERATIONS, ids=[n for n, _ in OPERATIONS])
def test_wrong_credentials_are_access_denied_without_the_secret(
    bucket: str,
    s3_settings: StoreSettings,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    operation: Callable[[Store], Any],
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", WRONG_SECRET)
    store = open_store(parse_location(f"s3://{bucket}"), s3_settings)
    with pytest.raises(AccessDeniedError) as info:
        operation(store)
    assert "credentials" in info.value.message
    assert bucket in info.value.message
    assert WRONG_SECRET not in _chain(info.value)
    assert info.value.exit_code == 3


def test_no_credentials_at_all(
    bucket: str, s3_settings: StoreSettings, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    store = open_store(parse_location(f"s3://{bucket}"), s3_settings)
    with pytest.raises(AccessDeniedError, match="credentials"):
        store.get_bytes("k")
    with pytest.raises(AccessDeniedError, match="credentials"):
        list(store.list())


def test_unknown_profile_is_a_usage_error(s3_settings: StoreSettings, bucket: str) -> None:
    settings = StoreSettings(endpoint_url=s3_settings.endpoint_url, profile="no-such-profile")
    store = open_store(parse_location(f"s3://{bucket}"), settings)
    with pytest.raises(UsageError, match="no-such-profile"):
        list(store.list())


# One per engine and kind: a boto3 listing, an obstore read, an obstore write.
DOWN = [(name, op) for name, op in OPERATIONS if name in ("list", "get", "put")]


@pytest.mark.parametrize(("name", "operation"), DOWN, ids=[n for n, _ in DOWN])
def test_endpoint_down_fails_within_seconds(
    sandbox: object, name: str, operation: Callable[[Store], Any]
) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    # Default retry settings (not the fast test ones): the bound a user gets.
    store = open_store(parse_location("s3://some-bucket"), StoreSettings(endpoint_url=endpoint))
    started = time.monotonic()
    with pytest.raises(EndpointUnreachableError) as info:
        operation(store)
    elapsed = time.monotonic() - started
    assert endpoint in info.value.message
    assert info.value.exit_code == 3
    assert elapsed < 30, f"took {elapsed:.1f}s"


def test_errors_are_lakeguard_errors_with_one_line(s3_settings: StoreSettings) -> None:
    store = open_store(parse_location("s3://no-such-bucket-here"), s3_settings)
    with pytest.raises(LakeguardError) as info:
        store.head("k")
    assert "\n" not in info.value.message

"""Fixtures shared by every tier.

The S3 tiers run against a real SeaweedFS server started once per session by
the same code as ``lakeguard sandbox start`` (free ports, a temp directory).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from lakeguard.storage import StoreSettings
from lakeguard.storage.memory import MemoryStore

# The shared store suite lives outside test modules: let pytest explain its asserts.
pytest.register_assert_rewrite("storage_suite")


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from lakeguard import sandbox as sandbox_mod

    directory = tmp_path_factory.mktemp("seaweedfs")
    box = sandbox_mod.start(directory, port=sandbox_mod.free_port())
    saved = {name: os.environ.get(name) for name in box.env()}
    os.environ.update(box.env())
    try:
        yield box
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        sandbox_mod.stop(directory)


@pytest.fixture
def s3_settings(sandbox: object) -> StoreSettings:
    from lakeguard.sandbox import Sandbox

    assert isinstance(sandbox, Sandbox)
    return StoreSettings(endpoint_url=sandbox.endpoint, region="us-east-1", fast_retry=True)


def new_bucket_name(tag: str = "t") -> str:
    return f"{tag}-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def s3_client(sandbox: object) -> object:
    import boto3

    from lakeguard.sandbox import ACCESS_KEY, REGION, SECRET_KEY, Sandbox

    assert isinstance(sandbox, Sandbox)
    return boto3.client(
        "s3",
        endpoint_url=sandbox.endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )


@pytest.fixture
def bucket(s3_client: object) -> str:
    """A new, empty, unversioned bucket."""
    name = new_bucket_name()
    s3_client.create_bucket(Bucket=name)  # type: ignore[attr-defined]
    return name


@pytest.fixture
def versioned_bucket(s3_client: object) -> str:
    name = new_bucket_name("v")
    s3_client.create_bucket(Bucket=name)  # type: ignore[attr-defined]
    s3_client.put_bucket_versioning(  # type: ignore[attr-defined]
        Bucket=name, VersioningConfiguration={"Status": "Enabled"}
    )
    return name


@pytest.fixture(autouse=True)
def _fresh_memory_stores() -> Iterator[None]:
    MemoryStore.forget_all()
    yield
    MemoryStore.forget_all()

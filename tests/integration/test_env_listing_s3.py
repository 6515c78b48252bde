"""Listings sent without botocore (s3_env.py) against SeaweedFS: the same answers and errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import new_bucket_name
from lakeguard.errors import AccessDeniedError, BucketNotFoundError, EndpointUnreachableError
from lakeguard.sandbox import free_port
from lakeguard.storage import StoreSettings
from lakeguard.storage.s3 import S3Store
from storage_suite import put_many

pytestmark = pytest.mark.s3

ODD_KEYS = [
    "p/plain.parquet",
    "p/a b",
    "p/a%20b",
    "p/a+b=c&d",
    "p/ünï/çødé ключ",
    "p/*?",
    "p/.hidden",
    "p/#frag",
    "p/semi;colon",
    "p/%",
    "p/%zz",
    "p/~tilde'(1)!",
    "p/dir/",
    "p/dir/x",
]


@pytest.fixture(params=["environment", "botocore"])
def engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """Which engine lists: an existing AWS config file makes botocore decide."""
    if request.param == "botocore":
        config = tmp_path / "aws-config"
        config.write_text("")
        monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    else:
        monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    return str(request.param)


def _store(bucket: str, settings: StoreSettings, engine: str) -> S3Store:
    store = S3Store(bucket, settings)
    assert (store._env is not None) == (engine == "environment")
    return store


def _listing(store: S3Store, prefix: str = "", start_after: str | None = None) -> list[Any]:
    return [
        (i.key, i.size, i.etag, i.last_modified, i.storage_class)
        for i in store.list(prefix, start_after=start_after)
    ]


def test_both_engines_list_the_same(
    bucket: str, s3_settings: StoreSettings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    many = [f"p/many/{n:04d}" for n in range(450)]  # past the short first page (400)
    put_many(S3Store(bucket, s3_settings), ODD_KEYS + many)
    listings = {}
    for engine in ("environment", "botocore"):
        config = tmp_path / engine
        if engine == "botocore":
            config.write_text("")
        monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
        store = _store(bucket, s3_settings, engine)
        listings[engine] = [
            _listing(store),
            _listing(store, "p/"),
            _listing(store, "p/a "),
            _listing(store, "p/ünï/"),
            _listing(store, "p/", start_after="p/many/0399"),
            _listing(store, "p/many/", start_after="p/many/0010"),
            _listing(store, "nothing/"),
        ]
        # The environment's listings create no botocore client.
        assert (store._clients is None) == (engine == "environment")
    assert listings["environment"] == listings["botocore"]
    everything = [key for key, *_ in listings["environment"][0]]
    assert sorted(everything) == sorted(ODD_KEYS + many)
    assert [key for key, *_ in listings["environment"][2]] == ["p/a b"]
    assert len(listings["environment"][5]) == 439


def test_a_missing_bucket_is_named(s3_settings: StoreSettings, engine: str) -> None:
    missing = new_bucket_name("missing")
    store = _store(missing, s3_settings, engine)
    with pytest.raises(BucketNotFoundError, match=missing) as info:
        list(store.list())
    assert info.value.exit_code == 3


def test_a_wrong_secret_is_access_denied(
    bucket: str, s3_settings: StoreSettings, engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret-Zq81vXk2Lmn0")
    store = _store(bucket, s3_settings, engine)
    with pytest.raises(AccessDeniedError) as info:
        list(store.list())
    assert "wrong-secret" not in info.value.message
    assert "credentials" in info.value.message


def test_an_endpoint_that_is_down_fails_fast(sandbox: object, engine: str) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    store = _store("b", StoreSettings(endpoint_url=endpoint, region="us-east-1"), engine)
    started = time.monotonic()
    with pytest.raises(EndpointUnreachableError) as info:
        list(store.list())
    assert endpoint in info.value.message
    assert time.monotonic() - started < 30


def test_backup_and_its_reads_from_the_environment_never_load_botocore(
    sandbox: object, s3_settings: StoreSettings, bucket: str, tmp_path: Path
) -> None:
    """botocore's start costs every command about 0.5 s: backup, restore, check,
    snapshots and ls need none of it when the environment says where S3 is."""
    source = S3Store(bucket, s3_settings)
    put_many(source, [f"lake/dt=2026-02-1{n}/part-0.parquet" for n in range(3)], body=b"p" * 5000)
    env = {**os.environ, "AWS_CONFIG_FILE": str(tmp_path / "none")}
    env["AWS_ENDPOINT_URL"] = s3_settings.endpoint_url or ""
    repo = f"s3://{new_bucket_name('repo')}/r"
    code = (
        "import sys\n"
        "from lakeguard.cli import run\n"
        "rc = 0\n"
        "try:\n"
        "    run(sys.argv[1:])\n"
        "except SystemExit as exit:\n"
        "    rc = exit.code\n"
        "print(rc, 'botocore' in sys.modules, file=sys.stderr)\n"
    )
    reads = [
        ["check", "--repo", repo, "--read-data"],
        ["restore", "--repo", repo, "latest", "--to", str(tmp_path / "out")],
        ["snapshots", "--repo", repo],
        ["ls", "--repo", repo, "latest"],
    ]
    for argv in (
        ["init", repo],
        ["backup", f"s3://{bucket}/lake", "--repo", repo, "--json"],
        *reads,
        ["backup", f"s3://{bucket}/lake", "--repo", repo, "--json"],
    ):
        done = subprocess.run(
            [sys.executable, "-c", code, *argv],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        rc, loaded = done.stderr.strip().rsplit("\n", 1)[-1].split()
        assert rc in ("0", "None"), done.stderr
        if argv[0] != "init":
            assert loaded == "False", f"{argv}: botocore was imported"
    result = json.loads(done.stdout)
    assert (result["objects"], result["new_objects"]) == (3, 0)

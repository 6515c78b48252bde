from __future__ import annotations

from pathlib import Path

import pytest

from lakeguard import sandbox as sandbox_mod
from lakeguard.errors import UsageError


def test_session_sandbox_answers_s3(s3_client: object, bucket: str) -> None:
    s3_client.put_object(Bucket=bucket, Key="k", Body=b"v")  # type: ignore[attr-defined]
    body = s3_client.get_object(Bucket=bucket, Key="k")["Body"].read()  # type: ignore[attr-defined]
    assert body == b"v"


def test_status_of_an_empty_directory_is_none(tmp_path: Path) -> None:
    assert sandbox_mod.status(tmp_path) is None
    assert sandbox_mod.stop(tmp_path) is False


def test_start_refuses_a_port_in_use(sandbox: sandbox_mod.Sandbox, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="already in use"):
        sandbox_mod.start(tmp_path, port=sandbox.s3_port)
    assert sandbox_mod.status(tmp_path) is None

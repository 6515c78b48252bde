"""When the AWS_* environment alone says how to reach an endpoint (s3_env.py)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from lakeguard.storage import StoreSettings
from lakeguard.storage.s3_env import EnvAccess, FrozenCredentials, ca_bundle, env_access

ENDPOINT = "http://127.0.0.1:8333"


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "secret",
        "AWS_ENDPOINT_URL": ENDPOINT,
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        **extra,
    }


def test_the_environment_alone_gives_endpoint_region_and_credentials(tmp_path: Path) -> None:
    access = env_access(StoreSettings(), _env(tmp_path, AWS_SESSION_TOKEN="tok"))
    assert access == EnvAccess(
        ENDPOINT, "us-east-1", FrozenCredentials("AKIDEXAMPLE", "secret", "tok")
    )
    assert access.get_credentials().get_frozen_credentials().token == "tok"


@pytest.mark.parametrize(
    ("settings", "extra"),
    [
        (StoreSettings(region="eu-west-1"), {"AWS_DEFAULT_REGION": "us-west-2"}),
        (StoreSettings(), {"AWS_DEFAULT_REGION": "us-west-2", "AWS_REGION": "eu-north-1"}),
        (StoreSettings(), {"AWS_REGION": "eu-north-1"}),
        (StoreSettings(), {}),
        (StoreSettings(), {"AWS_ENDPOINT_URL_S3": "https://s3.example.com:9000"}),
        (StoreSettings(endpoint_url="http://[::1]:9000"), {}),
    ],
)
def test_endpoint_and_region_are_what_the_botocore_path_resolves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings: StoreSettings, extra: dict[str, str]
) -> None:
    from lakeguard.storage.s3_clients import connect

    for name in ("AWS_DEFAULT_REGION", "AWS_REGION", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    env = _env(tmp_path, **extra)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    access = env_access(settings)
    clients = connect("b", settings)
    assert access is not None
    assert (access.endpoint, access.region) == (clients.endpoint, clients.region)
    frozen = clients.session.get_credentials().get_frozen_credentials()
    assert access.credentials == FrozenCredentials(frozen.access_key, frozen.secret_key, None)


def test_endpoint_precedence(tmp_path: Path) -> None:
    env = _env(tmp_path, AWS_ENDPOINT_URL_S3="http://127.0.0.1:9000")
    assert env_access(StoreSettings(), env).endpoint == "http://127.0.0.1:9000"  # type: ignore[union-attr]
    settings = StoreSettings(endpoint_url="https://s3.example.com")
    assert env_access(settings, env).endpoint == "https://s3.example.com"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("tokens", "expected"),
    [
        ({"AWS_SECURITY_TOKEN": "old", "AWS_SESSION_TOKEN": "new"}, "old"),
        ({"AWS_SECURITY_TOKEN": "", "AWS_SESSION_TOKEN": "new"}, "new"),
        ({"AWS_SESSION_TOKEN": ""}, None),
        ({}, None),
    ],
)
def test_the_token_is_the_one_botocore_takes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tokens: dict[str, str], expected: str | None
) -> None:
    import botocore.session

    env = _env(tmp_path, **tokens)
    for name in ("AWS_SECURITY_TOKEN", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    frozen = botocore.session.Session().get_credentials().get_frozen_credentials()
    assert frozen.token == expected
    assert env_access(StoreSettings(), env).credentials.token == expected  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("settings", "change"),
    [
        (StoreSettings(profile="dev"), {}),
        (StoreSettings(), {"AWS_PROFILE": "dev"}),
        (StoreSettings(), {"AWS_DEFAULT_PROFILE": "dev"}),
        (StoreSettings(), {"AWS_ACCESS_KEY_ID": ""}),
        (StoreSettings(), {"AWS_SECRET_ACCESS_KEY": ""}),
        (StoreSettings(), {"AWS_CREDENTIAL_EXPIRATION": "2026-11-22T10:00:00Z"}),
        (StoreSettings(), {"AWS_ENDPOINT_URL": ""}),
        (StoreSettings(), {"AWS_ENDPOINT_URL": "localhost:9000"}),
        (StoreSettings(), {"HTTPS_PROXY": "http://proxy:3128"}),
        (StoreSettings(), {"http_proxy": "http://proxy:3128"}),
        (StoreSettings(), {"ALL_PROXY": "socks5://proxy:1080"}),
        (StoreSettings(), {"config": "[default]\nregion = eu-west-1\n"}),
    ],
    ids=[
        "profile",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "no key id",
        "no secret",
        "expiring",
        "no endpoint",
        "endpoint without scheme",
        "HTTPS_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "config file",
    ],
)
def test_botocore_decides_whenever_something_else_could_matter(
    tmp_path: Path, settings: StoreSettings, change: dict[str, str]
) -> None:
    env = _env(tmp_path)
    for name, value in change.items():
        if name == "config":
            (tmp_path / "no-config").write_text(value)
        else:
            env[name] = value
    assert env_access(settings, env) is None


def test_ca_bundle_is_aws_ca_bundle_else_the_one_botocore_uses(tmp_path: Path) -> None:
    assert ca_bundle({"AWS_CA_BUNDLE": "/etc/ca.pem"}) == "/etc/ca.pem"
    default = ca_bundle({})
    assert Path(default).is_file()


class _OneRequestPerConnection(BaseHTTPRequestHandler):
    """Answers one GET per connection, then hangs up without saying so (keep-alive lies)."""

    protocol_version = "HTTP/1.1"
    served: list[str] = []  # noqa: RUF012 - shared by the handler instances of a test
    silent = False  # hang up without answering at all

    def do_GET(self) -> None:
        _OneRequestPerConnection.served.append(self.path)
        self.close_connection = True
        if _OneRequestPerConnection.silent:
            return
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def hanging_up_server() -> Iterator[str]:
    _OneRequestPerConnection.served = []
    _OneRequestPerConnection.silent = False
    server = ThreadingHTTPServer(("127.0.0.1", 0), _OneRequestPerConnection)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_kept_alive_connection_the_server_closed_is_replaced(hanging_up_server: str) -> None:
    from lakeguard.storage.s3_env import _Connections
    from lakeguard.storage.s3_errors import Where

    where = Where("b", hanging_up_server, "list")
    connections = _Connections(hanging_up_server, 5.0, 5.0)
    for n in range(3):
        assert connections.get(f"/b?n={n}", {"host": "x"}, where) == (200, b"ok")
    assert _OneRequestPerConnection.served == ["/b?n=0", "/b?n=1", "/b?n=2"]


def test_a_fresh_connection_that_fails_is_a_transient_error(hanging_up_server: str) -> None:
    from lakeguard.errors import TransientError
    from lakeguard.storage.s3_env import _Connections
    from lakeguard.storage.s3_errors import Where

    _OneRequestPerConnection.silent = True
    connections = _Connections(hanging_up_server, 5.0, 5.0)
    with pytest.raises(TransientError, match="connection failed"):
        connections.get("/b", {"host": "x"}, Where("b", hanging_up_server, "list"))

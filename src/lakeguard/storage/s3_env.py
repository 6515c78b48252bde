"""Reaching an S3-compatible endpoint from the AWS_* environment, without botocore.

Importing botocore and building its S3 client takes 0.2-0.25 s of CPU (the
module imports, then the S3 model, endpoint rules and partition data it
parses), before the first request: a third of a no-change backup of 2,206
keys, and the same 0.2 s of every run against an S3 endpoint. When the
endpoint and the credentials come from the environment alone, botocore would
add nothing to what is reached or how requests are signed, so:

    obstore gets the environment's credentials directly, and
    ListObjectsV2 is sent from here: a GET signed with SigV4 (s3_light.SigV4,
    checked against botocore's signer in the tests), sent on keep-alive
    http.client connections, its page read by s3_listing.objects_page (the
    same parser the botocore path hooks in).

Every other control-plane call (versions, heads, copies, deletes) goes
through botocore as before; its client is then created on first use.

The environment is used alone only when nothing else could change the
outcome; otherwise botocore resolves everything, as before:
    an endpoint from --endpoint-url, AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL
        (addressed path-style, as lakeguard's botocore client does)
    AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY set, no profile named (by
        --profile, AWS_PROFILE or AWS_DEFAULT_PROFILE: botocore reports one that
        does not exist), and no AWS_CREDENTIAL_EXPIRATION (credentials that expire)
    no AWS config file (AWS_CONFIG_FILE, else ~/.aws/config): one could hold a
        region, a CA bundle or an endpoint for the profile
    no proxy variables (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY, in either case)
The region is --region, AWS_DEFAULT_REGION, AWS_REGION or us-east-1, as
s3_clients.connect resolves it; https endpoints are checked against
AWS_CA_BUNDLE, else the CA bundle botocore would use (certifi's, else its own).
"""

from __future__ import annotations

import http.client
import importlib.util
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from lakeguard.errors import EndpointUnreachableError, LakeguardError, StoreError, TransientError
from lakeguard.storage import StoreSettings
from lakeguard.storage.s3_errors import Where
from lakeguard.storage.s3_light import SigV4, canonical_query, xml_error, xml_root
from lakeguard.storage.s3_listing import objects_page

_PROXIES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")


@dataclass(frozen=True, slots=True)
class FrozenCredentials:
    """The shape of botocore's ReadOnlyCredentials."""

    access_key: str
    secret_key: str
    token: str | None


@dataclass(frozen=True, slots=True)
class EnvAccess:
    """Endpoint, region and credentials read from the environment.

    Offers botocore's credential calls (get_credentials, get_frozen_credentials),
    so the signer and obstore's credential provider take it as they take a session.
    """

    endpoint: str
    region: str
    credentials: FrozenCredentials

    @property
    def access_key(self) -> str:
        return self.credentials.access_key

    def get_credentials(self) -> EnvAccess:
        return self

    def get_frozen_credentials(self) -> FrozenCredentials:
        return self.credentials


def env_access(
    settings: StoreSettings, environ: Mapping[str, str] | None = None
) -> EnvAccess | None:
    """What the environment alone says of the endpoint; None when botocore must decide."""
    env = os.environ if environ is None else environ
    if settings.profile or env.get("AWS_PROFILE") or env.get("AWS_DEFAULT_PROFILE"):
        return None  # a named profile is botocore's to find (or to report missing)
    key, secret = env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")
    if not key or not secret or env.get("AWS_CREDENTIAL_EXPIRATION"):
        return None
    endpoint = (
        settings.endpoint_url or env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    )
    if not endpoint or urlsplit(endpoint).scheme not in ("http", "https"):
        return None
    if any(env.get(name) or env.get(name.lower()) for name in _PROXIES):
        return None
    if _config_file(env).exists():
        return None
    region = (
        settings.region or env.get("AWS_DEFAULT_REGION") or env.get("AWS_REGION") or "us-east-1"
    )
    # botocore's EnvProvider takes the first of these that is set and not empty.
    token = env.get("AWS_SECURITY_TOKEN") or env.get("AWS_SESSION_TOKEN") or None
    return EnvAccess(endpoint, region, FrozenCredentials(key, secret, token))


def _config_file(env: Mapping[str, str]) -> Path:
    return Path(env.get("AWS_CONFIG_FILE") or "~/.aws/config").expanduser()


def ca_bundle(env: Mapping[str, str] | None = None) -> str:
    """The CA bundle botocore would verify an https endpoint with."""
    env = os.environ if env is None else env
    if env.get("AWS_CA_BUNDLE"):
        return env["AWS_CA_BUNDLE"]
    try:
        import certifi  # type: ignore[import-not-found, unused-ignore]

        return str(certifi.where())
    except ImportError:  # botocore's own copy, beside its modules
        spec = importlib.util.find_spec("botocore")
        origin = spec.origin if spec is not None else None
        if origin is None:
            raise StoreError("no CA bundle for https: set AWS_CA_BUNDLE", op="connect") from None
        return str(Path(origin).parent / "cacert.pem")


class EnvLister:
    """ListObjectsV2 for the buckets of one endpoint; see the module docstring."""

    def __init__(self, access: EnvAccess, settings: StoreSettings) -> None:
        self.access = access
        base = access.endpoint.rstrip("/")
        self._path = urlsplit(base).path  # an endpoint may have a path of its own
        self._signer = SigV4(access, access.region, base)
        self._http = _Connections(base, settings.connect_timeout, settings.read_timeout)

    def list_objects_v2(
        self,
        *,
        Bucket: str,  # botocore's parameter names: a drop-in for its client
        Prefix: str = "",
        StartAfter: str | None = None,
        ContinuationToken: str | None = None,
        MaxKeys: int | None = None,
    ) -> dict[str, Any]:
        """One page, as s3_listing.objects_page shapes it."""
        where = Where(Bucket, self.access.endpoint, "list", Prefix or None)
        params = {"list-type": "2", "encoding-type": "url"}
        if Prefix:
            params["prefix"] = Prefix
        if StartAfter:
            params["start-after"] = StartAfter
        if ContinuationToken:
            params["continuation-token"] = ContinuationToken
        if MaxKeys is not None:
            params["max-keys"] = str(MaxKeys)
        query = canonical_query(params)
        path = f"{self._path}/{Bucket}"
        headers = self._signer.sign("GET", path, {}, query=query)
        headers["host"] = self._signer.host  # sent as signed
        status, body = self._http.get(f"{path}?{query}", headers, where)
        if status != 200:
            raise xml_error(status, xml_root(body), where)
        try:
            return objects_page(body)
        except ValueError as err:
            raise StoreError(
                f"list {where.target}: the answer is not a listing ({err})", op="list"
            ) from err


class _Connections:
    """Keep-alive HTTP connections to one endpoint, one per request in flight.

    Written on http.client, not urllib3: importing urllib3 took 40-50 ms
    (its URL regexes, http2 probing through importlib.metadata), more than
    the listing requests of a no-change backup; what a few GETs need of a
    pool is this much. Redirects are not followed (S3 answers errors).
    """

    def __init__(self, url: str, connect_timeout: float, read_timeout: float) -> None:
        parts = urlsplit(url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or ""
        self._port = parts.port
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self._context: Any = None

    def get(self, target: str, headers: dict[str, str], where: Where) -> tuple[int, bytes]:
        """(status, body) of a GET; errors mapped as botocore's are (s3_errors)."""
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        while True:
            reused = conn is not None
            if conn is None:
                conn = self._connect(where)
            try:
                conn.request("GET", target, headers=headers)
                response = conn.getresponse()
                body = response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as err:
                conn.close()
                conn = None
                if reused:
                    continue  # a kept-alive connection the server had closed: once more, anew
                raise _transient(err, where) from err
            except (OSError, http.client.HTTPException) as err:
                conn.close()
                raise _transient(err, where) from err
            if response.will_close:
                conn.close()
            else:
                with self._lock:
                    self._idle.append(conn)
            return response.status, body

    def _connect(self, where: Where) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection
        try:
            if self._https:
                conn = http.client.HTTPSConnection(
                    self._host, self._port, timeout=self._connect_timeout, context=self._tls()
                )
            else:
                conn = http.client.HTTPConnection(
                    self._host, self._port, timeout=self._connect_timeout
                )
            conn.connect()
        except LakeguardError:
            raise
        except Exception as err:
            import ssl

            if isinstance(err, ssl.SSLError):
                raise StoreError(
                    f"{where.op} {where.target}: TLS failed ({str(err)[:200]}): "
                    "set AWS_CA_BUNDLE to the endpoint's CA",
                    op=where.op,
                    key=where.key,
                ) from err
            raise EndpointUnreachableError(
                f"cannot reach the S3 endpoint {where.endpoint} ({where.op} {where.target}): "
                "is it running, and is --endpoint-url / AWS_ENDPOINT_URL right?",
                op=where.op,
                key=where.key,
            ) from err
        if conn.sock is not None:
            conn.sock.settimeout(self._read_timeout)
        return conn

    def _tls(self) -> Any:
        import ssl

        if self._context is None:
            self._context = ssl.create_default_context(cafile=ca_bundle())
        return self._context


def _transient(err: BaseException, where: Where) -> TransientError:
    return TransientError(
        f"{where.op} {where.target}: connection failed ({type(err).__name__})",
        op=where.op,
        key=where.key,
    )

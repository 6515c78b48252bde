"""CopyObject sent without botocore's model layer.

A server-side copy is one small request: a PUT of the destination key with an
``x-amz-copy-source`` header and no body. Through botocore's client it cost
1.9 ms of CPU per copy (parameter validation, serialisation, a dozen event
hooks, the user-agent string, response parsing): copying a 2,200-object
prefix took more client CPU than it took the server to copy the bytes. Here
the request is built and signed by hand and sent on the client's own
connection pool (same TLS, proxy and timeout settings). Measured on
SeaweedFS, CPU per copy: botocore's copy_object 1.87 ms (200 copies); with
botocore's signer on an AWSRequest 0.89 ms, and as here 0.64 ms (300 copies
on 16 threads each).

The signature is AWS Signature Version 4, written here because botocore's
signer works on its own request type and costs more than the rest of the
request (header dicts keyed case-insensitively, URL parsing, a signing key
derived anew per request). The signing key is derived once a day. A test
checks every header and signature against botocore's signer.

    PUT {endpoint}/{bucket}/{key}             path-style, key percent-encoded as botocore does
    x-amz-copy-source: {bucket}/{key}[?versionId=...]
    x-amz-metadata-directive: COPY            content type and metadata copied server-side
    x-amz-storage-class: ...                  when not STANDARD (S3 would write STANDARD)
    -> 200 <CopyObjectResult><ETag>           x-amz-version-id header: the new version
    -> 200 <Error>...                         S3 may report a failed copy this way: an error
    -> 4xx/5xx <Error><Code>                  mapped by the same classify() as botocore errors

Only the plain case takes this path: path-style addressing (custom
endpoints) and MetadataDirective COPY. On AWS endpoints botocore resolves
the address (virtual hosts, regions, FIPS, access points), and a copy that
replaces metadata or is split into parts goes through botocore too.
Retries are RetryStore's, as for every other call.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple, cast
from urllib.parse import quote, urlsplit
from xml.etree import ElementTree

from lakeguard.errors import LakeguardError, StoreError
from lakeguard.storage.s3_errors import Where, classify, from_botocore

if TYPE_CHECKING:
    from lakeguard.storage.s3_clients import S3Clients

# botocore's percent-encoding: '/' kept in keys, and in the copy source with
# '-._~' (botocore.handlers._quote_source_header_from_dict).
_KEY_SAFE = "/~"
_SOURCE_SAFE = "-._~/"
_UNRESERVED = "-_.~"
_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


class Copied(NamedTuple):
    etag: str | None
    version_id: str | None


def host_header(url: str) -> str:
    """The Host value signed, as botocore signs it: lowercase, port unless the scheme's default."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"  # IPv6
    if parts.port is not None and parts.port != {"http": 80, "https": 443}.get(parts.scheme):
        host = f"{host}:{parts.port}"
    return host


def canonical_query(params: Mapping[str, str]) -> str:
    """A query string as SigV4 canonicalises it (and as it is then sent): names
    sorted, names and values percent-encoded but for RFC 3986's unreserved
    characters."""
    pairs = sorted(
        (quote(name, safe=_UNRESERVED), quote(value, safe=_UNRESERVED))
        for name, value in params.items()
    )
    return "&".join(f"{name}={value}" for name, value in pairs)


class SigV4:
    """Signs S3 requests with an empty body (a copy, a listing) with SigV4.

    ``session``: anything with botocore's ``get_credentials()`` (a botocore
    session, or credentials read from the environment, s3_env.EnvAccess).
    """

    def __init__(self, session: Any, region: str, url: str) -> None:
        self._session = session
        self.region = region
        self.host = host_header(url)
        self._lock = threading.Lock()
        self._key: tuple[str, str, bytes] | None = None  # (secret, day, signing key)

    def _signing_key(self, secret: str, day: str) -> bytes:
        cached = self._key
        if cached is not None and cached[0] == secret and cached[1] == day:
            return cached[2]
        key = ("AWS4" + secret).encode()
        for part in (day, self.region, "s3", "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        with self._lock:
            self._key = (secret, day, key)
        return key

    def sign(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        *,
        query: str = "",
        now: datetime | None = None,
    ) -> dict[str, str]:
        """``headers`` (lowercase names) with the date, payload hash and Authorization added.

        ``query``: the canonical query string (canonical_query), sent as it is.
        """
        credentials = self._session.get_credentials()
        if credentials is None:
            from botocore.exceptions import NoCredentialsError

            raise NoCredentialsError()
        # Frozen per request: refreshable credentials renew themselves here.
        frozen = credentials.get_frozen_credentials()
        stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
        day = stamp[:8]
        headers = {**headers, "x-amz-content-sha256": _EMPTY_SHA256, "x-amz-date": stamp}
        if frozen.token:
            headers["x-amz-security-token"] = frozen.token
        signed = {"host": self.host, **headers}
        names = sorted(signed)
        canonical = "\n".join(
            (
                method,
                path,
                query,
                "".join(f"{name}:{' '.join(signed[name].split())}\n" for name in names),
                ";".join(names),
                _EMPTY_SHA256,
            )
        )
        scope = f"{day}/{self.region}/s3/aws4_request"
        to_sign = "\n".join(
            ("AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest())
        )
        key = self._signing_key(frozen.secret_key, day)
        signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        headers["Authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={frozen.access_key}/{scope}, "
            f"SignedHeaders={';'.join(names)}, Signature={signature}"
        )
        return headers


class LightCopier:
    """Sends CopyObject requests for one client; see the module docstring."""

    def __init__(self, clients: S3Clients, http: Any) -> None:
        self.clients = clients
        self._http = http
        self._base = clients.endpoint.rstrip("/")
        self._path = urlsplit(self._base).path  # an endpoint may have a path of its own
        self.signer = SigV4(clients.session, clients.region, self._base)

    @classmethod
    def for_clients(cls, clients: S3Clients) -> LightCopier | None:
        """A copier when the client addresses buckets path-style, else None."""
        if not clients.custom_endpoint:
            return None
        # The client's own pool: its TLS, proxy and timeout settings. botocore
        # keeps it on the endpoint; should that ever move, copies use botocore.
        http = getattr(getattr(clients.client, "_endpoint", None), "http_session", None)
        if http is None or not hasattr(http, "send"):
            return None
        return cls(clients, http)

    def copy(
        self,
        source: Mapping[str, str],
        bucket: str,
        key: str,
        *,
        storage_class: str | None,
        where: Where,
    ) -> Copied:
        """Copy ``source`` ({"Bucket","Key"[,"VersionId"]}) to ``bucket/key``."""
        from botocore.awsrequest import AWSPreparedRequest
        from botocore.utils import percent_encode

        copy_source = percent_encode(f"{source['Bucket']}/{source['Key']}", safe=_SOURCE_SAFE)
        if source.get("VersionId") is not None:
            copy_source += f"?versionId={source['VersionId']}"
        headers = {"x-amz-copy-source": copy_source, "x-amz-metadata-directive": "COPY"}
        if storage_class and storage_class != "STANDARD":
            headers["x-amz-storage-class"] = storage_class
        path = f"/{bucket}/{percent_encode(key, safe=_KEY_SAFE)}"
        try:
            signed = self.signer.sign("PUT", self._path + path, headers)
            # Plain dict headers: urllib3 takes them as they are (botocore's
            # HTTPHeaders would only be turned back into one).
            request = AWSPreparedRequest("PUT", self._base + path, cast(Any, signed), b"", False)
            response = self._http.send(request)
            status, body = response.status_code, response.content
        except LakeguardError:
            raise
        except Exception as err:  # botocore's connection, timeout and credential errors
            raise from_botocore(err, where) from err
        root = xml_root(body)
        if status >= 300 or root is None or _local(root.tag) == "Error":
            raise xml_error(status, root, where)
        etag = next((e.text for e in root if _local(e.tag) == "ETag"), None)
        return Copied(etag, response.headers.get("x-amz-version-id"))


def xml_root(body: bytes) -> ElementTree.Element | None:
    if not body.strip():
        return None
    try:
        return ElementTree.fromstring(body)
    except ElementTree.ParseError:
        return None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def xml_error(status: int, root: ElementTree.Element | None, where: Where) -> StoreError:
    """The store error for a failed request (an error status, or a 200 whose body is an Error)."""
    fields = {_local(e.tag): e.text or "" for e in root} if root is not None else {}
    code = fields.get("Code", "")
    if status < 300:
        # An error inside a 200 happened during the copy (S3 documents
        # InternalError there): retryable, as botocore treats it.
        status = 500
        code = code or "InternalError"
    return classify(code, status, where, fields.get("Message", "")[:200])

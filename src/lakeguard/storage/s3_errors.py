"""Errors from boto3/botocore and obstore, mapped to lakeguard's store errors.

Both libraries raise their own exception types with messages that may hold
URLs and server XML; callers only ever see the classes in ``lakeguard.errors``
with a message that names the operation, the object and what to do. A
message never contains a secret key (we never put one in).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lakeguard.errors import (
    AccessDeniedError,
    BucketNotFoundError,
    EndpointUnreachableError,
    LakeguardError,
    NotFoundError,
    StoreError,
    TransientError,
    UsageError,
)

CREDENTIALS_HINT = "check credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE)"

_NOT_FOUND = {"NoSuchKey", "NoSuchVersion", "NotFound", "404", "MethodNotAllowed", "405"}
_DENIED = {
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "AllAccessDisabled",
    "ExpiredToken",
    "InvalidToken",
    "TokenRefreshRequired",
    "AccountProblem",
    "403",
    "401",
    "Forbidden",
}
_TRANSIENT = {
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "RequestTimeout",
    "RequestTimeTooSkewed",
    "InternalError",
    "ServiceUnavailable",
    "ServerBusy",
    "OperationAborted",
    "TooManyRequests",
    "429",
}
_CODE_RE = re.compile(r"<Code>([A-Za-z0-9]+)</Code>")
_STATUS_RE = re.compile(r"status code: (\d{3})")
_MESSAGE_RE = re.compile(r"<Message>([^<]{0,200})</Message>")
_UNREACHABLE_HINTS = (
    "error sending request",
    "connection refused",
    "dns error",
    "failed to lookup address",
    "tcp connect error",
    "connect timeout",
    "client error (connect)",
)


@dataclass(frozen=True, slots=True)
class Where:
    """What was being done, for messages."""

    bucket: str
    endpoint: str
    op: str
    key: str | None = None

    @property
    def target(self) -> str:
        return f"s3://{self.bucket}/{self.key}" if self.key else f"s3://{self.bucket}"


def classify(code: str, status: int | None, where: Where, detail: str = "") -> StoreError:
    """The store error for an S3 error code / HTTP status."""
    op, key = where.op, where.key
    if code == "NoSuchBucket":
        return BucketNotFoundError(
            f"bucket {where.bucket} does not exist at {where.endpoint}: "
            "check the bucket name and the endpoint",
            op=op,
            key=key,
        )
    if code in _NOT_FOUND or status in (404, 405):
        return NotFoundError(f"{where.target} does not exist ({code or status})", op=op, key=key)
    if code in _DENIED or status in (401, 403):
        return AccessDeniedError(
            f"access denied to s3://{where.bucket} ({op}: {code or status}): {CREDENTIALS_HINT}",
            op=op,
            key=key,
        )
    if code in _TRANSIENT or (status is not None and status >= 500):
        return TransientError(
            f"{op} {where.target} failed for now ({code or status}): will retry",
            op=op,
            key=key,
        )
    if code == "InvalidArgument" and "version" in detail.lower():
        return NotFoundError(f"{where.target}: {detail}", op=op, key=key)
    if code == "InvalidRange" or status == 416:
        return NotFoundError(f"{where.target}: requested range is past the end", op=op, key=key)
    text = f": {detail}" if detail else ""
    return StoreError(f"{op} {where.target} failed ({code or status}){text}", op=op, key=key)


def from_botocore(err: BaseException, where: Where) -> LakeguardError:
    """Map a botocore exception (ClientError, connection errors, credentials)."""
    from botocore import exceptions as bx

    if isinstance(err, LakeguardError):
        return err
    if isinstance(err, bx.ClientError):
        error = err.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return classify(code, status, where, str(error.get("Message", ""))[:200])
    if isinstance(err, bx.NoCredentialsError | bx.PartialCredentialsError):
        return AccessDeniedError(
            f"no usable AWS credentials for s3://{where.bucket}: {CREDENTIALS_HINT}", op=where.op
        )
    if isinstance(err, bx.ProfileNotFound):
        return UsageError(f"{err}: check --profile / AWS_PROFILE")
    if isinstance(err, bx.EndpointConnectionError | bx.ConnectTimeoutError):
        return EndpointUnreachableError(
            f"cannot reach the S3 endpoint {where.endpoint} ({where.op} {where.target}): "
            "is it running, and is --endpoint-url / AWS_ENDPOINT_URL right?",
            op=where.op,
            key=where.key,
        )
    if isinstance(
        err,
        bx.ReadTimeoutError
        | bx.ConnectionClosedError
        | bx.IncompleteReadError
        | bx.ResponseStreamingError
        | bx.HTTPClientError,
    ):
        return TransientError(
            f"{where.op} {where.target}: connection failed ({type(err).__name__})",
            op=where.op,
            key=where.key,
        )
    if isinstance(err, bx.ParamValidationError):
        return UsageError(f"{where.op} {where.target}: {str(err).splitlines()[0][:200]}")
    return StoreError(
        f"{where.op} {where.target} failed: {type(err).__name__}", op=where.op, key=where.key
    )


def from_obstore(err: BaseException, where: Where) -> BaseException:
    """Map an obstore exception; its message carries the S3 status and XML code."""
    from obstore import exceptions as ox

    if isinstance(err, LakeguardError) or not isinstance(err, ox.BaseError | OSError):
        return err  # not from obstore: an error of the body being uploaded, say
    text = str(err)
    code_match = _CODE_RE.search(text)
    status_match = _STATUS_RE.search(text)
    code = code_match.group(1) if code_match else ""
    status = int(status_match.group(1)) if status_match else None
    if code or status is not None:
        message = _MESSAGE_RE.search(text)
        return classify(code, status, where, message.group(1) if message else "")
    if isinstance(err, ox.NotFoundError | FileNotFoundError):
        return NotFoundError(f"{where.target} does not exist", op=where.op, key=where.key)
    if isinstance(err, ox.PermissionDeniedError | ox.UnauthenticatedError | PermissionError):
        return classify("AccessDenied", 403, where)
    lowered = text.lower()
    first_line = text.strip().splitlines()[0][:200] if text.strip() else type(err).__name__
    if any(hint in lowered for hint in _UNREACHABLE_HINTS):
        return EndpointUnreachableError(
            f"cannot reach the S3 endpoint {where.endpoint} ({where.op} {where.target}): "
            "is it running, and is --endpoint-url / AWS_ENDPOINT_URL right?",
            op=where.op,
            key=where.key,
        )
    if isinstance(err, ox.GenericError | TimeoutError | ConnectionError | OSError):
        return TransientError(
            f"{where.op} {where.target}: transfer failed ({first_line})",
            op=where.op,
            key=where.key,
        )
    if isinstance(err, ox.InvalidPathError):
        return UsageError(f"object key {where.key!r} cannot be used: {first_line}")
    return StoreError(f"{where.op} {where.target} failed: {first_line}", op=where.op, key=where.key)

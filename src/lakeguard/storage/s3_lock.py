"""S3 Object Lock: the control-plane calls a locked backup repository needs (boto3).

Retention is set per object version right after it is written
(``PutObjectRetention``) rather than through PUT headers, because the data
plane (obstore) cannot send Object Lock headers; the objects concerned
(archives, manifests, headers, catalog files) are few and large, so one more
request each is cheap. Stores other than S3 raise ``UnsupportedError``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from lakeguard.errors import NotFoundError, StoreError, UnsupportedError, UsageError
from lakeguard.storage.base import Store
from lakeguard.storage.wrappers import unwrap


def _s3(store: Store) -> Any:
    from lakeguard.storage.s3 import S3Store

    base = unwrap(store)
    if not isinstance(base, S3Store):
        raise UnsupportedError(
            f"{store.url} cannot lock objects: Object Lock needs an S3 bucket", op="object-lock"
        )
    return base


def lock_enabled(store: Store) -> bool:
    """Whether the bucket has Object Lock enabled."""
    s3 = _s3(store)
    try:
        response = s3._call(
            "object-lock",
            None,
            lambda: s3.client.get_object_lock_configuration(Bucket=s3.bucket),
        )
    except NotFoundError:
        return False
    except StoreError as exc:
        if "ObjectLockConfigurationNotFound" in str(exc):
            return False
        raise
    config = response.get("ObjectLockConfiguration", {})
    return bool(config.get("ObjectLockEnabled") == "Enabled")


def ensure_lock_enabled(store: Store) -> None:
    """Create the bucket with Object Lock, or check an existing bucket has it."""
    s3 = _s3(store)
    if not s3.exists():
        s3._call(
            "create",
            None,
            lambda: s3.client.create_bucket(Bucket=s3.bucket, ObjectLockEnabledForBucket=True),
        )
    if not lock_enabled(store):
        raise UsageError(
            f"bucket {s3.bucket} does not have Object Lock enabled: put the repository in a "
            "new bucket (init creates it with Object Lock) or enable Object Lock on this one"
        )


def put_retention(
    store: Store, key: str, *, version_id: str | None, mode: str, until: datetime
) -> None:
    """Lock one object version until ``until`` (COMPLIANCE or GOVERNANCE)."""
    s3 = _s3(store)
    kwargs: dict[str, Any] = {
        "Bucket": s3.bucket,
        "Key": key,
        "Retention": {"Mode": mode, "RetainUntilDate": until},
    }
    if version_id:
        kwargs["VersionId"] = version_id
    s3._call("object-lock", key, lambda: s3.client.put_object_retention(**kwargs))


def get_retention(
    store: Store, key: str, *, version_id: str | None = None
) -> tuple[str, datetime] | None:
    """(mode, retain-until) of one object version, or None when it has no retention."""
    s3 = _s3(store)
    kwargs: dict[str, Any] = {"Bucket": s3.bucket, "Key": key}
    if version_id:
        kwargs["VersionId"] = version_id
    try:
        response = s3._call("object-lock", key, lambda: s3.client.get_object_retention(**kwargs))
    except StoreError as exc:
        if "NoSuchObjectLockConfiguration" in str(exc) or isinstance(exc, NotFoundError):
            return None
        raise
    retention = response.get("Retention") or {}
    if not retention:
        return None
    until = retention["RetainUntilDate"]
    if isinstance(until, str):  # clients set up to leave timestamps unparsed
        until = datetime.fromisoformat(until.replace("Z", "+00:00"))
    return str(retention["Mode"]), until

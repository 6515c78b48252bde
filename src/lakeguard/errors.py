"""Errors: each class carries its exit code; only ``cli.main`` turns them into exits.

Errors from boto3, obstore, OS, pyarrow and duckdb are wrapped at the boundary
into one of these, with a message that names what failed and what to do.
Messages never contain credentials.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_DISCREPANCIES = 1
EXIT_USAGE = 2
EXIT_OPERATIONAL = 3
EXIT_PARTIAL = 4
EXIT_INTERRUPTED = 130


class LakeguardError(Exception):
    """Base error: a one-line message for the user and an exit code."""

    exit_code = EXIT_OPERATIONAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(LakeguardError):
    """Bad input: an argument, a file, a time, a location that cannot be used."""

    exit_code = EXIT_USAGE


class OperationalError(LakeguardError):
    """The work could not be done: store unreachable, access denied, damaged data."""

    exit_code = EXIT_OPERATIONAL


class PartialFailure(LakeguardError):
    """Some actions failed; the report lists each one."""

    exit_code = EXIT_PARTIAL


class StoreError(OperationalError):
    """An operation on a store failed. ``op`` and ``key`` say which one."""

    def __init__(self, message: str, *, op: str = "", key: str | None = None) -> None:
        super().__init__(message)
        self.op = op
        self.key = key


class NotFoundError(StoreError):
    """The object (or version) does not exist. Permanent: never retried."""


class BucketNotFoundError(StoreError):
    """The bucket (or local root directory) does not exist. Permanent."""


class AccessDeniedError(StoreError):
    """Credentials are missing, wrong, or lack permission. Permanent."""


class UnsupportedError(StoreError):
    """The store cannot do this (for example server-side copy across endpoints)."""


class TransientError(StoreError):
    """Throttling, 5xx, connection reset, truncated body: worth retrying."""


class EndpointUnreachableError(TransientError):
    """The endpoint did not answer (connection refused, DNS, timeout)."""

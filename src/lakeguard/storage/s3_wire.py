"""How S3 responses become lakeguard's types: timestamps, checksums, bodies."""

from __future__ import annotations

import base64
import builtins
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any

from lakeguard.storage.base import ObjectInfo
from lakeguard.storage.s3_errors import Where, from_botocore, from_obstore

READ_CHUNK = 1024 * 1024  # bounded memory per open read stream


def parse_time(value: object) -> datetime | None:
    """Timestamps arrive unparsed (see ``_session``): ISO-8601 in XML, HTTP dates in headers."""
    if value is None or isinstance(value, datetime):
        return value
    text = str(value)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        parsed = parsedate_to_datetime(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def raw_timestamp(value: str) -> str:
    return value


def sha256_hex(value: str | None, checksum_type: str | None) -> str | None:
    """Hex of a full-object base64 SHA-256; None for composite (``xxx-N``) checksums."""
    if not value or "-" in value or (checksum_type or "FULL_OBJECT") != "FULL_OBJECT":
        return None
    try:
        return base64.b64decode(value).hex()
    except ValueError:
        return None


_UNADDRESSABLE = re.compile(r"[\x00-\x1f\x7f\\]")  # control characters, backslash


def obstore_can_address(key: str) -> bool:
    """Whether obstore reads and writes ``key`` unchanged (it parses keys as paths)."""
    if not key or key.startswith("/") or key.endswith("/") or "//" in key:
        return False
    if any(part in (".", "..") for part in key.split("/")):
        return False
    return _UNADDRESSABLE.search(key) is None


def latest_first(versions: builtins.list[ObjectInfo]) -> builtins.list[ObjectInfo]:
    for index, info in enumerate(versions):
        if info.is_latest:
            if index:
                versions.insert(0, versions.pop(index))
            break
    return versions


class ObstoreStream:
    """A GET body from obstore, in chunks of about READ_CHUNK, or whole (read_buffer)."""

    def __init__(self, info: ObjectInfo, result: Any, where: Where) -> None:
        self.info = info
        self._result = result
        self._chunks: Iterator[Any] | None = None
        self._where = where

    def __iter__(self) -> Iterator[bytes]:
        if self._chunks is None:
            self._chunks = self._result.stream(min_chunk_size=READ_CHUNK)
        while True:
            try:
                chunk = next(self._chunks)
            except StopIteration:
                return
            except Exception as err:
                raise from_obstore(err, self._where) from err
            yield bytes(chunk)

    def read_buffer(self) -> bytes | memoryview:
        """The whole body as one buffer, without copying it out of obstore.

        The chunk stream hands Python a new ``bytes`` per chunk (obstore zero-fills
        it, then copies into it); a body read whole stays in obstore's buffer.
        Measured on the bench lake's small objects: 0.05-0.1 CPU-s less per GB.
        """
        if self._chunks is not None:
            return b"".join(self)
        self._chunks = iter(())
        try:
            return memoryview(self._result.bytes())
        except Exception as err:
            raise from_obstore(err, self._where) from err

    def close(self) -> None:
        self._chunks = iter(())

    def __enter__(self) -> ObstoreStream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class BotoStream:
    """A GET body from boto3 (keys obstore cannot address)."""

    def __init__(self, info: ObjectInfo, body: Any, where: Where) -> None:
        self.info = info
        self._body = body
        self._where = where

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._body.iter_chunks(READ_CHUNK)
        except Exception as err:
            raise from_botocore(err, self._where) from err
        finally:
            self.close()

    def close(self) -> None:
        self._body.close()

    def __enter__(self) -> BotoStream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

"""Checksums computed while bytes stream through, never by reading data back.

S3's ETag of a single-part upload is the MD5 of the bytes; of a multipart
upload it is ``md5(md5(part1) || md5(part2) || ...)-N``. To check a multipart
ETag one must know the part size the writer used; ``candidate_part_sizes``
infers it from the object size and N (the sizes common tools use, and the
smallest whole MiB that gives N parts). hashlib releases the GIL on large
updates, so hashing in worker threads runs in parallel.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Any

MiB = 1024 * 1024
# Part sizes of common writers: aws cli/boto3 (8 MiB), obstore and s3 minimum (5 MiB),
# s5cmd/rclone (5-64 MiB), Spark/Hadoop s3a (64 MiB-ish), and big manual uploads.
_COMMON_PART_SIZES = (8, 5, 16, 64, 10, 15, 32, 50, 100, 128, 256, 512, 1024)


def strip_etag(etag: str | None) -> str | None:
    """An ETag without quotes (S3 returns ``"..."``), lowercase."""
    if etag is None:
        return None
    return etag.strip().strip('"').lower() or None


def multipart_parts(etag: str | None) -> int:
    """N for a multipart ETag ``...-N``; 0 for a single-part (or unknown) ETag."""
    etag = strip_etag(etag)
    if not etag or "-" not in etag:
        return 0
    tail = etag.rsplit("-", 1)[1]
    return int(tail) if tail.isdigit() else 0


def candidate_part_sizes(size: int, parts: int, *, limit: int = 3) -> list[int]:
    """Part sizes that split ``size`` bytes into exactly ``parts`` parts, likeliest first."""
    if parts <= 0:
        return []
    found: list[int] = []
    for mib in _COMMON_PART_SIZES:
        part = mib * MiB
        if math.ceil(size / part) == parts and part not in found:
            found.append(part)
    smallest = math.ceil(size / parts / MiB) * MiB if size else 0
    if smallest and math.ceil(size / smallest) == parts and smallest not in found:
        found.append(smallest)
    return found[:limit]


def multipart_etag_of(part_md5s: list[bytes]) -> str:
    return f"{hashlib.md5(b''.join(part_md5s)).hexdigest()}-{len(part_md5s)}"


@dataclass(slots=True)
class _PartMd5:
    """MD5 of each ``part_size`` slice of a stream, fed in arbitrary chunks."""

    part_size: int
    done: list[bytes] = field(default_factory=list)
    current: Any = field(default_factory=hashlib.md5)
    filled: int = 0

    def update(self, chunk: memoryview) -> None:
        while chunk:
            room = self.part_size - self.filled
            piece = chunk[:room]
            self.current.update(piece)
            self.filled += len(piece)
            chunk = chunk[len(piece) :]
            if self.filled == self.part_size:
                self.done.append(self.current.digest())
                self.current = hashlib.md5()
                self.filled = 0

    def etag(self) -> str:
        digests = list(self.done)
        if self.filled or not digests:
            digests.append(self.current.digest())
        return multipart_etag_of(digests)


class StreamHasher:
    """SHA-256, MD5 and multipart ETags of one stream, in one pass.

    ``part_sizes``: compute the multipart ETag for each of these part sizes
    (to compare with a multipart ETag, or to predict the ETag of an upload).
    """

    __slots__ = ("_md5", "_parts", "_sha256", "size")

    def __init__(
        self, *, sha256: bool = True, md5: bool = True, part_sizes: list[int] | None = None
    ):
        self._sha256 = hashlib.sha256() if sha256 else None
        self._md5 = hashlib.md5() if md5 else None
        self._parts = [_PartMd5(size) for size in part_sizes or []]
        self.size = 0

    def update(self, chunk: bytes | memoryview) -> None:
        view = memoryview(chunk)
        self.size += len(view)
        if self._sha256 is not None:
            self._sha256.update(view)
        if self._md5 is not None:
            self._md5.update(view)
        for part in self._parts:
            part.update(view)

    @property
    def sha256(self) -> str:
        if self._sha256 is None:
            raise ValueError("sha256 was not requested")
        return self._sha256.hexdigest()

    @property
    def md5(self) -> str:
        if self._md5 is None:
            raise ValueError("md5 was not requested")
        return self._md5.hexdigest()

    def multipart_etags(self) -> list[str]:
        return [part.etag() for part in self._parts]


class EtagChecker:
    """Checks a stream against an S3 ETag, single-part or multipart.

    ``verdict()`` is True (match), False (mismatch) or None (cannot tell:
    the ETag is not an MD5, e.g. SSE-KMS, or no part size fits).
    """

    def __init__(self, etag: str | None, size: int, *, sha256: bool = True) -> None:
        self.expected = strip_etag(etag)
        parts = multipart_parts(self.expected)
        self._part_sizes = candidate_part_sizes(size, parts) if parts else []
        single = bool(self.expected) and not parts and len(self.expected or "") == 32
        self.hasher = StreamHasher(sha256=sha256, md5=single, part_sizes=self._part_sizes)
        self._single = single

    def update(self, chunk: bytes | memoryview) -> None:
        self.hasher.update(chunk)

    def verdict(self) -> bool | None:
        if self._single:
            return self.hasher.md5 == self.expected
        if self._part_sizes:
            return self.expected in self.hasher.multipart_etags()
        return None

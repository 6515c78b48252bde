"""Part-size arithmetic for multipart uploads: pure functions, no I/O.

S3 bounds a multipart upload: parts of 5 MiB to 5 GiB (the last may be
smaller) and at most 10,000 of them. Like s3transfer's ``ChunksizeAdjuster``,
the preferred size is clamped into range and then doubled until the part count
fits, so part sizes stay the round numbers (8, 16, 32 ... MiB) that readers
later use to recognise a multipart ETag (``hashing.candidate_part_sizes``).
"""

from __future__ import annotations

import math

from lakeguard.errors import UsageError
from lakeguard.hashing import candidate_part_sizes, multipart_parts
from lakeguard.storage.base import DEFAULT_PART_SIZE, MAX_PART_SIZE, MAX_PARTS, MIN_PART_SIZE

MAX_OBJECT_SIZE = MAX_PART_SIZE * MAX_PARTS


def part_count(size: int, part_size: int) -> int:
    """How many parts ``size`` bytes make (an empty object is one empty part)."""
    return max(1, math.ceil(size / part_size))


def adjust_part_size(size: int, preferred: int = DEFAULT_PART_SIZE) -> int:
    """A part size near ``preferred`` that splits ``size`` bytes within S3's limits."""
    if size < 0:
        raise UsageError(f"object size cannot be negative: {size}")
    if size > MAX_OBJECT_SIZE:
        raise UsageError(
            f"an object of {size:,} bytes exceeds what a multipart upload can hold "
            f"({MAX_PARTS:,} parts of at most {MAX_PART_SIZE:,} bytes)"
        )
    part = min(max(preferred, MIN_PART_SIZE), MAX_PART_SIZE)
    while part_count(size, part) > MAX_PARTS:
        part = min(part * 2, MAX_PART_SIZE)
    return part


def source_part_size(etag: str | None, size: int) -> int | None:
    """The part size a multipart source was written with, when it can be inferred.

    Writing the copy with the same part size gives it the same ETag as its
    source, which keeps copies checkable against listings of the source.
    """
    parts = multipart_parts(etag)
    if parts <= 1:
        return None
    for candidate in candidate_part_sizes(size, parts, limit=1):
        if MIN_PART_SIZE <= candidate <= MAX_PART_SIZE:
            return candidate
    return None

"""The seek table of the zstd seekable format (zstd ``contrib/seekable_format``).

An archive is a sequence of independent zstd frames followed by one skippable
frame holding the seek table; ``zstd -d`` skips skippable frames, so the file
stays an ordinary ``.zst``. Layout of the skippable frame, all integers
little-endian::

    u32 0x184D2A5E                 skippable frame magic (the seekable format's)
    u32 frame_size                 bytes that follow: entries + 9-byte footer
    entries, one per data frame:
        u32 compressed_size
        u32 decompressed_size
        u32 checksum               only when the descriptor's bit 7 is set:
                                   low 32 bits of XXH64 of the decompressed
                                   bytes (the same value a zstd frame with
                                   content checksum carries in its last 4 bytes)
    footer:
        u32 number_of_frames
        u8  descriptor             bit 7: checksum flag; bits 6-2 reserved (0)
        u32 0x8F92EAB1             seekable magic

Frame offsets are implied: frame i starts at the sum of the compressed sizes
before it. Pure functions here; no I/O.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

SKIPPABLE_MAGIC = 0x184D2A5E
SEEKABLE_MAGIC = 0x8F92EAB1
FOOTER_SIZE = 9
SKIPPABLE_HEADER_SIZE = 8
CHECKSUM_FLAG = 0x80
_RESERVED_BITS = 0x7C
MAX_FRAMES = 0x8000000
# The reference implementation refuses frames that decompress to more than 1 GiB.
MAX_FRAME_DECOMPRESSED = 0x40000000


class SeekTableError(ValueError):
    """The bytes are not a valid seek table (truncated, wrong magic, reserved bits)."""


@dataclass(slots=True)  # not frozen: a check builds millions, a frozen init costs 4x
class FrameEntry:
    """One data frame: where it starts in the file and in the decompressed stream."""

    index: int
    offset: int  # byte offset of the frame in the compressed file
    compressed_size: int
    decompressed_offset: int
    decompressed_size: int
    checksum: int | None = None


@dataclass(frozen=True, slots=True)
class SeekTable:
    """All data frames of a seekable file, in order."""

    frames: tuple[FrameEntry, ...]
    has_checksums: bool = True

    @property
    def compressed_size(self) -> int:
        """Bytes of data frames (the file size minus the seek table frame)."""
        if not self.frames:
            return 0
        last = self.frames[-1]
        return last.offset + last.compressed_size

    @property
    def decompressed_size(self) -> int:
        if not self.frames:
            return 0
        last = self.frames[-1]
        return last.decompressed_offset + last.decompressed_size

    @property
    def encoded_size(self) -> int:
        """Size of the skippable frame that holds this table."""
        entry = 12 if self.has_checksums else 8
        return SKIPPABLE_HEADER_SIZE + entry * len(self.frames) + FOOTER_SIZE

    def frame_at(self, offset: int) -> FrameEntry:
        """The frame that starts at compressed ``offset`` (KeyError when none does)."""
        low, high = 0, len(self.frames)
        while low < high:
            mid = (low + high) // 2
            if self.frames[mid].offset < offset:
                low = mid + 1
            else:
                high = mid
        if low < len(self.frames) and self.frames[low].offset == offset:
            return self.frames[low]
        raise KeyError(offset)

    def frames_in(self, offset: int, length: int) -> list[FrameEntry]:
        """The frames covering exactly ``length`` compressed bytes from ``offset``.

        Raises KeyError when the range does not start and end on frame boundaries.
        """
        frames = self.frames
        at = self.frame_at(offset).index
        covered: list[FrameEntry] = []
        end = offset + length
        # By index: a slice of the rest of the table per call made checking an
        # archive of n members O(n^2) (20,000 members: a third of the check).
        while at < len(frames) and frames[at].offset < end:
            covered.append(frames[at])
            at += 1
        if not covered or covered[-1].offset + covered[-1].compressed_size != end:
            raise KeyError((offset, length))
        return covered


def entries_from_sizes(
    sizes: Sequence[tuple[int, int, int | None]],
) -> tuple[FrameEntry, ...]:
    """FrameEntries for (compressed, decompressed, checksum) triples in file order."""
    frames: list[FrameEntry] = []
    offset = decompressed = 0
    for index, (csize, dsize, checksum) in enumerate(sizes):
        frames.append(FrameEntry(index, offset, csize, decompressed, dsize, checksum))
        offset += csize
        decompressed += dsize
    return tuple(frames)


def encode(frames: Sequence[FrameEntry], *, checksums: bool = True) -> bytes:
    """The skippable frame holding a seek table for ``frames``."""
    if len(frames) > MAX_FRAMES:
        raise SeekTableError(f"{len(frames)} frames exceed the seekable format's {MAX_FRAMES}")
    entry = struct.Struct("<III" if checksums else "<II")
    body = bytearray()
    for frame in frames:
        if frame.compressed_size >= 1 << 32 or frame.decompressed_size >= 1 << 32:
            raise SeekTableError(f"frame {frame.index} is too large for a 32-bit seek entry")
        if checksums:
            if frame.checksum is None:
                raise SeekTableError(f"frame {frame.index} has no checksum")
            body += entry.pack(frame.compressed_size, frame.decompressed_size, frame.checksum)
        else:
            body += entry.pack(frame.compressed_size, frame.decompressed_size)
    descriptor = CHECKSUM_FLAG if checksums else 0
    body += struct.pack("<IBI", len(frames), descriptor, SEEKABLE_MAGIC)
    return struct.pack("<II", SKIPPABLE_MAGIC, len(body)) + bytes(body)


def parse_footer(tail: bytes) -> tuple[int, bool, int]:
    """From the last bytes of a file (at least 9): (frames, has_checksums, table size).

    ``table size`` is the size of the whole skippable frame, so a reader that
    fetched only a few bytes knows how many more to fetch.
    """
    if len(tail) < FOOTER_SIZE:
        raise SeekTableError("file too short for a seek table footer")
    count, descriptor, magic = struct.unpack("<IBI", tail[-FOOTER_SIZE:])
    if magic != SEEKABLE_MAGIC:
        raise SeekTableError("no seek table at the end (seekable magic missing)")
    if descriptor & _RESERVED_BITS:
        raise SeekTableError("seek table descriptor has reserved bits set")
    if count > MAX_FRAMES:
        raise SeekTableError(f"seek table claims {count} frames")
    checksums = bool(descriptor & CHECKSUM_FLAG)
    entry = 12 if checksums else 8
    return count, checksums, SKIPPABLE_HEADER_SIZE + entry * count + FOOTER_SIZE


def decode(tail: bytes) -> SeekTable:
    """Parse the seek table from bytes that end with it (the file's tail, or all of it)."""
    _count, checksums, size = parse_footer(tail)
    if len(tail) < size:
        raise SeekTableError(f"seek table needs {size} bytes, got {len(tail)}")
    frame = tail[len(tail) - size :]
    magic, frame_size = struct.unpack_from("<II", frame, 0)
    if magic != SKIPPABLE_MAGIC or frame_size != size - SKIPPABLE_HEADER_SIZE:
        raise SeekTableError("seek table's skippable frame header is damaged")
    entry = struct.Struct("<III" if checksums else "<II")
    sizes: list[tuple[int, int, int | None]] = []
    for position in range(SKIPPABLE_HEADER_SIZE, size - FOOTER_SIZE, entry.size):
        values = entry.unpack_from(frame, position)
        sizes.append((values[0], values[1], values[2] if checksums else None))
    return SeekTable(entries_from_sizes(sizes), has_checksums=checksums)


def frame_checksum(frame: bytes) -> int:
    """The content checksum a zstd frame written with checksums ends with."""
    return int(struct.unpack_from("<I", frame, len(frame) - 4)[0])


def iter_offsets(table: SeekTable) -> Iterator[tuple[int, int]]:
    """(offset, compressed_size) of every data frame."""
    for frame in table.frames:
        yield frame.offset, frame.compressed_size

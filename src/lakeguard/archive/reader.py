"""Reading seekable tar.zst archives: the seek table, manifest.json, one member.

Every read is a ranged GET of exactly the frames needed; nothing reads a
whole archive unless asked (``iter_members`` for a full check). zstd verifies
each frame's content checksum while decompressing, and callers check the
member's SHA-256 against the manifest.
"""

from __future__ import annotations

import json
import tarfile
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from lakeguard.archive.seektable import FOOTER_SIZE, SeekTable, SeekTableError, decode, parse_footer
from lakeguard.errors import NotFoundError, OperationalError
from lakeguard.storage.base import ObjectStream, Store

TAIL_GUESS = 64 * 1024  # one GET fetches tables of up to ~5,000 frames
BLOCK = 512


class ArchiveDamaged(OperationalError):
    """An archive is missing, truncated, or its frames do not decompress or parse."""


def decompress_chunks(chunks: Iterable[bytes | memoryview]) -> Iterator[bytes]:
    """Decompress consecutive zstd frames fed in arbitrary chunks (checksums verified)."""
    import zstandard

    decompressor = zstandard.ZstdDecompressor().decompressobj(read_across_frames=True)
    for chunk in chunks:
        out = decompressor.decompress(chunk)
        if out:
            yield out
    # decompressobj keeps no trailing state once every frame is complete; a
    # frame cut short leaves input unconsumed, which the tar parser then reports.


_local = threading.local()
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def _decompressor() -> Any:
    """This thread's zstd decompression context (contexts are not thread-safe)."""
    found = getattr(_local, "decompressor", None)
    if found is None:
        import zstandard

        found = _local.decompressor = zstandard.ZstdDecompressor()
    return found


def frame_length(data: memoryview, start: int, where: str = "archive") -> int:
    """Compressed length of the zstd frame at ``start`` (RFC 8878, section 3.1.1).

    Written here because python-zstandard has no call that says where a frame
    ends (zstd's ZSTD_findFrameCompressedSize), and decompressing a frame in
    one call, straight into a buffer of its content size, needs its bounds.
    zstd parses the header (frame_header_size); this walks the 3-byte block
    headers after it and adds the checksum.
    """
    import zstandard

    if data[start : start + 4] != _ZSTD_MAGIC:
        raise ArchiveDamaged(f"{where}: no zstd frame at byte {start} of the range")
    try:
        position = start + zstandard.frame_header_size(data[start : start + 18])
    except zstandard.ZstdError as exc:
        raise ArchiveDamaged(f"{where}: zstd frame header does not parse ({exc})") from None
    while True:
        if position + 3 > len(data):
            raise ArchiveDamaged(f"{where}: zstd frame cut short (archive truncated?)")
        block = int.from_bytes(data[position : position + 3], "little")
        kind, size = (block >> 1) & 3, block >> 3
        if kind == 3:
            raise ArchiveDamaged(f"{where}: zstd block of a reserved type")
        position += 3 + (1 if kind == 1 else size)  # an RLE block holds one byte
        if block & 1:
            break
    if data[start + 4] & 4:
        position += 4  # content checksum
    if position > len(data):
        raise ArchiveDamaged(f"{where}: zstd frame cut short (archive truncated?)")
    return position - start


def decompress_frames(data: bytes | memoryview, where: str = "archive") -> Iterator[bytes]:
    """Each zstd frame of ``data`` decompressed in one call (checksums verified).

    A frame's output is allocated once at its content size and never copied;
    the streaming ``decompress_chunks`` copies every byte out of zstd's window.
    """
    import zstandard

    view = memoryview(data).cast("B")
    decompressor = _decompressor()
    position = 0
    while position < len(view):
        length = frame_length(view, position, where)
        try:
            yield decompressor.decompress(view[position : position + length])
        except zstandard.ZstdError as exc:
            raise ArchiveDamaged(f"{where}: frames do not decompress ({exc})") from None
        position += length


def is_member(name: str, is_dir: bool, recorded: str) -> bool:
    """Whether a member read as ``name`` is the one a manifest recorded as ``recorded``.

    Tar readers drop a folder's trailing ``/``. Archives written before keys
    ending in ``/`` became ``_unsafe/`` members hold them as regular members
    named ``x/``, which read back with the ``/`` kept.
    """
    return name == recorded or (is_dir and name == recorded.rstrip("/"))


@dataclass(slots=True)
class Member:
    """One member being read: its tar header and a one-shot iterator of its data."""

    name: str
    size: int
    mtime: float
    is_dir: bool
    data: Iterator[bytes]


class _Feed:
    """Exact reads over an iterator of chunks (the decompressed tar stream).

    A position into the current chunk, not a shrinking buffer: slicing the
    rest of a chunk after every read copied each byte three more times (a
    tenth of a restore's CPU went to memmove).
    """

    def __init__(self, chunks: Iterator[bytes], where: str) -> None:
        self._chunks = chunks
        self._buffer = b""
        self._pos = 0
        self._where = where

    def _refill(self, message: str) -> None:
        while self._pos >= len(self._buffer):
            chunk = next(self._chunks, None)
            if chunk is None:
                raise ArchiveDamaged(f"{self._where}: {message}")
            self._buffer, self._pos = chunk, 0

    def take(self, size: int) -> bytes:
        pieces = []
        need = size
        while need:
            self._refill("member ends early (archive truncated?)")
            piece = self._buffer[self._pos : self._pos + need]
            self._pos += len(piece)
            need -= len(piece)
            pieces.append(piece)
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def views(self, size: int) -> list[memoryview]:
        """The next ``size`` bytes as views into the chunks: nothing is copied."""
        pieces = []
        remaining = size
        while remaining > 0:
            self._refill(f"member data ends after {size - remaining} bytes")
            end = min(len(self._buffer), self._pos + remaining)
            pieces.append(memoryview(self._buffer)[self._pos : end])
            remaining -= end - self._pos
            self._pos = end
        return pieces

    def stream(self, size: int) -> Iterator[bytes]:
        remaining = size
        while remaining > 0:
            self._refill(f"member data ends after {size - remaining} bytes")
            end = min(len(self._buffer), self._pos + remaining)
            if self._pos == 0 and end == len(self._buffer):
                piece = self._buffer  # a whole chunk: no copy
            else:
                piece = self._buffer[self._pos : end]
            self._pos = end
            remaining -= len(piece)
            yield piece


def _pax_records(body: bytes) -> dict[str, str]:
    """The ``LEN key=value`` records (newline-terminated) of a pax extended header."""
    records: dict[str, str] = {}
    position = 0
    while position < len(body) and body[position] != 0:
        space = body.index(b" ", position)
        length = int(body[position:space])
        key, _, value = body[space + 1 : position + length - 1].partition(b"=")
        records[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
        position += length
    return records


def _padded(size: int) -> int:
    return size + (-size % BLOCK)


_ZERO_BLOCK = bytes(BLOCK)
_EXTENDED = (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.GNUTYPE_LONGNAME)


def _header(block: bytes) -> tuple[str, int, float, bytes]:
    """(name, size, mtime, type) of one 512-byte tar header, as tarfile reads it.

    Written here for speed: TarInfo.frombuf took 32 us a header, a third of a
    small object's restore or check. The common header (octal numbers, an
    unsigned checksum) is read with slices, 8 us; anything else (base-256
    numbers, a signed checksum, a damaged header) goes to tarfile itself, so
    what is accepted and the errors raised stay tarfile's.
    """
    try:
        checksum = int(block[148:156].rstrip(b"\0 ") or b"0", 8)
        if len(block) != BLOCK or checksum != sum(block) - sum(block[148:156]) + 256:
            raise ValueError("not the common header")
        size = int(block[124:136].rstrip(b"\0 ") or b"0", 8)
        mtime = int(block[136:148].rstrip(b"\0 ") or b"0", 8)
    except ValueError:
        info = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
        return info.name, info.size, info.mtime, info.type
    kind = block[156:157]
    name = block[:100].split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
    if kind == tarfile.AREGTYPE and name.endswith("/"):
        kind = tarfile.DIRTYPE
    if kind == tarfile.DIRTYPE:
        name = name.rstrip("/")
    prefix = block[345:500].split(b"\0", 1)[0]
    if prefix and kind not in tarfile.GNU_TYPES:
        name = prefix.decode("utf-8", "surrogateescape") + "/" + name
    return name, size, mtime, kind


def _read_header(feed: _Feed, where: str) -> tuple[str, int, float, bool]:
    """(name, size, mtime, is_dir) of the next member, pax and GNU long names applied."""
    extended: dict[str, str] = {}
    while True:
        block = feed.take(BLOCK)
        if block == _ZERO_BLOCK:
            raise ArchiveDamaged(f"{where}: end of archive where a member was expected")
        try:
            name, size, mtime, kind = _header(block)
        except tarfile.HeaderError as exc:
            raise ArchiveDamaged(f"{where}: member header does not parse ({exc})") from None
        if kind in _EXTENDED:
            body = feed.take(_padded(size))[:size]
            try:
                if kind == tarfile.XHDTYPE:
                    extended.update(_pax_records(body))
                elif kind == tarfile.GNUTYPE_LONGNAME:
                    extended["path"] = body.rstrip(b"\0").decode("utf-8", "surrogateescape")
            except ValueError as exc:
                raise ArchiveDamaged(f"{where}: extended header is damaged ({exc})") from None
            continue
        is_dir = kind == tarfile.DIRTYPE
        name = extended.get("path", name)
        size = int(extended.get("size", size)) if kind in tarfile.REGULAR_TYPES else 0
        mtime = float(extended.get("mtime", mtime))
        return name.rstrip("/") if is_dir else name, size, mtime, is_dir


def open_member_stream(
    compressed: Iterable[bytes | memoryview], *, where: str = "archive"
) -> Member:
    """Parse the first member out of compressed frames (header(s), then data)."""
    feed = _Feed(_guard(decompress_chunks(compressed), where), where)
    name, size, mtime, is_dir = _read_header(feed, where)
    return Member(name, size, mtime, is_dir, feed.stream(size))


@dataclass(slots=True)
class MemberBuffer:
    """One member decoded from frames held in memory; ``data`` views its bytes."""

    name: str
    size: int
    mtime: float
    is_dir: bool
    data: list[memoryview]


def read_member(compressed: bytes | memoryview, *, where: str = "archive") -> MemberBuffer:
    """Parse the first member out of compressed frames held whole in memory.

    Each frame is decompressed in one call and the data are views into the
    output, so a member's bytes are written once, by zstd.
    """
    feed = _Feed(decompress_frames(compressed, where), where)
    name, size, mtime, is_dir = _read_header(feed, where)
    return MemberBuffer(name, size, mtime, is_dir, feed.views(size))


def _guard(chunks: Iterator[bytes], where: str) -> Iterator[bytes]:
    import zstandard

    try:
        yield from chunks
    except zstandard.ZstdError as exc:
        raise ArchiveDamaged(f"{where}: frames do not decompress ({exc})") from None


class ArchiveReader:
    """Ranged reads of one archive in a store (key is the full store key).

    ``size``: the archive's size when the caller knows it (from a listing),
    which saves the HEAD before the seek table is read.
    """

    def __init__(
        self, store: Store, key: str, *, name: str | None = None, size: int | None = None
    ) -> None:
        self.store = store
        self.key = key
        self.name = name or key
        self._table: SeekTable | None = None
        self._size = size

    def size(self) -> int:
        if self._size is None:
            try:
                self._size = self.store.head(self.key).size
            except NotFoundError:
                raise ArchiveDamaged(f"archive {self.name} is missing") from None
        return self._size

    def _range(self, offset: int, length: int) -> bytes:
        try:
            return self.store.get_bytes(self.key, offset=offset, length=length)
        except NotFoundError:
            raise ArchiveDamaged(
                f"archive {self.name} is missing or shorter than expected"
            ) from None

    def seek_table(self) -> SeekTable:
        """The seek table, from one ranged GET of the tail (two for very large tables)."""
        if self._table is not None:
            return self._table
        size = self.size()
        if size < FOOTER_SIZE:
            raise ArchiveDamaged(f"archive {self.name} is too short ({size} bytes)")
        guess = min(size, TAIL_GUESS)
        tail = self._range(size - guess, guess)
        try:
            _count, _checksums, table_size = parse_footer(tail)
            if table_size > size:
                raise SeekTableError(f"seek table of {table_size} bytes in a {size}-byte file")
            if table_size > len(tail):
                tail = self._range(size - table_size, table_size)
            table = decode(tail)
        except SeekTableError as exc:
            raise ArchiveDamaged(f"archive {self.name}: {exc}") from None
        if table.compressed_size + table.encoded_size != size:
            raise ArchiveDamaged(
                f"archive {self.name}: seek table covers {table.compressed_size} bytes of frames, "
                f"file has {size - table.encoded_size}"
            )
        self._table = table
        return table

    def manifest(self) -> dict[str, Any]:
        """The archive's manifest.json (the second-to-last frame)."""
        table = self.seek_table()
        if len(table.frames) < 2:
            raise ArchiveDamaged(f"archive {self.name} has no manifest.json frame")
        frame = table.frames[-2]
        member = self.open_member(frame.offset, frame.compressed_size)
        body = b"".join(member.data)
        try:
            doc = json.loads(body)
        except ValueError as exc:
            raise ArchiveDamaged(
                f"archive {self.name}: manifest.json is not JSON ({exc})"
            ) from None
        if not isinstance(doc, dict) or not isinstance(doc.get("objects"), list):
            raise ArchiveDamaged(f"archive {self.name}: manifest.json has no objects list")
        return doc

    def open_range(self, offset: int, length: int) -> ObjectStream:
        """A ranged read of raw (compressed) bytes, e.g. several adjacent members' frames."""
        try:
            return self.store.get(self.key, offset=offset, length=length)
        except NotFoundError:
            raise ArchiveDamaged(f"archive {self.name} is missing") from None

    def open_member(self, frame_offset: int, frame_length: int) -> Member:
        """One ranged GET of a member's frames, decompressed and parsed as it streams."""
        where = f"archive {self.name} at {frame_offset}"
        try:
            stream = self.store.get(self.key, offset=frame_offset, length=frame_length)
        except NotFoundError:
            raise ArchiveDamaged(f"archive {self.name} is missing") from None

        def compressed() -> Iterator[bytes]:
            received = 0
            with stream:
                for chunk in stream:
                    received += len(chunk)
                    yield chunk
            if received != frame_length:
                raise ArchiveDamaged(
                    f"{where}: got {received} of {frame_length} bytes (archive truncated?)"
                )

        return open_member_stream(compressed(), where=where)

    def iter_raw(self) -> Iterator[bytes]:
        """The decompressed tar stream of the whole archive (for a full check)."""
        table = self.seek_table()
        stream = self.store.get(self.key, offset=0, length=table.compressed_size)
        with stream:
            yield from _guard(decompress_chunks(stream), f"archive {self.name}")

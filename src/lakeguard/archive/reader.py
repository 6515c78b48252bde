"""Reading seekable tar.zst archives: the seek table, manifest.json, one member.

Every read is a ranged GET of exactly the frames needed; nothing reads a
whole archive unless asked (``iter_members`` for a full check). zstd verifies
each frame's content checksum while decompressing, and callers check the
member's SHA-256 against the manifest.
"""

from __future__ import annotations

import json
import tarfile
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


def _read_header(feed: _Feed, where: str) -> tuple[str, int, float, bool]:
    """(name, size, mtime, is_dir) of the next member, pax and GNU long names applied."""
    extended: dict[str, str] = {}
    while True:
        block = feed.take(BLOCK)
        if block == bytes(BLOCK):
            raise ArchiveDamaged(f"{where}: end of archive where a member was expected")
        try:
            info = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
        except tarfile.HeaderError as exc:
            raise ArchiveDamaged(f"{where}: member header does not parse ({exc})") from None
        if info.type in (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.GNUTYPE_LONGNAME):
            body = feed.take(_padded(info.size))[: info.size]
            try:
                if info.type == tarfile.XHDTYPE:
                    extended.update(_pax_records(body))
                elif info.type == tarfile.GNUTYPE_LONGNAME:
                    extended["path"] = body.rstrip(b"\0").decode("utf-8", "surrogateescape")
            except ValueError as exc:
                raise ArchiveDamaged(f"{where}: extended header is damaged ({exc})") from None
            continue
        name = extended.get("path", info.name)
        size = int(extended.get("size", info.size)) if info.isreg() else 0
        mtime = float(extended.get("mtime", info.mtime))
        return name.rstrip("/") if info.isdir() else name, size, mtime, info.isdir()


def open_member_stream(
    compressed: Iterable[bytes | memoryview], *, where: str = "archive"
) -> Member:
    """Parse the first member out of compressed frames (header(s), then data)."""
    feed = _Feed(_guard(decompress_chunks(compressed), where), where)
    name, size, mtime, is_dir = _read_header(feed, where)
    return Member(name, size, mtime, is_dir, feed.stream(size))


def _guard(chunks: Iterator[bytes], where: str) -> Iterator[bytes]:
    import zstandard

    try:
        yield from chunks
    except zstandard.ZstdError as exc:
        raise ArchiveDamaged(f"{where}: frames do not decompress ({exc})") from None


class ArchiveReader:
    """Ranged reads of one archive in a store (key is the full store key)."""

    def __init__(self, store: Store, key: str, *, name: str | None = None) -> None:
        self.store = store
        self.key = key
        self.name = name or key
        self._table: SeekTable | None = None
        self._size: int | None = None

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

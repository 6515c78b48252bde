"""Reading seekable tar.zst archives: the seek table, manifest.json, one member.

Every read is a ranged GET of exactly the frames needed; nothing reads a
whole archive unless asked (``iter_members`` for a full check). zstd verifies
each frame's content checksum while decompressing, and callers check the
member's SHA-256 against the manifest.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from lakeguard.archive.seektable import FOOTER_SIZE, SeekTable, SeekTableError, decode, parse_footer
from lakeguard.errors import NotFoundError, OperationalError
from lakeguard.storage.base import Store

TAIL_GUESS = 64 * 1024  # one GET fetches tables of up to ~5,000 frames
READ_SIZE = 1024 * 1024


class ArchiveDamaged(OperationalError):
    """An archive is missing, truncated, or its frames do not decompress or parse."""


class _ChunkReader(io.RawIOBase):
    """A read-only file over an iterator of byte chunks."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        while not self._buffer:
            try:
                self._buffer = next(self._chunks)
            except StopIteration:
                return 0
        size = min(len(target), len(self._buffer))
        target[:size] = self._buffer[:size]
        self._buffer = self._buffer[size:]
        return size


def decompress_chunks(chunks: Iterable[bytes]) -> Iterator[bytes]:
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


def open_member_stream(compressed: Iterable[bytes], *, where: str = "archive") -> Member:
    """Parse the first member out of compressed frames (header(s), then data)."""
    raw = io.BufferedReader(_ChunkReader(_guard(decompress_chunks(compressed), where)), READ_SIZE)
    try:
        # The member is read lazily after this returns, so the stream stays open.
        tar = tarfile.open(  # noqa: SIM115
            fileobj=raw, mode="r|", encoding="utf-8", errors="surrogateescape"
        )
        info = tar.next()
    except (tarfile.TarError, EOFError) as exc:
        raise ArchiveDamaged(f"{where}: member header does not parse ({exc})") from None
    if info is None:
        raise ArchiveDamaged(f"{where}: no tar member in these frames")
    extracted = tar.extractfile(info) if info.isfile() else None

    def data() -> Iterator[bytes]:
        if extracted is None:
            return
        remaining = info.size
        while remaining > 0:
            try:
                block = extracted.read(min(READ_SIZE, remaining))
            except (tarfile.TarError, EOFError) as exc:
                raise ArchiveDamaged(f"{where}: member data is truncated ({exc})") from None
            if not block:
                raise ArchiveDamaged(
                    f"{where}: member data ends after {info.size - remaining} bytes"
                )
            remaining -= len(block)
            yield block

    return Member(info.name, info.size, float(info.mtime), info.isdir(), data())


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

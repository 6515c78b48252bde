"""Producing a seekable tar.zst archive as a stream of zstd frames (docs/format.md).

The writer is pulled, not pushed: ``member()`` and ``finish()`` are generators
of compressed bytes, so the caller can hand one generator chain to
``store.put(key, chunks, part_size=...)`` and the archive is uploaded while it
is produced. ``record = yield from writer.member(...)`` yields a member's
frames and returns where they landed.

One ``ArchiveWriter`` is used by one thread (a zstd compression context is
not thread-safe); zstandard and hashlib release the GIL, so archives written
side by side on threads use several cores.
"""

from __future__ import annotations

import json
import tarfile
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from lakeguard.archive.seektable import encode, entries_from_sizes, frame_checksum
from lakeguard.hashing import StreamHasher
from lakeguard.repository.layout import MANIFEST_MEMBER

BLOCK = 512
END_OF_ARCHIVE = bytes(2 * BLOCK)
DEFAULT_BLOCK_SIZE = 4 * 1024 * 1024


class ArchiveWriteError(ValueError):
    """The bytes fed for a member do not match its declared size."""


@dataclass(frozen=True, slots=True)
class MemberRecord:
    """Where a member's frames are in the archive, and what its data was."""

    name: str
    size: int
    sha256: str
    frame_offset: int
    frame_length: int
    md5: str | None = None


def tar_header(name: str, size: int, *, mtime: float = 0.0, directory: bool = False) -> bytes:
    """The header block(s) of a member: pax extended header when the name needs one."""
    info = tarfile.TarInfo(name)
    info.size = 0 if directory else size
    info.mtime = int(mtime)
    info.mode = 0o755 if directory else 0o644
    info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    info.uname = info.gname = ""
    return info.tobuf(format=tarfile.PAX_FORMAT, encoding="utf-8", errors="surrogateescape")


def padding(size: int) -> bytes:
    return bytes(-size % BLOCK)


class ArchiveWriter:
    """Frames of one archive; see the module docstring."""

    def __init__(self, *, level: int = 3, block_size: int = DEFAULT_BLOCK_SIZE) -> None:
        import zstandard

        if block_size < BLOCK:
            raise ValueError(f"block size must be at least {BLOCK} bytes")
        self.level = level
        self.block_size = block_size
        self._compressor = zstandard.ZstdCompressor(
            level=level, write_checksum=True, write_content_size=True
        )
        self.offset = 0  # compressed bytes produced so far
        self.raw = 0  # decompressed bytes (tar stream) so far
        self._sizes: list[tuple[int, int, int | None]] = []
        self.members = 0

    def _frame(self, raw: bytes | bytearray | memoryview) -> bytes:
        frame = self._compressor.compress(raw)
        self._sizes.append((len(frame), len(raw), frame_checksum(frame)))
        self.offset += len(frame)
        self.raw += len(raw)
        return frame

    def member(
        self,
        name: str,
        size: int,
        chunks: Iterable[bytes],
        *,
        mtime: float = 0.0,
        directory: bool = False,
        md5: bool = False,
        on_chunk: Callable[[bytes], None] | None = None,
    ) -> Generator[bytes, None, MemberRecord]:
        """Yield the frames of one member whose data are ``chunks`` (``size`` bytes).

        The SHA-256 (and MD5 when asked) of the data is computed on the way;
        ``on_chunk`` sees every data chunk too (a mirror upload, an ETag check).
        Raises ArchiveWriteError when the chunks do not add up to ``size``: the
        frames already yielded are then garbage and the archive must be dropped.
        """
        start = self.offset
        hasher = StreamHasher(sha256=True, md5=md5)
        pending = bytearray(tar_header(name, size, mtime=mtime, directory=directory))
        header_size = len(pending)
        limit = header_size + self.block_size  # the first frame also holds the header
        seen = 0
        for chunk in chunks:
            if not chunk:
                continue
            seen += len(chunk)
            if seen > size:
                raise ArchiveWriteError(f"{name}: more than the {size} bytes announced")
            hasher.update(chunk)
            if on_chunk is not None:
                on_chunk(chunk)
            view = memoryview(chunk)
            while view:
                room = limit - len(pending)
                pending += view[:room]
                view = view[room:]
                if len(pending) >= limit:
                    yield self._frame(pending)
                    pending = bytearray()
                    limit = self.block_size
        if seen != size:
            raise ArchiveWriteError(f"{name}: got {seen} bytes, {size} announced")
        pending += padding(size)
        if pending:
            yield self._frame(pending)
        self.members += 1
        return MemberRecord(
            name=name,
            size=size,
            sha256=hasher.sha256,
            frame_offset=start,
            frame_length=self.offset - start,
            md5=hasher.md5 if md5 else None,
        )

    def finish(self, manifest: dict[str, Any], *, mtime: float = 0.0) -> Iterator[bytes]:
        """Yield the manifest.json member, the end-of-archive frame and the seek table."""
        body = json.dumps(manifest, ensure_ascii=False, separators=(",", ":")).encode()
        yield self._frame(
            tar_header(MANIFEST_MEMBER, len(body), mtime=mtime) + body + padding(len(body))
        )
        yield self._frame(END_OF_ARCHIVE)
        table = encode(entries_from_sizes(self._sizes), checksums=True)
        self.offset += len(table)
        yield table

    @property
    def frames(self) -> int:
        return len(self._sizes)

"""``check --read-data``: one archive read end to end, every referenced member re-hashed.

    one streaming GET of the archive
    for each referenced member, in offset order:
        bytes before it (members no snapshot needs) -> must decompress (frame checksums)
        its frames -> zstd (frame checksums) -> tar header (name, size) -> data
                   -> SHA-256 and size compared with the manifests
    manifest.json frame -> JSON -> each referenced member described the same way
    end-of-archive frame -> 1,024 zero bytes

Damage is attributed to the member whose frames hold it, so one flipped byte
names exactly the objects it damages; the read goes on with the next member.
Only the frames of one member are held at a time.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field

from lakeguard.archive.reader import (
    ArchiveDamaged,
    Member,
    MemberBuffer,
    decompress_chunks,
    is_member,
    open_member_stream,
    read_member,
)
from lakeguard.archive.seektable import SeekTable
from lakeguard.storage.base import Store

END_OF_ARCHIVE = b"\0" * 1024
# Members whose frames take up to this much are read into memory and
# decompressed frame by frame; larger ones stream.
WHOLE_FRAMES = 8 * 1024 * 1024


@dataclass(slots=True)  # not frozen: a check builds millions, a frozen init costs 4x
class MemberRef:
    """One archive member as the manifests describe it."""

    frame_offset: int
    frame_length: int
    member: str
    size: int
    sha256: str


@dataclass(slots=True)
class ArchiveReport:
    """What reading one archive found."""

    archive: str
    bytes_read: int = 0
    members_read: int = 0
    damaged: list[tuple[MemberRef, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # damage that hurts no object


class _Cursor:
    """Sequential reads of exact byte counts from a stream of chunks."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = memoryview(b"")
        self.pos = 0

    def _fill(self) -> bool:
        while not self._buffer:
            try:
                self._buffer = memoryview(next(self._chunks))
            except StopIteration:
                return False
        return True

    def take(self, count: int) -> Iterator[memoryview]:
        """Up to ``count`` bytes (fewer only at the end of the stream), as views."""
        remaining = count
        while remaining > 0 and self._fill():
            piece = self._buffer[:remaining]
            self._buffer = self._buffer[len(piece) :]
            self.pos += len(piece)
            remaining -= len(piece)
            yield piece

    def skip_to(self, offset: int) -> None:
        for _ in self.take(offset - self.pos):
            pass


def _verify_member(cursor: _Cursor, ref: MemberRef, where: str) -> str | None:
    """The error that damages this member, or None when it reads back intact."""
    end = ref.frame_offset + ref.frame_length
    try:
        member: Member | MemberBuffer
        if ref.frame_length <= WHOLE_FRAMES:
            # Frames in memory decompress in one call each, into their own
            # buffers; the stream decoder copies every byte out of zstd's window.
            member = read_member(b"".join(cursor.take(ref.frame_length)), where=where)
        else:
            member = open_member_stream(cursor.take(ref.frame_length), where=where)
        if not is_member(member.name, member.is_dir, ref.member):
            return f"{where}: tar member is {member.name!r}, manifests say {ref.member!r}"
        digest = hashlib.sha256()
        size = 0
        for chunk in member.data:
            digest.update(chunk)
            size += len(chunk)
        if size != ref.size:
            return f"{where}: {size} bytes, manifests say {ref.size}"
        if digest.hexdigest() != ref.sha256:
            return f"{where}: SHA-256 does not match the manifests"
    except ArchiveDamaged as exc:
        return exc.message
    except Exception as exc:  # tarfile and zstandard raise a variety of errors
        return f"{where}: {type(exc).__name__}: {exc}"
    finally:
        cursor.skip_to(end)
    if cursor.pos < end:
        return f"{where}: archive ends before the member does (truncated)"
    return None


def _verify_gap(cursor: _Cursor, end: int, report: ArchiveReport) -> None:
    """Frames between referenced members must still decompress (their checksums hold)."""
    start = cursor.pos
    if end <= start:
        return
    try:
        for _ in decompress_chunks(cursor.take(end - start)):
            pass
    except Exception as exc:
        report.problems.append(
            f"archive {report.archive}: frames at {start}-{end} (objects no snapshot "
            f"references) do not decompress ({exc})"
        )
    cursor.skip_to(end)


def _verify_tail(
    cursor: _Cursor, table: SeekTable, refs: list[MemberRef], report: ArchiveReport
) -> None:
    """The manifest.json frame describes the members as the manifests do; then the EOA frame."""
    name = report.archive
    manifest_frame, eoa_frame = table.frames[-2], table.frames[-1]
    _verify_gap(cursor, manifest_frame.offset, report)
    body = bytearray()
    try:
        member = open_member_stream(
            cursor.take(manifest_frame.compressed_size), where=f"archive {name} manifest.json"
        )
        for chunk in member.data:
            body += chunk
        doc = json.loads(bytes(body))
        objects = doc["objects"] if isinstance(doc, dict) else None
        if not isinstance(objects, list):
            raise ValueError("no objects list")
    except Exception as exc:
        report.problems.append(f"archive {name}: manifest.json does not read ({exc})")
        cursor.skip_to(eoa_frame.offset)
    else:
        cursor.skip_to(eoa_frame.offset)
        described = {
            entry.get("frame_offset"): entry for entry in objects if isinstance(entry, dict)
        }
        for ref in refs:
            entry = described.get(ref.frame_offset)
            if entry is None or (entry.get("member"), entry.get("sha256"), entry.get("size")) != (
                ref.member,
                ref.sha256,
                ref.size,
            ):
                report.problems.append(
                    f"archive {name}: manifest.json does not describe member {ref.member!r} "
                    f"at {ref.frame_offset} as the snapshot manifests do"
                )
    try:
        tail = b"".join(decompress_chunks(cursor.take(eoa_frame.compressed_size)))
        if tail != END_OF_ARCHIVE:
            raise ValueError("not 1,024 zero bytes")
    except Exception as exc:
        report.problems.append(f"archive {name}: end-of-archive frame is damaged ({exc})")


def read_archive(
    store: Store, key: str, name: str, refs: list[MemberRef], table: SeekTable | None
) -> ArchiveReport:
    """Read one archive whole and verify ``refs`` (sorted by offset) against it.

    ``table`` is the archive's seek table when it parsed (then unreferenced
    frames, manifest.json and the end-of-archive frame are verified too).
    Store errors (the archive vanished, the endpoint failed) propagate.
    """
    report = ArchiveReport(name)
    length = table.compressed_size if table is not None else None
    with store.get(key, length=length) as stream:

        def counted() -> Iterator[bytes]:
            for chunk in stream:
                report.bytes_read += len(chunk)
                yield chunk

        cursor = _Cursor(counted())
        for ref in refs:
            if ref.frame_offset < cursor.pos:
                report.damaged.append((ref, f"archive {name}: member overlaps the one before"))
                continue
            if table is not None:
                _verify_gap(cursor, ref.frame_offset, report)
            else:
                cursor.skip_to(ref.frame_offset)
            where = f"archive {name} member {ref.member!r} at {ref.frame_offset}"
            error = _verify_member(cursor, ref, where)
            report.members_read += 1
            if error is not None:
                report.damaged.append((ref, error))
        if table is not None and len(table.frames) >= 2 and cursor.pos <= table.frames[-2].offset:
            _verify_tail(cursor, table, refs, report)
    return report

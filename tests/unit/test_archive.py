"""The seekable tar.zst archive: plain zstd+tar compatibility, seek table, ranged members."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import subprocess
import tarfile
from collections.abc import Generator
from pathlib import Path

import pytest
import zstandard
from repo_testing import random_bytes, sha256

from lakeguard.archive.reader import (
    ArchiveDamaged,
    ArchiveReader,
    decompress_frames,
    frame_length,
    read_member,
)
from lakeguard.archive.seektable import (
    SeekTableError,
    decode,
    encode,
    entries_from_sizes,
)
from lakeguard.archive.writer import (
    ArchiveWriteError,
    ArchiveWriter,
    MemberRecord,
    tar_header,
    tarfile_header,
)
from lakeguard.repository.layout import member_name
from lakeguard.storage.memory import MemoryStore

BLOCK = 256 * 1024
OBJECTS = {
    "a.txt": b"hello world\n",
    "dir/big.bin": random_bytes(3 * BLOCK + 1234),  # four frames
    "dir/exact.bin": random_bytes(BLOCK, seed=2),  # exactly one block
    "empty": b"",
    "x" * 150 + "/long-name.txt": b"pax header\n" * 50,
    "données/été.csv": "ünïcode\n".encode() * 10,
}


def _drain(gen: Generator[bytes, None, MemberRecord], out: list[bytes]) -> MemberRecord:
    while True:
        try:
            out.append(next(gen))
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]


def build() -> tuple[bytes, list[MemberRecord]]:
    writer = ArchiveWriter(level=3, block_size=BLOCK)
    out: list[bytes] = []
    records = []
    for key, body in OBJECTS.items():
        chunks = [body[i : i + 10_000] for i in range(0, len(body), 10_000)]
        records.append(_drain(writer.member(key, len(body), chunks, mtime=1_700_000_000), out))
    doc = {"objects": [{"relative_key": r.name, "sha256": r.sha256} for r in records]}
    out.extend(writer.finish(doc))
    return b"".join(out), records


def test_whole_archive_is_a_plain_tar_zst() -> None:
    blob, _ = build()
    reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(blob), read_across_frames=True)
    with tarfile.open(fileobj=io.BytesIO(reader.read())) as tar:
        members = tar.getmembers()
        names = [member.name for member in members]
        assert names == [*OBJECTS, "manifest.json"]
        for member in members[:-1]:
            extracted = tar.extractfile(member)
            assert extracted is not None and extracted.read() == OBJECTS[member.name]
        manifest = tar.extractfile(members[-1])
        assert manifest is not None
        assert len(json.loads(manifest.read())["objects"]) == len(OBJECTS)


@pytest.mark.skipif(shutil.which("zstd") is None or shutil.which("tar") is None, reason="no zstd")
def test_zstd_and_tar_binaries_extract_it(tmp_path: Path) -> None:
    blob, _ = build()
    (tmp_path / "x.tar.zst").write_bytes(blob)
    subprocess.run(["zstd", "-q", "-d", "x.tar.zst"], cwd=tmp_path, check=True)
    out = tmp_path / "out"
    out.mkdir()
    subprocess.run(["tar", "-xf", "../x.tar"], cwd=out, check=True)
    for key, body in OBJECTS.items():
        assert (out / key).read_bytes() == body
    assert (out / "manifest.json").exists()


def test_each_member_reads_back_with_one_ranged_get() -> None:
    blob, records = build()
    store = MemoryStore()
    store.put("a.tar.zst", blob)
    reader = ArchiveReader(store, "a.tar.zst")
    table = reader.seek_table()
    # 4 + 1 + 1 + 1 + 1 + 1 member frames, manifest, end of archive
    assert len(table.frames) == 11
    assert table.compressed_size + table.encoded_size == len(blob)
    for record in records:
        assert table.frames_in(record.frame_offset, record.frame_length)
        member = reader.open_member(record.frame_offset, record.frame_length)
        body = b"".join(member.data)
        assert member.name == record.name
        assert body == OBJECTS[record.name]
        assert record.sha256 == sha256(body)
    assert [entry["relative_key"] for entry in reader.manifest()["objects"]] == list(OBJECTS)


def test_flipped_byte_is_reported_as_damage() -> None:
    blob, records = build()
    big = records[1]
    damaged = bytearray(blob)
    damaged[big.frame_offset + big.frame_length // 2] ^= 0x40
    store = MemoryStore()
    store.put("a.tar.zst", bytes(damaged))
    reader = ArchiveReader(store, "a.tar.zst")
    with pytest.raises(ArchiveDamaged, match=r"archive a\.tar\.zst"):
        b"".join(reader.open_member(big.frame_offset, big.frame_length).data)
    # the other members are untouched
    first = records[0]
    assert (
        b"".join(reader.open_member(first.frame_offset, first.frame_length).data)
        == b"hello world\n"
    )


def test_missing_or_truncated_archive_is_damage() -> None:
    blob, _ = build()
    store = MemoryStore()
    store.put("cut.tar.zst", blob[:-5])
    with pytest.raises(ArchiveDamaged, match="seek"):
        ArchiveReader(store, "cut.tar.zst").seek_table()
    with pytest.raises(ArchiveDamaged, match="missing"):
        ArchiveReader(store, "nope.tar.zst").seek_table()


def test_seek_table_round_trip_and_validation() -> None:
    frames = entries_from_sizes([(100, 512, 1), (50, 1024, 2), (7, 9, 3)])
    table = decode(b"prefix bytes" + encode(frames))
    assert table.frames == frames
    assert table.frames[2].offset == 150 and table.frames[2].decompressed_offset == 1536
    assert table.frames_in(100, 57) == list(frames[1:])
    with pytest.raises(KeyError):
        table.frames_in(100, 60)
    raw = bytearray(encode(frames))
    raw[-1] ^= 0xFF
    with pytest.raises(SeekTableError, match="magic"):
        decode(bytes(raw))
    raw = bytearray(encode(frames))
    raw[-5] |= 0x04  # a reserved descriptor bit
    with pytest.raises(SeekTableError, match="reserved"):
        decode(bytes(raw))
    with pytest.raises(SeekTableError, match="needs"):
        decode(encode(frames)[10:])


def test_seek_table_checksums_are_the_frames_own() -> None:
    blob, _ = build()
    table = decode(blob)
    for frame in table.frames:
        data = blob[frame.offset : frame.offset + frame.compressed_size]
        assert int.from_bytes(data[-4:], "little") == frame.checksum


def test_wrong_size_is_refused() -> None:
    writer = ArchiveWriter(block_size=BLOCK)
    with pytest.raises(ArchiveWriteError, match="announced"):
        _drain(writer.member("a", 10, [b"12345"]), [])
    with pytest.raises(ArchiveWriteError, match="more than"):
        _drain(writer.member("b", 3, [b"12345"]), [])


@pytest.mark.parametrize(
    "key",
    ["../escape", "/etc/passwd", "a//b", "a/./b", "a/../../b", "manifest.json", "tab\tkey", "dir/"],
)
def test_keys_that_could_hurt_plain_tar_get_safe_member_names(key: str) -> None:
    name = member_name(key)
    assert name.startswith("_unsafe/") and ".." not in name


def test_ordinary_keys_are_their_own_member_names() -> None:
    for key in ["dt=2026-02-11/part-0.parquet", "a/b/c.txt", "x y/ü.csv"]:
        assert member_name(key) == key


def test_a_member_read_whole_gets_the_frames_a_streamed_one_gets() -> None:
    """prepare_member (fetch threads) and member() (streaming) cut the same frames."""
    from lakeguard.archive.writer import prepare_member

    decompress = zstandard.ZstdDecompressor().decompress
    for key, body in OBJECTS.items():
        streamed_writer, whole_writer = (
            ArchiveWriter(block_size=BLOCK),
            ArchiveWriter(block_size=BLOCK),
        )
        streamed: list[bytes] = []
        record = _drain(
            streamed_writer.member(key, len(body), [body], mtime=1_700_000_000), streamed
        )
        prepared = prepare_member(key, body, mtime=1_700_000_000, block_size=BLOCK)
        whole: list[bytes] = []
        again = _drain(whole_writer.prepared(prepared), whole)
        assert [decompress(f) for f in whole] == [decompress(f) for f in streamed], key
        assert [raw for _f, raw in prepared.frames] == [len(decompress(f)) for f in streamed]
        assert (again.sha256, again.size, again.frame_length) == (
            record.sha256,
            record.size,
            record.frame_length,
        )
        for frame in whole:  # every frame says its size and carries its checksum
            params = zstandard.get_frame_parameters(frame)
            assert params.content_size == len(decompress(frame)) and params.has_checksum
    assert len(prepare_member("big", OBJECTS["dir/big.bin"], block_size=BLOCK).frames) == 4


def test_fast_levels_get_tables_sized_for_one_block_and_others_keep_zstds() -> None:
    from lakeguard.archive.writer import compress_frame, compression_parameters

    three = compression_parameters(3)
    assert (three.hash_log, three.chain_log) == (15, 15)
    assert three.strategy == zstandard.ZstdCompressionParameters.from_level(3).strategy
    nineteen = compression_parameters(19)
    plain = zstandard.ZstdCompressionParameters.from_level(19)
    assert (nineteen.hash_log, nineteen.chain_log) == (plain.hash_log, plain.chain_log)
    body = random_bytes(300_000) + b"repeat" * 50_000
    for level in (-5, 1, 3, 19):
        frame = compress_frame(level, body[:1000], memoryview(body)[1000:])
        assert zstandard.ZstdDecompressor().decompress(frame) == body
        params = zstandard.get_frame_parameters(frame)
        assert params.content_size == len(body) and params.has_checksum


def test_a_member_decoded_in_memory_equals_the_streamed_one() -> None:
    blob, records = build()
    store = MemoryStore()
    store.put("a.tar.zst", blob)
    reader = ArchiveReader(store, "a.tar.zst")
    for record in records:
        frames = memoryview(blob)[record.frame_offset : record.frame_offset + record.frame_length]
        whole = read_member(frames, where="here")
        streamed = reader.open_member(record.frame_offset, record.frame_length)
        assert (whole.name, whole.size, whole.is_dir, whole.mtime) == (
            streamed.name,
            streamed.size,
            streamed.is_dir,
            streamed.mtime,
        )
        assert b"".join(whole.data) == b"".join(streamed.data) == OBJECTS[record.name]
        assert all(isinstance(piece, memoryview) for piece in whole.data)
    # several blocks in several frames: one view per frame, nothing joined
    big = records[1]
    frames = memoryview(blob)[big.frame_offset : big.frame_offset + big.frame_length]
    assert len(read_member(frames).data) == 4


def _frame(data: bytes, **params: int) -> bytes:
    options = {"write_checksum": 1, "write_content_size": 1, **params}
    level = options.pop("level", 3)
    return zstandard.ZstdCompressor(level=level, **options).compress(data)


def test_frame_lengths_follow_zstds_own_frames() -> None:
    """Raw, RLE and compressed blocks; with and without checksum and content size."""
    samples = [
        _frame(b""),
        _frame(b"\0" * 300_000),  # RLE blocks
        _frame(random_bytes(200_000, seed=5)),  # raw blocks
        _frame(b"abc" * 100_000, level=19),  # compressed blocks
        _frame(b"x" * 10, write_checksum=0),
        _frame(random_bytes(70_000, seed=6), write_content_size=0),
        _frame(random_bytes(5, seed=7) * 60_000, level=1, write_checksum=0),
    ]
    joined = memoryview(b"".join(samples))
    position = 0
    for sample in samples:
        assert frame_length(joined, position) == len(sample)
        position += len(sample)
    decoded = list(decompress_frames(b"".join(samples[:4])))
    assert decoded == [b"", b"\0" * 300_000, random_bytes(200_000, seed=5), b"abc" * 100_000]


def test_cut_or_garbled_frames_are_damage_and_nothing_else() -> None:
    blob, records = build()
    small = records[0]  # a.txt: one frame
    frames = blob[small.frame_offset : small.frame_offset + small.frame_length]
    for cut in range(len(frames)):
        with pytest.raises(ArchiveDamaged):
            read_member(frames[:cut])
    for position in range(len(frames)):
        for bit in (0x01, 0x80):
            garbled = bytearray(frames)
            garbled[position] ^= bit
            # Either damage, or a tar stream zstd's checksum vouches for (a flip
            # in a header field zstd does not need, such as the window size):
            # the caller then checks the name, size and SHA-256.
            with contextlib.suppress(ArchiveDamaged):
                member = read_member(bytes(garbled))
                assert b"".join(member.data) == b"hello world\n" or member.name != "a.txt"
    with pytest.raises(ArchiveDamaged, match="no zstd frame"):
        read_member(b"not a zstd frame at all")


def _headers() -> list[bytes]:
    """Header blocks of every shape the readers may meet, from tarfile itself."""
    blocks: list[bytes] = []
    shapes: list[tuple[str, int, bytes, int]] = [
        ("dt=2026-01-01/part-00000.parquet", 8192, tarfile.REGTYPE, tarfile.USTAR_FORMAT),
        ("a/" * 60 + "long-name-with-prefix.bin", 1, tarfile.REGTYPE, tarfile.USTAR_FORMAT),
        ("dir/", 0, tarfile.DIRTYPE, tarfile.USTAR_FORMAT),
        ("x" * 300, 5, tarfile.REGTYPE, tarfile.PAX_FORMAT),
        ("y" * 300, 5, tarfile.REGTYPE, tarfile.GNU_FORMAT),
        ("big.bin", 9 * 1024**3, tarfile.REGTYPE, tarfile.GNU_FORMAT),  # base-256 size
        ("big-pax.bin", 9 * 1024**3, tarfile.REGTYPE, tarfile.PAX_FORMAT),
        ("naïve/ключ.txt", 3, tarfile.REGTYPE, tarfile.PAX_FORMAT),
        ("link", 0, tarfile.SYMTYPE, tarfile.USTAR_FORMAT),
    ]
    for name, size, kind, fmt in shapes:
        info = tarfile.TarInfo(name)
        info.size, info.type, info.mtime = size, kind, 1_796_311_463
        raw = info.tobuf(fmt, "utf-8", "surrogateescape")
        blocks.extend(raw[i : i + 512] for i in range(0, len(raw), 512))
    v7_dir = bytearray(blocks[0])
    v7_dir[0:100] = b"old-dir/".ljust(100, b"\0")
    v7_dir[156:157] = tarfile.AREGTYPE
    v7_dir[148:156] = b" " * 8
    v7_dir[148:156] = b"%06o\0 " % (sum(v7_dir) & 0o777777)
    blocks.append(bytes(v7_dir))
    signed = bytearray(blocks[0])  # a checksum summed as signed bytes, as some tars do
    signed[0:100] = b"\xe9t\xe9.txt".ljust(100, b"\0")
    signed[148:156] = b" " * 8
    total = sum(b - 256 if b > 127 else b for b in signed)
    signed[148:156] = b"%06o\0 " % total
    blocks.append(bytes(signed))
    return [block for block in blocks if any(block)]


def test_header_reads_every_shape_as_tarfile_does() -> None:
    from lakeguard.archive.reader import _header

    seen = 0
    for block in _headers():
        try:
            info = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
        except tarfile.HeaderError:
            continue  # a pax body or long-name block: not a header
        assert _header(block) == (info.name, info.size, info.mtime, info.type)
        seen += 1
    assert seen >= 11


def test_a_damaged_header_is_refused_as_tarfile_refuses_it() -> None:
    from lakeguard.archive.reader import _header

    block = bytearray(_headers()[0])
    block[10] ^= 0x01
    with pytest.raises(tarfile.HeaderError):
        tarfile.TarInfo.frombuf(bytes(block), "utf-8", "surrogateescape")
    with pytest.raises(tarfile.HeaderError):
        _header(bytes(block))


@pytest.mark.parametrize(
    ("name", "size", "mtime", "directory"),
    [
        ("a", 0, 0.0, False),
        ("dt=2026-01-01/part-00000.parquet", 8192, 1_796_311_463.7, False),
        ("x" * 100, 8**11 - 1, 8**11 - 1, False),  # the largest the ustar block holds
        ("x" * 101, 1, 1, False),  # a pax header from here on: tarfile's
        ("naïve.txt", 1, 1, False),
        ("big", 8**11, 5, False),
        ("late", 5, 8**11, False),
        ("early", 5, -1, False),
        ("folder", 0, 7, True),
    ],
)
def test_tar_header_is_byte_for_byte_tarfiles(
    name: str, size: int, mtime: float, directory: bool
) -> None:
    expected = tarfile_header(name, size, mtime=mtime, directory=directory)
    assert tar_header(name, size, mtime=mtime, directory=directory) == expected

"""The seekable tar.zst archive: plain zstd+tar compatibility, seek table, ranged members."""

from __future__ import annotations

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

from lakeguard.archive.reader import ArchiveDamaged, ArchiveReader
from lakeguard.archive.seektable import (
    SeekTableError,
    decode,
    encode,
    entries_from_sizes,
)
from lakeguard.archive.writer import ArchiveWriteError, ArchiveWriter, MemberRecord
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
    "key", ["../escape", "/etc/passwd", "a//b", "a/./b", "a/../../b", "manifest.json", "tab\tkey"]
)
def test_keys_that_could_hurt_plain_tar_get_safe_member_names(key: str) -> None:
    name = member_name(key)
    assert name.startswith("_unsafe/") and ".." not in name


def test_ordinary_keys_are_their_own_member_names() -> None:
    for key in ["dt=2026-02-11/part-0.parquet", "a/b/c.txt", "folder/", "x y/ü.csv"]:
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

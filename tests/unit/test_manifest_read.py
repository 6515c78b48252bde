"""Reading manifests back: every field as written, filtered reads keep row numbers."""

from __future__ import annotations

import dataclasses
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lakeguard.repository.manifest import (
    COLUMNS,
    KeyFilter,
    ManifestRow,
    ManifestWriter,
    StoredRow,
    read_manifest,
    read_numbered,
    read_stored,
    row_groups,
    rows_to_table,
    write_manifest,
)

MOMENTS = [
    datetime(2026, 2, 11, 3, 4, 5, 678901, tzinfo=UTC),
    datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),  # before the epoch
    datetime(1970, 1, 1, tzinfo=UTC),
    None,
    datetime(2262, 4, 11, tzinfo=UTC),
]


def _rows(count: int) -> list[ManifestRow]:
    return [
        ManifestRow(
            key=f"dt=2026-02-{i % 3 + 10}/part-{i:05d}.parquet",
            size=i,
            sha256=f"{i:064x}",
            archive=f"archives/a{i // 7}.tar.zst",
            member=f"m{i}",
            frame_offset=i * 512,
            frame_length=512,
            etag=f"{i:032x}" if i % 2 else None,
            version_id=f"v{i}" if i % 3 else None,
            last_modified=MOMENTS[i % len(MOMENTS)],
            storage_class="STANDARD" if i % 4 else None,
            content_type="application/x-parquet" if i % 5 else None,
            metadata={"owner": f"team{i}"} if i % 6 == 0 else {},
        )
        for i in range(count)
    ]


def test_rows_read_back_equal_the_rows_written(tmp_path: Path) -> None:
    rows = sorted(_rows(50), key=lambda row: row.key)
    path = tmp_path / "m.parquet"
    write_manifest(path, rows)
    assert list(read_manifest(path, batch_rows=7)) == rows


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
@pytest.mark.parametrize("tz", ["UTC", None])
def test_last_modified_of_any_timestamp_unit_reads_as_utc(
    tmp_path: Path, unit: str, tz: str | None
) -> None:
    """Manifests written by other tools or older versions: seconds to nanoseconds,
    with or without a zone (naive means UTC), nulls kept."""
    base = datetime(2026, 2, 11, 3, 4, 5, tzinfo=UTC)
    exact = {
        "s": timedelta(0),
        "ms": timedelta(milliseconds=678),
        "us": timedelta(microseconds=678901),
    }
    moment = base + exact.get(unit, timedelta(microseconds=678901))
    rows = _rows(2)
    table = pa.table(
        {
            name: (
                pa.array([moment.replace(tzinfo=None), None], type=pa.timestamp(unit, tz=tz))
                if name == "last_modified"
                else pa.array([getattr(row, name) if name != "metadata" else None for row in rows])
            )
            for name in COLUMNS
        }
    )
    path = tmp_path / "m.parquet"
    pq.write_table(table, path)
    read = list(read_manifest(path))
    assert [row.last_modified for row in read] == [moment, None]
    assert read[0].last_modified is not None and read[0].last_modified.tzinfo is not None


def test_filtered_reads_keep_each_rows_number_in_the_file(tmp_path: Path) -> None:
    rows = sorted(_rows(40), key=lambda row: row.key)
    path = tmp_path / "m.parquet"
    write_manifest(path, rows)
    key_filter = KeyFilter.of(["dt=2026-02-11"], ["*-00004.parquet"])
    expected = [(n, row) for n, row in enumerate(rows) if key_filter.matches(row.key)]
    assert 0 < len(expected) < len(rows)
    for batch_rows in (1, 3, 64):
        assert list(read_numbered(path, batch_rows=batch_rows, key_filter=key_filter)) == expected
    nothing = KeyFilter.of(["dt=1999-01-01"])
    assert list(read_numbered(path, key_filter=nothing)) == []


def test_stored_rows_pass_through_the_writer_as_they_were(tmp_path: Path) -> None:
    """Rows of two manifests read as StoredRow (batches of 7, some rows left out),
    interleaved with new ManifestRows: the file written holds exactly those rows,
    in that order, every field intact, and the writer's snapshot id."""
    rows = sorted(_rows(120), key=lambda row: row.key)
    older, other, fresh = rows[:48], rows[48:100], rows[100:]
    paths = [tmp_path / "older.parquet", tmp_path / "other.parquet"]
    write_manifest(paths[0], older)
    write_manifest(paths[1], other)
    # Gaps inside a batch; and other's first row kept (its 7th) follows older's
    # last (its 6th in a batch) as if one batch went on.
    dropped = {older[4].key, older[5].key, other[9].key, *(row.key for row in other[:6])}
    stored = [
        row for path in paths for row in read_stored(path, batch_rows=7) if row.key not in dropped
    ]
    assert all(isinstance(row, StoredRow) for row in stored)
    merged = sorted([*stored, *fresh], key=lambda row: row.key)
    out = tmp_path / "out.parquet"
    with ManifestWriter(out, snapshot_id="20260211T000000Z-abcdef01") as writer:
        writer.write_all(merged)
    expected = [row for row in rows if row.key not in dropped]
    assert list(read_manifest(out)) == expected
    metadata = pq.read_schema(out).metadata
    assert metadata[b"lakeguard.snapshot_id"] == b"20260211T000000Z-abcdef01"
    by_key = {row.key: row for row in rows}
    assert all(row.materialize() == by_key[row.key] for row in stored)


@pytest.mark.parametrize(
    ("includes", "prefix", "starts"),
    [
        ([], "", None),
        (["dt=2026-02-11"], "", ["dt=2026-02-11"]),
        (["dt=2026-02-11/"], "", ["dt=2026-02-11"]),  # the folder: "dt=2026-02-11/..."
        (["a//"], "", ["a"]),  # folder "a" selects "a/x"
        (["dt=2026-02-1?/*"], "", ["dt=2026-02-1"]),
        (["dt=[0-9]*"], "", ["dt="]),
        (["*/hour=03"], "", None),
        (["b", "a*"], "", ["a", "b"]),
        (["lake/dt=1"], "lake/", ["dt=1", "lake/dt=1"]),  # find: key or source prefix + key
        (["la"], "lake/", None),  # every key of the source prefix
        (["other/x"], "lake/", ["other/x"]),
    ],
)
def test_key_starts_are_what_every_selected_key_starts_with(
    includes: list[str], prefix: str, starts: list[str] | None
) -> None:
    assert KeyFilter.of(includes, ["zzz"]).key_starts(prefix) == starts


def _small_groups(path: Path, rows: list[ManifestRow], group_rows: int) -> None:
    pq.write_table(rows_to_table(rows), path, row_group_size=group_rows)


def test_filtered_reads_skip_row_groups_that_cannot_hold_a_match(tmp_path: Path) -> None:
    rows = sorted(_rows(300), key=lambda row: row.key)
    path = tmp_path / "m.parquet"
    _small_groups(path, rows, 10)
    key_filter = KeyFilter.of([rows[123].key])
    groups = list(row_groups(pq.ParquetFile(path), key_filter.key_starts()))
    assert groups == [(120, 12)]
    assert list(read_numbered(path, key_filter=key_filter)) == [(123, rows[123])]


def test_filtered_reads_find_what_a_full_scan_finds(tmp_path: Path) -> None:
    """Random sorted keys in row groups of 5, random globs (with and without
    wildcards, folders, excludes): reading only the row groups the key starts
    allow gives the rows, and their numbers, of testing every row."""
    rng = random.Random(3)
    atoms = ["a", "b", "/", "=", "-", "x1", "dt=2"]
    keys = sorted(
        {"".join(rng.choice(atoms) for _ in range(rng.randint(1, 6))) for _ in range(300)}
    )
    rows = [
        ManifestRow(
            key=key,
            size=1,
            sha256="0" * 64,
            archive="a",
            member=key,
            frame_offset=i,
            frame_length=1,
        )
        for i, key in enumerate(keys)
    ]
    path = tmp_path / "m.parquet"
    _small_groups(path, rows, 5)
    wild = [*atoms, "*", "?", "[ab]", "/"]
    for _ in range(300):
        includes = [
            "".join(rng.choice(wild) for _ in range(rng.randint(1, 4)))
            for _ in range(rng.randint(1, 2))
        ]
        excludes = (
            ["".join(rng.choice(wild) for _ in range(rng.randint(1, 3)))]
            if rng.random() < 0.3
            else []
        )
        key_filter = KeyFilter.of(includes, excludes)
        expected = [(n, row) for n, row in enumerate(rows) if key_filter.matches(row.key)]
        assert list(read_numbered(path, batch_rows=3, key_filter=key_filter)) == expected, includes


def test_row_groups_are_judged_by_the_key_column_wherever_it_is(tmp_path: Path) -> None:
    """A manifest written by another tool, its columns in another order."""
    rows = sorted(_rows(60), key=lambda row: row.key)
    table = rows_to_table(rows)
    path = tmp_path / "m.parquet"
    pq.write_table(table.select(list(reversed(table.column_names))), path, row_group_size=10)
    key_filter = KeyFilter.of([rows[33].key])
    assert [index for _, index in row_groups(pq.ParquetFile(path), key_filter.key_starts())] == [3]
    assert list(read_numbered(path, key_filter=key_filter)) == [(33, rows[33])]


@pytest.mark.parametrize("unit", ["s", "ms", "ns"])
@pytest.mark.parametrize("tz", ["UTC", None])
def test_stored_rows_of_other_timestamp_types_are_written_in_the_manifest_schema(
    tmp_path: Path, unit: str, tz: str | None
) -> None:
    """A parent manifest with another timestamp type still passes through a backup."""
    moment = datetime(2026, 2, 11, 3, 4, 5, tzinfo=UTC)
    rows = sorted(_rows(20), key=lambda row: row.key)
    rows = [dataclasses.replace(row, last_modified=moment) for row in rows]
    table = rows_to_table(rows)
    at = table.schema.get_field_index("last_modified")
    if unit == "ns":  # with nanoseconds a microsecond cannot hold: cut, as readers do
        nanos = int(moment.timestamp()) * 10**9 + 789
        stamps = pa.array([nanos] * len(rows), type=pa.timestamp(unit, tz=tz))
    else:
        stamps = pa.array([moment.replace(tzinfo=None)] * len(rows), type=pa.timestamp(unit, tz=tz))
    table = table.set_column(at, pa.field("last_modified", stamps.type), stamps)
    older = tmp_path / "older.parquet"
    pq.write_table(table, older)
    stored = list(read_stored(older, batch_rows=6))
    assert [row.last_modified for row in stored] == [moment] * len(rows)
    out = tmp_path / "out.parquet"
    with ManifestWriter(out) as writer:
        writer.write_all(stored)
    assert list(read_manifest(out)) == rows
    assert pq.read_schema(out).field("last_modified").type == pa.timestamp("us", tz="UTC")

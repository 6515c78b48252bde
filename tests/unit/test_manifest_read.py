"""Reading manifests back: every field as written, filtered reads keep row numbers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lakeguard.repository.manifest import (
    COLUMNS,
    KeyFilter,
    ManifestRow,
    read_manifest,
    read_numbered,
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

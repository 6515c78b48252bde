"""A small, realistic data lake and a realistic incident, for the demo and drills.

The lake is what Spark writes: ``<prefix>dt=YYYY-MM-DD/part-NNNNN.parquet``
files of real Parquet (pyarrow), a ``_SUCCESS`` marker per partition, and one
large object written by a multipart upload. The incident is what on-call
engineers meet: same-size overwrites with garbage, a whole partition deleted,
junk keys written by a runaway job.
"""

from __future__ import annotations

import io
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta

from lakeguard.storage.base import MIN_PART_SIZE, Store


@dataclass(slots=True)
class LakeSpec:
    prefix: str = "production/fact_table/"
    first_day: date = date(2026, 2, 8)
    days: int = 5
    parts_per_day: int = 4
    rows_per_part: int = 5_000
    large_object_bytes: int = 12 * 1024 * 1024  # > one part: written by multipart upload
    seed: int = 7


@dataclass(slots=True)
class LakeWritten:
    objects: int = 0
    bytes: int = 0
    keys: list[str] = field(default_factory=list)

    @property
    def partitions(self) -> int:
        return len({key.rsplit("/", 1)[0] for key in self.keys})


def _parquet_part(rng: random.Random, day: date, part: int, rows: int) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    base = (day.toordinal() * 100 + part) * rows
    table = pa.table(
        {
            "event_id": pa.array(range(base, base + rows), pa.int64()),
            "user_id": pa.array([rng.randrange(1_000_000) for _ in range(rows)], pa.int64()),
            "amount": pa.array([round(rng.uniform(0, 500), 2) for _ in range(rows)]),
            "country": pa.array([rng.choice(("DE", "US", "FR", "JP", "BR")) for _ in range(rows)]),
            "dt": pa.array([day.isoformat()] * rows),
        }
    )
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="snappy")
    return sink.getvalue()


def _large_chunks(rng: random.Random, size: int, chunk: int = 1024 * 1024) -> Iterator[bytes]:
    sent = 0
    while sent < size:
        n = min(chunk, size - sent)
        yield rng.randbytes(n)
        sent += n


def partition_key(spec: LakeSpec, day: date) -> str:
    return f"{spec.prefix}dt={day.isoformat()}/"


def write_lake(store: Store, spec: LakeSpec) -> LakeWritten:
    """Write the lake's partitions; the last day also gets one multipart object."""
    rng = random.Random(spec.seed)
    written = LakeWritten()
    for offset in range(spec.days):
        day = spec.first_day + timedelta(days=offset)
        folder = partition_key(spec, day)
        for part in range(spec.parts_per_day):
            body = _parquet_part(rng, day, part, spec.rows_per_part)
            key = f"{folder}part-{part:05d}.parquet"
            store.put(key, body, content_type="application/vnd.apache.parquet")
            written.objects += 1
            written.bytes += len(body)
            written.keys.append(key)
        store.put(f"{folder}_SUCCESS", b"")
        written.objects += 1
        written.keys.append(f"{folder}_SUCCESS")
    if spec.large_object_bytes:
        last = spec.first_day + timedelta(days=spec.days - 1)
        key = f"{partition_key(spec, last)}part-99999.parquet"
        store.put(
            key,
            _large_chunks(rng, spec.large_object_bytes),
            content_type="application/vnd.apache.parquet",
            part_size=MIN_PART_SIZE,
        )
        written.objects += 1
        written.bytes += spec.large_object_bytes
        written.keys.append(key)
    return written


@dataclass(slots=True)
class Incident:
    overwritten: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    junk: list[str] = field(default_factory=list)
    deleted_partition: str = ""


def simulate_incident(store: Store, spec: LakeSpec, *, deleted_day: date | None = None) -> Incident:
    """Overwrite two parts with same-size garbage, delete a day, write junk keys."""
    rng = random.Random(spec.seed + 1)
    incident = Incident()
    day = deleted_day or spec.first_day + timedelta(days=spec.days // 2 + 1)
    incident.deleted_partition = day.isoformat()
    victims_day = spec.first_day
    for part in (0, 1):
        key = f"{partition_key(spec, victims_day)}part-{part:05d}.parquet"
        size = store.head(key).size
        store.put(key, rng.randbytes(size), content_type="application/vnd.apache.parquet")
        incident.overwritten.append(key)
    folder = partition_key(spec, day)
    for info in store.list(folder):
        store.delete(info.key)
        incident.deleted.append(info.key)
    for n in range(3):
        key = f"{spec.prefix}dt={victims_day.isoformat()}/_tmp_attempt_{n}.crc"
        store.put(key, rng.randbytes(64))
        incident.junk.append(key)
    return incident

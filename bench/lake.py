"""The bench lake: >= 1 GB in >= 2,000 objects, shaped like a Parquet lake.

Most objects are small to mid-size (64 KiB - 1 MiB), as Spark writes them;
a few are large and go up as multipart uploads. Bytes are half random, half
repetitive, so they compress about as well as Parquet does (~2x with zstd).
"""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from lakeguard.location import parse_location
from lakeguard.storage import StoreSettings, open_store

KiB = 1024
MiB = 1024 * KiB


@dataclass(slots=True)
class BenchLake:
    bucket: str
    prefix: str
    objects: int
    bytes: int
    keys: list[tuple[str, int]]


def payload(rng: random.Random, size: int) -> bytes:
    """Parquet-like bytes: alternating random and repeated 4 KiB blocks."""
    block = 4 * KiB
    out = bytearray()
    while len(out) < size:
        out += rng.randbytes(block) if rng.random() < 0.5 else bytes([rng.randrange(256)]) * block
    return bytes(out[:size])


def plan(days: int = 20, parts: int = 110, large: int = 6, seed: int = 11) -> list[tuple[str, int]]:
    rng = random.Random(seed)
    keys: list[tuple[str, int]] = []
    for day in range(days):
        for part in range(parts):
            size = rng.choice((64 * KiB, 128 * KiB, 256 * KiB, 512 * KiB, 768 * KiB, 1 * MiB))
            keys.append((f"dt=2026-01-{day + 1:02d}/part-{part:05d}.parquet", size))
    for n in range(large):
        keys.append((f"dt=2026-01-{n + 1:02d}/large-{n:02d}.parquet", 48 * MiB))
    return keys


def plan_small_objects(
    partitions: int = 50, parts: int = 400, seed: int = 5
) -> list[tuple[str, int]]:
    """A lake of many small files (20,000 of 2-16 KiB, ~150 MB): what streaming
    jobs and over-partitioned tables leave behind. Per-object costs decide here."""
    rng = random.Random(seed)
    return [
        (
            f"dt=2026-01-{day % 28 + 1:02d}/h={day:02d}/part-{part:05d}.parquet",
            rng.choice((2 * KiB, 4 * KiB, 8 * KiB, 16 * KiB)),
        )
        for day in range(partitions)
        for part in range(parts)
    ]


def build(
    bucket: str,
    settings: StoreSettings,
    *,
    prefix: str = "lake/",
    versioned: bool = True,
    workers: int = 16,
) -> BenchLake:
    store = open_store(parse_location(f"s3://{bucket}"), settings)
    store.create()
    if versioned:
        store.set_versioning(True)
    keys = plan()

    def put(item: tuple[int, tuple[str, int]]) -> int:
        index, (key, size) = item
        rng = random.Random(index)
        data = payload(rng, size)
        if size > 8 * MiB:
            chunks = (data[i : i + MiB] for i in range(0, size, MiB))
            store.put(prefix + key, chunks, part_size=8 * MiB)
        else:
            store.put(prefix + key, data)
        return size

    with ThreadPoolExecutor(workers) as pool:
        total = sum(pool.map(put, enumerate(keys)))
    return BenchLake(bucket, prefix, len(keys), total, keys)

"""Peak memory and time of ``take_inventory`` over a synthetic listing of N keys.

The store generates its listing lazily (nothing is held), so the peak RSS is
the inventory's own: the listing look-ahead, one Parquet batch, the writer.

    python bench/inventory_memory.py [--keys 1000000] [--partitions 1000] [--parallel]

Prints one JSON line: keys, seconds, keys/s, peak RSS before and after (MB).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from lakeguard.location import Location
from lakeguard.ops.inventory import take_inventory
from lakeguard.storage.base import Capabilities, ObjectInfo

_BASE = datetime(2026, 1, 1, tzinfo=UTC)


class SyntheticStore:
    """``partitions`` folders ``dt=.../`` of ``keys // partitions`` objects each, made on demand."""

    url = "synthetic://lake"
    capabilities = Capabilities()

    def __init__(self, keys: int, partitions: int) -> None:
        self.partitions = max(1, partitions)
        self.per = max(1, keys // self.partitions)

    def _folder(self, index: int) -> str:
        return f"lake/dt={(_BASE + timedelta(days=index)).date().isoformat()}/"

    def list_prefixes(self, prefix: str = "") -> list[str]:
        if prefix != "lake/":
            return []
        return [self._folder(i) for i in range(self.partitions)]

    def list(self, prefix: str = "", *, start_after: str | None = None) -> Iterator[ObjectInfo]:
        for p in range(self.partitions):
            folder = self._folder(p)
            if not folder.startswith(prefix) and not prefix.startswith(folder):
                continue
            if start_after is not None and folder + "\uffff" <= start_after:
                continue
            for i in range(self.per):
                key = f"{folder}part-{i:05d}-c000.snappy.parquet"
                if not key.startswith(prefix) or (start_after is not None and key <= start_after):
                    continue
                yield ObjectInfo(
                    key=key,
                    size=1_000_000 + i,
                    etag=f"{(p * self.per + i):032x}",
                    last_modified=_BASE + timedelta(seconds=p * self.per + i),
                    storage_class="STANDARD",
                )


def _rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--partitions", type=int, default=1000)
    parser.add_argument(
        "--parallel", action="store_true", help="List in pieces side by side (after a head)."
    )
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()

    import pyarrow  # noqa: F401  (imported before the baseline, as the CLI would)

    store = SyntheticStore(args.keys, args.partitions)
    before = _rss_mb()
    with tempfile.TemporaryDirectory() as scratch:
        output = Path(scratch) / "inventory.parquet"
        started = time.perf_counter()
        result = take_inventory(
            store,  # type: ignore[arg-type]
            Location("memory", "lake", "lake/"),
            output=output,
            concurrency=args.concurrency,
            parallel=args.parallel,
        )
        seconds = time.perf_counter() - started
        size = output.stat().st_size
    print(
        json.dumps(
            {
                "keys": result.objects,
                "parallel": args.parallel,
                "seconds": round(seconds, 2),
                "keys_per_s": round(result.objects / seconds),
                "file_mb": round(size / 1e6, 1),
                "rss_before_mb": round(before, 1),
                "peak_rss_mb": round(_rss_mb(), 1),
            }
        )
    )


if __name__ == "__main__":
    main()

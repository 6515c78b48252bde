"""Backup repository at scale: a lake of N small objects (1,000,000 by default).

The source is synthetic (keys and bytes made on demand, nothing held), so the
figures are lakeguard's own: listing, reuse join, packing, manifest, catalog.
The repository is a local directory. Each step runs in a process of its own,
so each peak RSS is that step's:

1. backup            every object new
2. no-change backup  nothing read again
3. backup, 1% changed
4. ls of one partition, find of one key, restore of one key (CLI)
5. check (structure) and snapshots (CLI)
6. full restore of the latest snapshot into a store that keeps nothing
   (every object is still decompressed and checked by SHA-256)

    python bench/backup_scale.py [--keys 1000000] [--partitions 1000]

Prints one JSON line per step (seconds, peak RSS in MB) and saves them all in
bench/results/backup-scale.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from lakeguard.location import Location, parse_location
from lakeguard.storage.base import BytesStream, Capabilities, GetBytesMixin, ObjectInfo, PutResult
from lakeguard.storage.memory import MemoryStore

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

_BASE = datetime(2026, 1, 1, tzinfo=UTC)
_SIZE = 200  # bytes per object: the per-object costs are what is measured here


class SyntheticLake(GetBytesMixin):
    """``partitions`` folders of ``keys // partitions`` objects; ``changed`` in a
    thousand objects (by index) have other bytes and a later ETag."""

    url = "synthetic://lake"
    capabilities = Capabilities()

    def __init__(self, keys: int, partitions: int, changed_per_mille: int = 0) -> None:
        self.partitions = max(1, partitions)
        self.per = max(1, keys // self.partitions)
        self.changed = changed_per_mille

    def _folder(self, index: int) -> str:
        return f"lake/dt={(_BASE + timedelta(days=index)).date().isoformat()}/"

    def _generation(self, index: int) -> int:
        return 1 if index % 1000 < self.changed else 0

    @staticmethod
    def body(key: str, generation: int) -> bytes:
        seed = hashlib.sha256(f"{key}:{generation}".encode()).digest()
        return (seed * (_SIZE // len(seed) + 1))[:_SIZE]

    def _index(self, key: str) -> int:
        folder, _, name = key.rpartition("/")
        day = (datetime.fromisoformat(folder.rpartition("=")[2]) - _BASE.replace(tzinfo=None)).days
        return day * self.per + int(name.split("-")[1])

    def _info(self, index: int, key: str) -> ObjectInfo:
        generation = self._generation(index)
        return ObjectInfo(
            key=key,
            size=_SIZE,
            etag=f"{index:030x}{generation:02x}",
            last_modified=_BASE + timedelta(seconds=index, days=generation),
            storage_class="STANDARD",
        )

    def list(self, prefix: str = "", *, start_after: str | None = None) -> Iterator[ObjectInfo]:
        for p in range(self.partitions):
            folder = self._folder(p)
            if not folder.startswith(prefix) and not prefix.startswith(folder):
                continue
            for i in range(self.per):
                key = f"{folder}part-{i:05d}-c000.snappy.parquet"
                if start_after is None or key > start_after:
                    yield self._info(p * self.per + i, key)

    def list_prefixes(self, prefix: str = "") -> list[str]:
        return [self._folder(i) for i in range(self.partitions)] if prefix == "lake/" else []

    def get(
        self,
        key: str,
        *,
        version_id: str | None = None,
        offset: int = 0,
        length: int | None = None,
    ) -> BytesStream:
        index = self._index(key)
        data = self.body(key, self._generation(index))
        end = len(data) if length is None else offset + length
        return BytesStream(self._info(index, key), iter((data[offset:end],)))


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _backup_step(args: argparse.Namespace) -> None:
    from lakeguard.ops.backup import backup
    from lakeguard.repository.repo import open_repository
    from lakeguard.storage import StoreSettings, open_store

    repo_location = parse_location(args.repo)
    repo = open_repository(open_store(repo_location, StoreSettings()), repo_location)
    lake = SyntheticLake(args.keys, args.partitions, args.changed)
    before = _rss_mb()
    started = time.perf_counter()
    result = backup(lake, Location("memory", "lake", "lake/"), repo)  # type: ignore[arg-type]
    seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "seconds": round(seconds, 2),
                "objects": result.objects,
                "new_objects": result.new_objects,
                "reused_objects": result.reused_objects,
                "archives_written": result.archives_written,
                "rss_before_mb": round(before, 1),
                "peak_rss_mb": round(_rss_mb(), 1),
            }
        )
    )


class DiscardStore(MemoryStore):
    """A restore target that takes every write and keeps nothing: a million
    objects held in memory, or written as files, would be measured instead."""

    def put(self, key: str, data: Any, **kwargs: Any) -> PutResult:
        pieces = [data] if isinstance(data, bytes | bytearray | memoryview) else data
        return PutResult(key, None, None, sum(len(piece) for piece in pieces))


def _restore_step(args: argparse.Namespace) -> None:
    from lakeguard.ops.restore import restore
    from lakeguard.repository.repo import open_repository
    from lakeguard.storage import StoreSettings, open_store

    repo_location = parse_location(args.repo)
    repo = open_repository(open_store(repo_location, StoreSettings()), repo_location)
    target = DiscardStore()
    target.create()
    before = _rss_mb()
    started = time.perf_counter()
    result = restore(repo, "latest", target, Location("memory", "discard", ""))
    seconds = time.perf_counter() - started
    if result.failed or result.verified != result.restored:
        raise SystemExit(f"restore: {len(result.failed)} failed, {result.verified} verified")
    print(
        json.dumps(
            {
                "seconds": round(seconds, 2),
                "objects": result.restored,
                "verified": result.verified,
                "rss_before_mb": round(before, 1),
                "peak_rss_mb": round(_rss_mb(), 1),
            }
        )
    )


def _step(
    name: str, step: str, args: argparse.Namespace, env: dict[str, str], changed: int = 0
) -> dict[str, object]:
    """One step in a process of its own (its peak RSS is the step's)."""
    argv = [sys.executable, __file__, "--step", step, "--keys", str(args.keys)]
    argv += ["--partitions", str(args.partitions), "--repo", args.repo, "--changed", str(changed)]
    common.settle_disk()
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{name} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    figures: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return {"step": name, **figures}


def _cli(name: str, env: dict[str, str], *argv: str) -> dict[str, object]:
    run = common.run_timed(name, common.lakeguard_argv(*argv), env=env)
    if run.returncode != 0:
        raise SystemExit(f"lakeguard {' '.join(argv)} exited {run.returncode}")
    return {
        "step": name,
        "seconds": round(run.seconds, 2),
        "peak_rss_mb": round(run.peak_rss_mb, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--partitions", type=int, default=1000)
    parser.add_argument("--step", choices=("backup", "restore"), help=argparse.SUPPRESS)
    parser.add_argument("--repo", help=argparse.SUPPRESS)
    parser.add_argument("--changed", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step == "backup":
        _backup_step(args)
        return
    if args.step == "restore":
        _restore_step(args)
        return

    work = Path(tempfile.mkdtemp(prefix="lakeguard-bench-scale-"))
    # The repository's manifests and catalog are cached in the bench's folder.
    env = common.tool_env({"XDG_CACHE_HOME": str(work / "cache")})
    steps: list[dict[str, object]] = []
    try:
        repo = work / "repo"
        args.repo = str(repo)
        init = subprocess.run(
            [*common.lakeguard_argv("init", str(repo)), "-q"],
            env=env,
            capture_output=True,
            check=False,
            text=True,
        )
        if init.returncode != 0:
            raise SystemExit(f"init failed: {init.stderr.strip()}")
        for name, changed in (("backup", 0), ("no-change backup", 0), ("backup, 1% changed", 10)):
            steps.append(_step(name, "backup", args, env, changed))
            print(json.dumps(steps[-1]), flush=True)
        lake = SyntheticLake(args.keys, args.partitions)
        folder = lake._folder(args.partitions // 2)[len("lake/") :]
        one = f"{folder}part-{lake.per // 2:05d}-c000.snappy.parquet"
        restored = work / "restored"
        for name, argv in (
            ("snapshots", ("snapshots", "--repo", str(repo))),
            ("ls one partition", ("ls", "--repo", str(repo), "latest", f"{folder}*")),
            ("find one key", ("find", "--repo", str(repo), one)),
            (
                "restore one key",
                ("restore", "--repo", str(repo), "latest", "--to", str(restored), "--include", one),
            ),
            ("check", ("check", "--repo", str(repo))),
        ):
            steps.append(_cli(name, env, *argv))
            print(json.dumps(steps[-1]), flush=True)
        steps.append(_step("full restore (kept nowhere)", "restore", args, env))
        print(json.dumps(steps[-1]), flush=True)
        if (restored / one).read_bytes() != SyntheticLake.body("lake/" + one, 0):
            raise SystemExit(f"restored {one} does not hold its bytes")
        repo_bytes = sum(p.stat().st_size for p in repo.rglob("*") if p.is_file())
        document: dict[str, object] = {
            "keys": lake.per * lake.partitions,
            "partitions": lake.partitions,
            "object_bytes": _SIZE,
            "repository_mb": round(repo_bytes / 1e6, 1),
            "steps": steps,
        }
        print(json.dumps({"repository_mb": document["repository_mb"]}))
        common.save("backup-scale", document)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

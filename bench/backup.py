"""Issue figures for the backup repository, side by side in one run.

    python bench/backup.py                  # the whole run (needs restic and rclone)
    python bench/backup.py --no-profile     # without the in-process profile
    python bench/backup.py --quick          # a small lake: checks the plumbing only
    python bench/backup.py --small-objects  # 20,000 objects of 2-16 KiB instead

On a >= 1 GB, >= 2,000-object lake in a private SeaweedFS, lakeguard against
what a user does with restic, which cannot read a bucket: copy it to disk with
rclone, then back the copy up into an S3 repository.

1. backup: `lakeguard backup s3://bench-lake/lake --repo s3://bench-repo/lg`
   vs `rclone copy sw:bench-lake/lake DIR` + `restic backup DIR`
2. no-change backup (a second run) vs restic's second backup
3. full restore to a local directory vs `restic restore latest --target DIR`
4. `check --read-data` vs `restic check --read-data` (when `lakeguard check` exists)
5. repository size: bytes under the lakeguard prefix vs the restic bucket
6. one-object restore: bytes read at the store layer (a counting Store
   wrapper around the repository's store, in process) vs the object's
   compressed size (its frames' length in the manifest)
7. peak RSS of every run (through bench/_launch.py), and of a backup with 8
   packing workers (what os.cpu_count() gives on an 8-core machine)

Every restore is checked by SHA-256 of every file against the lake's
generator. Then a profile of one backup in process: per-thread CPU
(cProfile with a thread CPU clock in every thread), the process's CPU beside
the server's, and single-core SHA-256 and zstd rates on lake bytes, which
together say what bounds a backup on this machine; where a no-change CLI run
spends its time; and what the server pays for one archive read whole, in
8 MiB and in 1 MiB ranges. Prints a table and writes bench/results/backup.json.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import hashlib
import json
import os
import pstats
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import lake as lake_mod
from common import (
    children_seconds,
    have,
    host_speed,
    kept_tree,
    lakeguard_argv,
    private_sandbox,
    rclone_config,
    run_timed,
    save,
    server_seconds,
    tool_env,
)
from lakeguard.location import parse_location
from lakeguard.storage import StoreSettings, open_store
from lakeguard.storage.base import ObjectInfo, ObjectStream, Store
from lakeguard.storage.wrappers import StoreWrapper

MiB = 1024 * 1024
LAKE_BUCKET = "bench-lake"
REPO_BUCKET = "bench-repo"
RESTIC_BUCKET = "bench-restic"
PASSWORD = "bench-password"


# -- measuring ---------------------------------------------------------------------


@dataclass(slots=True)
class Run:
    name: str
    seconds: float
    peak_rss_mb: float
    client_cpu: float  # the tool's own user + system seconds
    server_cpu: float  # the S3 server's over the same run
    returncode: int
    extra: dict[str, Any] = field(default_factory=dict)


def self_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def expected_hashes(keys: list[tuple[str, int]]) -> dict[str, str]:
    """SHA-256 of every object as the lake builder wrote it, by key relative to the lake."""

    def one(item: tuple[int, tuple[str, int]]) -> tuple[str, str]:
        index, (key, size) = item
        data = lake_mod.payload(random.Random(index), size)
        return key, hashlib.sha256(data).hexdigest()

    with ThreadPoolExecutor(2) as pool:
        return dict(pool.map(one, enumerate(keys)))


def check_tree(root: Path, expected: dict[str, str]) -> dict[str, Any]:
    """Every file under ``root`` against ``expected`` (relative path -> SHA-256)."""
    files = [p for p in root.rglob("*") if p.is_file()]

    def digest(path: Path) -> tuple[str, str]:
        sha = hashlib.sha256()
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(MiB), b""):
                sha.update(chunk)
        return path.relative_to(root).as_posix(), sha.hexdigest()

    with ThreadPoolExecutor(2) as pool:
        found = dict(pool.map(digest, files))
    wrong = sorted(k for k in expected if k in found and found[k] != expected[k])
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    return {
        "correct": not wrong and not missing and not extra,
        "files": len(found),
        "wrong": len(wrong),
        "missing": len(missing),
        "extra": len(extra),
        "first_problem": next(iter(wrong + missing + extra), None),
    }


def prefix_bytes(store: Store, prefix: str = "") -> tuple[int, int]:
    """(objects, bytes) under a prefix."""
    count = total = 0
    for info in store.list(prefix):
        count += 1
        total += info.size
    return count, total


class _CountingStream:
    def __init__(self, inner: ObjectStream, add: Callable[[int], None]) -> None:
        self._inner = inner
        self._add = add
        self.info: ObjectInfo = inner.info

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._inner:
            self._add(len(chunk))
            yield chunk

    def close(self) -> None:
        self._inner.close()

    def __enter__(self) -> _CountingStream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class CountingStore(StoreWrapper):
    """Counts GET requests and the bytes they deliver, by kind of repository key."""

    def __init__(self, inner: Store) -> None:
        super().__init__(inner)
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.requests: dict[str, int] = {}
        self.bytes: dict[str, int] = {}
        self.ranges: list[tuple[str, int, int | None]] = []

    @staticmethod
    def kind(key: str) -> str:
        for part in ("archives/", "manifests/", "snapshots/", "catalog/"):
            if f"/{part}" in f"/{key}":
                return part.rstrip("/")
        return "other"

    def get(
        self,
        key: str,
        *,
        version_id: str | None = None,
        offset: int = 0,
        length: int | None = None,
    ) -> ObjectStream:
        kind = self.kind(key)
        with self.lock:
            self.requests[kind] = self.requests.get(kind, 0) + 1
            self.ranges.append((key, offset, length))

        def add(n: int) -> None:
            with self.lock:
                self.bytes[kind] = self.bytes.get(kind, 0) + n

        inner = self.inner.get(key, version_id=version_id, offset=offset, length=length)
        return _CountingStream(inner, add)


def ranged_reads(settings: StoreSettings, box_pid: int, repo_url: str) -> dict[str, Any]:
    """The server's CPU for one archive read whole, in 8 MiB ranges and in 1 MiB ranges.

    A restore fetches members in ranged GETs; this says what the range size
    costs the server (SeaweedFS stores multipart objects in part-sized chunks).
    """
    repo_loc = parse_location(repo_url)
    store = open_store(repo_loc, settings.for_repository())
    archive = max(store.list(repo_loc.prefix + "archives/"), key=lambda info: info.size)
    out: dict[str, Any] = {"archive_bytes": archive.size}
    for label, step in (("whole", archive.size), ("8 MiB ranges", 8 * MiB), ("1 MiB ranges", MiB)):
        ranges = [(at, min(step, archive.size - at)) for at in range(0, archive.size, step)]
        server, started = server_seconds(box_pid), time.perf_counter()
        for offset, length in ranges:
            with store.get(archive.key, offset=offset, length=length) as stream:
                for _chunk in stream:
                    pass
        out[label] = {
            "requests": len(ranges),
            "seconds": round(time.perf_counter() - started, 3),
            "server_cpu_s": round(server_seconds(box_pid) - server, 3),
        }
    return out


# -- the profile -------------------------------------------------------------------------


def _category(entry: tuple[str, int, str]) -> str:
    filename, _, name = entry
    text = f"{filename}:{name}"
    if "_hashlib" in text or "sha256" in name:
        return "hashlib (SHA-256; MD5 ETags of local writes)"
    if "Zstd" in name or "zstd" in text or "zstandard" in text or name == "compress_frame":
        return "zstd"
    if "obstore" in text or "s3_wire" in filename:
        return "obstore calls (Python side)"
    if "botocore" in text or "boto3" in text or "urllib3" in text or "dateutil" in text:
        return "boto3 (listing, head)"
    if "tarfile" in filename or "archive/writer" in filename or "seektable" in filename:
        return "tar framing, frames, seek table"
    if "pyarrow" in text or "parquet" in text or "repository/manifest" in filename:
        return "manifest (Parquet)"
    if name.startswith("{method 'acquire'") or "threading" in filename or "queue" in filename:
        return "threads, locks, queues (CPU)"
    return "other Python"


def _rates(sample: bytes) -> dict[str, float]:
    """Single-core SHA-256 and zstd level-3 rates on lake bytes (MB/s), and the ratio."""
    import zstandard

    started = time.thread_time()
    hashlib.sha256(sample).hexdigest()
    sha = len(sample) / (time.thread_time() - started) / 1e6
    compressor = zstandard.ZstdCompressor(level=3, write_checksum=True)
    block = 4 * MiB
    started = time.thread_time()
    stored = sum(
        len(compressor.compress(sample[i : i + block])) for i in range(0, len(sample), block)
    )
    zstd = len(sample) / (time.thread_time() - started) / 1e6
    blob = compressor.compress(sample)
    decompressor = zstandard.ZstdDecompressor()
    started = time.thread_time()
    decompressor.decompress(blob)
    unzstd = len(sample) / (time.thread_time() - started) / 1e6
    return {
        "sha256_mb_s": round(sha),
        "zstd3_mb_s": round(zstd),
        "unzstd_mb_s": round(unzstd),
        "zstd3_ratio": round(len(sample) / stored, 3),
    }


def profile_op(name: str, op: Callable[[], Any], box_pid: int) -> dict[str, Any]:
    """Run ``op`` in process: CPU per thread and per function, beside the server's CPU."""
    profiles: list[cProfile.Profile] = []
    thread_cpu: dict[str, float] = {}
    lock = threading.Lock()
    original_run = threading.Thread.run

    def run(self: threading.Thread) -> None:
        # cProfile sees only the thread it is enabled in: one profile per thread,
        # timed by that thread's CPU clock, so time spent blocked costs nothing.
        prof = cProfile.Profile(time.thread_time)
        prof.enable()
        try:
            original_run(self)
        finally:
            prof.disable()
            group = self.name.rsplit("_", 1)[0]
            if group.startswith("Thread-"):
                group = "other threads"
            with lock:
                profiles.append(prof)
                thread_cpu[group] = thread_cpu.get(group, 0.0) + time.thread_time()

    threading.Thread.run = run  # type: ignore[method-assign]
    main = cProfile.Profile(time.thread_time)
    cpu0, server0, main0 = self_seconds(), server_seconds(box_pid), time.thread_time()
    started = time.perf_counter()
    try:
        main.enable()
        outcome = op()
        main.disable()
    finally:
        threading.Thread.run = original_run  # type: ignore[method-assign]
    wall = time.perf_counter() - started
    process_cpu = self_seconds() - cpu0
    server_cpu = server_seconds(box_pid) - server0
    thread_cpu["main"] = time.thread_time() - main0
    stats = pstats.Stats(main)
    for prof in profiles:
        stats.add(prof)
    by_category: dict[str, float] = {}
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    for entry, (_cc, _nc, tottime, _ct, _callers) in raw.items():
        category = _category(entry)
        by_category[category] = by_category.get(category, 0.0) + tottime
    python_cpu = sum(thread_cpu.values())
    top = sorted(raw.items(), key=lambda item: item[1][2], reverse=True)[:15]
    return {
        "name": name,
        "wall_s": round(wall, 2),
        "result": outcome.to_json() if hasattr(outcome, "to_json") else None,
        "process_cpu_s": round(process_cpu, 2),
        "server_cpu_s": round(server_cpu, 2),
        "python_threads_cpu_s": round(python_cpu, 2),
        # obstore's Rust runtime threads are not Python threads: the rest of the process.
        "rust_io_threads_cpu_s": round(max(0.0, process_cpu - python_cpu), 2),
        "thread_cpu_s": {k: round(v, 2) for k, v in sorted(thread_cpu.items())},
        "cpu_by_category_s": {
            k: round(v, 2) for k, v in sorted(by_category.items(), key=lambda kv: -kv[1])
        },
        "top_functions": [
            {"function": f"{e[0]}:{e[1]}({e[2]})", "cpu_s": round(v[2], 2), "calls": v[1]}
            for e, v in top
        ],
        "load": load_average(),
    }


def profiles(settings: StoreSettings, box_pid: int, work: Path) -> list[dict[str, Any]]:
    """A full backup, a no-change backup and a full local restore, each in process."""
    from lakeguard.ops.backup import backup
    from lakeguard.ops.restore import restore
    from lakeguard.repository.repo import init_repository

    source = parse_location(f"s3://{LAKE_BUCKET}/lake")
    repo_loc = parse_location(f"s3://{REPO_BUCKET}/lg-profile")
    repo = init_repository(open_store(repo_loc, settings.for_repository()), repo_loc).repository
    target = kept_tree(work, "profile-restore")
    target_loc = parse_location(str(target))
    out = [
        profile_op("backup", lambda: backup(open_store(source, settings), source, repo), box_pid),
        profile_op(
            "backup, no change",
            lambda: backup(open_store(source, settings), source, repo),
            box_pid,
        ),
        profile_op(
            "restore to a local directory",
            lambda: restore(repo, "latest", open_store(target_loc, settings), target_loc),
            box_pid,
        ),
    ]
    return out


def cli_no_change_profile(env: dict[str, str], repo_url: str, work: Path) -> dict[str, float]:
    """Where a no-change ``lakeguard backup`` process spends its wall time (main thread)."""
    out = work / "cli.prof"
    # Through run(), not main(): main() leaves with os._exit, before cProfile
    # could write its file.
    script = work / "cli_run.py"
    script.write_text("import sys\nfrom lakeguard.cli import run\nsys.exit(run())\n")
    argv = ["-m", "cProfile", "-o", str(out), str(script), "backup"]
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, *argv, f"s3://{LAKE_BUCKET}/lake", "--repo", repo_url, "-q"],
        env=env,
        check=True,
        capture_output=True,
    )
    wall = time.perf_counter() - started
    stats: dict[Any, Any] = pstats.Stats(str(out)).stats  # type: ignore[attr-defined]

    def cumulative(match: Callable[[str, str], bool]) -> float:
        # The outermost matching entries only would need the call graph; the
        # largest cumulative time among matches is what is wanted here.
        times = [v[3] for (f, _l, n), v in stats.items() if match(f, n)]
        return round(max(times, default=0.0), 3)

    return {
        "process_wall": round(wall, 3),
        "cli main()": cumulative(lambda f, n: n == "main" and f.endswith("cli/__init__.py")),
        "imports, all (recursion counted once)": cumulative(lambda f, n: n == "_find_and_load"),
        "backup op": cumulative(lambda f, n: n == "backup" and f.endswith("ops/backup.py")),
        "listing the source": cumulative(lambda f, n: n == "_plan" and "ops/backup.py" in f),
        "manifest write + upload, header": cumulative(
            lambda f, n: n == "_commit" and "ops/backup.py" in f
        ),
        "manifest merge (Parquet)": cumulative(
            lambda f, n: n == "_write_manifest" and "ops/backup.py" in f
        ),
        "opening the repository": cumulative(lambda f, n: n == "open_repo"),
        "boto3 client creation": cumulative(lambda f, n: n == "create_client"),
    }


# -- the run ----------------------------------------------------------------------------


def lakeguard_has(command: str, env: dict[str, str]) -> bool:
    done = subprocess.run(
        [*lakeguard_argv(command, "--help")], env=env, capture_output=True, check=False
    )
    return done.returncode == 0


def one_object(
    settings: StoreSettings, work: Path, repo_url: str, key: str, *, cold: bool
) -> dict[str, Any]:
    """Restore one key in process through a counting store; bytes per kind of key."""
    from lakeguard.ops.restore import restore
    from lakeguard.repository.manifest import read_manifest
    from lakeguard.repository.repo import default_cache_dir, open_repository

    repo_loc = parse_location(repo_url)
    counting = CountingStore(open_store(repo_loc, settings.for_repository()))
    repo = open_repository(counting, repo_loc)
    cache = work / "cold-cache" if cold else default_cache_dir(repo)
    shutil.rmtree(work / "cold-cache", ignore_errors=True)
    header = repo.snapshot("latest")
    manifest = repo.fetch_manifest(header, cache / "manifests")
    row = next(r for r in read_manifest(manifest) if r.key == key)
    if cold:
        shutil.rmtree(work / "cold-cache", ignore_errors=True)
    target = work / "one-object"
    shutil.rmtree(target, ignore_errors=True)
    target_loc = parse_location(str(target))
    counting.reset()
    result = restore(
        repo,
        "latest",
        open_store(target_loc, settings),
        target_loc,
        includes=[key],
        cache_dir=cache,
    )
    archive_bytes = counting.bytes.get("archives", 0)
    return {
        "key": key,
        "size": row.size,
        "compressed": row.frame_length,
        "restored": result.restored,
        "verified": result.verified,
        "cache": "cold" if cold else "warm",
        "archive_bytes_read": archive_bytes,
        "archive_requests": counting.requests.get("archives", 0),
        "all_bytes_read": sum(counting.bytes.values()),
        "bytes_by_kind": dict(counting.bytes),
        "requests_by_kind": dict(counting.requests),
        "ratio": round(archive_bytes / row.frame_length, 3),
    }


class Bench:
    """One run's shared state: the server, the tools' environment, the timings."""

    def __init__(self, box: Any, work: Path, expected: dict[str, str]) -> None:
        self.box = box
        self.work = work
        self.expected = expected
        self.runs: list[Run] = []
        self.env = tool_env(
            {
                "XDG_CACHE_HOME": str(work / "cache"),
                "RESTIC_PASSWORD": PASSWORD,
                "RESTIC_CACHE_DIR": str(work / "restic-cache"),
            }
        )
        self.rclone = ["rclone", "--config", str(rclone_config(box, work))]
        self.has_check = lakeguard_has("check", self.env)

    def timed(
        self, name: str, argv: list[str], env: dict[str, str], out: Path | None = None
    ) -> Run:
        pid = self.box.pid
        client, server = children_seconds(), server_seconds(pid)
        timing = run_timed(name, argv, env=env, stdout_path=out)
        client, server = children_seconds() - client, server_seconds(pid) - server
        row = Run(name, timing.seconds, timing.peak_rss_mb, client, server, timing.returncode)
        if out is not None and out.exists() and out.stat().st_size:
            with contextlib.suppress(ValueError):
                row.extra = json.loads(out.read_text())
        row.extra["load"] = load_average()[0]
        self.runs.append(row)
        print(
            f"  {name}: {row.seconds:.1f}s (cpu {client:.1f}s + server {server:.1f}s, "
            f"peak {row.peak_rss_mb:.0f} MB, exit {row.returncode}, load {row.extra['load']})",
            file=sys.stderr,
        )
        return row

    def round(self, number: int) -> tuple[str, str, Path]:
        """Every timed figure once, each pair in an order that alternates by round."""
        env = {**self.env, "RESTIC_REPOSITORY": f"s3:{self.box.endpoint}/{RESTIC_BUCKET}-{number}"}
        repo_url = f"s3://{REPO_BUCKET}/lg{number}"
        copy_dir = self.work / f"rclone-copy-{number}"
        subprocess.run(["restic", "init"], env=env, check=True, capture_output=True)
        subprocess.run(lakeguard_argv("init", repo_url), env=env, check=True, capture_output=True)
        lake_url = f"s3://{LAKE_BUCKET}/lake"
        copy = [*self.rclone, "copy", "sw:bench-lake/lake", str(copy_dir), "--transfers", "16"]
        backup = lakeguard_argv("backup", lake_url, "--repo", repo_url, "--json")
        restic_dir, lg_dir = (
            kept_tree(self.work, "restic-restore"),
            kept_tree(self.work, "lg-restore"),
        )

        def restic_side() -> None:
            # restic cannot read a bucket: a user copies it to disk first.
            self.timed("rclone copy to disk", copy, env)
            self.timed("restic backup", ["restic", "backup", "-q", str(copy_dir)], env)
            self.timed("rclone copy, no change", copy, env)
            self.timed("restic backup, no change", ["restic", "backup", "-q", str(copy_dir)], env)

        def lakeguard_side() -> None:
            self.timed("lakeguard backup", backup, env, self.work / "lg-backup.json")
            self.timed("lakeguard backup, no change", backup, env, self.work / "lg-again.json")

        def restic_restore() -> None:
            argv = ["restic", "restore", "latest", "--target", str(restic_dir)]
            row = self.timed("restic restore", argv, env)
            root = restic_dir / copy_dir.relative_to(copy_dir.anchor)
            row.extra["check"] = check_tree(root, self.expected)

        def lakeguard_restore() -> None:
            argv = lakeguard_argv("restore", "--repo", repo_url, "latest", "--to", str(lg_dir))
            row = self.timed(
                "lakeguard restore", [*argv, "--json"], env, self.work / "lg-restore.json"
            )
            row.extra["check"] = check_tree(lg_dir, self.expected)

        def restic_check() -> None:
            self.timed("restic check --read-data", ["restic", "check", "--read-data"], env)

        def lakeguard_check() -> None:
            if self.has_check:
                argv = lakeguard_argv("check", "--repo", repo_url, "--read-data", "--json")
                self.timed("lakeguard check --read-data", argv, env, self.work / "lg-check.json")

        # Rotated order: the machine is shared, and its load comes and goes.
        pairs = [
            (restic_side, lakeguard_side),
            (restic_restore, lakeguard_restore),
            (restic_check, lakeguard_check),
        ]
        for pair in pairs:
            for go in pair if number % 2 == 0 else pair[::-1]:
                go()
        return env["RESTIC_REPOSITORY"], repo_url, copy_dir


def workers_run(cores: int, repo_url: str) -> int:
    """A backup with the default packing workers of a machine with ``cores`` cores."""
    from lakeguard.ops.backup import backup
    from lakeguard.repository.repo import open_repository

    settings = StoreSettings(endpoint_url=os.environ["AWS_ENDPOINT_URL"], region="us-east-1")
    source = parse_location(f"s3://{LAKE_BUCKET}/lake")
    repo_loc = parse_location(repo_url)
    repo = open_repository(open_store(repo_loc, settings.for_repository()), repo_loc)
    os.cpu_count = lambda: cores  # what the default worker count follows
    backup(open_store(source, settings), source, repo)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="Rounds (the best one counts).")
    parser.add_argument("--no-profile", action="store_true", help="Skip the in-process profile.")
    parser.add_argument("--quick", action="store_true", help="A small lake (plumbing check).")
    parser.add_argument(
        "--small-objects",
        action="store_true",
        help="A lake of 20,000 objects of 2-16 KiB (per-object costs; the issue's "
        "targets are set for the >= 1 GB lake).",
    )
    parser.add_argument("--keep", action="store_true", help="Keep the work directory.")
    parser.add_argument("--workers-run", nargs=2, metavar=("CORES", "REPO"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.workers_run:
        return workers_run(int(args.workers_run[0]), args.workers_run[1])
    if not (have("restic") and have("rclone")):
        print("needs restic and rclone (apt-get install -y restic rclone)", file=sys.stderr)
        return 2
    if args.quick:
        full_plan = lake_mod.plan

        def small_plan() -> list[tuple[str, int]]:
            return full_plan(days=2, parts=40, large=1)

        lake_mod.plan = small_plan  # type: ignore[assignment]
    elif args.small_objects:
        lake_mod.plan = lake_mod.plan_small_objects  # type: ignore[assignment]
    work = Path(tempfile.mkdtemp(prefix="lakeguard-bench-backup-"))
    # Each round keeps a copy and two restores (kept_tree), the profile one
    # more restore; the server holds the lake and three repositories.
    lake_bytes = sum(size for _, size in lake_mod.plan())
    needed = lake_bytes * (3 * args.rounds + 5)
    free = shutil.disk_usage(work).free
    if free < needed:
        work.rmdir()
        print(
            f"needs {needed / 1e9:.1f} GB free in {work.parent}, has {free / 1e9:.1f} GB",
            file=sys.stderr,
        )
        return 2
    loads: dict[str, list[float]] = {"start": load_average()}
    speeds: dict[str, float] = {"start": host_speed()}
    profiled: list[dict[str, Any]] = []
    rates: dict[str, float] = {}
    cli_profile: dict[str, float] = {}
    reads: dict[str, Any] = {}
    try:
        with private_sandbox() as box:
            settings = StoreSettings(endpoint_url=box.endpoint, region="us-east-1")
            print("building the lake ...", file=sys.stderr)
            lake = lake_mod.build(LAKE_BUCKET, settings)
            print(f"lake: {lake.objects} objects, {lake.bytes / 1e9:.2f} GB", file=sys.stderr)
            bench = Bench(box, work, expected_hashes(lake.keys))
            os.environ["XDG_CACHE_HOME"] = bench.env["XDG_CACHE_HOME"]
            env = bench.env
            bench.timed("lakeguard startup (--version)", lakeguard_argv("--version"), env)
            for number in range(args.rounds):
                print(f"round {number + 1} of {args.rounds}", file=sys.stderr)
                restic_repo, repo_url, copy_dir = bench.round(number)
                loads[f"after round {number + 1}"] = load_average()
                speeds[f"after round {number + 1}"] = host_speed()
            env = {**env, "RESTIC_REPOSITORY": restic_repo}

            # 5. repository size (of the last round)
            repo_loc = parse_location(repo_url)
            lg_objects, lg_bytes = prefix_bytes(open_store(repo_loc, settings), repo_loc.prefix)
            restic_loc = parse_location("s3://" + restic_repo.rsplit("/", 1)[1])
            restic_objects, restic_bytes = prefix_bytes(open_store(restic_loc, settings))
            sizes = {
                "lakeguard": {"objects": lg_objects, "bytes": lg_bytes},
                "restic": {"objects": restic_objects, "bytes": restic_bytes},
            }

            # 6. one object: bytes at the store layer; and each tool's wall time for it
            small_key = next((k for k, size in lake.keys if size == MiB), lake.keys[0][0])
            large_key = max(lake.keys, key=lambda item: item[1])[0]
            one = [
                one_object(settings, work, repo_url, small_key, cold=False),
                one_object(settings, work, repo_url, small_key, cold=True),
                one_object(settings, work, repo_url, large_key, cold=False),
            ]
            argv = lakeguard_argv("restore", "--repo", repo_url, "latest", "--include", small_key)
            bench.timed(
                "lakeguard restore one object",
                [*argv, "--to", str(work / "one-cli"), "--json"],
                env,
                work / "lg-one.json",
            )
            argv = ["restic", "restore", "latest", "--include", str(copy_dir / small_key)]
            bench.timed(
                "restic restore one object", [*argv, "--target", str(work / "restic-one")], env
            )

            reads = ranged_reads(settings, box.pid, repo_url)

            # 7. memory where os.cpu_count() is larger: packing workers follow it (up to 3)
            subprocess.run(
                lakeguard_argv("init", f"s3://{REPO_BUCKET}/lg-workers"),
                env=env,
                check=True,
                capture_output=True,
            )
            bench.timed(
                "lakeguard backup, as on 8 cores",
                [sys.executable, __file__, "--workers-run", "8", f"s3://{REPO_BUCKET}/lg-workers"],
                env,
            )

            if not args.no_profile:
                print("profiling in process ...", file=sys.stderr)
                cli_profile = cli_no_change_profile(env, repo_url, work)
                profiled = profiles(settings, box.pid, work)
                sample = b"".join(
                    lake_mod.payload(random.Random(i), size)
                    for i, (_k, size) in enumerate(lake.keys[:64])
                )
                rates = _rates(sample)
            loads["end"] = load_average()
            speeds["end"] = host_speed()
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    extras = {"cli_no_change_profile": cli_profile, "ranged_reads": reads}
    report(
        lake,
        bench.runs,
        sizes,
        one,
        profiled,
        rates,
        extras,
        loads,
        speeds,
        bench.has_check,
        "backup-small-objects" if args.small_objects else "backup",
    )
    return 0


# -- the report ---------------------------------------------------------------------


def report(
    lake: Any,
    all_runs: list[Run],
    sizes: dict[str, dict[str, int]],
    one: list[dict[str, Any]],
    profiled: list[dict[str, Any]],
    rates: dict[str, float],
    extras: dict[str, Any],
    loads: dict[str, list[float]],
    speeds: dict[str, float],
    has_check: bool,
    results_name: str = "backup",
) -> None:
    runs: dict[str, Run] = {}
    for each in all_runs:
        if each.name not in runs or each.seconds < runs[each.name].seconds:
            runs[each.name] = each

    def s(name: str) -> float:
        return runs[name].seconds

    figures: list[dict[str, Any]] = []

    def cpu(names: list[str], server: bool) -> float:
        # CPU-seconds depend less on the machine's other load than wall time:
        # each run's lowest over the rounds.
        return sum(
            min(r.client_cpu + (r.server_cpu if server else 0.0) for r in all_runs if r.name == n)
            for n in names
        )

    def figure(
        name: str, ours: float, theirs: float, target: float, timed: tuple[list[str], list[str]]
    ) -> None:
        value = ours / theirs if theirs else float("inf")
        row: dict[str, Any] = {
            "figure": name,
            "lakeguard": round(ours, 2),
            "other": round(theirs, 2),
            "ratio": round(value, 3),
            "target": f"<= {target}x",
            "met": value <= target,
        }
        if timed[0]:
            mine, theirs_ = timed
            row["cpu_ratio"] = round(cpu(mine, True) / cpu(theirs_, True), 3)
            row["client_cpu_ratio"] = round(cpu(mine, False) / cpu(theirs_, False), 3)
        figures.append(row)

    def timed_figure(name: str, mine: list[str], theirs: list[str], target: float) -> None:
        wall = (sum(s(n) for n in mine), sum(s(n) for n in theirs))
        figure(name, wall[0], wall[1], target, (mine, theirs))

    copy_plus_restic = s("rclone copy to disk") + s("restic backup")
    timed_figure(
        "backup vs rclone copy + restic backup",
        ["lakeguard backup"],
        ["rclone copy to disk", "restic backup"],
        0.5,
    )
    timed_figure("backup vs restic backup alone", ["lakeguard backup"], ["restic backup"], 1.0)
    timed_figure(
        "no-change backup vs restic's",
        ["lakeguard backup, no change"],
        ["restic backup, no change"],
        1.0,
    )
    timed_figure("full restore vs restic restore", ["lakeguard restore"], ["restic restore"], 0.8)
    if has_check:
        timed_figure(
            "check --read-data vs restic's",
            ["lakeguard check --read-data"],
            ["restic check --read-data"],
            1.0,
        )
    figure(
        "repository size (MB) vs restic's",
        sizes["lakeguard"]["bytes"] / 1e6,
        sizes["restic"]["bytes"] / 1e6,
        1.05,
        ([], []),
    )
    for item in one:
        figures.append(
            {
                "figure": f"one object ({item['size'] // 1024} KiB, {item['cache']} cache): "
                "archive bytes read / its frames",
                "lakeguard": item["archive_bytes_read"],
                "other": item["compressed"],
                "ratio": item["ratio"],
                "target": "< 2x",
                "met": item["ratio"] < 2 and item["verified"] == 1,
            }
        )
    cli = [r for r in all_runs if r.name.startswith("lakeguard") and "workers" not in r.name]
    peak = max(r.peak_rss_mb for r in cli)
    figures.append(
        {
            "figure": "peak RSS, highest of every lakeguard run (MB)",
            "lakeguard": round(peak),
            "other": None,
            "ratio": None,
            "target": "< 500 MB",
            "met": peak < 500,
        }
    )
    if "lakeguard backup, as on 8 cores" in runs:
        peak = runs["lakeguard backup, as on 8 cores"].peak_rss_mb
        figures.append(
            {
                "figure": "peak RSS of a backup as on 8 cores (default workers) (MB)",
                "lakeguard": round(peak),
                "other": None,
                "ratio": None,
                "target": "< 500 MB",
                "met": peak < 500,
            }
        )
    correct = all(r.extra["check"]["correct"] for r in all_runs if "check" in r.extra)

    print()
    print(f"lake: {lake.objects} objects, {lake.bytes / 1e9:.3f} GB; load averages: {loads}")
    print(f"host speed, one core's SHA-256 MB/s (see bench/common.py host_speed): {speeds}")
    print(
        f"{'run (best of rounds)':<34}{'wall s':>8}{'cpu s':>8}{'server s':>10}{'peak MB':>9}"
        f"{'load':>6}  notes"
    )
    for name, row in runs.items():
        notes = ""
        if "check" in row.extra:
            check = row.extra["check"]
            notes = "SHA-256 of every file ok" if check["correct"] else f"WRONG {check}"
        elif name.startswith("lakeguard backup") and "new_objects" in row.extra:
            notes = (
                f"new {row.extra.get('new_objects')} objects, "
                f"stored {row.extra.get('stored_bytes', 0):,} B"
            )
        if row.returncode:
            notes += f" exit {row.returncode}"
        others = [f"{r.seconds:.1f}" for r in all_runs if r.name == name and r is not row]
        if others:
            notes += f" (other rounds: {', '.join(others)} s)"
        print(
            f"{name:<34}{row.seconds:>8.1f}{row.client_cpu:>8.1f}{row.server_cpu:>10.1f}"
            f"{row.peak_rss_mb:>9.0f}{row.extra.get('load', 0):>6.1f}  {notes}"
        )
    copy, restic = runs["rclone copy to disk"], runs["restic backup"]
    print(
        f"{'= rclone copy + restic backup':<34}{copy_plus_restic:>8.1f}"
        f"{copy.client_cpu + restic.client_cpu:>8.1f}{copy.server_cpu + restic.server_cpu:>10.1f}"
    )
    if not has_check:
        print("lakeguard check: not in the tree yet (figure 4 skipped)")
    print(
        f"repository: lakeguard {sizes['lakeguard']['bytes']:,} B in "
        f"{sizes['lakeguard']['objects']} objects; restic {sizes['restic']['bytes']:,} B in "
        f"{sizes['restic']['objects']} objects"
    )
    for item in one:
        print(
            f"one object {item['key']} ({item['size']:,} B, frames {item['compressed']:,} B, "
            f"{item['cache']} cache): {item['archive_requests']} ranged GET(s), "
            f"{item['archive_bytes_read']:,} archive bytes; every read: {item['bytes_by_kind']}"
        )
    print(f"every restore checked file by file (SHA-256): {'yes' if correct else 'NO'}")
    print()
    print(f"{'figure':<64}{'ratio':>8}  {'target':<9} met   CPU ratios: all, client only")
    for fig in figures:
        ratio = f"{fig['ratio']:.2f}x" if fig["ratio"] is not None else f"{fig['lakeguard']}"
        cpus = ""
        if "cpu_ratio" in fig:
            cpus = f"{fig['cpu_ratio']:.2f}x, {fig['client_cpu_ratio']:.2f}x"
        print(
            f"{fig['figure']:<64}{ratio:>8}  {fig['target']:<9} {'yes' if fig['met'] else 'NO ':<5}"
            f" {cpus}"
        )
    print(
        "(ratio: wall time of the best round; CPU ratios: client + S3 server CPU-seconds, "
        "and the client's alone, lowest of the rounds)"
    )
    for prof in profiled:
        print()
        print(
            f"profile, {prof['name']} in process: {prof['wall_s']} s wall (load "
            f"{prof['load'][0]}), process CPU {prof['process_cpu_s']} s = Python threads "
            f"{prof['python_threads_cpu_s']} s + obstore's Rust threads "
            f"{prof['rust_io_threads_cpu_s']} s; server CPU {prof['server_cpu_s']} s; "
            f"2 cores give {2 * prof['wall_s']:.1f} CPU-s"
        )
        print(f"  CPU by thread: {prof['thread_cpu_s']}")
        print(f"  CPU by kind of work (Python threads): {prof['cpu_by_category_s']}")
        for top in prof["top_functions"][:8]:
            print(f"    {top['cpu_s']:>7.2f} s {top['calls']:>8} calls  {top['function']}")
    if rates:
        print(f"single-core rates on lake bytes: {rates}")
    if extras["cli_no_change_profile"]:
        print(
            "no-change backup through the CLI, main thread (cumulative s): "
            f"{extras['cli_no_change_profile']}"
        )
    print(f"one archive read whole and in ranges (server CPU): {extras['ranged_reads']}")
    save(
        results_name,
        {
            "lake": {"objects": lake.objects, "bytes": lake.bytes},
            "loads": loads,
            "host_sha256_mb_s": speeds,
            "runs": [
                {
                    "name": r.name,
                    "seconds": round(r.seconds, 2),
                    "client_cpu": round(r.client_cpu, 2),
                    "server_cpu": round(r.server_cpu, 2),
                    "peak_rss_mb": round(r.peak_rss_mb),
                    "returncode": r.returncode,
                    "extra": r.extra,
                }
                for r in all_runs
            ],
            "repository_sizes": sizes,
            "one_object": one,
            "restores_correct": correct,
            "figures": figures,
            "profiles": profiled,
            "single_core_rates": rates,
            **extras,
        },
    )


if __name__ == "__main__":
    sys.exit(main())

"""Issue figures for point-in-time restore, side by side in one run.

    python bench/pitr.py                 # the whole run (needs rclone and s3-pit-restore)
    python bench/pitr.py --planning      # only the 1,000,000-version planning figure

On a >= 1 GB, >= 2,000-object lake in a private SeaweedFS, the same incident
in two versioned buckets A and B (5% of objects overwritten with same-size
bytes, one day deleted, a few keys added after T):

- to another bucket: `lakeguard pitr A --at T --to D1` vs `s3-pit-restore -b A -B D2 -t T`
  vs `rclone copy "remote,version_at=T:A" remote:D3`
- in place: `lakeguard pitr A --at T --delete-newer` vs `s3-pit-restore -b B -B B -t T`
- bytes lakeguard copied for the deleted day (undelete: none)
- planning over 1,000,000 versions of a synthetic listing: seconds and peak RSS

Every result is checked by SHA-256 of every object against the state at T
(computed from the lake's generator, not read back from the store). Prints a
table and writes bench/results/pitr.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from common import (
    children_seconds,
    have,
    lakeguard_argv,
    private_sandbox,
    ratio,
    rclone_config,
    run_timed,
    save,
    server_seconds,
    tool,
    tool_env,
)
from lake import build, payload
from lakeguard.location import Location, parse_location
from lakeguard.storage import StoreSettings, open_store
from lakeguard.storage.base import Capabilities, ObjectInfo, Store

PREFIX = "lake/"
TO_LAKEGUARD = "to another bucket: lakeguard pitr --to"
TO_PIT = "to another bucket: s3-pit-restore"
TO_RCLONE = "to another bucket: rclone copy version_at"
IN_LAKEGUARD = "in place: lakeguard pitr --delete-newer"
IN_PIT = "in place: s3-pit-restore"
DELETED_DAY = "dt=2026-01-05/"
NEW_KEYS = 5

# -- planning over a synthetic listing ----------------------------------------------


class SyntheticVersions:
    """A versioned listing made on demand: ``keys`` keys, ``per_key`` entries each.

    Every key has ``per_key - 1`` versions before T; after T, 5% were
    overwritten, 5% deleted, 1% created; the rest are untouched. Nothing is held.
    """

    url = "synthetic://lake"
    capabilities = Capabilities(versioning=True)

    def __init__(self, keys: int, per_key: int, at: datetime) -> None:
        self.keys, self.per_key, self.at = keys, per_key, at

    def versioning(self) -> str:
        return "Enabled"

    def list_versions(self, prefix: str = "") -> Iterator[ObjectInfo]:
        at, per_key = self.at, self.per_key
        after = at + timedelta(seconds=60)
        for n in range(self.keys):
            key = f"lake/dt=2026-01-{n % 28 + 1:02d}/part-{n:07d}.parquet"
            fate = n % 100
            if fate == 10:  # created after T: every entry is newer than T
                for v in range(per_key):
                    when = after + timedelta(seconds=per_key - v)
                    yield ObjectInfo(key, 1000, f"{n:028x}{v:04x}", when, f"{n}-n{v}", v == 0)
                continue
            older = per_key
            if fate < 5:  # overwritten after T
                yield ObjectInfo(key, 1000, f"{n:031x}f", after, f"{n}-new")
                older -= 1
            elif fate < 10:  # deleted after T
                yield ObjectInfo(key, 0, None, after, f"{n}-dm", is_delete_marker=True)
                older -= 1
            for v in range(older):
                when = at - timedelta(seconds=10 * (v + 1))
                latest = v == 0 and older == per_key
                yield ObjectInfo(key, 1000, f"{n:028x}{v:04x}", when, f"{n}-v{v}", latest)


def planning(versions: int) -> dict[str, Any]:
    from lakeguard.ops.pitr import pitr

    at = datetime(2026, 2, 11, 12, tzinfo=UTC)
    store = SyntheticVersions(versions // 4, 4, at)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    result = pitr(
        store,  # type: ignore[arg-type]
        Location("memory", "lake", PREFIX),
        at=at,
        dry_run=True,
        delete_newer=True,
    )
    seconds = time.perf_counter() - started
    return {
        "versions": result.plan.versions,
        "keys": result.plan.keys,
        "seconds": round(seconds, 2),
        "versions_per_s": round(result.plan.versions / seconds),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "rss_before_mb": round(base, 1),
        "plan": result.to_json()["plan"],
    }


# -- the incident and its checks ---------------------------------------------------------


def expected_at_t(keys: list[tuple[str, int]]) -> dict[str, str]:
    """SHA-256 of every object as the lake builder wrote it (the state at T)."""

    def one(item: tuple[int, tuple[str, int]]) -> tuple[str, str]:
        index, (key, size) = item
        return PREFIX + key, hashlib.sha256(payload(random.Random(index), size)).hexdigest()

    with ThreadPoolExecutor(4) as pool:
        return dict(pool.map(one, enumerate(keys)))


def incident(store: Store, keys: list[tuple[str, int]]) -> dict[str, int]:
    """5% overwritten with same-size bytes, one day deleted, a few keys added."""
    rng = random.Random(99)
    overwritten = [
        (PREFIX + key, size)
        for n, (key, size) in enumerate(keys)
        if n % 20 == 7 and not key.startswith(DELETED_DAY)
    ]
    deleted = [PREFIX + key for key, _ in keys if key.startswith(DELETED_DAY)]

    def overwrite(item: tuple[str, int]) -> None:
        key, size = item
        store.put(key, rng.randbytes(64) * (size // 64) + rng.randbytes(size % 64))

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(overwrite, overwritten))
        list(pool.map(store.delete, deleted))
    for n in range(NEW_KEYS):
        store.put(f"{PREFIX}dt=2026-01-01/_tmp_attempt_{n}.crc", rng.randbytes(512))
    return {
        "overwritten": len(overwritten),
        "overwritten_bytes": sum(size for _, size in overwritten),
        "deleted": len(deleted),
        "deleted_bytes": sum(size for key, size in keys if key.startswith(DELETED_DAY)),
        "new": NEW_KEYS,
    }


def check(store: Store, expected: dict[str, str]) -> dict[str, Any]:
    """Compare every current object under the prefix with the state at T, by SHA-256."""

    def digest(key: str) -> tuple[str, str]:
        sha = hashlib.sha256()
        with store.get(key) as stream:
            for chunk in stream:
                sha.update(chunk)
        return key, sha.hexdigest()

    keys = [info.key for info in store.list(PREFIX)]
    with ThreadPoolExecutor(16) as pool:
        found = dict(pool.map(digest, keys))
    wrong = sorted(k for k in expected if k in found and found[k] != expected[k])
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    return {
        "correct": not wrong and not missing and not extra,
        "wrong": len(wrong),
        "missing": len(missing),
        "extra": len(extra),
    }


def s3(bucket: str, settings: StoreSettings) -> Store:
    return open_store(parse_location(f"s3://{bucket}"), settings)


@dataclass(slots=True)
class Run:
    name: str
    seconds: float
    peak_rss_mb: float
    client_cpu: float  # the tool's own user + system seconds
    server_cpu: float  # the S3 server's seconds over the same run
    result: dict[str, Any]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--planning", action="store_true", help="Only the planning figure.")
    parser.add_argument("--versions", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=2, help="Rounds of the copies elsewhere.")
    args = parser.parse_args()
    if args.planning:
        print(json.dumps(planning(args.versions)))
        return 0

    # Planning first, in a process of its own: its peak RSS is its own.
    plan_run = subprocess.run(
        [sys.executable, __file__, "--planning", "--versions", str(args.versions)],
        capture_output=True,
        text=True,
        check=True,
    )
    plan_figure = json.loads(plan_run.stdout.strip().splitlines()[-1])
    print(f"planning: {json.dumps(plan_figure)}", file=sys.stderr)

    pit = tool("s3-pit-restore")
    if pit is None or not have("rclone"):
        print("needs s3-pit-restore (pip install s3-pit-restore) and rclone", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="lakeguard-bench-pitr-"))
    runs: list[Run] = []
    with private_sandbox() as box:
        settings = StoreSettings(endpoint_url=box.endpoint, region="us-east-1")
        print("building two copies of the lake ...", file=sys.stderr)
        lake = build("pitr-a", settings)
        build("pitr-b", settings)
        print(f"lake: {lake.objects} objects, {lake.bytes / 1e9:.2f} GB", file=sys.stderr)
        expected = expected_at_t(lake.keys)
        time.sleep(1.2)  # LastModified has 1-second resolution
        at = datetime.now(UTC).replace(microsecond=0)
        time.sleep(1.2)
        damage = incident(s3("pitr-a", settings), lake.keys)
        incident(s3("pitr-b", settings), lake.keys)
        when = at.isoformat().replace("+00:00", "Z")
        env = tool_env()
        conf = rclone_config(box, work)

        def timed(name: str, argv: list[str], bucket: str, out: Path | None = None) -> None:
            client, server = children_seconds(), server_seconds(box.pid)
            timing = run_timed(name, argv, env=env, stdout_path=out)
            client, server = children_seconds() - client, server_seconds(box.pid) - server
            result = check(s3(bucket, settings), expected)
            runs.append(Run(name, timing.seconds, timing.peak_rss_mb, client, server, result))
            print(
                f"  {name}: {timing.seconds:.1f}s, cpu {client:.1f}s + server {server:.1f}s, "
                f"{result}",
                file=sys.stderr,
            )

        def to_lakeguard(dst: str) -> None:
            timed(
                TO_LAKEGUARD,
                lakeguard_argv(
                    "pitr", "s3://pitr-a/lake", "--at", when, "--to", f"s3://{dst}/lake"
                ),
                dst,
            )

        def to_pit(dst: str) -> None:
            timed(
                TO_PIT,
                [pit, "-b", "pitr-a", "-B", dst, "-p", PREFIX, "-t", when, "--max-workers", "16"],
                dst,
            )

        def to_rclone(dst: str) -> None:
            remote = f"sw,version_at='{when}':pitr-a/lake"
            timed(
                TO_RCLONE,
                [
                    *("rclone", "--config", str(conf), "copy", remote, f"sw:{dst}/lake"),
                    *("--server-side-across-configs", "--transfers", "16", "--checksum"),
                ],
                dst,
            )

        # Rounds in rotated order: the server and the machine warm up and cool
        # down, and each tool's best round is compared.
        tools = [to_lakeguard, to_pit, to_rclone]
        for number in range(args.rounds):
            order = tools[number % 3 :] + tools[: number % 3]
            for index, go in enumerate(order):
                bucket = f"pitr-r{number}-{index}"
                s3(bucket, settings).create()
                go(bucket)

        in_place = work / "pitr-in-place.json"
        timed(
            IN_LAKEGUARD,
            lakeguard_argv("pitr", "s3://pitr-a/lake", "--at", when, "--delete-newer", "--json"),
            "pitr-a",
            in_place,
        )
        timed(
            IN_PIT,
            [pit, "-b", "pitr-b", "-B", "pitr-b", "-p", PREFIX, "-t", when, "--max-workers", "16"],
            "pitr-b",
        )
        ours = json.loads(in_place.read_text())

    best: dict[str, Run] = {}
    for each in runs:
        if each.name not in best or each.seconds < best[each.name].seconds:
            best[each.name] = each
    print()
    print(f"lake: {lake.objects} objects, {lake.bytes / 1e9:.2f} GB; incident: {damage}")
    print(
        f"{'run (best of rounds)':<42}{'wall s':>8}{'ratio':>8}{'cpu s':>8}{'server s':>10}"
        f"{'peak MB':>9}  correct (SHA-256 vs T)"
    )
    for name in (TO_LAKEGUARD, TO_PIT, TO_RCLONE, IN_LAKEGUARD, IN_PIT):
        row = best[name]
        base = best[TO_LAKEGUARD if name.startswith("to ") else IN_LAKEGUARD].seconds
        print(
            f"{name:<42}{row.seconds:>8.1f}{ratio(base, row.seconds):>8}{row.client_cpu:>8.1f}"
            f"{row.server_cpu:>10.1f}{row.peak_rss_mb:>9.0f}  "
            f"{'yes' if row.result['correct'] else row.result}"
        )
    print("(ratio: lakeguard's time / this tool's time)")
    print(
        f"in place, lakeguard: copied {ours['bytes_copied']:,} bytes "
        f"({ours['applied']['copy']} copies), brought back the deleted day "
        f"({ours['applied']['undelete']} keys, {damage['deleted_bytes']:,} bytes) copying 0 "
        f"bytes, deleted {ours['applied']['delete']} new keys; verified {ours['verified']}"
    )
    print(
        f"planning {plan_figure['versions']:,} versions: {plan_figure['seconds']} s, "
        f"peak RSS {plan_figure['peak_rss_mb']} MB"
    )
    save(
        "pitr",
        {
            "lake": {"objects": lake.objects, "bytes": lake.bytes},
            "incident": damage,
            "runs": [
                {
                    "name": r.name,
                    "seconds": round(r.seconds, 2),
                    "client_cpu": round(r.client_cpu, 2),
                    "server_cpu": round(r.server_cpu, 2),
                    "peak_rss_mb": round(r.peak_rss_mb),
                    **r.result,
                }
                for r in runs
            ],
            "in_place_lakeguard": {
                "applied": ours["applied"],
                "bytes_copied": ours["bytes_copied"],
                "verified": ours["verified"],
            },
            "planning": plan_figure,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

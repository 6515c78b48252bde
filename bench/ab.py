"""Old code against new, alternating run by run on one server and one lake.

    python bench/ab.py REV                      # backup of the bench lake, 4 rounds
    python bench/ab.py REV --what restore       # restore it to a local directory
    python bench/ab.py REV --small-objects      # the 20,000-object lake instead

On this shared two-core host the same command varies by 20-50% from minute to
minute, so two benches run apart cannot tell a code change from the host.
Here REV (checked out as a git worktree) and the working tree take turns,
in an order that flips every round, and each run prints its wall time, its
CPU and the S3 server's CPU. Compare the rows, not single runs.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import lake as lake_mod
from common import kept_tree, private_sandbox, server_seconds, settle_disk
from lakeguard.storage import StoreSettings

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("rev", help="The old code: any git revision.")
    parser.add_argument("--what", choices=("backup", "restore"), default="backup")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--small-objects", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lakeguard-ab-"))
    old = work / "old"
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(old), args.rev],
        check=True,
    )
    trees = {"new": str(ROOT / "src"), "old": str(old / "src")}
    if args.small_objects:
        lake_mod.plan = lake_mod.plan_small_objects  # type: ignore[assignment]
    try:
        with private_sandbox() as box:
            settings = StoreSettings(endpoint_url=box.endpoint, region="us-east-1")
            lake = lake_mod.build("bench-lake", settings)
            print(f"lake: {lake.objects} objects, {lake.bytes / 1e9:.2f} GB", flush=True)
            if args.what == "restore":
                _run(box.pid, trees["new"], work / "c-init", ["init", "s3://bench-repo/r"])
                backup = ["backup", "s3://bench-lake/lake", "--repo", "s3://bench-repo/r"]
                _run(box.pid, trees["new"], work / "c-init", backup)
            for number in range(args.rounds):
                for name in ("new", "old") if number % 2 == 0 else ("old", "new"):
                    cache = work / f"c-{name}-{number}"
                    if args.what == "backup":
                        repo = f"s3://bench-repo/{name}{number}"
                        _run(box.pid, trees[name], cache, ["init", repo])
                        argv = ["backup", "s3://bench-lake/lake", "--repo", repo]
                    else:
                        out = kept_tree(work, "out")  # see kept_tree: no deletes
                        argv = ["restore", "latest", "--repo", "s3://bench-repo/r"]
                        argv += ["--to", str(out)]
                    wall, client, server = _run(box.pid, trees[name], cache, argv)
                    print(
                        f"{args.what} {name}: wall {wall:.2f} s, client CPU {client:.2f} s, "
                        f"server CPU {server:.2f} s, load {os.getloadavg()[0]:.2f}",
                        flush=True,
                    )
    finally:
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)], check=False
        )
        shutil.rmtree(work, ignore_errors=True)
    return 0


def _run(pid: int, tree: str, cache: Path, argv: list[str]) -> tuple[float, float, float]:
    """(wall, client CPU, server CPU) of one lakeguard command run from ``tree``."""
    env = {**os.environ, "PYTHONPATH": tree, "XDG_CACHE_HOME": str(cache)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    settle_disk()
    server = server_seconds(pid)
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "lakeguard", *argv, "-q"], env=env, check=True, capture_output=True
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    client = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, client, server_seconds(pid) - server


if __name__ == "__main__":
    sys.exit(main())

"""Issue figures for detection, side by side in one run.

    python bench/detect.py

On a >= 1 GB, >= 2,000-object lake in a private SeaweedFS:
- `lakeguard inventory` vs `s5cmd ls` and `rclone lsjson -R`
- `lakeguard verify` (fast) vs `rclone check` (against a replica bucket)
- `lakeguard verify --deep` throughput vs a plain download (`s5cmd cp`)
- peak memory of `inventory` over 1,000,000 synthetic keys (bench/inventory_memory.py)
Prints a table of wall times and ratios and writes bench/results/detect.json.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from common import (
    Timing,
    have,
    lakeguard_argv,
    private_sandbox,
    ratio,
    rclone_config,
    run_timed,
    save,
    tool,
    tool_env,
)
from lake import build
from lakeguard.storage import StoreSettings


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="lakeguard-bench-detect-"))
    rows: list[tuple[str, Timing]] = []
    try:
        with private_sandbox() as box:
            settings = StoreSettings(endpoint_url=box.endpoint, region="us-east-1")
            print("building the lake ...", file=sys.stderr)
            lake = build("bench-lake", settings)
            print(f"lake: {lake.objects} objects, {lake.bytes / 1e9:.2f} GB", file=sys.stderr)
            env = tool_env()
            conf = rclone_config(box, work)
            rclone = ["rclone", "--config", str(conf)]
            if have("rclone"):
                # The replica rclone check compares against (setup, not timed).
                subprocess.run(
                    [
                        *rclone,
                        "copy",
                        "sw:bench-lake/lake",
                        "sw:bench-replica/lake",
                        "--transfers",
                        "16",
                        "--server-side-across-configs",
                    ],
                    env=env,
                    check=True,
                    capture_output=True,
                )
            inventory = work / "inventory.parquet"
            lake_url = "s3://bench-lake/lake"

            rows.append(
                (
                    "inventory: lakeguard",
                    run_timed(
                        "lakeguard inventory",
                        lakeguard_argv("inventory", lake_url, "-o", str(inventory)),
                        env=env,
                    ),
                )
            )
            if have("s5cmd"):
                rows.append(
                    (
                        "inventory: s5cmd ls",
                        run_timed(
                            "s5cmd ls",
                            [
                                str(tool("s5cmd")),
                                "--endpoint-url",
                                box.endpoint,
                                "ls",
                                "s3://bench-lake/lake/*",
                            ],
                            env=env,
                        ),
                    )
                )
            if have("rclone"):
                rows.append(
                    (
                        "inventory: rclone lsjson -R",
                        run_timed(
                            "rclone lsjson",
                            [*rclone, "lsjson", "-R", "sw:bench-lake/lake"],
                            env=env,
                        ),
                    )
                )

            rows.append(
                (
                    "verify fast: lakeguard",
                    run_timed(
                        "lakeguard verify",
                        lakeguard_argv("verify", lake_url, "--against", str(inventory)),
                        env=env,
                    ),
                )
            )
            if have("rclone"):
                rows.append(
                    (
                        "verify fast: rclone check",
                        run_timed(
                            "rclone check",
                            [
                                *rclone,
                                "check",
                                "sw:bench-lake/lake",
                                "sw:bench-replica/lake",
                                "--checkers",
                                "16",
                            ],
                            env=env,
                        ),
                    )
                )

            rows.append(
                (
                    "verify deep: lakeguard",
                    run_timed(
                        "lakeguard verify --deep",
                        lakeguard_argv("verify", lake_url, "--against", str(inventory), "--deep"),
                        env=env,
                    ),
                )
            )
            if have("s5cmd"):
                target = work / "download"
                rows.append(
                    (
                        "verify deep: s5cmd cp (download)",
                        run_timed(
                            "s5cmd cp",
                            [
                                str(tool("s5cmd")),
                                "--endpoint-url",
                                box.endpoint,
                                "cp",
                                "s3://bench-lake/lake/*",
                                f"{target}/",
                            ],
                            env=env,
                        ),
                    )
                )
                shutil.rmtree(target, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    memory = run_timed(
        "inventory 1M keys", [sys.executable, str(Path(__file__).parent / "inventory_memory.py")]
    )
    rows.append(("inventory 1M synthetic keys: lakeguard", memory))

    by_name = {name: timing for name, timing in rows}
    print(f"\nlake: {lake.objects} objects, {lake.bytes / 1e9:.2f} GB\n")
    print(f"{'measure':45} {'seconds':>8} {'peak MB':>8}")
    for name, timing in rows:
        print(f"{name:45} {timing.seconds:8.2f} {timing.peak_rss_mb:8.0f}")
    ours = by_name["inventory: lakeguard"].seconds
    ratios: dict[str, str] = {}
    for other in ("inventory: s5cmd ls", "inventory: rclone lsjson -R"):
        if other in by_name:
            ratios[f"inventory time / {other.split(': ')[1]}"] = ratio(ours, by_name[other].seconds)
    if "verify fast: rclone check" in by_name:
        ratios["verify time / rclone check"] = ratio(
            by_name["verify fast: lakeguard"].seconds, by_name["verify fast: rclone check"].seconds
        )
    if "verify deep: s5cmd cp (download)" in by_name:
        deep = lake.bytes / by_name["verify deep: lakeguard"].seconds
        plain = lake.bytes / by_name["verify deep: s5cmd cp (download)"].seconds
        ratios["verify --deep throughput / s5cmd cp throughput"] = f"{deep / plain:.2f}x"
        ratios["verify --deep MB/s"] = f"{deep / 1e6:.0f}"
        ratios["s5cmd cp MB/s"] = f"{plain / 1e6:.0f}"
    print()
    for name, value in ratios.items():
        print(f"{name:50} {value}")
    save(
        "detect",
        {
            "lake": {"objects": lake.objects, "bytes": lake.bytes},
            "timings": {
                name: {
                    "seconds": t.seconds,
                    "peak_rss_mb": t.peak_rss_mb,
                    "returncode": t.returncode,
                }
                for name, t in rows
            },
            "ratios": ratios,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`lakeguard demo` as `make demo` runs it: its own sandbox, the whole runbook, a report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from lakeguard import sandbox


def test_demo_finds_exactly_the_damage_it_caused(tmp_path: Path) -> None:
    box_dir = tmp_path / "sandbox"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "lakeguard",
            "demo",
            "--json",
            "--dir",
            str(box_dir),
            "--work-dir",
            str(tmp_path / "work"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    incident = report["incident"]
    found = report["verify"]
    assert sorted(found["missing"]) == sorted(incident["deleted"])
    assert sorted(found["changed"]) == sorted(incident["overwritten"])
    assert sorted(found["extra"]) == sorted(incident["junk"])
    assert found["counts"]["corrupted"] == 0
    assert report["gaps"]["missing"] == [incident["deleted_partition"]]
    windows = report["history"]["damage_windows"]
    assert len(windows) == 1
    assert windows[0]["deletes"] == len(incident["deleted"])
    assert windows[0]["overwrites"] == len(incident["overwritten"])
    assert windows[0]["last_good"] < windows[0]["start"]
    # Restored to the last good time: the plan, then the same plan applied.
    planned = report["pitr_dry_run"]
    assert planned["dry_run"] is True and planned["at"] == windows[0]["last_good"]
    assert planned["plan"]["copy"] == len(incident["overwritten"])
    assert planned["plan"]["undelete"] == len(incident["deleted"])
    assert planned["plan"]["delete"] == len(incident["junk"])
    assert planned["plan"]["unchanged"] == report["lake"]["objects"] - len(
        incident["deleted"]
    ) - len(incident["overwritten"])
    restored = report["pitr"]
    assert restored["applied"] == {
        "copy": len(incident["overwritten"]),
        "undelete": len(incident["deleted"]),
        "delete": len(incident["junk"]),
    }
    assert restored["failed"] == []
    assert restored["verified"] == {"ok": sum(restored["applied"].values()), "failed": 0}
    after = report["verify_after"]
    assert after["counts"] == {
        "ok": report["lake"]["objects"],
        "missing": 0,
        "changed": 0,
        "corrupted": 0,
        "extra": 0,
        "errors": 0,
    }
    # The backup taken before the incident restores the lake as it was.
    backed_up = report["backup"]
    assert backed_up["objects"] == report["lake"]["objects"]
    assert backed_up["bytes"] == report["lake"]["bytes"]
    whole = report["restore"]
    assert whole["restored"] == whole["verified"] == report["lake"]["objects"]
    assert whole["failed"] == []
    restored_dir = tmp_path / "work" / "restored"
    overwritten = restored_dir / incident["overwritten"][0].split("fact_table/", 1)[1]
    # The incident overwrote it with random bytes; the restored one is Parquet again.
    import pyarrow.parquet as pq

    assert pq.read_metadata(overwritten).num_rows > 0
    one = report["restore_one"]
    assert (one["restored"], one["verified"], one["failed"]) == (1, 1, [])
    # The demo started its own sandbox, so it leaves none running.
    assert sandbox.status(box_dir) is None

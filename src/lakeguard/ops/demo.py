"""The demo: the restore runbook end to end, in the sandbox.

    sandbox start -> versioned bucket -> write a lake -> inventory (the known-good state)
    -> incident (overwrites, a deleted partition, junk keys)
    -> history (when?) -> verify (what?) -> gaps (which partitions?)
    -> pitr --dry-run at history's last_good (the plan) -> pitr --delete-newer (apply)
    -> verify against the inventory taken before the incident (proof)
    -> restore from the backup taken before the incident (whole, then one file) -> report

Each step is the library operation the matching command runs; the demo only
strings them together and collects what they found.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from lakeguard.location import parse_location
from lakeguard.ops.backup import BackupResult, backup
from lakeguard.ops.gaps import GapsResult, find_gaps
from lakeguard.ops.history import HistoryResult, history
from lakeguard.ops.inventory import InventoryResult, take_inventory
from lakeguard.ops.lake import Incident, LakeSpec, LakeWritten, simulate_incident, write_lake
from lakeguard.ops.pitr import PitrResult, pitr
from lakeguard.ops.restore import RestoreResult, restore
from lakeguard.ops.verify import VerifyResult, verify
from lakeguard.repository.repo import init_repository
from lakeguard.storage import StoreSettings, open_store
from lakeguard.timeparse import iso


@dataclass(slots=True)
class DemoReport:
    endpoint: str
    location: str
    lake: LakeWritten
    inventory: InventoryResult
    incident: Incident
    history: HistoryResult
    verify: VerifyResult
    gaps: GapsResult
    pitr_plan: PitrResult | None = None  # the dry run at the last good time
    pitr: PitrResult | None = None
    verify_after: VerifyResult | None = None
    backup: BackupResult | None = None  # taken before the incident
    repository: str = ""
    restore: RestoreResult | None = None  # the whole snapshot, into a directory
    restore_one: RestoreResult | None = None  # one file
    steps: list[tuple[str, float]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "location": self.location,
            "lake": {"objects": self.lake.objects, "bytes": self.lake.bytes},
            "incident": {
                "overwritten": self.incident.overwritten,
                "deleted": self.incident.deleted,
                "junk": self.incident.junk,
                "deleted_partition": self.incident.deleted_partition,
            },
            "history": self.history.to_json(),
            "verify": self.verify.to_json(),
            "gaps": self.gaps.to_json(),
            "pitr_dry_run": self.pitr_plan.to_json() if self.pitr_plan else None,
            "pitr": self.pitr.to_json() if self.pitr else None,
            "verify_after": self.verify_after.to_json() if self.verify_after else None,
            "repository": self.repository,
            "backup": self.backup.to_json() if self.backup else None,
            "restore": self.restore.to_json() if self.restore else None,
            "restore_one": self.restore_one.to_json() if self.restore_one else None,
            "steps": [{"step": name, "seconds": round(s, 3)} for name, s in self.steps],
        }


def run_demo(
    *,
    sandbox_dir: Path | None = None,
    work_dir: Path | None = None,
    keep: bool = False,
    on_step: Callable[[str], None] | None = None,
) -> DemoReport:
    """Run the whole demo; stops the sandbox afterwards unless it was running or ``keep``."""
    from lakeguard import sandbox

    say = on_step or (lambda _text: None)
    already = sandbox.status(sandbox_dir)
    box = already or sandbox.start(sandbox_dir)
    try:
        return _run(box, work_dir, say)
    finally:
        if already is None and not keep:
            say("stopping the sandbox")
            sandbox.stop(sandbox_dir)


def _run(box: Any, work_dir: Path | None, say: Callable[[str], None]) -> DemoReport:
    from lakeguard.sandbox import ACCESS_KEY, REGION, SECRET_KEY

    steps: list[tuple[str, float]] = []
    clock = time.perf_counter()

    def step(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        steps.append((name, now - clock))
        clock = now

    # The sandbox's own credentials, for this process only.
    os.environ.update(
        AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY, AWS_REGION=REGION
    )
    settings = StoreSettings(endpoint_url=box.endpoint, region=REGION)
    bucket = f"lakeguard-demo-{time.strftime('%Y%m%d-%H%M%S')}"
    spec = LakeSpec()
    location = parse_location(f"s3://{bucket}/{spec.prefix}")
    store = open_store(location, settings)

    say(f"creating versioned bucket s3://{bucket} on {box.endpoint}")
    store.create()
    store.set_versioning(True)
    say(f"writing the lake: {spec.days} days of dt= partitions, one multipart object")
    lake = write_lake(store, spec)
    step("write lake")

    directory = work_dir or Path(tempfile.mkdtemp(prefix="lakeguard-demo-"))
    directory.mkdir(parents=True, exist_ok=True)
    inventory_path = directory / "inventory-before.parquet"
    say(f"taking the known-good inventory -> {inventory_path}")
    inventory = take_inventory(store, location, output=inventory_path)
    step("inventory")

    repo_location = parse_location(f"s3://{bucket}-backup/repo")
    say(f"backing the lake up into the repository {repo_location}")
    repo_store = open_store(repo_location, settings.for_repository())
    repo = init_repository(repo_store, repo_location).repository
    backed_up = backup(store, location, repo, tags=["demo"], cache_dir=directory / "cache")
    step("backup")

    # SeaweedFS keeps LastModified to the second: keep the incident apart from the lake.
    time.sleep(2.1)
    say("simulating an incident: overwrites, a deleted partition, junk keys")
    incident = simulate_incident(store, spec)
    step("incident")

    say("history: when did it happen?")
    found_history = history(store, location)
    step("history")
    say("verify: what is missing, changed, extra?")
    found_verify = verify(store, location, against=inventory_path, deep=True)
    step("verify --deep")
    say("gaps: which partitions are missing or thin?")
    found_gaps = find_gaps(
        store,
        location,
        partition="dt",
        start=spec.first_day,
        end=spec.first_day + timedelta(days=spec.days - 1),
    )
    step("gaps")
    report = DemoReport(
        endpoint=box.endpoint,
        location=str(location),
        lake=lake,
        inventory=inventory,
        incident=incident,
        history=found_history,
        verify=found_verify,
        gaps=found_gaps,
        backup=backed_up,
        repository=str(repo_location),
        steps=steps,
    )
    if not found_history.damage_windows:
        return report
    at = found_history.damage_windows[-1].last_good
    say(f"pitr --dry-run: the plan to restore the lake as it was at {iso(at)}")
    report.pitr_plan = pitr(store, location, at=at, delete_newer=True, dry_run=True)
    step("pitr --dry-run")
    say("pitr: apply it (junk keys written after that time go too)")
    report.pitr = pitr(store, location, at=at, delete_newer=True)
    step("pitr")
    say("verify: compare with the inventory taken before the incident")
    report.verify_after = verify(store, location, against=inventory_path, deep=True)
    step("verify after")

    restored_dir = directory / "restored"
    say(f"restore: the whole backup, as it was before the incident -> {restored_dir}")
    target_location = parse_location(str(restored_dir))
    target = open_store(target_location, settings)
    report.restore = restore(repo, "latest", target, target_location, cache_dir=directory / "cache")
    step("restore")
    one_dir = directory / "one-file"
    one_key = f"dt={spec.first_day.isoformat()}/part-00000.parquet"
    say(f"restore: one file ({one_key}) with one ranged read -> {one_dir}")
    one_location = parse_location(str(one_dir))
    report.restore_one = restore(
        repo,
        "latest",
        open_store(one_location, settings),
        one_location,
        includes=[one_key],
        cache_dir=directory / "cache",
    )
    step("restore one file")
    return report

"""pitr, undelete and sync as a user runs them: exit codes, JSON, one-line errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from lakeguard.cli import run
from lakeguard.storage.memory import MemoryStore

PITR_KEYS = {"at", "dry_run", "plan", "applied", "failed", "verified"}
T = datetime(2026, 2, 11, 12, 0, tzinfo=UTC)


def lake(*odd_keys: str) -> MemoryStore:
    """memory://lake: three keys good at T, then one overwritten, one deleted, one added."""
    clock = [T - timedelta(minutes=5)]
    store = MemoryStore("lake", versioning="Enabled", clock=lambda: clock[0])
    MemoryStore._named["lake"] = store
    for key in ("t/a.parquet", "t/b.parquet", "t/c.parquet", *odd_keys):
        store.put(key, key.encode() * 10)
    clock[0] = T + timedelta(minutes=5)
    store.put("t/a.parquet", b"garbage")
    store.delete("t/b.parquet")
    store.put("t/new.tmp", b"junk")
    return store


def out_json(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    document = json.loads(capsys.readouterr().out)
    assert isinstance(document, dict)
    return document


def error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err  # one line, no traceback
    return err[0]


def test_dry_run_then_apply_then_nothing_left(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = lake()
    plan_file = tmp_path / "plan.jsonl"
    argv = ["pitr", "memory://lake/t", "--at", "2026-02-11 12:00:00"]
    assert run([*argv, "--dry-run", "--plan-out", str(plan_file)]) == 0
    text = capsys.readouterr().out
    assert "Plan: copy 1 (110 B), undelete 1 (nothing copied), delete 0, unchanged 1" in text
    assert "  copy (1):\n    t/a.parquet\n" in text and "  undelete (1):\n    t/b.parquet" in text
    assert "Created after 2026-02-11T12:00:00Z and left in place: 1" in text
    rows = [json.loads(line) for line in plan_file.read_text().splitlines()]
    assert {r["key"]: r["action"] for r in rows} == {
        "t/a.parquet": "copy",
        "t/b.parquet": "undelete",
    }
    assert store.get_bytes("t/a.parquet") == b"garbage"

    assert run([*argv, "--delete-newer", "--json"]) == 0
    doc = out_json(capsys)
    assert set(doc) >= PITR_KEYS
    assert doc["at"] == "2026-02-11T12:00:00Z" and doc["dry_run"] is False
    assert doc["plan"] == {
        "copy": 1,
        "undelete": 1,
        "delete": 1,
        "unchanged": 1,
        "bytes_to_copy": 110,
    }
    assert doc["applied"] == {"copy": 1, "undelete": 1, "delete": 1}
    assert doc["failed"] == [] and doc["verified"] == {"ok": 3, "failed": 0}

    assert run([*argv, "--delete-newer", "--json"]) == 0
    assert out_json(capsys)["plan"]["unchanged"] == 4


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["pitr", "memory://lake/t", "--at", "yesterday-ish"], "invalid --at time"),
        (["pitr", "memory://lake/t"], "pitr needs --at"),
        (["undelete", "memory://lake/t", "--since", "2026-13-45"], "invalid --since time"),
        (["pitr", "memory://plain/t", "--at", "2026-02-11"], "versioning was never enabled"),
        (
            ["pitr", "memory://lake/t", "--at", "2026-02-11", "--to", "memory://lake/t/x"],
            "overlaps",
        ),
        (["sync", "memory://lake/t", "memory://lake/t/copy"], "overlap"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    lake()
    MemoryStore._named["plain"] = MemoryStore("plain")
    assert run(argv) == 2
    assert message in error_line(capsys)


@pytest.mark.s3
def test_unversioned_s3_bucket_exits_2_naming_versioning(
    bucket: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    for extra in ([], ["--to", str(tmp_path / "out")]):
        assert run(["pitr", f"s3://{bucket}/lake", "--at", "2026-02-11T12:00:00Z", *extra]) == 2
        line = error_line(capsys)
        assert "versioning" in line and f"s3://{bucket}" in line


def test_partial_failure_exits_4_and_lists_the_failed_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Keys that cannot be files: a restore to a directory refuses them, one by one.
    lake("t/../escape", "t/a//b")
    folder = tmp_path / "restore"
    code = run(
        ["pitr", "memory://lake/t", "--at", "2026-02-11T12:00:00Z", "--to", str(folder), "--json"]
    )
    captured = capsys.readouterr()
    assert code == 4
    doc = json.loads(captured.out)
    assert sorted(f["key"] for f in doc["failed"]) == ["../escape", "a//b"]
    assert doc["applied"]["copy"] == 3
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and "2 keys failed to restore" in err[0]
    assert not (tmp_path / "escape").exists()
    assert (folder / "b.parquet").read_bytes() == b"t/b.parquet" * 10


def test_undelete_and_sync_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = lake()
    assert run(["undelete", "memory://lake/t", "--dry-run", "--json"]) == 0
    dry = out_json(capsys)
    assert dry["plan"]["undelete"] == 1 and dry["applied"] == {"undelete": 0}
    assert run(["undelete", "memory://lake/t", "--since", "2026-02-11T12:00:00Z"]) == 0
    assert "Applied: undelete 1" in capsys.readouterr().out
    assert store.get_bytes("t/b.parquet") == b"t/b.parquet" * 10

    replica = str(tmp_path / "replica")
    assert run(["sync", "memory://lake/t", replica, "--json"]) == 0
    doc = out_json(capsys)
    assert set(doc) >= {"plan", "applied", "failed"}
    assert doc["plan"] == {"copy": 4, "delete": 0, "unchanged": 0, "bytes_to_copy": 231}
    assert doc["applied"] == {"copy": 4, "delete": 0} and doc["failed"] == []
    store.put("t/a.parquet", b"t/a.parquet" * 10)
    store.delete("t/new.tmp")
    # DST is a directory (no versions): replacing needs --force.
    assert run(["sync", "memory://lake/t", replica, "--delete"]) == 2
    assert "--force" in error_line(capsys)
    assert run(["sync", "memory://lake/t", replica, "--delete", "--force", "--json"]) == 0
    assert out_json(capsys)["applied"] == {"copy": 1, "delete": 1}
    assert (tmp_path / "replica" / "a.parquet").read_bytes() == b"t/a.parquet" * 10
    assert not (tmp_path / "replica" / "new.tmp").exists()

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


# -- local targets: nothing lands outside them ------------------------------------------


def linked_target(tmp_path: Path) -> tuple[Path, Path]:
    """A target directory holding ``linkdir``, a symbolic link to a folder outside it."""
    outside, target = tmp_path / "outside", tmp_path / "ldst"
    outside.mkdir()
    target.mkdir()
    (target / "linkdir").symlink_to(outside)
    return target, outside


@pytest.mark.parametrize("command", ["sync", "pitr"])
def test_a_linked_folder_in_a_local_target_is_never_written_through(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = lake()
    store.put("t/linkdir/pwned.txt", b"pwned")
    target, outside = linked_target(tmp_path)
    if command == "sync":
        argv = ["sync", "memory://lake/t", str(target)]
    else:
        argv = ["pitr", "memory://lake/t", "--at", "2030-01-01", "--to", str(target)]
    assert run(argv) == 4
    line = error_line(capsys)
    assert "linkdir/pwned.txt" in line and "symbolic link" in line
    assert list(outside.iterdir()) == []
    assert (target / "c.parquet").read_bytes() == b"t/c.parquet" * 10  # the rest is written


def test_a_file_in_the_way_of_a_local_location_is_not_a_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lake()
    afile = tmp_path / "afile"
    afile.write_bytes(b"keep")
    at = ["--at", "2030-01-01"]
    cases = [
        (["sync", "memory://lake/t", str(afile / "sub")], f"{afile / 'sub'} is not a directory"),
        (["sync", "memory://lake/t", str(afile / "sub"), "--dry-run"], "is not a directory"),
        (["sync", "memory://lake/t", str(afile)], f"the destination {afile} is not a directory"),
        (["pitr", "memory://lake/t", *at, "--to", str(afile / "sub")], "is not a directory"),
        (["sync", str(afile), "memory://copy"], f"the source {afile} is not a directory"),
    ]
    for argv, message in cases:
        assert run(argv) == 2, argv
        line = error_line(capsys)
        assert message in line and "lakeguard init" not in line, line
    assert afile.read_bytes() == b"keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_a_missing_local_source_does_not_exist_without_an_init_hint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope"
    assert run(["sync", str(missing), "memory://copy"]) == 3
    assert error_line(capsys).endswith(f"the source {missing} does not exist")
    assert run(["inventory", str(missing), "-o", str(tmp_path / "i.parquet")]) == 3
    line = error_line(capsys)
    assert f"{missing} does not exist" in line and "init" not in line


# -- dry runs say which command applies them ---------------------------------------------


def test_dry_runs_say_when_applying_needs_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = lake()
    replica = tmp_path / "replica"
    assert run(["sync", "memory://lake/t", str(replica)]) == 0
    capsys.readouterr()
    store.put("t/a.parquet", b"changed")
    store.delete("t/new.tmp")
    argv = ["sync", "memory://lake/t", str(replica), "--delete"]
    assert run([*argv, "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == (
        f"To apply it: the same command without --dry-run and with --force ({replica} keeps "
        "no versions: sync would replace 1 and delete 1 objects for good; or enable "
        "versioning on it first)"
    )
    assert run([*argv, "--dry-run", "--json"]) == 0
    assert out_json(capsys)["force_needed"].startswith(f"{replica} keeps no versions")
    assert run([*argv, "--dry-run", "--force"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        "To apply it: the same command without --dry-run"
    )
    assert run(argv) == 2  # what the dry run said
    assert "--force" in error_line(capsys)

    # pitr --to a bucket without versions, as in the report: --delete-newer deletes there.
    plain = MemoryStore("plain")
    MemoryStore._named["plain"] = plain
    pitr_argv = ["pitr", "memory://lake/t", "--at", "2026-02-11T12:00:00Z"]
    pitr_argv += ["--to", "memory://plain/r", "--delete-newer"]
    plain.put("r/stale.tmp", b"x")
    plain.put("r/a.parquet", b"other")
    assert run([*pitr_argv, "--dry-run"]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.startswith("To apply it: the same command without --dry-run and with --force (")
    assert "memory://plain keeps no versions: pitr --to would replace 1" in last
    assert run(pitr_argv) == 2
    assert "add --force" in error_line(capsys)
    assert run([*pitr_argv, "--force"]) == 0


def test_an_in_place_dry_run_under_suspended_versioning_says_it_cannot_apply_as_is(
    capsys: pytest.CaptureFixture[str],
) -> None:
    store = lake()
    store.set_versioning(False)  # suspended
    store.put("t/c.parquet", b"replaced the null version")
    argv = ["pitr", "memory://lake/t", "--at", "2026-02-11T12:00:00Z"]
    assert run([*argv, "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-2].startswith("Warning: versioning is suspended on memory://lake")
    assert out[-1] == (
        "To apply it: enable versioning on memory://lake, then the same command without "
        "--dry-run; or restore with --to (see the warning)"
    )
    assert run(argv) == 2
    assert "versioning is suspended" in error_line(capsys)


# -- a location that names one object ------------------------------------------------------


def test_a_location_naming_one_object_is_refused_not_planned_as_empty(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = lake()
    at = ["--at", "2026-02-11T12:00:00Z"]
    cases = [
        (["pitr", "memory://lake/t/a.parquet", *at, "--dry-run"], "memory://lake/t/a.parquet"),
        (["pitr", "memory://lake/t/a.parquet", *at, "--to", str(tmp_path / "o")], "a.parquet"),
        (["undelete", "memory://lake/t/b.parquet"], "memory://lake/t/b.parquet"),  # deleted
        (["sync", "memory://lake/t/a.parquet", str(tmp_path / "s"), "--delete"], "a.parquet"),
    ]
    for argv, where in cases:
        assert run(argv) == 2, argv
        line = error_line(capsys)
        assert f"{where} is an object, not a folder" in line, line
        assert "give the folder that holds it (memory://lake/t/)" in line, line
    assert list(tmp_path.iterdir()) == []
    assert store.get_bytes("t/a.parquet") == b"garbage"  # nothing restored
    # An empty folder that names no object is still an empty plan.
    assert run(["pitr", "memory://lake/t/none", *at, "--dry-run"]) == 0
    assert "Listed: 0 keys" in capsys.readouterr().out

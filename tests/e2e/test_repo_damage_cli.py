"""Repository commands facing damage and odd requests, as a user runs them: a header
that cannot be read, a garbage manifest, a truncated archive, forget's dry-run prune
preview, 'latest', non-finite query values, and a backup that failed cleanly."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from lakeguard.cli import run


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def _json(capsys: pytest.CaptureFixture[str]) -> Any:
    return json.loads(capsys.readouterr().out)


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    lake = tmp_path / "lake"
    for index in range(5):
        path = lake / f"part-{index}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f"{index},value\n".encode() * 300 + os.urandom(32))
    return lake


@pytest.fixture
def repo(tmp_path: Path, lake: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """Five snapshots; before each of the last four one file was rewritten."""
    url = str(tmp_path / "repo")
    assert run(["init", url, "-q"]) == 0
    for day in range(5):
        if day:
            (lake / "state.csv").write_bytes(f"day {day}\n".encode() * 500 + os.urandom(16))
        assert run(["backup", str(lake), "--repo", url, "-q"]) == 0
    capsys.readouterr()
    return url


def _ids(repo: str, capsys: pytest.CaptureFixture[str]) -> list[str]:
    """Snapshot ids oldest first (runs started in the same second sort by their headers)."""
    assert run(["snapshots", "--repo", repo, "--json", "-q"]) == 0
    return [entry["id"] for entry in _json(capsys)]


def test_forget_dry_run_prune_previews_what_the_real_run_deletes(
    repo: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _tree(Path(repo))
    args = ["forget", "--repo", repo, "--keep-last", "1", "--prune", "--json"]
    assert run([*args, "--dry-run"]) == 0
    preview = _json(capsys)
    assert _tree(Path(repo)) == before  # a dry run changes nothing
    assert len(preview["removed"]) == 4
    assert preview["prune"]["snapshots"] == 1
    assert preview["prune"]["deleted"]["archives"] == 3  # the superseded state.csv archives
    assert preview["prune"]["deleted"]["manifests"] == 0  # forget's, not counted as orphans

    assert run(args) == 0
    done = _json(capsys)
    assert done["removed"] == preview["removed"]
    assert sorted(done["prune"]["deleted_archives"]) == sorted(preview["prune"]["deleted_archives"])
    for key in ("archives", "catalog_files", "manifests", "runs", "bytes"):
        assert done["prune"]["deleted"][key] == preview["prune"]["deleted"][key], key
    assert done["prune"]["referenced_archives"] == preview["prune"]["referenced_archives"]


def test_forget_latest(repo: str, capsys: pytest.CaptureFixture[str]) -> None:
    ids = _ids(repo, capsys)
    assert run(["forget", "--repo", repo, "latest", "--json"]) == 0
    assert _json(capsys)["removed"] == [ids[-1]]
    assert _ids(repo, capsys) == ids[:-1]
    assert run(["ls", "--repo", repo, "latest"]) == 0  # the next newest is 'latest' now
    assert "state.csv" in capsys.readouterr().out


def test_a_damaged_header_is_listed_and_forgotten_and_prune_waits(
    repo: str,
    lake: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    ids = _ids(repo, capsys)
    bad = ids[1]
    (Path(repo) / "snapshots" / f"{bad}.json").write_text("{x\n")
    shutil.rmtree(tmp_path / "cache")  # as on another machine: no good copy cached
    remedy = f"lakeguard forget --repo {repo} {bad}"

    assert run(["snapshots", "--repo", repo]) == 3
    out, err = capsys.readouterr()
    assert "4 snapshots, 1 damaged" in out and all(sid in out for sid in ids)
    assert remedy in err and "Expecting property name" in err
    assert run(["snapshots", "--repo", repo, "--json"]) == 3
    listed = _json(capsys)
    assert sorted(entry["id"] for entry in listed) == sorted(ids)
    assert [entry["id"] for entry in listed if entry["damaged"]] == [bad]

    # prune deletes nothing while it cannot know what that snapshot references
    forget = ["forget", "--repo", repo, ids[0]]
    assert run(forget) == 0
    capsys.readouterr()
    before = _tree(Path(repo))
    assert run(["prune", "--repo", repo]) == 3
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and remedy in err and "deletes nothing" in err
    assert _tree(Path(repo)) == before

    # a backup of any source still works: the damaged header only costs reuse
    other = tmp_path / "other"
    other.mkdir()
    (other / "x.csv").write_text("x\n")
    assert run(["backup", str(other), "--repo", repo, "-q"]) == 0
    with caplog.at_level("WARNING"):
        assert run(["backup", str(lake), "--repo", repo, "-q"]) == 0
    assert remedy in caplog.text  # warned about (on stderr), with the remedy

    # forgetting it is the remedy; the dry-run prune preview already takes it as gone
    assert run(["forget", "--repo", repo, bad[17:], "--prune", "--dry-run"]) == 0
    assert "would remove" in capsys.readouterr().out
    assert run(["forget", "--repo", repo, bad[17:], "--json"]) == 0
    assert _json(capsys)["removed"] == [bad]
    for folder in ("snapshots", "manifests", "runs"):  # archives and catalog: prune's
        assert not any(bad in name for name in _tree(Path(repo) / folder)), folder
    assert run(["snapshots", "--repo", repo]) == 0
    assert run(["prune", "--repo", repo]) == 0
    assert run(["check", "--repo", repo, "--read-data"]) == 0


def test_a_garbage_manifest_leaves_snapshots_queryable_and_check_names_no_check(
    repo: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = _ids(repo, capsys)[2]
    (Path(repo) / "manifests" / f"{bad}.parquet").write_text("garbage\n")
    shutil.rmtree(tmp_path / "cache")  # as on another machine: no good copy cached
    sql = "select count(*) as n from snapshots"
    assert run(["query", "--repo", repo, sql, "--json"]) == 0
    assert _json(capsys) == [{"n": 5}]
    assert run(["query", "--repo", repo, "select count(*) from objects"]) == 3
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert f"manifests/{bad}.parquet" in err and f"lakeguard forget --repo {repo} {bad}" in err
    # find searches the other manifests, shows their matches, and exits 3
    assert run(["find", "--repo", repo, "*", "--json"]) == 3
    captured = capsys.readouterr()
    found = json.loads(captured.out)
    assert [d["id"] for d in found["damaged"]] == [bad] and found["matches"]
    assert bad not in found["snapshots"] and found["snapshots_searched"] == 5
    err = captured.err.strip()
    assert len(err.splitlines()) == 1 and "could not be searched" in err
    assert "put back a good copy" in err

    assert run(["check", "--repo", repo]) == 1
    out = capsys.readouterr().out
    assert bad in out and "does not match" in out and "lakeguard check" not in out


def test_check_names_every_object_of_a_truncated_archive(
    repo: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["find", "--repo", repo, "part-0.csv", "--json"]) == 0
    first = Path(repo) / _json(capsys)["archives"][0]  # the first run's: the 5 part-* files
    data = first.read_bytes()
    first.write_bytes(data[: len(data) // 2])
    assert run(["check", "--repo", repo, "--json"]) == 1
    report = _json(capsys)
    named = {item["key"] for item in report["damaged"]}
    assert named == {f"part-{index}.csv" for index in range(5)}
    assert report["damaged_total"] == 5
    for item in report["damaged"]:  # each one held by all five snapshots
        assert item["archive"] == str(first.relative_to(repo)) and len(item["snapshots"]) == 5
    assert run(["check", "--repo", repo]) == 1
    out = capsys.readouterr().out
    assert "part-0.csv" in out and "0 object(s) damaged" not in out


def test_query_json_is_valid_with_non_finite_floats(
    repo: str, capsys: pytest.CaptureFixture[str]
) -> None:
    sql = "select 1/0 i, -1/0 j, 'nan'::double n, 1.5 x, [1/0, 2.0] l"
    assert run(["query", "--repo", repo, sql, "--json"]) == 0
    out = capsys.readouterr().out
    assert json.loads(out, parse_constant=lambda c: pytest.fail(f"not JSON: {c}")) == [
        {"i": None, "j": None, "n": None, "x": 1.5, "l": [None, 2.0]}
    ]
    assert run(["query", "--repo", repo, sql]) == 0
    assert "inf" in capsys.readouterr().out


def test_a_failed_backup_records_it_and_prune_does_not_wait_for_it(
    repo: str, lake: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["forget", "--repo", repo, "--keep-last", "1", "-q"]) == 0
    hidden = lake.with_name("lake-away")
    lake.rename(hidden)  # the next backup of the same source fails at once
    assert run(["backup", str(lake), "--repo", repo, "-q"]) == 3
    capsys.readouterr()
    hidden.rename(lake)
    failed = list((Path(repo) / "runs").glob("*.failed.json"))
    assert len(failed) == 1
    run_id = failed[0].name.split(".")[0]
    assert (Path(repo) / "runs" / f"{run_id}.json").exists()
    assert json.loads(failed[0].read_text())["kind"] == "lakeguard-run-failed"

    assert run(["prune", "--repo", repo, "--json"]) == 0
    pruned = _json(capsys)
    assert pruned["in_progress"] == [] and pruned["deferred"] == []
    assert pruned["deleted"]["archives"] == 3 and pruned["deleted"]["runs"] == 1
    assert not list((Path(repo) / "runs").glob(f"{run_id}*"))
    assert run(["check", "--repo", repo, "--read-data"]) == 0

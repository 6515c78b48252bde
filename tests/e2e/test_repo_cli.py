"""snapshots, ls, find, query, check, forget and prune as a user runs them."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from lakeguard.cli import run

SNAPSHOT_KEYS = {"id", "time", "source", "objects", "bytes", "tags", "damaged"}


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def _json(capsys: pytest.CaptureFixture[str]) -> Any:
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def repo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """Two snapshots of a small lake: the second after one file changed and one was added."""
    lake = tmp_path / "lake"
    for index in range(12):
        path = lake / f"dt=2026-02-{10 + index % 3}" / f"part-{index:02d}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f"{index},value\n".encode() * 300 + os.urandom(32))
    url = str(tmp_path / "repo")
    assert run(["init", url, "-q"]) == 0
    assert run(["backup", str(lake), "--repo", url, "--tag", "nightly", "-q"]) == 0
    (lake / "dt=2026-02-10" / "part-00.csv").write_bytes(b"rewritten\n")
    (lake / "dt=2026-02-13").mkdir()
    (lake / "dt=2026-02-13" / "part-00.csv").write_bytes(b"new\n")
    assert run(["backup", str(lake), "--repo", url, "-q"]) == 0
    capsys.readouterr()
    return url


def test_snapshots_ls_find(repo: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["snapshots", "--repo", repo, "--json"]) == 0
    snaps = _json(capsys)
    assert [set(s) for s in snaps] == [SNAPSHOT_KEYS, SNAPSHOT_KEYS]
    assert [s["objects"] for s in snaps] == [12, 13] and snaps[0]["tags"] == ["nightly"]
    first, second = snaps[0]["id"], snaps[1]["id"]

    assert run(["snapshots", "--repo", repo]) == 0
    text = capsys.readouterr().out
    assert first in text and "nightly" in text and "2 snapshots" in text

    assert run(["ls", "--repo", repo, "latest", "dt=2026-02-13/"]) == 0
    assert capsys.readouterr().out.splitlines() == ["dt=2026-02-13/part-00.csv"]
    assert run(["ls", "--repo", repo, first[:20], "*part-00*", "--json"]) == 0
    listing = _json(capsys)
    assert listing["snapshot_id"] == first
    assert [o["key"] for o in listing["objects"]] == ["dt=2026-02-10/part-00.csv"]

    assert run(["find", "--repo", repo, "dt=2026-02-10/part-00.csv", "--json"]) == 0
    found = _json(capsys)
    assert [m["snapshots"] for m in found["matches"]] == [[first], [second]]
    assert len(found["archives"]) == 2
    assert run(["find", "--repo", repo, "*part-03*"]) == 0
    out = capsys.readouterr().out
    assert "in 2 snapshot(s)" in out and "1 match(es)" in out


def test_query_json_and_table(repo: str, capsys: pytest.CaptureFixture[str]) -> None:
    sql = (
        "SELECT s.tags, count(*) AS n FROM objects o JOIN snapshots s ON s.id = o.snapshot_id "
        "GROUP BY ALL ORDER BY n"
    )
    assert run(["query", "--repo", repo, sql, "--json"]) == 0
    assert _json(capsys) == [{"tags": ["nightly"], "n": 12}, {"tags": [], "n": 13}]
    assert run(["query", "--repo", repo, "SELECT count(*) AS files FROM catalog"]) == 0
    assert capsys.readouterr().out.split() == [
        "files",
        "-----",
        "14",
        "(1",
        "row)",
    ]  # one per version
    assert run(["query", "--repo", repo, "SELECT * FROM nowhere"]) == 2
    assert "query failed" in capsys.readouterr().err


def test_check_finds_a_flipped_byte_and_names_the_object(
    repo: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["check", "--repo", repo]) == 0
    assert "no damage found" in capsys.readouterr().out
    assert run(["check", "--repo", repo, "--read-data", "--json"]) == 0
    clean = _json(capsys)
    assert clean["ok"] and clean["read_data"]["members"] == 14

    assert run(["ls", "--repo", repo, "latest", "dt=2026-02-11/part-04.csv", "--json"]) == 0
    archive = _json(capsys)["objects"][0]["archive"]
    assert run(["query", "--repo", repo, "--json",
                "SELECT frame_offset, frame_length FROM objects "
                "WHERE key = 'dt=2026-02-11/part-04.csv' LIMIT 1"]) == 0  # fmt: skip
    where = _json(capsys)[0]
    path = Path(repo) / archive
    data = bytearray(path.read_bytes())
    data[where["frame_offset"] + where["frame_length"] // 2] ^= 0xFF
    path.write_bytes(bytes(data))

    assert run(["check", "--repo", repo, "--read-data"]) == 1
    out = capsys.readouterr().out
    assert "damaged: dt=2026-02-11/part-04.csv (in 2 snapshot(s)" in out
    assert "DAMAGE: 1 object(s) damaged" in out
    assert run(["check", "--repo", repo, "--read-data-subset", "100%", "--json"]) == 1
    report = _json(capsys)
    assert [d["key"] for d in report["damaged"]] == ["dt=2026-02-11/part-04.csv"]


def test_check_usage_and_unreadable_repository(
    repo: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["check", "--repo", repo, "--read-data-subset", "9/4"]) == 2
    assert run(["check", "--repo", repo, "--read-data", "--read-data-subset", "1/2"]) == 2
    assert run(["check", "--repo", str(tmp_path / "nothing")]) == 2
    assert "not a lakeguard repository" in capsys.readouterr().err
    (Path(repo) / "lakeguard-repo.json").write_text("{garbage")
    assert run(["check", "--repo", repo]) == 3
    assert "damaged" in capsys.readouterr().err


def test_forget_then_prune(repo: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["forget", "--repo", repo, "--keep-last", "1", "--dry-run", "--json"]) == 0
    preview = _json(capsys)
    assert preview["dry_run"] and len(preview["removed"]) == 1 and preview["kept"] == 1
    group = preview["groups"][0]
    assert group["keep"][0]["reasons"] == ["last snapshot"] and len(group["remove"]) == 1
    assert preview["prune"] is None

    assert run(["forget", "--repo", repo, "--keep-last", "1", "--prune", "--json"]) == 0
    done = _json(capsys)
    assert done["removed"] == preview["removed"]
    # the first snapshot's archive still holds 11 objects the second one reuses
    assert done["prune"]["deleted"]["archives"] == 0 and done["prune"]["referenced_archives"] == 2

    assert run(["forget", "--repo", repo, "--keep-tag", "nope", "--dry-run"]) == 0
    assert "warning: no snapshot has the tag(s) nope" in capsys.readouterr().err
    assert run(["forget", "--repo", repo, "--keep-last", "0", "--keep-tag", "nope", "--json"]) == 0
    forgotten = _json(capsys)
    assert len(forgotten["removed"]) == 1 and forgotten["unmatched_tags"] == ["nope"]
    assert run(["prune", "--repo", repo, "--dry-run", "--json"]) == 0
    dry = _json(capsys)
    assert dry["dry_run"] and dry["deleted"]["archives"] == 2 and len(dry["deleted_archives"]) == 2
    assert run(["prune", "--repo", repo]) == 0
    assert "prune: deleted 2 archive(s)" in capsys.readouterr().out
    assert not list((Path(repo) / "archives").rglob("*.tar.zst"))
    assert run(["snapshots", "--repo", repo, "--json"]) == 0
    assert _json(capsys) == []


@pytest.mark.parametrize(
    "args",
    [
        ["--keep-daily", "-3"],
        ["--keep-within", "30x"],
        ["--keep-tag", ""],
        [],
        ["--keep-last", "1", "--grace", "soon"],
        ["--keep-last", "two"],
    ],
)
def test_bad_policies_exit_2(
    repo: str, args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["forget", "--repo", repo, *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lakeguard: error:") and "Traceback" not in err
    assert len(list((Path(repo) / "snapshots").iterdir())) == 2  # nothing removed


def test_help_documents_the_json_shapes(capsys: pytest.CaptureFixture[str]) -> None:
    for command, field in (("check", '"damaged"'), ("forget", '"groups"'), ("prune", '"deferred"')):
        assert run([command, "--help"]) == 0
        assert field in capsys.readouterr().out

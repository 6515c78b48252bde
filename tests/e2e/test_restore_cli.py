"""restore as a user runs it into places that hold data: exit codes, one-line errors, --force."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lakeguard.cli import run
from lakeguard.storage.memory import MemoryStore


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def _backup(tmp_path: Path, files: dict[str, str]) -> str:
    source = tmp_path / "s"
    for name, text in files.items():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_text(text)
    repo = str(tmp_path / "lr")
    assert run(["init", repo, "-q"]) == 0
    assert run(["backup", str(source), "--repo", repo, "-q"]) == 0
    return repo


def _files(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in root.rglob("*") if p.is_file()}


def _bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    return lines[0]


def test_overwriting_a_directory_needs_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = _backup(tmp_path, {"f1": "new\n", "f2": "two\n"})
    target = tmp_path / "e"
    target.mkdir()
    (target / "f1").write_text("precious\n")
    capsys.readouterr()
    assert run(["restore", "latest", "--repo", repo, "--to", str(target)]) == 2
    error = _one_line_error(capsys)
    assert "overwrite 1 object" in error and "f1" in error and "add --force" in error
    assert _files(target) == {"f1": "precious\n"}

    # a dry run that could plan exits 0, as pitr's and sync's do, and names --force
    assert run(["restore", "latest", "--repo", repo, "--to", str(target), "--dry-run"]) == 0
    captured = capsys.readouterr()
    assert "would overwrite f1" in captured.out and "would restore f2" in captured.out
    last = captured.out.strip().splitlines()[-1]
    assert last.startswith("To restore them: the same command without --dry-run and with --force")
    assert "keeps no versions" in last and "(first: f1)" in last
    assert _files(target) == {"f1": "precious\n"}

    assert run(["restore", "latest", "--repo", repo, "--to", str(target), "--force"]) == 0
    assert "1 overwritten" in capsys.readouterr().out
    assert _files(target) == {"f1": "new\n", "f2": "two\n"}

    assert run(["restore", "latest", "--repo", repo, "--to", str(target), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["restored"], doc["unchanged"], doc["replaced"]) == (0, 2, 0)


def test_dry_run_predicts_keys_a_directory_refuses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lake = MemoryStore.named("evil")
    for key in ("t/ok", "t/../x", "t//abs", "t/..", "t/./dot"):
        lake.put(key, b"data")
    repo = str(tmp_path / "lr")
    assert run(["init", repo, "-q"]) == 0
    assert run(["backup", "memory://evil/t", "--repo", repo, "-q"]) == 0
    target = tmp_path / "out"
    capsys.readouterr()
    assert run(["restore", "latest", "--repo", repo, "--to", str(target), "--dry-run"]) == 0
    captured = capsys.readouterr()
    assert "would restore ok" in captured.out
    for key in ("../x", "/abs", "..", "./dot"):
        assert f"would fail {key}:" in captured.out
    assert "4 object(s) would fail" in captured.out
    assert not target.exists()
    assert (
        run(["restore", "latest", "--repo", repo, "--to", str(target), "--dry-run", "--json"]) == 0
    )
    doc = json.loads(capsys.readouterr().out)
    assert doc["objects"] == [{"key": "ok", "size": 4, "action": "restore"}]
    assert (doc["planned"], doc["would_fail"], len(doc["failed"])) == (
        {"objects": 1, "bytes": 4},
        4,
        4,
    )
    assert (
        run(
            [
                "restore",
                "latest",
                "--repo",
                repo,
                "--to",
                str(target),
                "--dry-run",
                "--json",
                "--include",
                "none",
            ]
        )
        == 0
    )
    doc = json.loads(capsys.readouterr().out)
    assert doc["objects"] == [] and doc["dry_run"] is True
    assert run(["restore", "latest", "--repo", repo, "--to", str(target)]) == 4


@pytest.mark.parametrize("where", ["lr", "lr/sub", "."])
def test_a_target_overlapping_a_local_repository_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    repo = _backup(tmp_path, {"lakeguard-repo.json": "{}"})
    before = _bytes(tmp_path / "lr")
    capsys.readouterr()
    code = run(["restore", "latest", "--repo", repo, "--to", str(tmp_path / where)])
    assert code == 2 and "overlaps the repository" in _one_line_error(capsys)
    assert _bytes(tmp_path / "lr") == before


def test_a_target_under_a_regular_file_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = _backup(tmp_path, {"f1": "new\n"})
    (tmp_path / "afile").write_text("x")
    for extra in ([], ["--dry-run"]):
        capsys.readouterr()
        to = str(tmp_path / "afile" / "sub")
        assert run(["restore", "latest", "--repo", repo, "--to", to, *extra]) == 2
        assert "is not a directory" in _one_line_error(capsys)
    assert (tmp_path / "afile").read_text() == "x"


def test_damage_and_write_failures_in_one_run_name_the_damage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 'a/x' sorts first: its member is the archive's first frame, damaged below;
    # 'b/y' cannot be written because a file stands where its folder would be.
    noise = "".join(f"{n * 7919 % 10007:05d}" for n in range(600))  # compresses poorly
    repo = _backup(tmp_path, {"a/x": noise, "b/y": "second", "c/z": "third"})
    (archive,) = Path(repo).rglob("*.tar.zst")
    raw = bytearray(archive.read_bytes())
    raw[100] ^= 0x08
    archive.write_bytes(bytes(raw))
    out = tmp_path / "out"
    out.mkdir()
    (out / "b").write_text("a file where a folder should be")
    capsys.readouterr()
    assert run(["restore", "latest", "--repo", repo, "--to", str(out), "--force"]) == 3
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "repository damaged: 1 object(s) not restored (first: a/x:" in err
    assert err.endswith("; 1 more failed to write")


def test_include_names_folders_and_warns_when_nothing_matches(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = _backup(tmp_path, {"dt=1/a": "1", "dt=1/b": "2", "dt=10/c": "3", "dt=2/d": "4"})
    out = tmp_path / "out"
    assert run(["restore", "latest", "--repo", repo, "--to", str(out), "--include", "dt=1"]) == 0
    assert _files(out) == {"dt=1/a": "1", "dt=1/b": "2"}
    capsys.readouterr()
    argv = [
        "restore",
        "latest",
        "--repo",
        repo,
        "--to",
        str(tmp_path / "o2"),
        "--include",
        "s/dt=1",
    ]
    assert run(argv) == 0
    assert "warning: no object of snapshot" in capsys.readouterr().err
    assert not (tmp_path / "o2").exists() or not any((tmp_path / "o2").iterdir())


def test_a_truncated_archive_still_gives_back_the_members_before_the_cut(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = {f"o{n:02d}": "".join(f"{n * 7919 + i:06d}" for i in range(500)) for n in range(30)}
    repo = _backup(tmp_path, files)
    (archive,) = Path(repo).rglob("*.tar.zst")
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    out = tmp_path / "out"
    capsys.readouterr()
    assert run(["restore", "latest", "--repo", repo, "--to", str(out), "--json"]) == 3
    doc = json.loads(capsys.readouterr().out)
    restored = _files(out)
    failed = {f["key"] for f in doc["failed"]}
    assert 10 < len(restored) < 20 and doc["restored"] == doc["verified"] == len(restored)
    assert failed | set(restored) == set(files) and not failed & set(restored)
    assert all(files[key] == body for key, body in restored.items())
    assert max(restored) < min(failed)  # the members before the cut, in archive order
    assert any("archive ends" in f["error"] for f in doc["failed"])


def test_source_picks_latest_among_one_locations_snapshots(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = _backup(tmp_path, {"first.txt": "of s\n"})
    other = tmp_path / "o"
    other.mkdir()
    (other / "second.txt").write_text("of o\n")
    assert run(["backup", str(other), "--repo", repo, "-q"]) == 0
    capsys.readouterr()
    source = str(tmp_path / "s")
    assert run(["ls", "latest", "--repo", repo]) == 0
    assert capsys.readouterr().out == "second.txt\n"  # the newest snapshot of any source
    assert run(["ls", "latest", "--repo", repo, "--source", source]) == 0
    assert capsys.readouterr().out == "first.txt\n"
    target = tmp_path / "out"
    assert run(["restore", "latest", "--repo", repo, "--to", str(target), "--source", source]) == 0
    assert _files(target) == {"first.txt": "of s\n"}
    capsys.readouterr()
    assert run(["snapshots", "--repo", repo, "--json", "--source", str(other)]) == 0
    other_id = json.loads(capsys.readouterr().out)[0]["id"]
    code = run(["restore", other_id, "--repo", repo, "--to", str(target), "--source", source])
    assert code == 2 and f"snapshot {other_id} is of" in _one_line_error(capsys)
    code = run(["ls", "latest", "--repo", repo, "--source", str(tmp_path / "nothing")])
    assert code == 2 and "no snapshot of" in _one_line_error(capsys)
    for command in (["ls", "latest"], ["snapshots"], ["restore", "latest", "--to", str(target)]):
        code = run([*command, "--repo", repo, "--source", " "])
        assert code == 2 and "--source needs a location" in _one_line_error(capsys)

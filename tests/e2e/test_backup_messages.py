"""What `lakeguard backup` tells a user about odd runs and odd options."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lakeguard.cli import run


def test_an_empty_source_is_backed_up_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "lake").mkdir()
    repo = str(tmp_path / "repo")
    assert run(["init", repo, "-q"]) == 0
    capsys.readouterr()
    assert run(["backup", str(tmp_path / "lake"), "--repo", repo]) == 0
    err = capsys.readouterr().err
    assert "holds no objects: the snapshot is empty" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--archive-size", "1PiB"], "unknown unit 'PiB'"),
        (["--archive-size", "0"], "at least 64KiB"),
        (["--archive-size", "6TiB"], "at most 5TiB"),
        (["--compression-level", "0"], "1 to 22"),
        (["--tag", "a,,b"], "empty tag"),
        (["--mirror", "{tmp}/repo/copy"], "overlaps the repository"),
        (["--mirror", "{tmp}/lake/copy"], "overlaps the source"),
    ],
)
def test_bad_options_are_one_line_exit_2_and_write_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    (tmp_path / "lake").mkdir()
    (tmp_path / "lake" / "a.csv").write_text("1,2\n")
    repo = str(tmp_path / "repo")
    assert run(["init", repo, "-q"]) == 0
    before = sorted(tmp_path.rglob("*"))
    capsys.readouterr()
    argv = ["backup", str(tmp_path / "lake"), "--repo", repo, *args]
    assert run([a.format(tmp=tmp_path) for a in argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert sorted(tmp_path.rglob("*")) == before


def test_tags_split_on_commas(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "lake").mkdir()
    (tmp_path / "lake" / "a.csv").write_text("1,2\n")
    repo = str(tmp_path / "repo")
    assert run(["init", repo, "-q"]) == 0
    assert run(["backup", str(tmp_path / "lake"), "--repo", repo, "--tag", "nightly, prod"]) == 0
    capsys.readouterr()
    assert run(["snapshots", "--repo", repo, "--json"]) == 0
    (snapshot,) = json.loads(capsys.readouterr().out)
    assert snapshot["tags"] == ["nightly", "prod"]

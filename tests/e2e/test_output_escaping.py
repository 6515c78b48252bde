"""Keys are data: control characters in them never reach the terminal raw."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakeguard.cli import run
from lakeguard.cli.text import printable

FORGED = "x\nsnapshot 0 objects -- FORGED"
ESCAPE = "y\x1b[31mred"


def test_printable_escapes_controls_only() -> None:
    assert printable(FORGED) == "x\\nsnapshot 0 objects -- FORGED"
    assert printable(ESCAPE) == "y\\x1b[31mred"
    assert printable("tab\there\r\x7f\x85") == "tab\\there\\r\\x7f\\x85"
    assert printable("dt=2026-02-11/ü part.parquet") == "dt=2026-02-11/ü part.parquet"
    assert printable("invoice\u202egnp.exe") == "invoice\\u202egnp.exe"  # right-to-left override


def test_listed_keys_cannot_forge_lines_or_drive_the_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lake = tmp_path / "lake"
    lake.mkdir()
    for name in (FORGED, ESCAPE, "plain.csv"):
        (lake / name).write_bytes(b"1,2\n")
    repo = str(tmp_path / "repo")
    assert run(["init", repo, "-q"]) == 0
    assert run(["backup", str(lake), "--repo", repo, "-q"]) == 0
    capsys.readouterr()
    assert run(["ls", "--repo", repo, "latest"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out
    assert not any(line.startswith("snapshot 0 objects") for line in out.splitlines())
    assert "x\\nsnapshot 0 objects -- FORGED" in out and "y\\x1b[31mred" in out


def test_error_lines_escape_what_they_quote(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from lakeguard.errors import PartialFailure
    from lakeguard.ops import snapshots

    def failing(*args: object, **kwargs: object) -> object:
        raise PartialFailure(f"1 object(s) failed (first: {FORGED}{ESCAPE})")

    monkeypatch.setattr(snapshots, "list_objects", failing)
    repo = str(tmp_path / "repo")
    assert run(["init", repo, "-q"]) == 0
    capsys.readouterr()
    assert run(["ls", "--repo", repo, "latest"]) == 4
    err = capsys.readouterr().err
    assert "\x1b" not in err and len(err.strip().splitlines()) == 1
    assert "(first: x\\nsnapshot 0 objects -- FORGEDy\\x1b[31mred)" in err

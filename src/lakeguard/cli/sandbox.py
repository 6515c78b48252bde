"""``lakeguard sandbox start|status|stop``: a local S3 server for trying lakeguard out."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lakeguard.cli.context import echo, print_json, state

DirOption = Annotated[
    Path | None,
    typer.Option("--dir", help="Where the sandbox keeps its data and state."),
]


def _describe(sandbox: object) -> dict[str, object]:
    from lakeguard.sandbox import Sandbox

    assert isinstance(sandbox, Sandbox)
    return {
        "running": True,
        "endpoint": sandbox.endpoint,
        "pid": sandbox.pid,
        "dir": sandbox.dir,
        "env": sandbox.env(),
    }


def register(app: typer.Typer) -> None:
    group = typer.Typer(
        help="Run a local S3 server (SeaweedFS) on 127.0.0.1.", no_args_is_help=True
    )
    app.add_typer(group, name="sandbox")

    @group.command("start")
    def start_cmd(
        ctx: typer.Context,
        directory: DirOption = None,
        port: Annotated[int | None, typer.Option("--port", help="S3 port (default 8333).")] = None,
    ) -> None:
        """Start the sandbox and print the settings that reach it."""
        from lakeguard import sandbox

        box = sandbox.start(directory, port=port)
        if state(ctx).json:
            print_json(_describe(box))
            return
        echo(f"# sandbox S3 at {box.endpoint} (pid {box.pid}, data in {box.dir})")
        for line in box.export_lines():
            echo(line)

    @group.command("status")
    def status_cmd(ctx: typer.Context, directory: DirOption = None) -> None:
        """Say whether the sandbox runs, and where. Exit 1 when it does not."""
        from lakeguard import sandbox

        box = sandbox.status(directory)
        if state(ctx).json:
            print_json(_describe(box) if box else {"running": False})
        elif box:
            echo(f"running: {box.endpoint} (pid {box.pid}, data in {box.dir})")
        else:
            echo("not running")
        if box is None:
            raise typer.Exit(1)

    @group.command("stop")
    def stop_cmd(ctx: typer.Context, directory: DirOption = None) -> None:
        """Stop the sandbox (its data stays in --dir)."""
        from lakeguard import sandbox

        stopped = sandbox.stop(directory)
        if state(ctx).json:
            print_json({"stopped": stopped})
        else:
            echo("stopped" if stopped else "not running")

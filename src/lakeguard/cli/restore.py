"""``lakeguard restore --repo REPO SNAPSHOT --to LOC``: objects back from a snapshot."""

from __future__ import annotations

from typing import Annotated

import typer

from lakeguard.cli.context import echo, note, print_json, state
from lakeguard.cli.progress import progress
from lakeguard.cli.repo_access import open_repo
from lakeguard.errors import OperationalError, PartialFailure, UsageError


def register(app: typer.Typer) -> None:
    @app.command("restore")
    def restore_cmd(
        ctx: typer.Context,
        snapshot: Annotated[
            str, typer.Argument(metavar="SNAPSHOT", help="A snapshot id (or prefix), or 'latest'.")
        ],
        repo: Annotated[
            str | None, typer.Option("--repo", metavar="REPO", help="The repository.")
        ] = None,
        to: Annotated[
            str | None,
            typer.Option(
                "--to", metavar="LOC", help="Where to restore: s3://bucket[/prefix] or a directory."
            ),
        ] = None,
        include: Annotated[
            list[str] | None,
            typer.Option(
                "--include",
                metavar="GLOB",
                help="Only keys matching GLOB (relative to the backed-up location; repeatable).",
            ),
        ] = None,
        exclude: Annotated[
            list[str] | None,
            typer.Option("--exclude", metavar="GLOB", help="Skip keys matching GLOB (repeatable)."),
        ] = None,
        dry_run: Annotated[
            bool, typer.Option("--dry-run", help="List what would be restored; change nothing.")
        ] = False,
    ) -> None:
        """Restore objects of SNAPSHOT into LOC, each checked against its SHA-256.

        Exit 4 when some objects could not be written, 3 when the repository is
        damaged (missing archive, corrupt data).
        """
        from lakeguard.ops.report import human_bytes
        from lakeguard.ops.restore import restore

        if not to:
            raise UsageError(
                "give the destination with --to LOC (s3://bucket[/prefix] or a directory)"
            )
        app_state = state(ctx)
        repository = open_repo(app_state, repo)
        loc, store = app_state.open(to)
        with progress("restoring", enabled=not app_state.quiet and not dry_run) as bar:
            result = restore(
                repository,
                snapshot,
                store,
                loc,
                includes=include or [],
                excludes=exclude or [],
                dry_run=dry_run,
                concurrency=app_state.settings.concurrency,
                on_progress=bar,
            )
        if app_state.json:
            print_json(result.to_json())
        elif dry_run:
            for key, size in result.keys:
                echo(f"would restore {key} ({human_bytes(size)})")
            echo(
                f"{result.planned:,} objects ({human_bytes(result.planned_bytes)}) of snapshot "
                f"{result.snapshot_id} would be restored to {loc}"
            )
        else:
            echo(
                f"restored {result.restored:,} object{'s' if result.restored != 1 else ''} "
                f"({human_bytes(result.bytes)}) of snapshot "
                f"{result.snapshot_id} to {loc}, {result.verified:,} verified by SHA-256, "
                f"in {result.seconds:.1f} s"
            )
            for key, error in result.failed[:20]:
                note(app_state, f"failed: {key}: {error}")
        if not result.failed:
            return
        key, error = result.failed[0]
        count = len(result.failed)
        if result.damaged:
            raise OperationalError(
                f"repository damaged: {count} object(s) not restored (first: {key}: {error})"
            )
        raise PartialFailure(f"{count} object(s) not restored (first: {key}: {error})")

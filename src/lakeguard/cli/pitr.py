"""``lakeguard pitr LOC --at T``: restore a versioned location to how it was at T."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lakeguard.cli.context import echo, print_json, state
from lakeguard.cli.progress import progress
from lakeguard.errors import PartialFailure, UsageError


def register(app: typer.Typer) -> None:
    @app.command("pitr")
    def pitr_cmd(
        ctx: typer.Context,
        location: Annotated[
            str, typer.Argument(metavar="LOC", help="s3://bucket[/prefix] with versioning.")
        ],
        at: Annotated[
            str | None,
            typer.Option(
                "--at", metavar="T", help="Restore to this time (ISO-8601, UTC by default)."
            ),
        ] = None,
        to: Annotated[
            str | None,
            typer.Option(
                "--to",
                metavar="LOC2",
                help="Copy the state at T to LOC2 (bucket, prefix or local directory) "
                "instead of restoring in place; keys relative to LOC.",
            ),
        ] = None,
        delete_newer: Annotated[
            bool,
            typer.Option(
                "--delete-newer",
                help="Also delete keys created after T (a delete marker; with --to, "
                "remove them from LOC2).",
            ),
        ] = False,
        dry_run: Annotated[
            bool, typer.Option("--dry-run", help="Print the plan and change nothing.")
        ] = False,
        plan_out: Annotated[
            Path | None,
            typer.Option(
                "--plan-out",
                metavar="FILE",
                help="Write the whole plan as JSON Lines, one line per key that changes, "
                "with the version current before (the undo list).",
            ),
        ] = None,
        force: Annotated[
            bool,
            typer.Option(
                "--force", help="With --to, allow replacing objects in a LOC2 without versioning."
            ),
        ] = False,
    ) -> None:
        """Point-in-time restore from object versions: plan, apply, verify.

        Per key, the cheapest exact action: nothing, undelete (remove the delete
        markers placed after T), copy (the version at T, server-side, on top) or,
        with --delete-newer, delete. Never destroys a version; safe to re-run.
        Exit 4 when some keys failed (each is listed). --dry-run --to a directory
        also lists the copies it would refuse ("would_fail" in --json).
        """
        from lakeguard.ops.pitr import pitr
        from lakeguard.timeparse import parse_time

        if at is None:
            raise UsageError("pitr needs --at TIME, e.g. --at 2026-02-11T12:00:00Z")
        moment = parse_time(at, what="--at time")
        app_state = state(ctx)
        loc, store = app_state.open(location)
        target = None
        if to is not None:
            to_loc, to_store = app_state.open(to)
            target = (to_store, to_loc)
        with progress("restoring", enabled=not app_state.quiet and not dry_run) as bar:
            result = pitr(
                store,
                loc,
                at=moment,
                to=target,
                delete_newer=delete_newer,
                dry_run=dry_run,
                force=force,
                plan_out=plan_out,
                concurrency=app_state.settings.concurrency,
                on_progress=bar,
            )
        if app_state.json:
            print_json(result.to_json())
        else:
            for line in result.lines():
                echo(line)
        if not result.ok:
            first, error = result.outcome.failed.items[0]
            raise PartialFailure(
                f"{result.outcome.failed.count:,} keys failed to restore; first: {first}: {error}"
            )

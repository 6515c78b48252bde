"""``lakeguard undelete LOC``: remove the delete markers that hide objects."""

from __future__ import annotations

from typing import Annotated

import typer

from lakeguard.cli.context import echo, print_json, state
from lakeguard.cli.progress import progress
from lakeguard.errors import PartialFailure


def register(app: typer.Typer) -> None:
    @app.command("undelete")
    def undelete_cmd(
        ctx: typer.Context,
        location: Annotated[
            str, typer.Argument(metavar="LOC", help="s3://bucket[/prefix] with versioning.")
        ],
        since: Annotated[
            str | None,
            typer.Option(
                "--since",
                metavar="T",
                help="Only delete markers placed at or after this time (default: any).",
            ),
        ] = None,
        dry_run: Annotated[
            bool, typer.Option("--dry-run", help="Print what would come back; change nothing.")
        ] = False,
    ) -> None:
        """Bring deleted objects back by removing the delete markers on top of them.

        The very same versions come back: nothing is copied, no version is destroyed.
        Exit 4 when some keys failed (each is listed).
        """
        from lakeguard.ops.undelete import undelete
        from lakeguard.timeparse import parse_time

        moment = parse_time(since, what="--since time") if since is not None else None
        app_state = state(ctx)
        loc, store = app_state.open(location)
        with progress("undeleting", enabled=not app_state.quiet and not dry_run) as bar:
            result = undelete(
                store,
                loc,
                since=moment,
                dry_run=dry_run,
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
                f"{result.outcome.failed.count:,} keys failed to undelete; first: {first}: {error}"
            )

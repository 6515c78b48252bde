"""``lakeguard sync SRC DST``: restore from a replica, copying what is missing or different."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lakeguard.cli.context import echo, print_json, state
from lakeguard.cli.progress import progress
from lakeguard.errors import PartialFailure


def register(app: typer.Typer) -> None:
    @app.command("sync")
    def sync_cmd(
        ctx: typer.Context,
        source: Annotated[
            str, typer.Argument(metavar="SRC", help="The replica: s3://bucket[/prefix] or a path.")
        ],
        destination: Annotated[
            str,
            typer.Argument(metavar="DST", help="What to repair: s3://bucket[/prefix] or a path."),
        ],
        dry_run: Annotated[
            bool, typer.Option("--dry-run", help="Print the plan and change nothing.")
        ] = False,
        delete: Annotated[
            bool,
            typer.Option(
                "--delete",
                help="Remove from DST what SRC lacks (a delete marker in a versioned bucket).",
            ),
        ] = False,
        checksum: Annotated[
            bool,
            typer.Option(
                "--checksum",
                help="Compare objects of equal size by SHA-256 (the store's checksum, "
                "else read) instead of by ETag.",
            ),
        ] = False,
        force: Annotated[
            bool,
            typer.Option(
                "--force",
                help="Allow replacing or deleting objects in a DST without versioning, "
                "and --delete from an SRC that holds no objects (it empties DST).",
            ),
        ] = False,
        plan_out: Annotated[
            Path | None,
            typer.Option("--plan-out", metavar="FILE", help="Write the plan as JSON Lines."),
        ] = None,
    ) -> None:
        """Copy to DST what is missing or different in it (size + ETag, or --checksum).

        Server-side when both are on one endpoint; every copy is checked as written.
        Exit 4 when some objects failed (each is listed). --dry-run into a
        directory also lists the copies it would refuse (a file or a symbolic
        link where a folder is needed, a folder where a file goes): "would_fail"
        and "would_fail_total" in --json.
        """
        from lakeguard.ops.sync import sync

        app_state = state(ctx)
        src_loc, src = app_state.open(source)
        dst_loc, dst = app_state.open(destination)
        with progress("syncing", enabled=not app_state.quiet and not dry_run) as bar:
            result = sync(
                src,
                src_loc,
                dst,
                dst_loc,
                dry_run=dry_run,
                delete=delete,
                checksum=checksum,
                force=force,
                concurrency=app_state.settings.concurrency,
                plan_out=plan_out,
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
                f"{result.outcome.failed.count:,} object"
                f"{'s' if result.outcome.failed.count != 1 else ''} failed to sync; "
                f"first: {first}: {error}"
            )

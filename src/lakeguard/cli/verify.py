"""``lakeguard verify LOC --against INVENTORY.parquet``: is everything still there and intact?"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lakeguard.cli.context import echo, note, print_json, state
from lakeguard.cli.progress import progress
from lakeguard.errors import EXIT_DISCREPANCIES, UsageError


def register(app: typer.Typer) -> None:
    @app.command("verify")
    def verify_cmd(
        ctx: typer.Context,
        location: Annotated[
            str, typer.Argument(metavar="LOC", help="s3://bucket[/prefix] or a local path.")
        ],
        against: Annotated[
            Path | None,
            typer.Option("--against", help="Inventory (Parquet) of what LOC should hold."),
        ] = None,
        deep: Annotated[
            bool,
            typer.Option(
                "--deep", help="Read every object and check its bytes against the ETag/SHA-256."
            ),
        ] = False,
        sample: Annotated[
            str | None,
            typer.Option("--sample", help="With --deep, read only this share: 0.1 or 10%."),
        ] = None,
        parallel_listing: Annotated[
            bool,
            typer.Option(
                "--parallel-listing",
                help="List long listings in pieces side by side (for slow links).",
            ),
        ] = False,
    ) -> None:
        """Compare LOC with an inventory: missing, changed, corrupted and extra objects.

        The inventory may be of LOC or of a folder above it. One of a folder inside
        LOC is refused; one of another place (a replica's source) compares LOC as a
        copy of it, with a warning naming both.
        Exit 0 when everything matches, 1 when anything differs.
        """
        from lakeguard.ops.inventory import read_inventory
        from lakeguard.ops.verify import parse_sample, verify

        if against is None:
            raise UsageError(
                "verify needs --against INVENTORY.parquet (from 'lakeguard inventory')"
            )
        fraction = parse_sample(sample) if sample is not None else None
        if fraction is not None and not deep:
            raise UsageError("--sample applies to --deep: add --deep")
        read_inventory(against)  # a bad file is reported before anything is listed
        app_state = state(ctx)
        loc, store = app_state.open(location)
        with progress("verifying", enabled=not app_state.quiet) as bar:
            result = verify(
                store,
                loc,
                against=against,
                deep=deep,
                sample=fraction,
                concurrency=app_state.settings.concurrency,
                parallel_listing=parallel_listing,
                on_progress=bar,
            )
        for warning in result.warnings:
            note(app_state, f"warning: {warning}")
        if app_state.json:
            print_json(result.to_json())
        else:
            for line in result.lines():
                echo(line)
        if not result.clean:
            raise typer.Exit(EXIT_DISCREPANCIES)

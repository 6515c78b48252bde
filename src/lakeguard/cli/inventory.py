"""``lakeguard inventory LOC -o FILE.parquet``: write a listing of LOC as Parquet."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from lakeguard.cli.context import echo, print_json, state
from lakeguard.cli.progress import progress


def _default_output(root: str) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    name = Path(root).name or "root"
    return Path(f"inventory-{name}-{stamp}.parquet")


def register(app: typer.Typer) -> None:
    @app.command("inventory")
    def inventory_cmd(
        ctx: typer.Context,
        location: Annotated[
            str, typer.Argument(metavar="LOC", help="s3://bucket[/prefix] or a local path.")
        ],
        output: Annotated[
            Path | None,
            typer.Option(
                "--output",
                "-o",
                help="Parquet file to write (default: inventory-<bucket>-<time>.parquet).",
            ),
        ] = None,
        versions: Annotated[
            bool,
            typer.Option(
                "--versions", help="Every version and delete marker, not only current objects."
            ),
        ] = False,
        parallel_listing: Annotated[
            bool,
            typer.Option(
                "--parallel-listing",
                help="List long listings in pieces side by side (for slow links).",
            ),
        ] = False,
    ) -> None:
        """Write an inventory of LOC (key, size, ETag, time, version, checksum) as Parquet."""
        from lakeguard.ops.inventory import take_inventory
        from lakeguard.ops.report import human_bytes

        app_state = state(ctx)
        loc, store = app_state.open(location)
        target = output if output is not None else _default_output(loc.root)
        with progress("listing", enabled=not app_state.quiet) as bar:
            result = take_inventory(
                store,
                loc,
                versions=versions,
                output=target,
                concurrency=app_state.settings.concurrency,
                parallel=parallel_listing,
                on_progress=bar,
            )
        if app_state.json:
            print_json({"location": str(loc), "versions": versions, **result.to_json()})
            return
        markers = f", {result.delete_markers} delete markers" if versions else ""
        what = "versions" if versions else "objects"
        echo(
            f"{result.path}: {result.objects} {what} ({human_bytes(result.bytes)}){markers} "
            f"from {loc} in {result.seconds:.2f} s"
        )

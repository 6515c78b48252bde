"""``lakeguard gaps LOC --start D --end D``: missing, empty and undersized date partitions."""

from __future__ import annotations

from typing import Annotated

import typer

from lakeguard.cli.context import echo, print_json, state
from lakeguard.errors import EXIT_DISCREPANCIES


def register(app: typer.Typer) -> None:
    @app.command("gaps")
    def gaps_cmd(
        ctx: typer.Context,
        location: Annotated[
            str, typer.Argument(metavar="LOC", help="s3://bucket[/prefix] or a local path.")
        ],
        start: Annotated[str, typer.Option("--start", help="First date, YYYY-MM-DD.")],
        end: Annotated[str, typer.Option("--end", help="Last date, YYYY-MM-DD (included).")],
        partition: Annotated[
            str, typer.Option("--partition", help="Partition key of dt=YYYY-MM-DD folders.")
        ] = "dt",
        granularity: Annotated[
            str, typer.Option("--granularity", help="day, or hour (hour=HH folders).")
        ] = "day",
    ) -> None:
        """Find missing or empty partitions, and partitions far smaller than their peers.

        Layouts: dt=YYYY-MM-DD/, dt=YYYY-MM-DD/hour=HH/, year=YYYY/month=MM/day=DD/.
        One run checks at most 200,000 partitions (273 years by day, 22 years by hour).
        Exit 0 when every partition is there, 1 otherwise.
        """
        from lakeguard.ops.gaps import find_gaps
        from lakeguard.timeparse import parse_date

        first = parse_date(start, what="--start date")
        last = parse_date(end, what="--end date")
        app_state = state(ctx)
        loc, store = app_state.open(location)
        result = find_gaps(
            store,
            loc,
            partition=partition,
            start=first,
            end=last,
            granularity=granularity.lower(),
            concurrency=app_state.settings.concurrency,
        )
        if app_state.json:
            print_json(result.to_json())
        else:
            for line in result.lines():
                echo(line)
        if not result.clean:
            raise typer.Exit(EXIT_DISCREPANCIES)

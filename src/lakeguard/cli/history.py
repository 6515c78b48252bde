"""``lakeguard history LOC``: versions over time, damage windows, and the last good time."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

import typer

from lakeguard.cli.context import echo, note, print_json, state
from lakeguard.errors import UsageError

_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# A quiet time of more than a year would merge every incident into one window.
MAX_DURATION = timedelta(days=365)


def parse_duration(text: str, *, what: str = "--gap", limit: timedelta = MAX_DURATION) -> timedelta:
    """``90``, ``30s``, ``10m``, ``1h30m``, ``2d`` -> a timedelta of at most ``limit``."""
    raw = text.strip().lower()
    if raw.replace(".", "", 1).isdigit():
        seconds = float(raw)
    else:
        parts = _DURATION.findall(raw)
        if not parts or "".join(n + u for n, u in parts) != raw:
            raise UsageError(f"invalid {what} {text!r}: use e.g. 30s, 10m, 1h30m")
        seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    # Compared as seconds first: a timedelta of 99999999999h does not exist.
    if not seconds <= limit.total_seconds():
        raise UsageError(f"invalid {what} {text!r}: at most {limit.days}d")
    return timedelta(seconds=seconds)


def register(app: typer.Typer) -> None:
    @app.command("history")
    def history_cmd(
        ctx: typer.Context,
        location: Annotated[
            str, typer.Argument(metavar="LOC", help="s3://bucket[/prefix] or a local path.")
        ],
        since: Annotated[
            str | None, typer.Option("--since", help="From this time (ISO-8601, UTC by default).")
        ] = None,
        until: Annotated[str | None, typer.Option("--until", help="Up to this time.")] = None,
        gap: Annotated[
            str,
            typer.Option(
                "--gap",
                help="Quiet time that separates two damage windows: 30s, 10m, 2h, 1d "
                "(at most 365d).",
            ),
        ] = "10m",
    ) -> None:
        """Versions and delete markers over time; bursts of deletes and overwrites.

        For each damage window, last_good is the time to pass to 'lakeguard pitr --at'.
        """
        from lakeguard.ops.history import history
        from lakeguard.timeparse import parse_time

        start = parse_time(since, what="--since time") if since is not None else None
        end = parse_time(until, what="--until time") if until is not None else None
        window_gap = parse_duration(gap)
        app_state = state(ctx)
        loc, store = app_state.open(location)
        result = history(store, loc, since=start, until=end, gap=window_gap)
        if result.versioning_note:
            note(app_state, f"warning: {result.versioning_note}")
        if app_state.json:
            print_json(result.to_json())
        else:
            for line in result.lines():
                echo(line)

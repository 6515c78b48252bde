"""State shared by every command: global options, and opening locations."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import typer

from lakeguard.cli.text import printable
from lakeguard.location import Location, parse_location
from lakeguard.storage import StoreSettings

if TYPE_CHECKING:
    from lakeguard.storage.base import Store


@dataclass(slots=True)
class AppState:
    settings: StoreSettings = field(default_factory=StoreSettings)
    json: bool = False
    verbose: int = 0
    quiet: bool = False

    def open(self, text: str, *, repository: bool = False) -> tuple[Location, Store]:
        """Parse a location argument and open its store (wrappers included)."""
        from lakeguard.storage import open_store

        location = parse_location(text)
        settings = self.settings
        if repository:
            settings = settings.for_repository()
        return location, open_store(location, settings)


def state(ctx: typer.Context) -> AppState:
    root = ctx.find_root()
    if not isinstance(root.obj, AppState):
        root.obj = AppState()
    return root.obj


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        from lakeguard.timeparse import iso

        return iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def print_json(document: Any) -> None:
    """One JSON document on stdout."""
    sys.stdout.write(json.dumps(document, default=_default, indent=2, ensure_ascii=False))
    sys.stdout.write("\n")
    sys.stdout.flush()


def echo(text: str = "") -> None:
    sys.stdout.write(printable(text) + "\n")


def note(app_state: AppState, text: str) -> None:
    """A progress or status line on stderr (silent with -q)."""
    if not app_state.quiet:
        sys.stderr.write(printable(text) + "\n")

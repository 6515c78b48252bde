"""``lakeguard snapshots``, ``ls`` and ``find``: what a repository holds."""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Sequence
from typing import Annotated

import typer

from lakeguard.cli.context import echo, note, print_json, state
from lakeguard.cli.repo_access import open_repo
from lakeguard.cli.text import printable

RepoOption = Annotated[str | None, typer.Option("--repo", metavar="REPO", help="The repository.")]
SourceOption = Annotated[
    str | None,
    typer.Option("--source", metavar="LOC", help="Only snapshots of this backed-up location."),
]


def register(app: typer.Typer) -> None:
    @app.command("snapshots")
    def snapshots_cmd(
        ctx: typer.Context, repo: RepoOption = None, source: SourceOption = None
    ) -> None:
        """List the snapshots of a repository, oldest first.

        A snapshot whose header cannot be read is listed too, as DAMAGED, with a
        warning on stderr and an error naming the remedy (forget it, or put back a
        good copy of its header): exit 3.
        --json: a list of {"id", "time", "source", "objects", "bytes", "tags",
        "damaged"}: "damaged" is null, or why the header cannot be read (then
        source, objects and bytes are null).
        """
        from lakeguard.errors import OperationalError
        from lakeguard.ops.report import human_bytes
        from lakeguard.ops.snapshots import snapshot_listing, source_filter
        from lakeguard.repository.snapshot import header_remedy

        app_state = state(ctx)
        repository = open_repo(app_state, repo)
        listing = snapshot_listing(repository, source=source_filter(source))
        headers, damaged = listing.headers, listing.damaged
        if app_state.json:
            print_json(listing.to_json())
        else:
            rows = [
                (
                    header.id,
                    header.time.strftime("%Y-%m-%d %H:%M:%S"),
                    header.source,
                    f"{header.stats.objects:,}",
                    human_bytes(header.stats.bytes),
                    ",".join(header.tags),
                )
                for header in headers
            ]
            rows += [
                (item.id, item.time.strftime("%Y-%m-%d %H:%M:%S"), "DAMAGED", "-", "-", "")
                for item in damaged
            ]
            rows.sort(key=lambda row: (row[1], row[0]))
            _table(("ID", "TIME (UTC)", "SOURCE", "OBJECTS", "SIZE", "TAGS"), rows)
            echo(
                f"{len(headers)} snapshot{'s' if len(headers) != 1 else ''}"
                + (f", {len(damaged)} damaged" if damaged else "")
            )
        if damaged:
            for item in damaged:
                note(app_state, f"warning: {item.error}")
            if len(damaged) == 1:
                sid = damaged[0].id
                raise OperationalError(
                    f"snapshot {sid} is damaged: {header_remedy(repository.url, sid)}"
                )
            where = shlex.quote(repository.url)
            raise OperationalError(
                f"{len(damaged)} snapshot headers are damaged (named above): remove them with "
                f"'lakeguard forget --repo {where} ID...' or put back good copies of their "
                "snapshots/<id>.json"
            )

    @app.command("ls")
    def ls_cmd(
        ctx: typer.Context,
        snapshot: Annotated[
            str, typer.Argument(metavar="SNAPSHOT", help="A snapshot id (or prefix), or 'latest'.")
        ],
        glob: Annotated[
            str | None,
            typer.Argument(
                metavar="[GLOB]",
                help="Only keys matching GLOB (relative to the backed-up location; "
                "'*' crosses '/'; a folder's name selects what is under it).",
            ),
        ] = None,
        repo: RepoOption = None,
        source: SourceOption = None,
        long: Annotated[
            bool, typer.Option("--long", "-l", help="Also size, last-modified and SHA-256.")
        ] = False,
    ) -> None:
        """List the objects of SNAPSHOT, in byte order of their keys.

        With --source, 'latest' is the newest snapshot of that location.

        --json: {"snapshot_id", "source", "objects": [{"key", "size", "sha256", "etag",
        "version_id", "last_modified", "archive"}]}, streamed.
        """
        from lakeguard.ops.report import human_bytes
        from lakeguard.ops.snapshots import list_objects, row_json, source_filter

        app_state = state(ctx)
        repository = open_repo(app_state, repo)
        listing = list_objects(repository, snapshot, glob=glob, source=source_filter(source))
        out = sys.stdout
        if app_state.json:
            header = listing.snapshot
            out.write(
                f'{{"snapshot_id": {json.dumps(header.id)}, '
                f'"source": {json.dumps(header.source)}, "objects": ['
            )
            for index, row in enumerate(listing.rows):
                out.write(("," if index else "") + "\n  " + json.dumps(row_json(row)))
            out.write("\n]}\n")
            return
        for row in listing.rows:
            if long:
                modified = (
                    row.last_modified.strftime("%Y-%m-%d %H:%M:%S") if row.last_modified else "-"
                )
                size = human_bytes(row.size)
                out.write(f"{size:>10}  {modified}  {row.sha256[:12]}  {printable(row.key)}\n")
            else:
                out.write(printable(row.key) + "\n")

    @app.command("find")
    def find_cmd(
        ctx: typer.Context,
        glob: Annotated[
            str,
            typer.Argument(
                metavar="GLOB",
                help="Keys to look for, relative to the backed-up location or as full "
                "source keys ('*' crosses '/').",
            ),
        ],
        repo: RepoOption = None,
        source: SourceOption = None,
    ) -> None:
        """Which snapshots and archives hold keys matching GLOB.

        --json: {"glob", "snapshots_searched", "matches": [{"key", "source", "size",
        "sha256", "archive", "member", "snapshots": [ids]}], "snapshots": [ids],
        "archives": [keys], "damaged": [{"id", "error"}]}. Exit 3 when a manifest
        could not be searched (the others are).
        """
        from lakeguard.errors import OperationalError
        from lakeguard.ops.report import human_bytes
        from lakeguard.ops.snapshots import find, source_filter

        app_state = state(ctx)
        repository = open_repo(app_state, repo)
        result = find(repository, glob, source=source_filter(source))
        if app_state.json:
            print_json(result.to_json())
        else:
            for item in result.found:
                first, last = item.snapshots[0], item.snapshots[-1]
                span = first if first == last else f"{first} .. {last}"
                echo(
                    f"{item.key}  {human_bytes(item.size)}  sha256 {item.sha256[:12]}  "
                    f"in {len(item.snapshots)} snapshot(s) {span}  archive {item.archive}"
                )
            echo(
                f"{len(result.found)} match(es) in {len(result.snapshot_ids)} of "
                f"{result.snapshots_searched} snapshot(s), {len(result.archives)} archive(s)"
            )
        if result.damaged:
            sid, error = result.damaged[0]
            raise OperationalError(
                f"{len(result.damaged)} snapshot manifest(s) could not be searched "
                f"(first: {sid}: {error}); the matches above leave them out"
            )


def _table(titles: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max([len(title), *(len(row[i]) for row in rows)]) for i, title in enumerate(titles)]
    for line in (titles, *rows):
        echo(
            "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        )

"""``lakeguard check --repo REPO [--read-data | --read-data-subset n/t|P%]``."""

from __future__ import annotations

from typing import Annotated

import typer

from lakeguard.cli.context import echo, note, print_json, state
from lakeguard.cli.progress import progress
from lakeguard.cli.repo_access import open_repo
from lakeguard.errors import EXIT_DISCREPANCIES, UsageError


def register(app: typer.Typer) -> None:
    @app.command("check")
    def check_cmd(
        ctx: typer.Context,
        repo: Annotated[
            str | None, typer.Option("--repo", metavar="REPO", help="The repository.")
        ] = None,
        read_data: Annotated[
            bool,
            typer.Option("--read-data", help="Also read every archive and re-hash every object."),
        ] = False,
        subset: Annotated[
            str | None,
            typer.Option(
                "--read-data-subset",
                metavar="n/t|P%",
                help="Read only group n of t of the archives (1/7 .. 7/7 cover all), "
                "or P% of them at random.",
            ),
        ] = None,
    ) -> None:
        """Check that every snapshot can be restored.

        Structure: headers parse, manifests match their headers, every archive a
        manifest names exists, seek tables parse and each object's frames lie on
        frame boundaries inside its archive. With --read-data (or a subset):
        decompress and re-hash every object against the manifests.

        Exit 0 clean, 1 damage found (the damaged objects are named: an archive
        missing, or truncated so its seek table cannot be read, names every
        object it holds), 3 repository unreadable. --json: {"ok", "snapshots",
        "objects", "members", "archives", "unreferenced_archives", "read_data":
        null | {"subset", "archives", "members", "bytes"}, "errors": [{"kind",
        "message", "snapshot", "archive"}], "errors_total", "damaged": [{"key",
        "snapshots", "archive", "member", "error"}], "damaged_total", "seconds"}.
        """
        from lakeguard.ops.check import check
        from lakeguard.ops.report import human_bytes

        if read_data and subset is not None:
            raise UsageError("give --read-data or --read-data-subset, not both")
        app_state = state(ctx)
        repository = open_repo(app_state, repo)
        reading = read_data or subset is not None
        with progress("reading archives", enabled=reading and not app_state.quiet) as bar:
            result = check(
                repository,
                read_data=read_data,
                subset=subset,
                concurrency=app_state.settings.concurrency,
                on_progress=bar,
            )
        if app_state.json:
            print_json(result.to_json())
        else:
            for problem in result.problems.items:
                echo(f"error: {problem.message}")
            for item in result.damaged.items:
                echo(
                    f"damaged: {item.key} (in {len(item.snapshots)} snapshot(s): "
                    f"{', '.join(item.snapshots[:3])}{' ...' if len(item.snapshots) > 3 else ''})"
                    f": {item.error}"
                )
            if result.damaged.truncated or result.problems.truncated:
                echo("(lists truncated: use --json for counts)")
            data = (
                f"; read {result.archives_read} archive(s), {result.members_read:,} objects, "
                f"{human_bytes(result.bytes_read)}"
                if result.read_data
                else "; data not read (use --read-data)"
            )
            echo(
                f"checked {result.snapshots} snapshot(s), {result.objects:,} objects in "
                f"{result.archives} archive(s){data}, in {result.seconds:.1f} s"
            )
            if result.unreferenced_archives:
                note(
                    app_state,
                    f"{result.unreferenced_archives} archive(s) referenced by no snapshot "
                    "('lakeguard prune' deletes them)",
                )
            if result.ok:
                echo("no damage found")
            else:
                echo(
                    f"DAMAGE: {result.damaged.count} object(s) damaged, "
                    f"{result.problems.count} other error(s)"
                )
        if not result.ok:
            raise typer.Exit(EXIT_DISCREPANCIES)

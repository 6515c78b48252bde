"""``lakeguard backup LOC --repo REPO``: an incremental snapshot of LOC."""

from __future__ import annotations

from typing import Annotated

import typer

from lakeguard.cli.context import echo, note, print_json, state
from lakeguard.cli.progress import progress
from lakeguard.cli.repo_access import open_repo
from lakeguard.errors import PartialFailure


def register(app: typer.Typer) -> None:
    @app.command("backup")
    def backup_cmd(
        ctx: typer.Context,
        location: Annotated[
            str, typer.Argument(metavar="LOC", help="s3://bucket[/prefix] or a local path.")
        ],
        repo: Annotated[
            str | None, typer.Option("--repo", metavar="REPO", help="The repository.")
        ] = None,
        tags: Annotated[
            list[str] | None, typer.Option("--tag", metavar="T", help="Tag the snapshot.")
        ] = None,
        archive_size: Annotated[
            str | None,
            typer.Option(
                "--archive-size",
                help="Batch small objects into archives of this size (default 128MiB).",
            ),
        ] = None,
        compression_level: Annotated[
            int | None,
            typer.Option("--compression-level", help="zstd level, 1-22 (default 3)."),
        ] = None,
        mirrors: Annotated[
            list[str] | None,
            typer.Option(
                "--mirror",
                metavar="LOC2",
                help="Also write each new object, uncompressed, to LOC2 (reads LOC once).",
            ),
        ] = None,
    ) -> None:
        """Back LOC up into REPO: new and changed objects into seekable tar.zst archives.

        Unchanged objects (same version id, or same ETag, size and time) are not
        read again. --tag a,b gives two tags. Exit 4 when some objects could not
        be read (the snapshot holds the rest); objects deleted while the backup
        ran are counted as vanished and left out.

        --json: {"snapshot_id", "objects", "bytes", "new_objects", "new_bytes",
        "reused_objects", "archives_written", "stored_bytes", "compression_ratio",
        "duration_s", "source", "parent", "mirrored", "vanished",
        "adopted_archives", "failed": [{"key", "error"}]}.
        """
        from lakeguard.ops.backup import backup
        from lakeguard.ops.report import human_bytes
        from lakeguard.sizes import parse_size

        size = parse_size(archive_size, what="--archive-size") if archive_size else None
        app_state = state(ctx)
        repository = open_repo(app_state, repo)
        loc, store = app_state.open(location)
        targets = [app_state.open(text) for text in mirrors or []]
        with progress("backing up", enabled=not app_state.quiet) as bar:
            result = backup(
                store,
                loc,
                repository,
                tags=tags or [],
                archive_size=size,
                compression_level=compression_level,
                mirrors=targets,
                concurrency=app_state.settings.concurrency,
                on_progress=bar,
            )
        if app_state.json:
            print_json(result.to_json())
        else:
            ratio = result.compression_ratio
            echo(
                f"snapshot {result.snapshot_id} of {loc}: {result.objects:,} "
                f"object{'s' if result.objects != 1 else ''} "
                f"({human_bytes(result.bytes)}), {result.new_objects:,} new "
                f"({human_bytes(result.new_bytes)}), {result.reused_objects:,} unchanged"
            )
            echo(
                f"{result.archives_written} archive(s), {human_bytes(result.stored_bytes)} stored"
                + (f" (ratio {ratio:.2f})" if ratio else "")
                + f", {result.duration_s:.1f} s"
            )
            if not result.objects:
                note(app_state, f"warning: {loc} holds no objects: the snapshot is empty")
            if result.vanished:
                note(
                    app_state,
                    f"{result.vanished:,} object(s) vanished after the listing "
                    "(deleted while the backup ran): not in the snapshot",
                )
            for key, error in result.failed[:20]:
                note(app_state, f"failed: {key}: {error}")
        if result.failed:
            key, error = result.failed[0]
            raise PartialFailure(
                f"{len(result.failed)} object(s) failed (first: {key}: {error}); "
                "the snapshot holds the others: run the backup again"
            )

"""``lakeguard init REPO``: create a backup repository."""

from __future__ import annotations

from typing import Annotated

import typer

from lakeguard.cli.context import echo, print_json, state


def register(app: typer.Typer) -> None:
    @app.command("init")
    def init_cmd(
        ctx: typer.Context,
        repo: Annotated[
            str,
            typer.Argument(metavar="REPO", help="s3://bucket[/prefix] or a local directory."),
        ],
        object_lock_days: Annotated[
            int | None,
            typer.Option(
                "--object-lock-days",
                min=1,
                help="Lock every archive, manifest and snapshot for N days (S3 Object Lock).",
            ),
        ] = None,
        object_lock_mode: Annotated[
            str,
            typer.Option(
                "--object-lock-mode",
                help="COMPLIANCE (nobody can shorten it) or GOVERNANCE (privileged users can).",
            ),
        ] = "COMPLIANCE",
    ) -> None:
        """Create a backup repository at REPO (a new bucket is created if needed).

        Re-running with the same settings is harmless.
        """
        from lakeguard.repository.repo import init_repository

        app_state = state(ctx)
        location, store = app_state.open(repo, repository=True)
        result = init_repository(
            store, location, object_lock_days=object_lock_days, object_lock_mode=object_lock_mode
        )
        if app_state.json:
            print_json(result.to_json())
            return
        config = result.repository.config
        lock = (
            f", objects locked {config.object_lock.days} days ({config.object_lock.mode})"
            if config.object_lock
            else ""
        )
        verb = "created" if result.created else "already exists"
        echo(f"repository {location} {verb} (id {config.id}{lock})")

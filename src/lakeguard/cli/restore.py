"""``lakeguard restore --repo REPO SNAPSHOT --to LOC``: objects back from a snapshot."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from lakeguard.cli.context import echo, note, print_json, state
from lakeguard.cli.progress import progress
from lakeguard.cli.repo_access import open_repo
from lakeguard.errors import OperationalError, PartialFailure, UsageError

if TYPE_CHECKING:
    from lakeguard.ops.restore import RestoreResult


def register(app: typer.Typer) -> None:
    @app.command("restore")
    def restore_cmd(
        ctx: typer.Context,
        snapshot: Annotated[
            str, typer.Argument(metavar="SNAPSHOT", help="A snapshot id (or prefix), or 'latest'.")
        ],
        repo: Annotated[
            str | None, typer.Option("--repo", metavar="REPO", help="The repository.")
        ] = None,
        to: Annotated[
            str | None,
            typer.Option(
                "--to", metavar="LOC", help="Where to restore: s3://bucket[/prefix] or a directory."
            ),
        ] = None,
        include: Annotated[
            list[str] | None,
            typer.Option(
                "--include",
                metavar="GLOB",
                help="Only keys matching GLOB (relative to the backed-up location; '*' crosses "
                "'/'; a folder's name selects what is under it; repeatable).",
            ),
        ] = None,
        exclude: Annotated[
            list[str] | None,
            typer.Option(
                "--exclude",
                metavar="GLOB",
                help="Skip keys matching GLOB, or under it (repeatable).",
            ),
        ] = None,
        dry_run: Annotated[
            bool,
            typer.Option(
                "--dry-run",
                help="List what would be restored, overwritten or refused; change nothing.",
            ),
        ] = False,
        source: Annotated[
            str | None,
            typer.Option(
                "--source",
                metavar="LOC",
                help="'latest' is the newest snapshot of this backed-up location (a "
                "repository may hold several); an id must be one of its snapshots.",
            ),
        ] = None,
        force: Annotated[
            bool,
            typer.Option(
                "--force",
                help="Allow overwriting objects that differ from the snapshot in a LOC "
                "that keeps no versions (a directory, an unversioned bucket).",
            ),
        ] = False,
    ) -> None:
        """Restore objects of SNAPSHOT into LOC, each checked against its SHA-256.

        Objects LOC already holds with the snapshot's bytes are skipped
        (unchanged), so a re-run writes nothing: same size and ETag, or, when
        the ETags cannot settle it (an MD5 against a multipart ETag, or two
        multipart ETags of other part sizes), the same SHA-256 (the store's,
        else the object read and hashed).
        Overwriting objects that differ needs --force unless LOC is a
        versioned bucket (the old bytes stay as a noncurrent version). LOC may
        not overlap the repository.

        Exit 2 on bad input, an overlap or overwrites without --force (before
        anything is written), 3 when LOC's bucket is missing or the repository
        damaged (missing archive, corrupt data), 4 when some objects could not be
        written. --dry-run exits 0 once it could plan, and says what the real run
        needs (--force) and which keys it would fail.

        --json: restored, bytes, verified, failed[{key, error}], unchanged,
        replaced, first_replaced, snapshot_id, target, seconds, dry_run; with
        --dry-run also planned{objects, bytes}, objects[{key, size, action}]
        (streamed as planned, first in the document), needs_force and
        would_fail (failed keeps the first 1,000).
        """
        from lakeguard.ops.report import human_bytes
        from lakeguard.ops.restore import restore
        from lakeguard.ops.snapshots import source_filter

        if not to:
            raise UsageError(
                "give the destination with --to LOC (s3://bucket[/prefix] or a directory)"
            )
        app_state = state(ctx)
        repository = open_repo(app_state, repo)
        loc, store = app_state.open(to)
        plan = _PlanLines(as_json=app_state.json) if dry_run else None
        with progress("restoring", enabled=not app_state.quiet and not dry_run) as bar:
            result = restore(
                repository,
                snapshot,
                store,
                loc,
                includes=include or [],
                excludes=exclude or [],
                dry_run=dry_run,
                force=force,
                concurrency=app_state.settings.concurrency,
                on_progress=bar,
                on_plan=plan,
                source=source_filter(source),
            )
        if plan is not None and app_state.json:
            plan.finish(result.to_json())
        elif app_state.json:
            print_json(result.to_json())
        elif dry_run:
            for key, error in result.failed:
                echo(f"would fail {key}: {error}")
            if result.would_fail > len(result.failed):
                echo(f"would fail {result.would_fail - len(result.failed):,} more")
            echo(
                f"{result.planned:,} object{'s' if result.planned != 1 else ''} "
                f"({human_bytes(result.planned_bytes)}) of snapshot "
                f"{result.snapshot_id} would be restored to {loc}{_existing(result, dry_run)}"
            )
            if result.planned and result.refusal is not None:
                echo(
                    "To restore them: the same command without --dry-run and with --force "
                    f"({result.refusal.rpartition('; ')[0]})"
                )
            elif result.planned:
                echo("To restore them: the same command without --dry-run")
            if result.would_fail:
                echo(f"{result.would_fail:,} object(s) would fail: their keys cannot be files here")
        else:
            echo(
                f"restored {result.restored:,} object{'s' if result.restored != 1 else ''} "
                f"({human_bytes(result.bytes)}) of snapshot "
                f"{result.snapshot_id} to {loc}, {result.verified:,} verified by SHA-256"
                f"{_existing(result, dry_run)}, in {result.seconds:.1f} s"
            )
            for key, error in result.failed[:20]:
                note(app_state, f"failed: {key}: {error}")
        selected = result.planned + result.unchanged + max(len(result.failed), result.would_fail)
        if (include or exclude) and not selected:
            note(
                app_state,
                f"warning: no object of snapshot {result.snapshot_id} matches the globs "
                "(they match keys relative to the backed-up location: see 'lakeguard ls')",
            )
        if dry_run or not result.failed:
            return  # a dry run that could plan exits 0, as pitr's and sync's do
        key, error = result.failed[0]
        count = len(result.failed)
        if result.damaged:
            key, error = result.first_damaged or (key, error)
            others = count - result.damaged
            raise OperationalError(
                f"repository damaged: {result.damaged} object(s) not restored (first: {key}: "
                f"{error})" + (f"; {others} more failed to write" if others > 0 else "")
            )
        raise PartialFailure(f"{count} object(s) not restored (first: {key}: {error})")


def _existing(result: RestoreResult, dry_run: bool) -> str:
    """What the target already held: ``, 3 unchanged (already there), 1 overwritten``."""
    parts = []
    if result.unchanged:
        parts.append(f"{result.unchanged:,} unchanged (already there)")
    if result.replaced:
        parts.append(f"{result.replaced:,} {'would be ' if dry_run else ''}overwritten")
    return "".join(f", {part}" for part in parts)


class _PlanLines:
    """A dry run's objects, printed as they are planned: a snapshot of millions
    of objects is never held. With --json the document opens with its
    ``objects`` array and the totals follow it."""

    def __init__(self, *, as_json: bool) -> None:
        self.as_json = as_json
        self.count = 0

    def __call__(self, key: str, size: int, overwrites: bool) -> None:
        if self.as_json:
            item = {"key": key, "size": size, "action": "overwrite" if overwrites else "restore"}
            opening = '{\n  "objects": [' if not self.count else ","
            sys.stdout.write(f"{opening}\n    {json.dumps(item, ensure_ascii=False)}")
        else:
            from lakeguard.ops.report import human_bytes

            verb = "would overwrite" if overwrites else "would restore"
            echo(f"{verb} {key} ({human_bytes(size)})")
        self.count += 1

    def finish(self, document: dict[str, Any]) -> None:
        """Close the array and write the rest of ``document`` (a --json dry run)."""
        document.pop("objects", None)
        rest = json.dumps(document, indent=2, ensure_ascii=False)[1:].lstrip()
        sys.stdout.write(('{\n  "objects": [' if not self.count else "") + "\n  ],\n  " + rest)
        sys.stdout.write("\n")
        sys.stdout.flush()

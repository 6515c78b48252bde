"""``lakeguard forget --keep-* ...`` and ``lakeguard prune``: retention."""

from __future__ import annotations

import shlex
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer

from lakeguard.cli.context import AppState, echo, note, print_json, state
from lakeguard.cli.repo_access import open_repo
from lakeguard.errors import PartialFailure

if TYPE_CHECKING:
    from lakeguard.ops.forget import ForgetResult
    from lakeguard.ops.prune import PruneResult

RepoOption = Annotated[str | None, typer.Option("--repo", metavar="REPO", help="The repository.")]
DryRunOption = Annotated[bool, typer.Option("--dry-run", help="Say what would go; change nothing.")]
GraceOption = Annotated[
    str,
    typer.Option(
        "--grace",
        metavar="D",
        help="A backup without a snapshot header younger than this is taken as running "
        "(its source's unreferenced archives are kept); older, as crashed.",
    ),
]


def _count(help_text: str, name: str) -> Any:
    return typer.Option(name, metavar="N", help=help_text)


def _within(name: str, kind: str) -> Any:
    return typer.Option(
        name,
        metavar="D",
        help=f"Keep {kind} within D of the newest snapshot (D: 30d, 12h, 1y6m; m = months).",
    )


def _grace(text: str) -> timedelta:
    from lakeguard.repository.retention import Duration

    now = datetime.now(UTC)
    return now - Duration.parse(text, what="--grace").before(now)


def _show_prune(app_state: AppState, result: PruneResult) -> None:
    from lakeguard.ops.report import human_bytes

    verb = "would delete" if result.dry_run else "deleted"
    if result.dry_run:
        for archive in result.deleted_archives.items:
            echo(f"would delete {archive}")
    for run in result.in_progress:
        note(
            app_state,
            f"backup {run.id} of {run.source or 'an unknown source'} has no snapshot yet "
            "(running, or crashed less than the grace period ago): what it may reuse is kept",
        )
    for archive, reason in result.deferred.items[:20]:
        note(app_state, f"kept {archive}: {reason}")
    for key, until in result.locked.items[:20]:
        note(app_state, f"kept {key}: under Object Lock until {until:%Y-%m-%d %H:%M:%S}Z")
    for key, error in result.failed.items[:20]:
        note(app_state, f"failed: {key}: {error}")
    echo(
        f"prune: {verb} {result.deleted_archives.count} archive(s) "
        f"({human_bytes(result.deleted_bytes)}), {result.deleted_catalog_files} catalog "
        f"file(s), {result.deleted_manifests} manifest(s), {result.deleted_runs} crashed run "
        f"record(s); {result.referenced_archives} of {result.archives} archive(s) in use by "
        f"{result.snapshots} snapshot(s)"
        + (f"; {result.deferred.count} kept for running backups" if result.deferred.count else "")
    )


def _show_forget(app_state: AppState, result: ForgetResult, repo_url: str) -> None:
    verb = "would remove" if result.dry_run else "removed"
    for group in result.groups:
        echo(f"{group.source}: {result.policy}")
        for header, reasons in group.keep:
            echo(f"  keep    {header.id}  {header.time:%Y-%m-%d %H:%M:%S}  {', '.join(reasons)}")
        for header in group.remove:
            echo(f"  remove  {header.id}  {header.time:%Y-%m-%d %H:%M:%S}")
    for item in result.damaged_named:
        echo(f"  remove  {item.id}  (header damaged: {item.error})")
    for item in result.damaged_left:
        note(
            app_state,
            f"warning: {item.error}: not considered by the policy; remove it with "
            f"'lakeguard forget --repo {shlex.quote(repo_url)} {item.id}' or put back a good "
            f"copy of snapshots/{item.id}.json",
        )
    for tags in result.unmatched_tags:
        note(app_state, f"warning: no snapshot has the tag(s) {tags}: --keep-tag {tags} kept none")
    for snapshot_id, until in result.locked:
        note(
            app_state,
            f"kept {snapshot_id}: under Object Lock until {until:%Y-%m-%d %H:%M:%S}Z",
        )
    for snapshot_id, error in result.failed:
        note(app_state, f"failed: {snapshot_id}: {error}")
    echo(f"forget: {verb} {len(result.removed)} snapshot(s), kept {result.kept}")


def _raise_for(locked: int, failed: int, what: str) -> None:
    if failed:
        raise PartialFailure(f"{failed} {what} could not be deleted (see the report)")
    if locked:
        raise PartialFailure(
            f"{locked} {what} under Object Lock were kept: prune again after their "
            "retain-until date"
        )


def register(app: typer.Typer) -> None:
    @app.command("forget")
    def forget_cmd(
        ctx: typer.Context,
        snapshots: Annotated[
            list[str] | None,
            typer.Argument(
                metavar="[SNAPSHOT]...",
                help="Forget these snapshots: ids, unique prefixes or random tails, or "
                "'latest'. A snapshot whose header is damaged can be named (that is the remedy).",
            ),
        ] = None,
        repo: RepoOption = None,
        keep_last: Annotated[int, _count("Keep the N newest snapshots.", "--keep-last")] = 0,
        keep_hourly: Annotated[
            int, _count("Keep the newest snapshot of each of the N last hours.", "--keep-hourly")
        ] = 0,
        keep_daily: Annotated[
            int, _count("Keep the newest of each of the N last days.", "--keep-daily")
        ] = 0,
        keep_weekly: Annotated[
            int, _count("Keep the newest of each of the N last ISO weeks.", "--keep-weekly")
        ] = 0,
        keep_monthly: Annotated[
            int, _count("Keep the newest of each of the N last months.", "--keep-monthly")
        ] = 0,
        keep_yearly: Annotated[
            int, _count("Keep the newest of each of the N last years.", "--keep-yearly")
        ] = 0,
        keep_within: Annotated[str | None, _within("--keep-within", "every snapshot")] = None,
        keep_within_hourly: Annotated[
            str | None, _within("--keep-within-hourly", "the newest of each hour")
        ] = None,
        keep_within_daily: Annotated[
            str | None, _within("--keep-within-daily", "the newest of each day")
        ] = None,
        keep_within_weekly: Annotated[
            str | None, _within("--keep-within-weekly", "the newest of each week")
        ] = None,
        keep_within_monthly: Annotated[
            str | None, _within("--keep-within-monthly", "the newest of each month")
        ] = None,
        keep_within_yearly: Annotated[
            str | None, _within("--keep-within-yearly", "the newest of each year")
        ] = None,
        keep_tag: Annotated[
            list[str] | None,
            typer.Option(
                "--keep-tag",
                metavar="T[,T]",
                help="Keep snapshots with all these tags (repeatable: any of the lists).",
            ),
        ] = None,
        source: Annotated[
            str | None,
            typer.Option("--source", metavar="LOC", help="Only snapshots of this location."),
        ] = None,
        dry_run: DryRunOption = False,
        prune_after: Annotated[
            bool, typer.Option("--prune", help="Then delete the data no snapshot references.")
        ] = False,
        grace: GraceOption = "24h",
    ) -> None:
        """Remove snapshots by a retention policy (restic's rules, per source, in UTC).

        N = -1 keeps all of a kind. A snapshot is kept when any rule keeps it.
        Snapshots under Object Lock are kept and reported (exit 4). Bad policy
        arguments: exit 2. A policy leaves snapshots with a damaged header alone
        and warns (name them to forget them). --dry-run --prune previews prune as
        if the snapshots were gone. --json: {"dry_run", "policy", "groups":
        [{"source", "keep": [{"id", "time", "tags", "reasons"}], "remove": [{"id",
        "time", "tags"}]}], "removed": [ids], "kept", "locked": [{"id",
        "retain_until"}], "failed": [{"id", "error"}], "unmatched_tags": [tags],
        "damaged": [{"id", "time", "error", "named"}], "prune": null | <prune's JSON>}.
        """
        from lakeguard.ops.forget import forget
        from lakeguard.ops.snapshots import source_filter
        from lakeguard.repository.retention import Duration, RetentionPolicy

        def within(text: str | None, name: str) -> Duration:
            return Duration.parse(text, what=name) if text is not None else Duration()

        policy = RetentionPolicy(
            last=keep_last,
            hourly=keep_hourly,
            daily=keep_daily,
            weekly=keep_weekly,
            monthly=keep_monthly,
            yearly=keep_yearly,
            within=within(keep_within, "--keep-within"),
            within_hourly=within(keep_within_hourly, "--keep-within-hourly"),
            within_daily=within(keep_within_daily, "--keep-within-daily"),
            within_weekly=within(keep_within_weekly, "--keep-within-weekly"),
            within_monthly=within(keep_within_monthly, "--keep-within-monthly"),
            within_yearly=within(keep_within_yearly, "--keep-within-yearly"),
            tags=RetentionPolicy.tag_lists(keep_tag or []),
        )
        grace_delta = _grace(grace)  # a bad --grace fails before anything is removed
        app_state = state(ctx)
        repository = open_repo(app_state, repo)
        result = forget(
            repository,
            policy,
            snapshot_ids=snapshots or [],
            source=source_filter(source),
            dry_run=dry_run,
        )
        pruned = None
        if prune_after:
            from lakeguard.ops.prune import prune

            # A dry run removed nothing: prune takes what forget would remove as gone.
            pruned = prune(
                repository,
                dry_run=dry_run,
                grace=grace_delta,
                concurrency=app_state.settings.concurrency,
                forgotten=result.removed if dry_run else (),
            )
        if app_state.json:
            print_json({**result.to_json(), "prune": pruned.to_json() if pruned else None})
        else:
            _show_forget(app_state, result, repository.url)
            if pruned is not None:
                _show_prune(app_state, pruned)
        locked = len(result.locked) + (pruned.locked.count if pruned else 0)
        failed = len(result.failed) + (pruned.failed.count if pruned else 0)
        _raise_for(locked, failed, "snapshot(s) or file(s)")

    @app.command("prune")
    def prune_cmd(
        ctx: typer.Context,
        repo: RepoOption = None,
        dry_run: DryRunOption = False,
        grace: GraceOption = "24h",
    ) -> None:
        """Delete archives, catalog files and manifests no snapshot references.

        Archives a running backup may reuse are kept (no lock files: a backup
        without a snapshot header younger than --grace counts as running, unless
        it recorded that it failed before writing any archive). While a snapshot
        header cannot be read, prune deletes nothing (exit 3, naming the remedy).
        Objects under Object Lock are never deleted: they are reported with their
        retain-until date and the exit code is 4. --json: {"dry_run",
        "grace_hours", "snapshots", "archives", "referenced_archives", "deleted":
        {"archives", "bytes", "catalog_files", "manifests", "runs"},
        "deleted_archives": [keys], "in_progress": [{"id", "source", "started"}],
        "deferred": [{"archive", "reason"}], "locked": [{"key", "retain_until"}],
        "failed": [{"key", "error"}], "seconds"}.
        """
        grace_delta = _grace(grace)
        app_state = state(ctx)
        repository = open_repo(app_state, repo)
        from lakeguard.ops.prune import prune

        result = prune(
            repository,
            dry_run=dry_run,
            grace=grace_delta,
            concurrency=app_state.settings.concurrency,
        )
        if app_state.json:
            print_json(result.to_json())
        else:
            _show_prune(app_state, result)
        _raise_for(result.locked.count, result.failed.count, "file(s)")

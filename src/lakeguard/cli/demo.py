"""``lakeguard demo``: the restore runbook end to end in the sandbox, with a report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lakeguard.cli.context import echo, note, print_json, state


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo_cmd(
        ctx: typer.Context,
        directory: Annotated[
            Path | None, typer.Option("--dir", help="Sandbox directory (default: the usual one).")
        ] = None,
        work_dir: Annotated[
            Path | None, typer.Option("--work-dir", help="Where inventories are written.")
        ] = None,
        keep: Annotated[
            bool, typer.Option("--keep", help="Leave the sandbox running afterwards.")
        ] = False,
    ) -> None:
        """Write a lake, break it, find what broke, restore it, and prove it.

        history, verify, gaps, then pitr --dry-run, pitr, and verify again.
        """
        from lakeguard.ops.demo import run_demo

        app_state = state(ctx)
        report = run_demo(
            sandbox_dir=directory,
            work_dir=work_dir,
            keep=keep,
            on_step=lambda text: note(app_state, f"-- {text}"),
        )
        if app_state.json:
            print_json(report.to_json())
            return
        lake = report.lake
        echo(f"lakeguard demo on {report.location} ({report.endpoint})")
        echo()
        echo(f"Lake: {lake.objects} objects in {lake.partitions} partitions, {lake.bytes:,} bytes")
        echo(f"Inventory: {report.inventory.objects} objects -> {report.inventory.path}")
        if report.backup:
            b = report.backup
            echo(
                f"Backup: snapshot {b.snapshot_id} in {report.repository}: {b.objects} objects, "
                f"{b.bytes:,} bytes stored as {b.stored_bytes:,} in {b.archives_written} "
                f"archive{'s' if b.archives_written != 1 else ''}"
            )
        incident = report.incident
        echo(
            f"Incident: {len(incident.overwritten)} overwritten, "
            f"{len(incident.deleted)} deleted (dt={incident.deleted_partition}), "
            f"{len(incident.junk)} junk keys"
        )
        sections = [
            ("history", report.history.lines()),
            ("verify --deep", report.verify.lines()),
            ("gaps", report.gaps.lines()),
        ]
        if report.pitr_plan and report.pitr and report.verify_after:
            sections += [
                ("pitr --dry-run", report.pitr_plan.lines()),
                ("pitr --delete-newer", report.pitr.lines()),
                ("verify --deep, after the restore", report.verify_after.lines()),
            ]
        for title, result in (
            ("restore latest (the backup from before the incident)", report.restore),
            ("restore latest --include ONE_FILE", report.restore_one),
        ):
            if result is not None:
                sections.append(
                    (
                        title,
                        [
                            f"restored {result.restored} "
                            f"object{'s' if result.restored != 1 else ''} "
                            f"({result.bytes:,} bytes) "
                            f"into {result.target}, SHA-256 verified: {result.verified}, "
                            f"failed: {len(result.failed)}"
                        ],
                    )
                )
        for title, lines in sections:
            echo()
            echo(f"== {title}")
            for line in lines:
                echo(line)
        echo()
        echo("Timings: " + ", ".join(f"{name} {seconds:.1f}s" for name, seconds in report.steps))

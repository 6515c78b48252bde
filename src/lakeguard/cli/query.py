"""``lakeguard query --repo REPO "SQL"``: DuckDB over snapshots, objects and the catalog."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from lakeguard.cli.context import note, state
from lakeguard.cli.repo_access import open_repo


def register(app: typer.Typer) -> None:
    @app.command("query")
    def query_cmd(
        ctx: typer.Context,
        sql: Annotated[str, typer.Argument(metavar="SQL", help="A DuckDB SQL query.")],
        repo: Annotated[
            str | None, typer.Option("--repo", metavar="REPO", help="The repository.")
        ] = None,
    ) -> None:
        """Run SQL over the repository (DuckDB, on a local cache of its metadata).

        Views: snapshots (id, time, finished, source, source_bucket, source_prefix,
        hostname, tags, parent, objects, bytes, new_objects, new_bytes, reused_objects,
        archives_written, stored_bytes, failed, duration_s, manifest); objects (every
        manifest row: snapshot_id, key, size, etag, sha256, version_id, last_modified,
        storage_class, content_type, metadata, archive, member, frame_offset,
        frame_length); catalog (the JSONL catalog: backup_file, backup_timestamp,
        backup_date, source_bucket, source_prefix, object_name, object_path,
        object_size, creation_time, creation_date, target_buckets, sha256, etag,
        version_id, snapshot_id, archive, and the year/month/day partitions).

        Manifests and catalog files are cached under $XDG_CACHE_HOME/lakeguard/<repo-id>
        and only new ones are downloaded. --json: a list of row objects (valid JSON:
        NaN and infinite floats become null). Bad SQL: exit 2. A damaged manifest
        fails the queries that read objects (exit 3, naming the remedy); the other
        views still answer.
        """
        from lakeguard.ops.query import query, write_json, write_table

        app_state = state(ctx)
        repository = open_repo(app_state, repo)
        with query(repository, sql, concurrency=app_state.settings.concurrency) as result:
            if app_state.json:
                write_json(result, sys.stdout)
            else:
                write_table(result, sys.stdout)
            stats = result.stats
        if app_state.verbose:
            note(
                app_state,
                f"cache: {stats.headers_fetched} header(s), {stats.manifests_fetched} "
                f"manifest(s), {stats.catalog_fetched} catalog file(s) downloaded",
            )

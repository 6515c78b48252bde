"""The catalog: one JSONL file per archive, date-partitioned (docs/format.md, "Catalog").

The partitioning (``year=/month=/day=``) and the seed-compatible field names
are what Athena/Glue crawlers expect; lakeguard's own ``query`` reads the same
files with DuckDB.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from lakeguard.repository.layout import (
    ARCHIVE_SUFFIX,
    SourceRef,
    archive_id_of,
    archive_run,
    snapshot_id_time,
)
from lakeguard.repository.manifest import ManifestRow
from lakeguard.timeparse import iso

if TYPE_CHECKING:
    from lakeguard.repository.repo import Repository


def catalog_target(repo: Repository) -> str:
    """What ``target_buckets`` names: the repository's bucket, or a local repository's path."""
    location = repo.location
    if location.scheme == "file":
        return str(location)
    return location.root


def catalog_records(
    rows: Iterable[ManifestRow],
    *,
    source: SourceRef,
    archive: str,
    snapshot_id: str,
    target: str,
) -> Iterator[dict[str, Any]]:
    """The catalog records of the rows stored in one archive (``archive``: repo-relative key)."""
    archive_id = archive_id_of(archive)
    started = snapshot_id_time(archive_run(archive_id))
    for row in rows:
        modified: datetime | None = row.last_modified
        yield {
            "backup_file": f"{archive_id}{ARCHIVE_SUFFIX}",
            "backup_timestamp": int(started.timestamp()),
            "backup_date": started.date().isoformat(),
            "source_bucket": source.bucket,
            "source_prefix": source.prefix,
            "object_name": row.key,
            "object_path": source.prefix + row.key,
            "object_size": row.size,
            "creation_time": iso(modified),
            "creation_date": modified.date().isoformat() if modified else None,
            "target_buckets": [target],
            "sha256": row.sha256,
            "etag": row.etag,
            "version_id": row.version_id,
            "snapshot_id": snapshot_id,
            "archive": archive,
        }


def catalog_jsonl(records: Iterable[dict[str, Any]]) -> bytes:
    return b"".join(
        (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
        for record in records
    )


def write_catalog(
    repo: Repository,
    *,
    source: SourceRef,
    archive: str,
    rows: Iterable[ManifestRow],
    snapshot_id: str,
) -> str:
    """Write the catalog file of one archive; returns its repository-relative key."""
    relative = repo.layout.catalog(source, archive_id_of(archive))
    body = catalog_jsonl(
        catalog_records(
            rows,
            source=source,
            archive=archive,
            snapshot_id=snapshot_id,
            target=catalog_target(repo),
        )
    )
    repo.write(relative, body, content_type="application/x-ndjson")
    return relative

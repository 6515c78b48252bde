"""Reading the catalog: listing its files, parsing them, and its SQL shape (docs/format.md).

The catalog is one JSONL file per archive under
``catalog/<source-bucket>/<source-prefix>/year=YYYY/month=MM/day=DD/``. Files
are written once (catalog_writer.py) and only prune removes them, with their
archive. ``query`` reads a local copy of them (cache.py) with DuckDB, typed by
``CATALOG_COLUMNS`` so that an empty field or an older file without the
lakeguard-only fields still reads.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from lakeguard.errors import OperationalError
from lakeguard.repository.layout import CATALOG, CATALOG_SUFFIX, archive_id_of

if TYPE_CHECKING:
    from lakeguard.repository.repo import Repository

# DuckDB types of the catalog fields, in the order the format lists them.
CATALOG_COLUMNS: dict[str, str] = {
    "backup_file": "VARCHAR",
    "backup_timestamp": "BIGINT",
    "backup_date": "DATE",
    "source_bucket": "VARCHAR",
    "source_prefix": "VARCHAR",
    "object_name": "VARCHAR",
    "object_path": "VARCHAR",
    "object_size": "BIGINT",
    "creation_time": "TIMESTAMPTZ",
    "creation_date": "DATE",
    "target_buckets": "VARCHAR[]",
    "sha256": "VARCHAR",
    "etag": "VARCHAR",
    "version_id": "VARCHAR",
    "snapshot_id": "VARCHAR",
    "archive": "VARCHAR",
}
# The date partitions of the path, as Athena/Glue see them.
PARTITION_COLUMNS: dict[str, str] = {"year": "INTEGER", "month": "INTEGER", "day": "INTEGER"}


@dataclass(frozen=True, slots=True)
class CatalogFile:
    """One catalog file: its key relative to the repository, and what the key says."""

    relative: str
    size: int
    last_modified: datetime | None = None

    @property
    def archive_id(self) -> str:
        return archive_id_of(self.relative)

    @property
    def folder(self) -> str:
        """``<source-bucket>/<source-prefix>/``: the source's catalog folder."""
        body = self.relative[len(CATALOG) :]
        marker = body.find("year=")
        return body[:marker] if marker >= 0 else body.rsplit("/", 1)[0] + "/"


def is_catalog_key(relative: str) -> bool:
    """Whether a repository-relative key is a catalog file lakeguard wrote.

    Keys with empty, ``.`` or ``..`` segments are not: nothing lakeguard writes
    has them, and a local cache must never follow them out of its folder.
    """
    if not relative.startswith(CATALOG) or not relative.endswith(CATALOG_SUFFIX):
        return False
    segments = relative.split("/")
    return all(part not in {"", ".", ".."} for part in segments) and "\x00" not in relative


def list_catalog(repo: Repository) -> Iterator[CatalogFile]:
    """Every catalog file of the repository, in key order."""
    prefix = repo.key(CATALOG)
    for info in repo.store.list(prefix):
        relative = repo.layout.relative(info.key)
        if is_catalog_key(relative):
            yield CatalogFile(relative, info.size, info.last_modified)


def read_catalog(data: bytes, *, where: str = "catalog file") -> Iterator[dict[str, Any]]:
    """The records of one catalog file (OperationalError naming the line when damaged)."""
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise OperationalError(f"{where}, line {number}: not JSON ({exc})") from None
        if not isinstance(record, dict):
            raise OperationalError(f"{where}, line {number}: not a JSON object")
        yield record


def columns_sql() -> str:
    """The ``columns=`` argument of DuckDB's ``read_json`` for catalog files."""
    return "{" + ", ".join(f"'{name}': '{kind}'" for name, kind in CATALOG_COLUMNS.items()) + "}"


def partitions_sql() -> str:
    """The ``hive_types=`` argument: year, month, day as integers."""
    return "{" + ", ".join(f"'{name}': '{kind}'" for name, kind in PARTITION_COLUMNS.items()) + "}"

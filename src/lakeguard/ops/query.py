"""``query``: SQL over the repository with DuckDB, on local copies (repository/cache.py).

    cache.sync()        headers, manifests, catalog files not seen before
    DuckDB views
      snapshots         one row per snapshot: id, time, finished, source, ..., tags, stats
      objects           every manifest row, with its snapshot_id first
      catalog           the JSONL catalog, typed (repository/catalog.py), plus the
                        year/month/day partitions of its path
    the result streams out as Arrow record batches: rendered as JSON rows or a table

A query never changes the repository: the views read local files only.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from lakeguard import duck
from lakeguard.errors import LakeguardError, OperationalError, UsageError
from lakeguard.repository.cache import CacheView, RepoCache, SyncStats
from lakeguard.repository.catalog import (
    CATALOG_COLUMNS,
    PARTITION_COLUMNS,
    columns_sql,
    partitions_sql,
)
from lakeguard.repository.layout import CATALOG_SUFFIX
from lakeguard.repository.manifest import manifest_schema
from lakeguard.repository.repo import Repository
from lakeguard.repository.snapshot import SnapshotHeader, SnapshotStats
from lakeguard.timeparse import iso

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

BATCH_ROWS = 4096
TABLE_BLOCK = 500  # rows per block of the text table (widths are set per block)
VIEWS = ("snapshots", "objects", "catalog")


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def snapshots_table(headers: list[SnapshotHeader]) -> pa.Table:
    """The ``snapshots`` view's rows."""
    import pyarrow as pa

    stats = list(SnapshotStats.__dataclass_fields__)
    stamp = pa.timestamp("us", tz="UTC")
    schema = pa.schema(
        [
            ("id", pa.string()),
            ("time", stamp),
            ("finished", stamp),
            ("source", pa.string()),
            ("source_bucket", pa.string()),
            ("source_prefix", pa.string()),
            ("hostname", pa.string()),
            ("tags", pa.list_(pa.string())),
            ("parent", pa.string()),
            *[(name, pa.float64() if name == "duration_s" else pa.int64()) for name in stats],
            ("manifest", pa.string()),
        ]
    )
    rows = [
        {
            "id": h.id,
            "time": h.time,
            "finished": h.finished,
            "source": h.source,
            "source_bucket": h.source_bucket,
            "source_prefix": h.source_prefix,
            "hostname": h.hostname,
            "tags": list(h.tags),
            "parent": h.parent,
            **{name: getattr(h.stats, name) for name in stats},
            "manifest": h.manifest,
        }
        for h in headers
    ]
    return pa.Table.from_pylist(rows, schema=schema)


def _objects_view(
    con: duckdb.DuckDBPyConnection, manifests: list[Path], damage: str | None = None
) -> None:
    """The ``objects`` view; with ``damage`` (a manifest could not be read) a query
    that reads the view fails with that message, other views stay usable."""
    import pyarrow as pa

    name = "objects_readable" if damage else "objects"
    if not manifests:
        schema = manifest_schema()
        empty = pa.schema([pa.field("snapshot_id", pa.string()), *schema]).empty_table()
        con.register(name, empty)
    else:
        files = "[" + ", ".join(_quote(str(path)) for path in manifests) + "]"
        con.execute(
            f"CREATE VIEW {name} AS SELECT "
            "regexp_extract(filename, '([^/\\\\]+)\\.parquet$', 1) AS snapshot_id, "
            f"* EXCLUDE (filename) FROM read_parquet({files}, filename = true)"
        )
    if damage:
        # error() in a one-row filter: raised when the view is read, never folded away
        con.execute(
            "CREATE VIEW objects AS SELECT o.* FROM "
            f"(SELECT 1 AS one WHERE error({_quote(damage)}) IS NULL) AS d, objects_readable o"
        )


def _catalog_view(con: duckdb.DuckDBPyConnection, catalog_dir: Path) -> None:
    if next(catalog_dir.rglob(f"*{CATALOG_SUFFIX}"), None) is None:
        columns = {**CATALOG_COLUMNS, **PARTITION_COLUMNS}
        nulls = ", ".join(f"NULL::{kind} AS {name}" for name, kind in columns.items())
        con.execute(f"CREATE VIEW catalog AS SELECT {nulls} WHERE false")
        return
    pattern = _quote(f"{catalog_dir}/**/*{CATALOG_SUFFIX}")
    con.execute(
        f"CREATE VIEW catalog AS SELECT * FROM read_json({pattern}, "
        f"format = 'newline_delimited', columns = {columns_sql()}, "
        f"hive_partitioning = true, hive_types = {partitions_sql()})"
    )


def connect(view: CacheView, *, spill: Path | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the three views over the cached files."""
    con = duck.connect(spill)
    con.execute("SET TimeZone = 'UTC'")
    con.register("snapshots", snapshots_table(view.headers))
    readable = [view.manifests[h.id] for h in view.headers if h.id in view.manifests]
    _objects_view(con, readable, _damage(view))
    _catalog_view(con, view.catalog_dir)
    return con


@dataclass(slots=True)
class QueryResult:
    """Columns and a one-shot stream of record batches; close() when done."""

    columns: list[str]
    batches: Iterator[pa.RecordBatch]
    stats: SyncStats = field(default_factory=SyncStats)
    _con: Any = None

    def rows(self) -> Iterator[dict[str, Any]]:
        for batch in self.batches:
            yield from batch.to_pylist()

    def tuples(self) -> Iterator[tuple[Any, ...]]:
        """Rows by position (column names may repeat in SQL)."""
        for batch in self.batches:
            yield from zip(*(column.to_pylist() for column in batch.columns), strict=True)

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

    def __enter__(self) -> QueryResult:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _damage(view: CacheView) -> str | None:
    """The error a query reading ``objects`` gets while a manifest cannot be read."""
    if not view.damaged_manifests:
        return None
    first = min(view.damaged_manifests)
    more = len(view.damaged_manifests) - 1
    return view.damaged_manifests[first] + (
        f" ({more} other manifest(s) damaged too)" if more else ""
    )


def _failure(exc: Exception, damage: str | None) -> LakeguardError:
    """A DuckDB error as lakeguard's: the damaged-manifest guard (exit 3), else bad SQL."""
    if damage is not None and damage in str(exc):
        return OperationalError(damage)
    return UsageError(f"query failed: {_first_line(exc)}")


def _guarded(reader: Any, damage: str | None) -> Iterator[pa.RecordBatch]:
    import duckdb

    try:
        yield from reader
    except duckdb.Error as exc:
        raise _failure(exc, damage) from None


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def query(
    repo: Repository,
    sql: str,
    *,
    cache_dir: Path | None = None,
    concurrency: int = 16,
) -> QueryResult:
    """Run ``sql`` over the views ``snapshots``, ``objects`` and ``catalog``.

    Bad SQL (syntax, unknown column) is a UsageError naming DuckDB's reason.
    While a manifest cannot be read, a query reading ``objects`` raises
    OperationalError naming it and the remedy; the other views still answer.
    """
    import duckdb

    if not sql.strip():
        raise UsageError('empty query: give SQL such as "SELECT * FROM snapshots"')
    cache = RepoCache(repo, cache_dir, concurrency=concurrency)
    view = cache.sync(tolerate_damage=True)
    damage = _damage(view)
    con = connect(view, spill=cache.root / "duckdb-spill")
    try:
        relation = con.sql(sql)
        if relation is None:  # a statement without rows (SET, CREATE ...)
            con.close()
            return QueryResult([], iter(()), view.stats)
        reader = relation.to_arrow_reader(BATCH_ROWS)
        columns = list(reader.schema.names)
    except duckdb.Error as exc:
        con.close()
        raise _failure(exc, damage) from None
    return QueryResult(columns, _guarded(reader, damage), view.stats, con)


# -- rendering (shared by the CLI and tests) ---------------------------------------


def json_value(value: Any) -> Any:
    """A query value as JSON: times ISO-8601 UTC, decimals as numbers, bytes as hex,
    NaN and infinities as null (JSON has no such numbers)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime):
        return iso(value) if value.tzinfo is not None else value.isoformat()
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):  # sum() of integers is HUGEINT: a decimal with no places
        if not value.is_finite():
            return None
        return int(value) if value == value.to_integral_value() else json_value(float(value))
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    return value


def write_json(result: QueryResult, out: IO[str]) -> int:
    """The rows as one JSON array of objects, streamed; returns the row count."""
    count = 0
    out.write("[")
    for row in result.rows():
        out.write(",\n  " if count else "\n  ")
        out.write(json.dumps(json_value(row), ensure_ascii=False, allow_nan=False))
        count += 1
    out.write("\n]\n" if count else "]\n")
    return count


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # the table shows them as DuckDB does: inf, -inf, nan
    rendered = json_value(value)
    if isinstance(rendered, list | dict):
        return json.dumps(rendered, ensure_ascii=False)
    return str(rendered)


def write_table(result: QueryResult, out: IO[str]) -> int:
    """The rows as an aligned text table (widths per block of rows); returns the count."""
    if not result.columns:
        return 0
    count = 0
    block: list[list[str]] = []

    def flush(header: bool) -> None:
        cells = [list(result.columns), *block] if header else block
        widths = [max(len(row[i]) for row in cells) for i in range(len(result.columns))]
        if header:
            titles = (c.ljust(w) for c, w in zip(cells[0], widths, strict=True))
            out.write("  ".join(titles).rstrip() + "\n")
            out.write("  ".join("-" * w for w in widths) + "\n")
            cells = cells[1:]
        for row in cells:
            out.write("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
            out.write("\n")

    first = True
    for row in result.tuples():
        block.append([_cell(value) for value in row])
        count += 1
        if len(block) >= TABLE_BLOCK:
            flush(first)
            first, block = False, []
    if block or first:
        flush(first)
    out.write(f"({count:,} row{'s' if count != 1 else ''})\n")
    return count

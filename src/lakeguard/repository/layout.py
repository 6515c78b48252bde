"""Where everything lives in a repository, and how ids are made (docs/format.md).

::

    lakeguard-repo.json                                  RepoConfig (repo.py)
    runs/<snapshot-id>.json                              a backup run began
    runs/<snapshot-id>.failed.json                       ... and failed (no header will come)
    snapshots/<snapshot-id>.json                         SnapshotHeader, written last
    manifests/<snapshot-id>.parquet                      one row per object
    archives/<yyyy>/<mm>/<dd>/<archive-id>.tar.zst       seekable tar.zst
    catalog/<source-bucket>/<source-prefix>/year=YYYY/month=MM/day=DD/<archive-id>.tar.zst.jsonl

A snapshot id is ``YYYYMMDDTHHMMSSZ-<8 hex>`` (UTC start time, random tail),
so ids sort by time. An archive id is ``<snapshot-id>-<6-digit sequence>`` of
the run that wrote it, and the archive's date folder is the run's start date:
the archives of one run are exactly the keys under
``archives/<yyyy>/<mm>/<dd>/<snapshot-id>-``.

Keys here are relative to the repository folder; ``RepoLayout.key`` adds the
folder's prefix within its store.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from lakeguard.location import Location

FORMAT_VERSION = 1
CONFIG_NAME = "lakeguard-repo.json"
SNAPSHOTS = "snapshots/"
MANIFESTS = "manifests/"
ARCHIVES = "archives/"
CATALOG = "catalog/"
RUNS = "runs/"
RUN_FAILED_SUFFIX = ".failed.json"
ARCHIVE_SUFFIX = ".tar.zst"
CATALOG_SUFFIX = ".tar.zst.jsonl"
MANIFEST_MEMBER = "manifest.json"

SNAPSHOT_ID_RE = re.compile(r"^(\d{8}T\d{6}Z)-([0-9a-f]{8})$")
ARCHIVE_ID_RE = re.compile(r"^(\d{8}T\d{6}Z-[0-9a-f]{8})-(\d{6})$")
_ID_TIME = "%Y%m%dT%H%M%SZ"


def new_snapshot_id(now: datetime | None = None) -> str:
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{moment.strftime(_ID_TIME)}-{secrets.token_hex(4)}"


def is_snapshot_id(text: str) -> bool:
    return SNAPSHOT_ID_RE.match(text) is not None


def snapshot_id_time(snapshot_id: str) -> datetime:
    """The UTC start time encoded in a snapshot (or archive) id."""
    stamp = snapshot_id[:16]
    return datetime.strptime(stamp, _ID_TIME).replace(tzinfo=UTC)


def archive_id(snapshot_id: str, sequence: int) -> str:
    return f"{snapshot_id}-{sequence:06d}"


def archive_run(archive_id_text: str) -> str:
    """The snapshot id of the run that wrote an archive."""
    match = ARCHIVE_ID_RE.match(archive_id_text)
    if match is None:
        raise ValueError(f"not an archive id: {archive_id_text!r}")
    return match.group(1)


def archive_id_of(key: str) -> str:
    """The archive id in an archive (or catalog) key."""
    name = key.rsplit("/", 1)[-1]
    for suffix in (CATALOG_SUFFIX, ARCHIVE_SUFFIX):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    raise ValueError(f"not an archive key: {key!r}")


@dataclass(frozen=True, slots=True)
class SourceRef:
    """The backed-up location as the formats record it.

    ``url`` identifies the source for incremental backups ("the same source").
    ``bucket``/``prefix`` feed the catalog path and its seed-compatible fields;
    for a local directory the bucket is ``file`` and the prefix its absolute
    path without the leading ``/``.
    """

    url: str
    bucket: str
    prefix: str  # "" or ending in "/"

    @classmethod
    def of(cls, location: Location) -> SourceRef:
        if location.scheme == "file":
            path = location.root.strip("/")
            folder = f"{path}/" if path else ""
            return cls(str(location).rstrip("/") + "/", "file", folder + location.prefix)
        return cls(str(location), location.root, location.prefix)


def _date_folder(snapshot_id: str) -> str:
    moment = snapshot_id_time(snapshot_id)
    return f"{moment:%Y}/{moment:%m}/{moment:%d}/"


@dataclass(frozen=True, slots=True)
class RepoLayout:
    """Keys of a repository's files; ``prefix`` is the repository's folder in its store."""

    prefix: str = ""

    def key(self, relative: str) -> str:
        return self.prefix + relative

    def relative(self, key: str) -> str:
        return key[len(self.prefix) :] if key.startswith(self.prefix) else key

    @property
    def config(self) -> str:
        return CONFIG_NAME

    def snapshot(self, snapshot_id: str) -> str:
        return f"{SNAPSHOTS}{snapshot_id}.json"

    def manifest(self, snapshot_id: str) -> str:
        return f"{MANIFESTS}{snapshot_id}.parquet"

    def run(self, snapshot_id: str) -> str:
        return f"{RUNS}{snapshot_id}.json"

    def run_failed(self, snapshot_id: str) -> str:
        """Written by a run that failed cleanly: it writes nothing more, and no header."""
        return f"{RUNS}{snapshot_id}{RUN_FAILED_SUFFIX}"

    def archive(self, archive_id_text: str) -> str:
        run = archive_run(archive_id_text)
        return f"{ARCHIVES}{_date_folder(run)}{archive_id_text}{ARCHIVE_SUFFIX}"

    def run_archives(self, snapshot_id: str) -> str:
        """The prefix under which every archive of one run lies."""
        return f"{ARCHIVES}{_date_folder(snapshot_id)}{snapshot_id}-"

    def catalog(self, source: SourceRef, archive_id_text: str) -> str:
        moment = snapshot_id_time(archive_run(archive_id_text))
        return (
            f"{CATALOG}{catalog_folder(source)}"
            f"year={moment:%Y}/month={moment:%m}/day={moment:%d}/"
            f"{archive_id_text}{CATALOG_SUFFIX}"
        )


def catalog_folder(source: SourceRef) -> str:
    """``<source-bucket>/<source-prefix>/`` with path-safe segments."""
    segments = [source.bucket, *[part for part in source.prefix.split("/") if part]]
    return "".join(f"{_safe_segment(part)}/" for part in segments)


def _safe_segment(part: str) -> str:
    if part in {".", ".."} or "\x00" in part:
        return "_" + hashlib.sha256(part.encode()).hexdigest()[:16]
    return part


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # one scan in C per key, not a loop per character


def member_name(relative_key: str) -> str:
    """The tar member name of an object: its key, unless plain ``tar -x`` could be hurt.

    Keys with empty, ``.`` or ``..`` segments, a leading ``/``, NUL or control
    characters, and the key ``manifest.json`` itself, become
    ``_unsafe/<sha256 of key>``; manifest.json still maps the member back to
    the exact key. A key ending in ``/`` (a folder marker, which S3 lets carry
    bytes) has an empty last segment: as a regular member named ``x/``, tar
    readers take it for a folder and skip its data.
    """
    unsafe = (
        not relative_key
        or relative_key == MANIFEST_MEMBER  # plain tar -x must not let it clobber ours
        or relative_key.startswith("/")
        or any(part in {"", ".", ".."} for part in relative_key.split("/"))
        or _CONTROL.search(relative_key) is not None
    )
    if unsafe:
        return (
            f"_unsafe/{hashlib.sha256(relative_key.encode('utf-8', 'surrogatepass')).hexdigest()}"
        )
    return relative_key

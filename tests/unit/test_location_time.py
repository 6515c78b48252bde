from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from lakeguard.cli import hoist_global_options
from lakeguard.errors import UsageError
from lakeguard.location import parse_location
from lakeguard.timeparse import iso, parse_date, parse_time


@pytest.mark.parametrize(
    ("text", "scheme", "root", "prefix"),
    [
        ("s3://spark-data", "s3", "spark-data", ""),
        ("s3://spark-data/", "s3", "spark-data", ""),
        ("s3://spark-data/production/fact_table", "s3", "spark-data", "production/fact_table/"),
        ("s3a://spark-data/p/", "s3", "spark-data", "p/"),
        ("memory://m/a/b", "memory", "m", "a/b/"),
    ],
)
def test_parse_location(text: str, scheme: str, root: str, prefix: str) -> None:
    location = parse_location(text)
    assert (location.scheme, location.root, location.prefix) == (scheme, root, prefix)


def test_prefix_names_a_folder() -> None:
    location = parse_location("s3://b-1/p")
    assert location.key("x/y") == "p/x/y"
    assert location.relative("p/x/y") == "x/y"
    assert str(location) == "s3://b-1/p/"


def test_local_paths_are_absolute(tmp_path: object) -> None:
    location = parse_location(f"file://{tmp_path}")
    assert location.scheme == "file" and location.root == str(tmp_path)
    assert parse_location("relative/dir").root.startswith("/")


@pytest.mark.parametrize(
    ("a", "b", "overlap"),
    [
        ("s3://bkt/p", "s3://bkt/p/q", True),
        ("s3://bkt", "s3://bkt/p", True),
        ("s3://bkt/p", "s3://bkt/p", True),
        ("s3://bkt/p", "s3://bkt/pq", False),
        ("s3://bkt/p", "s3://other/p", False),
        ("memory://mem/a", "s3://mem/a", False),
        ("{tmp}/src", "{tmp}/src/inner", True),
        ("{tmp}/src", "file://{tmp}/src/", True),
        ("{tmp}/src", "{tmp}/srcx", False),
        ("{tmp}/src/../src/inner", "{tmp}/src", True),
        ("{tmp}/link/inner", "{tmp}/src", True),  # through a symlink to src
    ],
)
def test_overlapping_locations(tmp_path: Path, a: str, b: str, overlap: bool) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "src")
    first = parse_location(a.format(tmp=tmp_path))
    second = parse_location(b.format(tmp=tmp_path))
    assert first.overlaps(second) is overlap
    assert second.overlaps(first) is overlap


@pytest.mark.parametrize("text", ["ftp://x/y", "gs://bucket", "s3://", "s3://A_B", "s3://ab", ""])
def test_bad_locations_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError):
        parse_location(text)


def test_times_without_zone_are_utc() -> None:
    expected = datetime(2026, 2, 11, 12, 0, tzinfo=UTC)
    assert parse_time("2026-02-11 12:00:00") == expected
    assert parse_time("2026-02-11T12:00:00Z") == expected
    assert parse_time("2026-02-11T14:00:00+02:00") == expected
    assert parse_time("2026-02-11") == datetime(2026, 2, 11, tzinfo=UTC)
    assert iso(expected) == "2026-02-11T12:00:00Z"


@pytest.mark.parametrize("text", ["yesterday", "2026-13-01", "11/02/2026", ""])
def test_malformed_times_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError, match="ISO-8601"):
        parse_time(text)
    with pytest.raises(UsageError):
        parse_date(text)


def test_global_options_after_the_command_are_hoisted() -> None:
    args = [
        "verify",
        "s3://b/p",
        "--json",
        "--against",
        "x.parquet",
        "--endpoint-url",
        "http://h:1",
    ]
    assert hoist_global_options(args) == [
        "--json",
        "--endpoint-url",
        "http://h:1",
        "verify",
        "s3://b/p",
        "--against",
        "x.parquet",
    ]
    assert hoist_global_options(["gaps", "--", "--json"]) == ["gaps", "--", "--json"]


def test_sizes_parse_and_name_what_is_wrong() -> None:
    from lakeguard.sizes import parse_size

    assert parse_size("128MiB") == 128 * 1024**2 and parse_size("1.5k") == 1536
    assert parse_size("64MB") == 64_000_000 and parse_size("4096") == 4096
    with pytest.raises(UsageError, match="unknown unit 'PiB'"):
        parse_size("1PiB")
    with pytest.raises(UsageError, match="use a number with a unit"):
        parse_size("lots")

"""--include/--exclude globs: whole keys, and the folders keys lie in."""

from __future__ import annotations

import pytest

from lakeguard.errors import UsageError
from lakeguard.repository.manifest import KeyFilter

KEYS = [
    "dt=2026-02-10/part-0.parquet",
    "dt=2026-02-11/part-0.parquet",
    "dt=2026-02-11/_SUCCESS",
    "dt=2026-02-11/hour=03/part-1.parquet",
    "dt=2026-02-110/part-0.parquet",
    "top.csv",
]


def _selected(includes: list[str], excludes: list[str] = []) -> list[str]:  # noqa: B006
    key_filter = KeyFilter.of(includes, excludes)
    return [key for key in KEYS if key_filter.matches(key)]


@pytest.mark.parametrize(
    ("includes", "excludes", "expected"),
    [
        ([], [], KEYS),
        (["dt=2026-02-11"], [], KEYS[1:4]),  # a folder named without '/'
        (["dt=2026-02-11/"], [], KEYS[1:4]),
        (["dt=2026-02-1?"], [], KEYS[:4]),  # a glob over folder names
        (["hour=03"], [], []),  # folders match from the top, as keys do
        (["*/hour=03"], [], [KEYS[3]]),
        (["*.csv"], [], ["top.csv"]),
        (["dt=2026-02-11/part-0.parquet"], [], [KEYS[1]]),
        (["dt=2026-02-11"], ["*_SUCCESS"], [KEYS[1], KEYS[3]]),
        ([], ["dt=2026-02-11"], [KEYS[0], KEYS[4], KEYS[5]]),  # a folder excluded whole
        (["dt=2026-02-11/part"], [], []),  # not a folder of any key
    ],
)
def test_globs_select_keys_and_folders(
    includes: list[str], excludes: list[str], expected: list[str]
) -> None:
    assert _selected(includes, excludes) == expected


def test_an_empty_glob_is_refused() -> None:
    with pytest.raises(UsageError, match="empty glob"):
        KeyFilter.of([""])

"""--include/--exclude globs: whole keys, and the folders keys lie in."""

from __future__ import annotations

import fnmatch
import random

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


def _reference_match(key: str, glob: str) -> bool:
    """The rule of KeyFilter's docstring, spelt out with fnmatch per folder."""
    if glob.endswith("/") and key.startswith(glob):
        return True
    if fnmatch.fnmatchcase(key, glob):
        return True
    folder = glob.rstrip("/")
    if not folder:
        return False
    return any(
        fnmatch.fnmatchcase(key[:end], folder) for end, char in enumerate(key) if char == "/"
    )


def test_compiled_globs_select_what_the_rule_selects() -> None:
    """Thousands of random keys and globs from a small alphabet (folders,
    wildcards, classes, trailing slashes): the compiled filter and the rule agree."""
    rng = random.Random(7)
    atoms = ["a", "b", "=", "-", ".", "/", "//", "x1", "[ab]", "[!a]", "*", "?", "**", "dt=1", "]"]

    def text(wild: bool) -> str:
        pieces = atoms if wild else [atom for atom in atoms if atom not in "*?[ab][!a]**"]
        return "".join(rng.choice(pieces) for _ in range(rng.randint(1, 6)))

    keys = sorted({text(False) for _ in range(400)})
    for _ in range(300):
        includes = [text(True) for _ in range(rng.randint(0, 2))]
        excludes = [text(True) for _ in range(rng.randint(0, 1))]
        key_filter = KeyFilter.of(includes, excludes)
        expected = [
            index
            for index, key in enumerate(keys)
            if (not includes or any(_reference_match(key, glob) for glob in includes))
            and not any(_reference_match(key, glob) for glob in excludes)
        ]
        assert key_filter.select(keys) == expected, (includes, excludes)
        assert [i for i, key in enumerate(keys) if key_filter.matches(key)] == expected

"""Byte sizes on the command line: ``128MiB``, ``1GiB``, ``64MB``, ``4096``."""

from __future__ import annotations

import re

from lakeguard.errors import UsageError

_UNITS = {
    "": 1,
    "b": 1,
    "k": 1024,
    "kb": 1000,
    "kib": 1024,
    "m": 1024**2,
    "mb": 1000**2,
    "mib": 1024**2,
    "g": 1024**3,
    "gb": 1000**3,
    "gib": 1024**3,
    "t": 1024**4,
    "tb": 1000**4,
    "tib": 1024**4,
}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def parse_size(text: str, *, what: str = "size") -> int:
    """Bytes in ``text``; binary units (KiB, MiB, GiB, TiB, and bare K/M/G/T) or decimal (KB...)."""
    match = _SIZE_RE.match(text)
    unit = match.group(2).lower() if match else ""
    if match is None:
        raise UsageError(f"invalid {what} {text!r}: use a number with a unit, e.g. 128MiB or 1GiB")
    if unit not in _UNITS:
        raise UsageError(
            f"invalid {what} {text!r}: unknown unit {match.group(2)!r}, "
            "use B, KiB, MiB, GiB, TiB (or KB, MB, GB, TB)"
        )
    return int(float(match.group(1)) * _UNITS[unit])

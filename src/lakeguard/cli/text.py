"""Text that reaches the terminal."""

from __future__ import annotations

import re

# C0 and C1 control characters and DEL: object keys are data, and a key holding
# a newline or a terminal escape must not forge report lines or drive the
# terminal. Every line a command prints is one line by construction.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(char, f"\\x{ord(char):02x}")


def printable(text: str) -> str:
    """``text`` with control characters shown as escapes (``\\n``, ``\\x1b``)."""
    return _CONTROL.sub(_escape, text)

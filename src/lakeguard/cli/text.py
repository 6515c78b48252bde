"""Text that reaches the terminal."""

from __future__ import annotations

import re

# C0 and C1 control characters, DEL, and the bidirectional overrides and
# isolates: object keys are data, and a key holding a newline, a terminal
# escape or a right-to-left override must not forge report lines, drive the
# terminal or show a name other than its own. Every line a command prints is
# one line by construction.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in "\n\r\t":
        return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}[char]
    return f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"


def printable(text: str) -> str:
    """``text`` with control characters shown as escapes (``\\n``, ``\\x1b``)."""
    return _CONTROL.sub(_escape, text)

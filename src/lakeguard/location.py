"""Locations: ``s3://bucket[/prefix]``, a local path, ``file:///path``, ``memory://name[/prefix]``.

A location's prefix names a folder: ``s3://b/p`` covers the keys under ``p/``,
and results relative to a location use keys relative to that folder.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from lakeguard.errors import UsageError

# S3 bucket naming rules (3-63 chars, lowercase, digits, dots, hyphens).
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
_SCHEMES = ("s3", "file", "memory")


@dataclass(frozen=True, slots=True)
class Location:
    """Where data lives. ``root`` is the bucket (s3, memory) or the directory (file)."""

    scheme: str
    root: str
    prefix: str = ""  # "" or a folder ending in "/"

    def __str__(self) -> str:
        if self.scheme == "file":
            base = self.root.rstrip("/") or "/"
            return f"{base}/{self.prefix}" if self.prefix else base
        return f"{self.scheme}://{self.root}/{self.prefix}"

    @property
    def bucket(self) -> str:
        return self.root

    def key(self, relative: str) -> str:
        """The full store key of a key relative to this location."""
        return self.prefix + relative

    def relative(self, key: str) -> str:
        """The key relative to this location's folder (the key itself if outside it)."""
        return key[len(self.prefix) :] if key.startswith(self.prefix) else key

    def overlaps(self, other: Location) -> bool:
        """Whether one location lies inside the other (the same place, or nested).

        Local paths are compared resolved (symlinks followed), so ``src`` and
        ``src/inner`` overlap, as ``s3://b`` and ``s3://b/p`` do. Locations on
        different S3 endpoints cannot be told apart here; callers use one
        endpoint for both sides.
        """
        if self.scheme != other.scheme:
            return False
        if self.scheme == "file":
            mine, theirs = _resolved(self), _resolved(other)
            return mine == theirs or mine in theirs.parents or theirs in mine.parents
        if self.root != other.root:
            return False
        return self.prefix.startswith(other.prefix) or other.prefix.startswith(self.prefix)

    def child(self, relative_folder: str) -> Location:
        folder = relative_folder.strip("/")
        return Location(
            self.scheme, self.root, f"{self.prefix}{folder}/" if folder else self.prefix
        )


def _resolved(location: Location) -> Path:
    return (Path(location.root) / location.prefix).resolve()


def _folder(prefix: str) -> str:
    prefix = prefix.strip("/")
    return f"{prefix}/" if prefix else ""


def parse_location(text: str) -> Location:
    """Parse a location argument; raise ``UsageError`` with a one-line reason."""
    if not text or not text.strip():
        raise UsageError("empty location: give s3://bucket[/prefix] or a local directory")
    if "://" in text:
        scheme, _, rest = text.partition("://")
        scheme = scheme.lower()
        if scheme in {"s3a", "s3n"}:
            scheme = "s3"
        if scheme not in _SCHEMES:
            raise UsageError(
                f"unknown location scheme '{scheme}://' in {text!r}: "
                "use s3://bucket[/prefix] or a local path"
            )
        if scheme == "file":
            return Location("file", str(Path(rest or "/").expanduser().absolute()), "")
        bucket, _, prefix = rest.partition("/")
        if not bucket:
            raise UsageError(f"no bucket in {text!r}: use {scheme}://bucket[/prefix]")
        if scheme == "s3" and not _BUCKET_RE.match(bucket):
            raise UsageError(
                f"invalid bucket name {bucket!r} in {text!r}: "
                "3-63 characters, lowercase letters, digits, '.' and '-'"
            )
        return Location(scheme, bucket, _folder(prefix))
    return Location("file", str(Path(text).expanduser().absolute()), "")

"""Times on the command line: ISO-8601; a time without a zone is UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime

from lakeguard.errors import UsageError


def parse_time(text: str, *, what: str = "time") -> datetime:
    """Parse ``2026-02-11``, ``2026-02-11 12:00:00``, ``2026-02-11T12:00:00Z``, ``...+02:00``.

    Returns an aware datetime in UTC.
    """
    raw = text.strip()
    candidate = raw[:-1] + "+00:00" if raw.endswith(("Z", "z")) else raw
    try:
        parsed = datetime.fromisoformat(candidate)
    except ValueError:
        raise UsageError(
            f"invalid {what} {text!r}: use ISO-8601, e.g. 2026-02-11 or 2026-02-11T12:00:00Z"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00 is before the first representable time
        raise UsageError(f"invalid {what} {text!r}: out of range once converted to UTC") from None


def parse_date(text: str, *, what: str = "date") -> date:
    """Parse ``YYYY-MM-DD`` strictly."""
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"invalid {what} {text!r}: use YYYY-MM-DD, e.g. 2026-02-11") from None


def iso(moment: datetime | None) -> str | None:
    """Render a time as ISO-8601 UTC with a ``Z``, or None."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")

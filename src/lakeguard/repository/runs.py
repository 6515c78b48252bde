"""Run records: ``runs/<id>.json`` when a backup starts, ``runs/<id>.failed.json`` if it fails.

A run record without a snapshot header means "a backup is running, or it
crashed" (prune keeps what it may reuse for the grace period). A run that
fails cleanly knows it will write nothing more, so it says so with a second,
new file instead of deleting its record: writers never delete (Object Lock).
Prune takes a failed run that landed no archive as over at once (nothing of
it to adopt, nothing of its source to keep for it); one that landed archives
stays protected for the grace period, so a re-run can still adopt them.
Readers that do not know ``.failed.json`` skip it: its name is no run id.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

from lakeguard.errors import LakeguardError
from lakeguard.repository.layout import FORMAT_VERSION, RUN_FAILED_SUFFIX, RUNS, is_snapshot_id
from lakeguard.repository.repo import Repository
from lakeguard.timeparse import iso

log = logging.getLogger(__name__)
FAILED_KIND = "lakeguard-run-failed"


@dataclass(slots=True)
class RunListing:
    """The run records in ``runs/`` and which of them recorded a failure."""

    started: set[str] = field(default_factory=set)
    failed: set[str] = field(default_factory=set)


def list_runs(repo: Repository) -> RunListing:
    prefix = repo.key(RUNS)
    listing = RunListing()
    for info in repo.store.list(prefix):
        name = info.key[len(prefix) :]
        if name.endswith(RUN_FAILED_SUFFIX):
            if is_snapshot_id(name[: -len(RUN_FAILED_SUFFIX)]):
                listing.failed.add(name[: -len(RUN_FAILED_SUFFIX)])
        elif name.endswith(".json") and is_snapshot_id(name[:-5]):
            listing.started.add(name[:-5])
    return listing


def record_run_failed(
    repo: Repository, snapshot_id: str, error: BaseException, *, now: datetime | None = None
) -> bool:
    """Record that run ``snapshot_id`` ended without a snapshot; call it only once the
    run writes nothing more. Best effort: False (and a log line) when it cannot be
    written, which leaves the run looking crashed, as before."""
    message = error.message if isinstance(error, LakeguardError) else str(error)
    doc = {
        "kind": FAILED_KIND,
        "format": FORMAT_VERSION,
        "id": snapshot_id,
        "failed": iso((now or datetime.now(UTC)).astimezone(UTC)),
        "error": message.splitlines()[0][:500] if message else type(error).__name__,
    }
    try:
        repo.write(
            repo.layout.run_failed(snapshot_id),
            (json.dumps(doc, indent=2) + "\n").encode(),
            content_type="application/json",
        )
    except LakeguardError as exc:
        log.debug("could not record the failure of run %s: %s", snapshot_id, exc)
        return False
    return True


class RunFailure:
    """Context manager around a backup run: if the body fails with an exception once
    ``armed`` (the run record is written), it records the failure, then lets the
    error propagate. The body must have stopped every writer of the run by then.
    An interrupt (Ctrl-C) is not recorded: the run stays a crashed one, resumable."""

    def __init__(self, repo: Repository, snapshot_id: str) -> None:
        self.repo = repo
        self.snapshot_id = snapshot_id
        self.armed = False

    def __enter__(self) -> RunFailure:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, _tb: object
    ) -> None:
        if self.armed and error is not None and isinstance(error, Exception):
            record_run_failed(self.repo, self.snapshot_id, error)

"""Opening the repository named by ``--repo`` (shared by the repository commands)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lakeguard.cli.context import AppState
from lakeguard.errors import UsageError

if TYPE_CHECKING:
    from lakeguard.repository.repo import Repository


def open_repo(app_state: AppState, text: str | None) -> Repository:
    """The repository at ``text`` (UsageError when missing or not a repository)."""
    from lakeguard.repository.repo import open_repository

    if not text:
        raise UsageError("give the repository with --repo REPO (s3://bucket/prefix or a directory)")
    location, store = app_state.open(text, repository=True)
    return open_repository(store, location)

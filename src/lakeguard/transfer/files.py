"""Downloading to and uploading from local files: one-object copies through a LocalStore."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from lakeguard.storage.base import Store
from lakeguard.storage.local import LocalStore
from lakeguard.transfer.copier import CopyItem, ItemResult
from lakeguard.transfer.engine import copy_objects


def _copy_one(src: Store, dst: Store, item: CopyItem, *, verify: bool) -> ItemResult:
    seen: list[ItemResult] = []
    copy_objects(
        src, dst, [item], concurrency=1, server_side=False, verify=verify, on_item=seen.append
    )
    outcome = seen[0]
    if outcome.exception is not None:
        raise outcome.exception
    return outcome


def download(
    store: Store,
    key: str,
    path: str | os.PathLike[str],
    *,
    version_id: str | None = None,
    verify: bool = True,
) -> ItemResult:
    """Stream ``key`` into the file ``path`` (written whole or not at all) and check it."""
    target = Path(path)
    folder = LocalStore(target.parent)
    folder.create()
    return _copy_one(
        store, folder, CopyItem(key, target.name, src_version_id=version_id), verify=verify
    )


def upload(
    path: str | os.PathLike[str],
    store: Store,
    key: str,
    *,
    content_type: str | None = None,
    metadata: Mapping[str, str] | None = None,
    sha256: str | None = None,
    verify: bool = True,
) -> ItemResult:
    """Stream the file ``path`` to ``key`` and check what the store wrote."""
    source = Path(path)
    item = CopyItem(source.name, key, sha256=sha256, content_type=content_type, metadata=metadata)
    return _copy_one(LocalStore(source.parent), store, item, verify=verify)

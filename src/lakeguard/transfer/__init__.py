"""The transfer engine: concurrent, verified copies between any two stores.

copy_objects(src, dst, items)            engine.py
  for each CopyItem, on a bounded pool:  copier.py
    server-side copy  (same store, or same endpoint; else UnsupportedError)
      -> check: ETag and size against the source's
    else stream: src.get -> SHA-256/MD5/multipart ETag -> dst.put
      -> check the bytes read (size, SHA-256, source ETag) before the
         upload completes, the written ETag after
  -> TransferResult (objects, bytes, seconds, bytes/s, retries, failures)
  -> metrics (lakeguard.metrics), on_item, on_progress

download(store, key, path) / upload(path, store, key)     files.py
adjust_part_size(size, preferred)                          parts.py
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lakeguard.transfer.copier import ChecksumMismatch, CopyItem, ItemResult, TransferCancelled
    from lakeguard.transfer.engine import TransferResult, copy_objects, items_from_listing
    from lakeguard.transfer.files import download, upload
    from lakeguard.transfer.parts import adjust_part_size, part_count

# Names are imported on first use: a backup needs parts.py only, and the
# engine would bring the copier, the metrics and the local store with it
# (about 10 ms of every start).
_WHERE = {
    "ChecksumMismatch": "copier",
    "CopyItem": "copier",
    "ItemResult": "copier",
    "TransferCancelled": "copier",
    "TransferResult": "engine",
    "copy_objects": "engine",
    "items_from_listing": "engine",
    "download": "files",
    "upload": "files",
    "adjust_part_size": "parts",
    "part_count": "parts",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


__all__ = [
    "ChecksumMismatch",
    "CopyItem",
    "ItemResult",
    "TransferCancelled",
    "TransferResult",
    "adjust_part_size",
    "copy_objects",
    "download",
    "items_from_listing",
    "part_count",
    "upload",
]

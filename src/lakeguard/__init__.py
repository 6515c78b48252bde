"""lakeguard: protect and recover data lakes in S3-compatible object stores.

The layers, top to bottom (data flows down, never back up)::

    cli/          parse argv, call one operation, render text or JSON, map errors to exit codes
    ops/          library operations: inventory, verify, gaps, history, ... (typed, keyword-only)
    transfer      concurrent copy/upload/download with in-stream checksums
    storage/      the Store protocol; S3, local and memory stores; retry/fault/limit wrappers

Only ``storage`` talks to boto3 or obstore; only ``cli`` knows about exit codes.
"""

__version__ = "0.1.0"

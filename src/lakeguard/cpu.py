"""One limit on CPU-bound work across threads: as many slots as cores.

Fetches wait on the network, so many run at once (--concurrency); hashing,
compressing and decompressing what was fetched is CPU work, which more
threads than cores only slow down: GIL hand-offs, and each switch evicts the
zstd tables of the thread before from the core's caches. Measured on 2 cores
with 16 fetch threads: the bench lake restored in 5.4-5.5 s with 2 slots,
6.2-6.6 s without a limit.
"""

from __future__ import annotations

import os
import threading

SLOTS = threading.BoundedSemaphore(max(2, os.cpu_count() or 2))

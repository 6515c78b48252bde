"""Producing an upload body on its own thread.

``store.put(key, iterator)`` on S3 hands the iterator to obstore, which pulls
it from inside its async runtime; a body that itself reads through obstore
(an archive built from source objects, a member read from an archive) would
then start a runtime within a runtime, which obstore refuses with a panic.
``pump`` runs the body's iteration on a thread of its own and hands the
chunks over through a small queue, so the uploader only ever waits on a
queue. It also overlaps producing (reading, hashing, compressing) with
uploading.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator

_END = object()


class _Failure:
    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


def pump(
    chunks: Iterable[bytes], *, depth: int = 4, name: str = "lakeguard-pump"
) -> Iterator[bytes]:
    """Iterate ``chunks`` on a helper thread, at most ``depth`` chunks ahead.

    Exceptions raised by ``chunks`` are re-raised in the consumer. When the
    consumer stops early (closes the generator), the producer is stopped and
    ``chunks`` closed on its own thread.
    """
    handoff: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(item: object) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        source = iter(chunks)
        try:
            for chunk in source:
                if not offer(chunk):
                    break
            else:
                offer(_END)
        except BaseException as exc:  # handed to the consumer
            offer(_Failure(exc))
        finally:
            close = getattr(source, "close", None)
            if callable(close):
                close()

    worker = threading.Thread(target=produce, name=name, daemon=True)
    worker.start()
    try:
        while True:
            item = handoff.get()
            if item is _END:
                return
            if isinstance(item, _Failure):
                raise item.error
            assert isinstance(item, bytes | bytearray | memoryview)
            yield bytes(item) if not isinstance(item, bytes) else item
    finally:
        stop.set()
        worker.join()

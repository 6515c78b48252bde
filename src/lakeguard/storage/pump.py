"""Producing items on a thread of their own: upload bodies, listings read ahead.

``store.put(key, iterator)`` on S3 hands the iterator to obstore, which pulls
it from inside its async runtime; a body that itself reads through obstore
(an archive built from source objects, a member read from an archive) would
then start a runtime within a runtime, which obstore refuses with a panic.
``pump`` runs the body's iteration on a thread of its own and hands the
chunks over through a small queue, so the uploader only ever waits on a
queue. It also overlaps producing (reading, hashing, compressing) with
uploading.

``Ahead`` is the same hand-over for any items, started at once: a backup
starts listing its source while it reads the repository's state.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Generic, TypeVar

T = TypeVar("T")
_END = object()


class _Failure:
    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


class Ahead(Generic[T]):
    """Iterates ``items`` on a helper thread from construction, at most ``depth`` ahead.

    Exceptions raised by ``items`` are re-raised in the consumer. ``close()``
    (or leaving the ``with`` block) stops the producer and closes ``items``
    on its own thread, whether or not iteration began.
    """

    def __init__(self, items: Iterable[T], *, depth: int = 4, name: str = "lakeguard-ahead"):
        self._handoff: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._done = False
        self._worker = threading.Thread(target=self._produce, args=(items,), name=name, daemon=True)
        self._worker.start()

    def _offer(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._handoff.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self, items: Iterable[T]) -> None:
        source = iter(items)
        try:
            for item in source:
                if not self._offer(item):
                    break
            else:
                self._offer(_END)
        except BaseException as exc:  # handed to the consumer
            self._offer(_Failure(exc))
        finally:
            close = getattr(source, "close", None)
            if callable(close):
                close()

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        if self._done:
            raise StopIteration
        item = self._handoff.get()
        if item is _END:
            self.close()
            raise StopIteration
        if isinstance(item, _Failure):
            self.close()
            raise item.error
        return item  # type: ignore[return-value]

    def close(self) -> None:
        self._done = True
        self._stop.set()
        self._worker.join()

    def __enter__(self) -> Ahead[T]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def pump(
    chunks: Iterable[bytes], *, depth: int = 4, name: str = "lakeguard-pump"
) -> Iterator[bytes]:
    """Iterate ``chunks`` on a helper thread, at most ``depth`` chunks ahead.

    Exceptions raised by ``chunks`` are re-raised in the consumer. When the
    consumer stops early (closes the generator), the producer is stopped and
    ``chunks`` closed on its own thread.
    """
    with Ahead(chunks, depth=depth, name=name) as ahead:
        for item in ahead:
            assert isinstance(item, bytes | bytearray | memoryview)
            yield bytes(item) if not isinstance(item, bytes) else item


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Lists of up to ``size`` items (itertools.batched arrived in Python 3.12)."""
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch

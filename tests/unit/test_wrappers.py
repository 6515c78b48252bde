"""Retry, fault injection and concurrency limits, on the in-memory store."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from lakeguard.errors import (
    AccessDeniedError,
    EndpointUnreachableError,
    NotFoundError,
    StoreError,
    TransientError,
    UsageError,
)
from lakeguard.location import parse_location
from lakeguard.storage import StoreSettings, open_store
from lakeguard.storage.base import BytesStream, ObjectStream, chunked, read_buffer
from lakeguard.storage.faults import FaultPlan, FaultStore
from lakeguard.storage.memory import MemoryStore
from lakeguard.storage.wrappers import OPS, LimitStore, RetryPolicy, RetryStore

FAST = RetryPolicy(attempts=4, fast=True)
DATA = bytes(range(256)) * 400  # 100 KiB


class Flaky(MemoryStore):
    """Fails its first ``failures`` calls of head with the given error."""

    def __init__(self, error: Exception, failures: int) -> None:
        super().__init__("flaky")
        self.error = error
        self.failures = failures
        self.calls = 0

    def head(self, key: str, *, version_id: str | None = None):  # type: ignore[no-untyped-def]
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return super().head(key, version_id=version_id)


def test_retry_recovers_from_a_thirty_percent_failure_rate() -> None:
    inner = MemoryStore("m")
    for n in range(50):
        inner.put(f"k{n}", DATA[: n + 1])
    faulty = FaultStore(inner, FaultPlan(fail_rate=0.3, seed=7))
    store = RetryStore(faulty, RetryPolicy(attempts=10, fast=True))
    for n in range(50):
        assert store.get_bytes(f"k{n}") == DATA[: n + 1]
        assert store.head(f"k{n}").size == n + 1
        store.put(f"new{n}", b"x" * n)
    assert [i.key for i in store.list("new")] == sorted(f"new{n}" for n in range(50))
    assert faulty.injected > 10
    assert store.retries == faulty.injected


def test_retry_gives_up_after_attempts_with_the_last_error() -> None:
    inner = Flaky(TransientError("throttled: slow down"), failures=100)
    inner.put("k", b"x")
    store = RetryStore(inner, FAST)
    with pytest.raises(TransientError, match="slow down"):
        store.head("k")
    assert inner.calls == 4
    assert store.retries == 3


def test_unreachable_endpoint_is_retried_then_reported() -> None:
    inner = Flaky(EndpointUnreachableError("cannot reach http://127.0.0.1:1"), failures=2)
    inner.put("k", b"x")
    store = RetryStore(inner, FAST)
    assert store.head("k").size == 1
    assert store.retries == 2


@pytest.mark.parametrize(
    "error",
    [
        NotFoundError("no such key"),
        AccessDeniedError("denied"),
        UsageError("bad"),
        KeyboardInterrupt(),
    ],
)
def test_permanent_errors_and_cancellation_are_never_retried(error: BaseException) -> None:
    inner = Flaky(error, failures=100)  # type: ignore[arg-type]
    store = RetryStore(inner, FAST)
    with pytest.raises(type(error)):
        store.head("k")
    assert inner.calls == 1
    assert store.retries == 0


def test_cut_streams_are_resumed_and_bytes_are_equal() -> None:
    inner = MemoryStore("m")
    inner.put("k", DATA)
    faulty = FaultStore(inner, FaultPlan(cut_after=30_000))
    store = RetryStore(faulty, FAST)
    assert store.get_bytes("k") == DATA
    assert store.get_bytes("k", offset=1_000, length=70_000) == DATA[1_000:71_000]
    assert store.retries >= 3
    # Without the retry layer the cut is visible as a transient error.
    with pytest.raises(TransientError, match="cut after 30000"):
        faulty.get_bytes("k")


def test_a_resumed_read_stays_on_the_version_it_started() -> None:
    inner = MemoryStore("m", versioning="Enabled")
    first = inner.put("k", DATA).version_id
    store = RetryStore(FaultStore(inner, FaultPlan(cut_after=40_000)), FAST)
    with store.get("k") as stream:
        chunks = iter(stream)
        head = next(chunks)
        inner.put("k", b"N" * len(DATA))  # a writer replaces the object mid-read
        body = head + b"".join(chunks)
        assert stream.info.version_id == first
    assert body == DATA


def test_a_resumed_read_of_a_replaced_unversioned_object_fails_loudly() -> None:
    inner = MemoryStore("m")
    inner.put("k", DATA)
    store = RetryStore(FaultStore(inner, FaultPlan(cut_after=40_000)), FAST)
    with store.get("k") as stream, pytest.raises(StoreError, match="changed while"):
        chunks = iter(stream)
        next(chunks)
        inner.put("k", b"N" * len(DATA))
        b"".join(chunks)


def test_a_broken_listing_resumes_after_the_last_key() -> None:
    inner = MemoryStore("m", versioning="Enabled")
    for n in range(20):
        inner.put(f"k{n:02d}", b"1")
        inner.put(f"k{n:02d}", b"2")

    calls = {"list": 0, "versions": 0}

    def breaking(source, name):  # type: ignore[no-untyped-def]
        def gen(*args, **kwargs):  # type: ignore[no-untyped-def]
            calls[name] += 1
            for index, item in enumerate(source(*args, **kwargs)):
                if calls[name] == 1 and index == 7:
                    raise TransientError("connection reset")
                yield item

        return gen

    inner.list = breaking(inner.list, "list")  # type: ignore[method-assign]
    inner.list_versions = breaking(inner.list_versions, "versions")  # type: ignore[method-assign]
    store = RetryStore(inner, FAST)
    assert [i.key for i in store.list()] == [f"k{n:02d}" for n in range(20)]
    versions = [(v.key, v.version_id) for v in store.list_versions()]
    assert len(versions) == 40
    assert len(set(versions)) == 40
    assert store.retries == 2


def test_iterable_puts_are_not_replayed() -> None:
    inner = MemoryStore("m")
    faulty = FaultStore(inner, FaultPlan(fail_rate=1.0, ops=frozenset({"put"})))
    store = RetryStore(faulty, FAST)
    with pytest.raises(TransientError):
        store.put("k", iter([b"a", b"b"]))
    assert faulty.injected == 1
    with pytest.raises(TransientError):
        store.put("k", b"ab")
    assert faulty.injected == 5


def test_flip_corrupts_get_streams() -> None:
    inner = MemoryStore("m")
    inner.put("k", DATA)
    store = FaultStore(inner, FaultPlan(flip=1.0, seed=1))
    corrupted = store.get_bytes("k")
    assert len(corrupted) == len(DATA)
    assert corrupted != DATA
    assert sum(a != b for a, b in zip(corrupted, DATA, strict=True)) == 1
    assert inner.get_bytes("k") == DATA


def test_latency_and_ops_selection() -> None:
    slept: list[float] = []
    inner = MemoryStore("m")
    inner.put("k", b"x")
    store = FaultStore(inner, FaultPlan(latency=0.5, ops=frozenset({"head"})), sleep=slept.append)
    store.get_bytes("k")
    assert slept == []
    store.head("k")
    assert slept == [0.5]


def test_fault_plan_parse() -> None:
    plan = FaultPlan.parse("fail=0.1, cut=1000,latency=0.01,flip=1,seed=3,ops=get+put")
    assert plan == FaultPlan(
        fail_rate=0.1,
        cut_after=1000,
        latency=0.01,
        flip=1.0,
        seed=3,
        ops=frozenset({"get", "put"}),
    )
    assert FaultPlan.parse("") == FaultPlan()
    assert FaultPlan.parse("ops=all").ops == OPS


@pytest.mark.parametrize(
    "text", ["fail=2", "fail=x", "cut=-1", "nonsense=1", "fail", "ops=get+fly", "latency=-1"]
)
def test_fault_plan_rejects_bad_text(text: str) -> None:
    with pytest.raises(UsageError, match="fault"):
        FaultPlan.parse(text)


def test_open_store_applies_faults_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    MemoryStore.named("lake").put("k", DATA)
    monkeypatch.setenv("LAKEGUARD_FAULTS", "cut=10000,fail=0.2,seed=5")
    store = open_store(parse_location("memory://lake"), StoreSettings(fast_retry=True, retries=8))
    assert store.get_bytes("k") == DATA
    assert isinstance(store, RetryStore)
    assert store.retries > 0


def test_backoff_grows_and_stays_capped() -> None:
    import random

    policy = RetryPolicy(base_delay=0.1, max_delay=1.0)
    rng = random.Random(0)
    delays = [max(policy.delay(n, rng) for _ in range(200)) for n in range(8)]
    assert delays[0] <= 0.1
    assert 0.5 < delays[3] <= 0.8
    assert all(d <= 1.0 for d in delays)
    assert all(RetryPolicy(fast=True).delay(n, rng) <= 0.005 for n in range(10))


def test_limit_store_bounds_calls_in_flight() -> None:
    active = 0
    peak = 0
    lock = threading.Lock()

    class Slow(MemoryStore):
        def head(self, key: str, *, version_id: str | None = None):  # type: ignore[no-untyped-def]
            nonlocal active, peak
            with lock:
                active += 1
                peak = max(peak, active)
            time.sleep(0.01)
            with lock:
                active -= 1
            return super().head(key, version_id=version_id)

    inner = Slow("slow")
    inner.put("k", b"x")
    store = LimitStore(inner, 3)
    with ThreadPoolExecutor(12) as pool:
        list(pool.map(lambda _: store.head("k"), range(48)))
    assert peak == 3


def test_limit_store_stream_holds_its_slot_until_closed() -> None:
    inner = MemoryStore("m")
    inner.put("k", b"abc")
    store = LimitStore(inner, 1)
    stream = store.get("k")
    got: list[bytes] = []
    worker = threading.Thread(target=lambda: got.append(store.get_bytes("k")))
    worker.start()
    worker.join(0.05)
    assert got == []
    assert b"".join(stream) == b"abc"  # reading to the end frees the slot
    worker.join(5)
    assert got == [b"abc"]


def test_copy_from_sees_through_wrappers() -> None:
    source = MemoryStore("src")
    source.put("k", b"v")
    target = RetryStore(MemoryStore("dst"), FAST)
    wrapped_source = RetryStore(FaultStore(source, FaultPlan()), FAST)
    target.copy_from(wrapped_source, "k", "copied")
    assert target.get_bytes("copied") == b"v"


def test_streams_close_their_source() -> None:
    closed: list[bool] = []

    class Closing:
        def close(self) -> None:
            closed.append(True)

    inner = MemoryStore("m")
    inner.put("k", DATA)

    class Tracking(MemoryStore):
        def get(self, key, *, version_id=None, offset=0, length=None) -> ObjectStream:  # type: ignore[no-untyped-def]
            info = inner.head(key)
            return BytesStream(info, chunked(DATA, 1000), Closing())

    store = RetryStore(FaultStore(Tracking("t"), FaultPlan(cut_after=10)), FAST)
    with store.get("k") as stream:
        next(iter(stream))
    assert closed


class _WholeStream(BytesStream):
    """A stream that can hand its body over whole, failing the first ``failures`` times."""

    failures = 0
    reads: list[str] = []  # noqa: RUF012 - shared by the instances of one test

    def read_buffer(self) -> memoryview:
        if _WholeStream.failures:
            _WholeStream.failures -= 1
            raise TransientError("connection reset (test)", op="get", key=self.info.key)
        _WholeStream.reads.append(self.info.key)
        return memoryview(b"".join(self.chunks))


class _Whole(MemoryStore):
    def get(self, key, *, version_id=None, offset=0, length=None) -> ObjectStream:  # type: ignore[no-untyped-def]
        stream = super().get(key, version_id=version_id, offset=offset, length=length)
        return _WholeStream(stream.info, iter(stream))


def test_read_buffer_passes_through_retry_and_limit_wrappers() -> None:
    _WholeStream.reads = []
    inner = _Whole("m")
    inner.put("k", DATA)
    store = RetryStore(LimitStore(inner, 1), FAST)
    with store.get("k") as stream:
        assert bytes(read_buffer(stream)) == DATA
    assert _WholeStream.reads == ["k"]  # whole, not chunk by chunk
    assert store.get_bytes("k") == DATA  # the one slot was given back


def test_read_buffer_after_a_transient_error_reads_again() -> None:
    _WholeStream.reads = []
    _WholeStream.failures = 1
    inner = _Whole("m", versioning="Enabled")
    first = inner.put("k", DATA).version_id
    store = RetryStore(LimitStore(inner, 1), FAST)
    with store.get("k") as stream:
        inner.put("k", b"N" * 10)  # the re-read stays on the version it started with
        assert bytes(read_buffer(stream)) == DATA
        assert stream.info.version_id == first
    assert store.retries == 1
    assert _WholeStream.reads == ["k"]  # the second attempt was read whole as well
    assert store.get_bytes("k") == b"N" * 10


def test_read_buffer_of_a_faulty_stream_keeps_its_faults() -> None:
    inner = MemoryStore("m")
    inner.put("k", DATA)
    for faulty in (
        FaultStore(inner, FaultPlan(cut_after=30_000)),
        LimitStore(FaultStore(inner, FaultPlan(cut_after=30_000)), 1),
    ):
        store = RetryStore(faulty, FAST)
        with store.get("k") as stream:  # resumed where each cut left it
            assert bytes(read_buffer(stream)) == DATA
        assert store.retries >= 3

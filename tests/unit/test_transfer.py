"""The transfer engine on in-memory and local stores: bytes, checksums, failures, limits."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import pytest

from lakeguard import metrics
from lakeguard.errors import (
    AccessDeniedError,
    BucketNotFoundError,
    NotFoundError,
    PartialFailure,
    UsageError,
)
from lakeguard.storage.base import (
    DEFAULT_PART_SIZE,
    MAX_PART_SIZE,
    MAX_PARTS,
    MIN_PART_SIZE,
    BytesStream,
    ObjectStream,
    PutResult,
    chunked,
)
from lakeguard.storage.local import LocalStore
from lakeguard.storage.memory import MemoryStore
from lakeguard.transfer import (
    CopyItem,
    ItemResult,
    adjust_part_size,
    copy_objects,
    download,
    items_from_listing,
    part_count,
    upload,
)

MiB = 1024 * 1024
GiB = 1024 * MiB
TiB = 1024 * GiB


def payload(index: int, size: int) -> bytes:
    """Distinct, incompressible-looking bytes per object."""
    seed = hashlib.sha256(str(index).encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]


def fill(
    store: MemoryStore, count: int, size: int = 1000, prefix: str = "data/"
) -> dict[str, bytes]:
    written = {}
    for index in range(count):
        key = f"{prefix}part-{index:05d}.parquet"
        written[key] = payload(index, size + index)
        store.put(key, written[key])
    return written


def listing_items(store: MemoryStore, prefix: str = "") -> Iterator[CopyItem]:
    return items_from_listing(store.list(prefix))


# -- part sizes ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        (0, DEFAULT_PART_SIZE),
        (1, DEFAULT_PART_SIZE),
        (5 * MiB, DEFAULT_PART_SIZE),
        (80 * GiB, 16 * MiB),  # 8 MiB parts would make 10,240 of them
        (5 * TiB, 1 * GiB),
    ],
)
def test_adjust_part_size_keeps_parts_within_s3_limits(size: int, expected: int) -> None:
    part = adjust_part_size(size)
    assert part == expected
    assert MIN_PART_SIZE <= part <= MAX_PART_SIZE
    assert part_count(size, part) <= MAX_PARTS


def test_adjust_part_size_raises_small_preferences_to_the_minimum() -> None:
    assert adjust_part_size(12 * MiB, preferred=1024) == MIN_PART_SIZE
    assert adjust_part_size(5 * MiB, preferred=5 * MiB) == 5 * MiB
    assert adjust_part_size(1, preferred=100 * GiB) == MAX_PART_SIZE


def test_adjust_part_size_refuses_impossible_objects() -> None:
    with pytest.raises(UsageError, match="exceeds"):
        adjust_part_size(MAX_PART_SIZE * MAX_PARTS + 1)
    with pytest.raises(UsageError, match="negative"):
        adjust_part_size(-1)


# -- copying ---------------------------------------------------------------------


def test_streaming_copy_of_many_objects_keeps_bytes_and_records_sha256() -> None:
    src, dst = MemoryStore("src"), MemoryStore("dst")
    written = fill(src, 150)
    seen: list[ItemResult] = []
    result = copy_objects(src, dst, listing_items(src), server_side=False, on_item=seen.append)

    assert result.ok and result.errors == 0
    assert result.objects == 150
    assert result.bytes == sum(len(data) for data in written.values())
    assert result.server_side == 0
    assert result.verified == 150
    assert result.bytes_per_s > 0
    for key, data in written.items():
        assert dst.get_bytes(key) == data
    by_key = {item.dst_key: item for item in seen}
    assert len(by_key) == 150
    for key, data in written.items():
        assert by_key[key].sha256 == hashlib.sha256(data).hexdigest()
        assert by_key[key].etag == hashlib.md5(data).hexdigest()


def test_server_side_copy_between_stores_on_one_endpoint_is_checked_by_etag() -> None:
    src, dst = MemoryStore("src"), MemoryStore("dst")
    written = fill(src, 20)
    seen: list[ItemResult] = []
    result = copy_objects(src, dst, listing_items(src), on_item=seen.append)

    assert result.objects == 20 and result.server_side == 20 and result.verified == 20
    assert all(item.server_side for item in seen)
    assert {key: dst.get_bytes(key) for key in written} == written


def test_copy_within_one_store_renames_keys_and_keeps_metadata() -> None:
    store = MemoryStore("one", versioning="Enabled")
    store.put("a/x.csv", b"1,2,3\n", content_type="text/csv", metadata={"owner": "etl"})
    items = items_from_listing(store.list("a/"), src_prefix="a/", dst_prefix="b/")
    result = copy_objects(store, store, items)

    assert result.objects == 1 and result.server_side == 1
    copied = store.head("b/x.csv")
    assert store.get_bytes("b/x.csv") == b"1,2,3\n"
    assert copied.content_type == "text/csv"
    assert copied.metadata == {"owner": "etl"}
    assert copied.version_id is not None


def test_streaming_copy_carries_content_type_and_metadata() -> None:
    src, dst = MemoryStore("src"), MemoryStore("dst")
    src.put("k.json", b"{}", content_type="application/json", metadata={"a": "1"})
    copy_objects(src, dst, [CopyItem("k.json")], server_side=False)
    info = dst.head("k.json")
    assert (info.content_type, info.metadata) == ("application/json", {"a": "1"})


def test_large_object_is_uploaded_in_parts_with_a_matching_multipart_etag() -> None:
    src, dst = MemoryStore("src"), MemoryStore("dst")
    data = payload(7, 12 * MiB + 123)
    src.put("big.bin", data)
    seen: list[ItemResult] = []
    result = copy_objects(
        src,
        dst,
        [CopyItem("big.bin", size=len(data))],
        part_size=5 * MiB,
        server_side=False,
        on_item=seen.append,
    )

    assert result.ok and result.bytes == len(data)
    (item,) = seen
    assert item.etag is not None and item.etag.endswith("-3")
    assert item.verified
    assert item.sha256 == hashlib.sha256(data).hexdigest()
    assert dst.get_bytes("big.bin") == data


def test_multipart_source_is_copied_with_its_own_part_size_so_the_etag_is_kept() -> None:
    src, dst = MemoryStore("src"), MemoryStore("dst")
    data = payload(3, 11 * MiB)
    source = src.put("big.bin", chunked(data), part_size=5 * MiB)
    assert source.etag is not None and source.etag.endswith("-3")
    items = items_from_listing(src.list())
    result = copy_objects(src, dst, items, server_side=False)

    assert result.ok and result.verified == 1
    assert dst.head("big.bin").etag == source.etag


class CorruptingStore(MemoryStore):
    """A destination that stores a different byte than it was sent, for some keys."""

    def put(
        self,
        key: str,
        data: bytes | memoryview | Iterable[bytes],
        *,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
        part_size: int = DEFAULT_PART_SIZE,
        etag: str | None = None,
    ) -> PutResult:
        if "bad" in key:
            body = bytes(data) if isinstance(data, bytes | memoryview) else b"".join(data)
            data = bytes([body[0] ^ 0xFF]) + body[1:]
            if len(body) > part_size:
                data = chunked(data)
        return super().put(
            key, data, content_type=content_type, metadata=metadata, part_size=part_size, etag=etag
        )


@pytest.mark.parametrize("size", [1000, 11 * MiB])
def test_written_etag_that_does_not_match_the_bytes_sent_fails_the_item(size: int) -> None:
    src, dst = MemoryStore("src"), CorruptingStore("dst")
    src.put("good.bin", payload(1, size))
    src.put("bad.bin", payload(2, size))
    result = copy_objects(
        src, dst, listing_items(src), server_side=False, part_size=5 * MiB, attempts=1
    )

    assert result.objects == 1 and result.errors == 1
    key, message = result.failed[0]
    assert key == "bad.bin"
    assert "is not what was sent" in message
    with pytest.raises(PartialFailure, match="1 of 2 objects failed") as raised:
        result.raise_for_failures()
    assert raised.value.exit_code == 4


@pytest.mark.parametrize("size", [1000, 11 * MiB])
def test_source_that_does_not_match_the_expected_sha256_is_never_written(size: int) -> None:
    src, dst = MemoryStore("src"), MemoryStore("dst")
    data = payload(4, size)
    src.put("x.bin", data)
    wrong = hashlib.sha256(b"something else").hexdigest()
    result = copy_objects(
        src, dst, [CopyItem("x.bin", sha256=wrong)], server_side=False, part_size=5 * MiB
    )

    assert result.errors == 1 and result.objects == 0
    assert "SHA-256" in result.failed[0][1]
    assert list(dst.list()) == []  # the multipart upload was abandoned, not completed


def test_source_that_changed_size_since_it_was_listed_fails() -> None:
    src, dst = MemoryStore("src"), MemoryStore("dst")
    src.put("x.bin", b"12345")
    result = copy_objects(src, dst, [CopyItem("x.bin", size=3)], server_side=False)
    assert result.errors == 1
    assert "changed since it was listed" in result.failed[0][1]


def test_server_side_copy_whose_etag_differs_from_the_source_fails() -> None:
    src, dst = MemoryStore("src"), MemoryStore("dst")
    src.put("x.bin", b"12345")
    stale = hashlib.md5(b"older bytes").hexdigest()
    result = copy_objects(src, dst, [CopyItem("x.bin", etag=stale)])
    assert result.errors == 1
    assert "differs from its source" in result.failed[0][1]


def test_failures_are_collected_and_the_other_objects_are_copied() -> None:
    src, dst = MemoryStore("src"), MemoryStore("dst")
    written = fill(src, 10)
    items = [CopyItem(key) for key in written] + [CopyItem("data/missing.parquet")]
    result = copy_objects(src, dst, items, server_side=False)

    assert result.objects == 10 and result.errors == 1
    assert result.failed[0][0] == "data/missing.parquet"
    assert "does not exist" in result.failed[0][1]
    assert all(dst.get_bytes(key) == data for key, data in written.items())


def test_missing_destination_bucket_stops_the_run_with_its_error() -> None:
    src, dst = MemoryStore("src"), MemoryStore("dst")
    fill(src, 5)
    dst.drop()
    with pytest.raises(BucketNotFoundError):
        copy_objects(src, dst, listing_items(src), server_side=False)


class DenyingStore(MemoryStore):
    """A destination that refuses writes under ``denied/`` (or everywhere)."""

    def __init__(self, name: str, prefix: str = "") -> None:
        super().__init__(name)
        self.prefix = prefix

    def put(
        self,
        key: str,
        data: bytes | memoryview | Iterable[bytes],
        *,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
        part_size: int = DEFAULT_PART_SIZE,
        etag: str | None = None,
    ) -> PutResult:
        if key.startswith(self.prefix):
            raise AccessDeniedError(f"access denied to put {self.url}/{key}", op="put", key=key)
        return super().put(
            key, data, content_type=content_type, metadata=metadata, part_size=part_size, etag=etag
        )


def test_access_denied_before_anything_was_copied_stops_the_run() -> None:
    src, dst = MemoryStore("src"), DenyingStore("dst")
    fill(src, 50)
    with pytest.raises(AccessDeniedError, match="access denied"):
        copy_objects(src, dst, listing_items(src), server_side=False, concurrency=2)


def test_access_denied_to_some_keys_fails_only_those() -> None:
    src, dst = MemoryStore("src"), DenyingStore("dst", prefix="denied/")
    src.put("allowed/a", b"a")
    src.put("denied/b", b"b")
    result = copy_objects(src, dst, listing_items(src), server_side=False, concurrency=1)
    assert result.objects == 1 and result.errors == 1
    assert result.failed[0][0] == "denied/b"


def test_local_destination_refuses_keys_that_would_escape_it(tmp_path: Path) -> None:
    src, dst = MemoryStore("src"), LocalStore(tmp_path / "out")
    dst.create()
    src.put("ok.txt", b"fine")
    src.put("../escape.txt", b"nope")
    result = copy_objects(src, dst, listing_items(src))

    assert result.objects == 1 and result.errors == 1
    assert result.failed[0][0] == "../escape.txt"
    assert not (tmp_path / "escape.txt").exists()
    assert (tmp_path / "out" / "ok.txt").read_bytes() == b"fine"


class CuttingStore(MemoryStore):
    """A source whose first read of each object stops half-way, without an error."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.cut: set[str] = set()

    def get(
        self,
        key: str,
        *,
        version_id: str | None = None,
        offset: int = 0,
        length: int | None = None,
    ) -> ObjectStream:
        stream = super().get(key, version_id=version_id, offset=offset, length=length)
        if key in self.cut:
            return stream
        self.cut.add(key)
        data = b"".join(stream)
        return BytesStream(stream.info, iter([data[: len(data) // 2]]))


def test_stream_cut_short_is_retried_as_a_whole_and_counted() -> None:
    src, dst = CuttingStore("src"), MemoryStore("dst")
    data = payload(9, 11 * MiB)
    src.put("big.bin", data)
    src.put("small.bin", b"x" * 5000)
    result = copy_objects(
        src,
        dst,
        [CopyItem("big.bin"), CopyItem("small.bin")],
        server_side=False,
        part_size=5 * MiB,
    )

    assert result.ok and result.objects == 2
    assert result.retries == 2
    assert dst.get_bytes("big.bin") == data
    assert dst.get_bytes("small.bin") == b"x" * 5000


def test_in_flight_work_is_bounded_whatever_the_number_of_items() -> None:
    src, dst = MemoryStore("src"), MemoryStore("dst")
    src.put("one", b"payload")
    consumed = 0
    done = 0
    ahead = 0

    def items() -> Iterator[CopyItem]:
        nonlocal consumed, ahead
        for index in range(2000):
            consumed += 1
            ahead = max(ahead, consumed - done)
            yield CopyItem("one", f"copy/{index}")

    def finished(_: ItemResult) -> None:
        nonlocal done
        done += 1

    result = copy_objects(src, dst, items(), concurrency=4, on_item=finished)
    assert result.objects == 2000
    assert ahead <= 2 * 4 + 1


def test_progress_reports_every_object_and_byte() -> None:
    src, dst = MemoryStore("src"), MemoryStore("dst")
    written = fill(src, 30)
    totals = [0, 0]

    def advance(objects: int, nbytes: int) -> None:
        totals[0] += objects
        totals[1] += nbytes

    copy_objects(src, dst, listing_items(src), on_progress=advance)
    assert totals == [30, sum(len(d) for d in written.values())]


def test_dry_run_writes_nothing_and_counts_what_would_be_copied() -> None:
    src, dst = MemoryStore("src"), MemoryStore("dst")
    written = fill(src, 12)
    result = copy_objects(src, dst, listing_items(src), dry_run=True)
    assert result.dry_run
    assert result.objects == 12
    assert result.bytes == sum(len(d) for d in written.values())
    assert list(dst.list()) == []


def test_bad_concurrency_is_a_usage_error() -> None:
    store = MemoryStore()
    with pytest.raises(UsageError, match="concurrency"):
        copy_objects(store, store, [], concurrency=0)


class SlowStore(MemoryStore):
    """A source whose reads trickle, so a copy is in flight when the run is stopped."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.reading = threading.Event()

    def get(
        self,
        key: str,
        *,
        version_id: str | None = None,
        offset: int = 0,
        length: int | None = None,
    ) -> ObjectStream:
        stream = super().get(key, version_id=version_id, offset=offset, length=length)

        def trickle() -> Iterator[bytes]:
            for chunk in stream:
                self.reading.set()
                threading.Event().wait(0.01)
                yield chunk

        return BytesStream(stream.info, trickle())


def test_keyboard_interrupt_stops_the_run_and_abandons_uploads_in_flight() -> None:
    src, dst = SlowStore("src"), MemoryStore("dst")
    src.put("big.bin", payload(5, 11 * MiB))  # 44 chunks: ~0.4 s to read
    src.put("small.bin", b"tiny")

    def items() -> Iterator[CopyItem]:
        yield CopyItem("big.bin")
        src.reading.wait(5)
        raise KeyboardInterrupt
        yield CopyItem("small.bin")  # never reached

    with pytest.raises(KeyboardInterrupt):
        copy_objects(src, dst, items(), server_side=False, part_size=5 * MiB)
    assert list(dst.list()) == []
    assert not [t for t in threading.enumerate() if t.name.startswith("lakeguard-copy")]


def test_callback_interrupt_stops_submitting_further_items() -> None:
    src, dst = MemoryStore("src"), MemoryStore("dst")
    fill(src, 200)
    seen = 0

    def stop_after_three(_: ItemResult) -> None:
        nonlocal seen
        seen += 1
        if seen == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        copy_objects(src, dst, listing_items(src), concurrency=2, on_item=stop_after_three)
    assert len(list(dst.list())) <= 3 + 2 * 2


# -- wrappers: retries through faults ----------------------------------------------


def test_faulty_store_behind_retries_is_copied_to_success_and_retries_are_counted() -> None:
    from lakeguard.storage.faults import FaultPlan, FaultStore
    from lakeguard.storage.wrappers import RetryPolicy, RetryStore

    base = MemoryStore("src")
    written = fill(base, 60, size=20_000)
    faulty = FaultStore(base, FaultPlan(fail_rate=0.2, seed=11))
    src = RetryStore(faulty, RetryPolicy(attempts=8, fast=True))
    dst = RetryStore(
        FaultStore(MemoryStore("dst"), FaultPlan(fail_rate=0.2, seed=12)),
        RetryPolicy(attempts=8, fast=True),
    )
    result = copy_objects(src, dst, listing_items(base), server_side=False)

    assert result.ok and result.objects == 60
    assert result.retries > 0
    assert result.retries == src.retries + dst.retries
    assert all(dst.get_bytes(key) == data for key, data in written.items())


def test_bit_flipped_in_a_read_is_caught_by_the_source_etag() -> None:
    from lakeguard.storage.faults import FaultPlan, FaultStore

    base = MemoryStore("src")
    base.put("x.bin", payload(1, 50_000))
    src = FaultStore(base, FaultPlan(flip=1.0, seed=1))
    dst = MemoryStore("dst")
    result = copy_objects(src, dst, listing_items(base), server_side=False, attempts=2)

    assert result.errors == 1 and result.retries == 1
    assert "damaged" in result.failed[0][1]
    assert list(dst.list()) == []


# -- files -------------------------------------------------------------------------


def test_upload_and_download_round_trip_a_file(tmp_path: Path) -> None:
    store = MemoryStore("files")
    original = tmp_path / "in" / "report.csv"
    original.parent.mkdir()
    data = payload(2, 300_000)
    original.write_bytes(data)

    sent = upload(original, store, "reports/report.csv", content_type="text/csv")
    assert sent.sha256 == hashlib.sha256(data).hexdigest()
    assert store.get_bytes("reports/report.csv") == data
    assert store.head("reports/report.csv").content_type == "text/csv"

    target = tmp_path / "out" / "deep" / "copy.csv"
    got = download(store, "reports/report.csv", target)
    assert target.read_bytes() == data
    assert got.sha256 == sent.sha256
    assert [path.name for path in target.parent.iterdir()] == ["copy.csv"]


def test_download_of_a_missing_key_raises_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        download(MemoryStore("files"), "nope.bin", tmp_path / "nope.bin")
    assert not (tmp_path / "nope.bin").exists()


# -- metrics -----------------------------------------------------------------------


def test_copies_update_the_metrics_and_the_textfile(tmp_path: Path) -> None:
    src, dst = MemoryStore("src"), MemoryStore("dst")
    written = fill(src, 7)
    before = metrics.sample("lakeguard_transfer_objects_total", {"mode": "stream"})
    before_bytes = metrics.sample("lakeguard_transfer_bytes_total", {"mode": "stream"})
    before_errors = metrics.sample("lakeguard_transfer_errors_total")
    items = [*listing_items(src), CopyItem("absent")]
    copy_objects(src, dst, items, server_side=False)

    assert metrics.sample("lakeguard_transfer_objects_total", {"mode": "stream"}) == before + 7
    assert metrics.sample("lakeguard_transfer_bytes_total", {"mode": "stream"}) == (
        before_bytes + sum(len(d) for d in written.values())
    )
    assert metrics.sample("lakeguard_transfer_errors_total") == before_errors + 1
    path = tmp_path / "lakeguard.prom"
    metrics.write_textfile(path)
    text = path.read_text()
    assert "lakeguard_transfer_bytes_total" in text
    assert "lakeguard_transfer_duration_seconds_bucket" in text

"""Listing in pieces against a real S3 server whose key order is a file tree's."""

from __future__ import annotations

import pytest

from lakeguard.location import parse_location
from lakeguard.ops.listing import list_objects
from lakeguard.storage import StoreSettings, open_store

# Folders and loose keys whose byte order and folder-walk order disagree:
# "events-2024/x" < "events/x" in bytes, while a file tree walks "events/" first.
KEYS = [
    "lake/_SUCCESS",
    "lake/events/dt=2026-02-01/part-0.parquet",
    "lake/events/dt=2026-02-01/part-1.parquet",
    "lake/events/dt=2026-02-01.json",
    "lake/events/dt=2026-02-02/part-0.parquet",
    "lake/events/dt=2026-02-02/hour=01/part-0.parquet",
    "lake/events-2024/dt=2024-12-31/part-0.parquet",
    "lake/events-2024/readme.txt",
    "lake/events.bak",
    "lake/events_v2/dt=2026-02-01/part-0.parquet",
    "lake/a-b",
    "lake/a/x",
    "lake/a.c/y",
    "lake/z/deep/er/k",
]


@pytest.mark.s3
@pytest.mark.parametrize("head", [0, 1, 4])
def test_pieces_list_every_key_once_in_the_store_order(
    bucket: str, s3_client: object, s3_settings: StoreSettings, head: int
) -> None:
    for key in KEYS:
        s3_client.put_object(Bucket=bucket, Key=key, Body=b"v")  # type: ignore[attr-defined]
    store = open_store(parse_location(f"s3://{bucket}"), s3_settings)
    one_chain = [o.key for o in store.list("lake/")]
    assert sorted(one_chain) == sorted(KEYS)
    pieces = list_objects(store, "lake/", concurrency=4, parallel=True, parallel_after=head)
    assert [o.key for o in pieces] == one_chain


@pytest.mark.s3
@pytest.mark.parametrize("first_page", [1, 3, 14, 15])
def test_short_first_page_then_continuation(
    bucket: str,
    s3_client: object,
    s3_settings: StoreSettings,
    first_page: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from lakeguard.storage import s3 as s3_mod

    for key in KEYS:
        s3_client.put_object(Bucket=bucket, Key=key, Body=b"v")  # type: ignore[attr-defined]
    store = open_store(parse_location(f"s3://{bucket}"), s3_settings)
    whole = [o.key for o in store.list("lake/")]  # one page
    after = whole[4]
    whole_after = [o.key for o in store.list("lake/", start_after=after)]
    assert sorted(whole) == sorted(KEYS)
    monkeypatch.setattr(s3_mod, "FIRST_PAGE_KEYS", first_page)
    assert [o.key for o in store.list("lake/")] == whole
    assert [o.key for o in store.list("lake/", start_after=after)] == whole_after

"""Server-side copies: what a copy must know of its source, and multipart copy.

Whether a listing suffices (``enough_to_copy``): a single CopyObject with
MetadataDirective COPY keeps content type and metadata server-side, so it
needs only the size (single or multipart copy) and the storage class (S3
writes STANDARD unless told). A multipart copy, or one replacing the
metadata, sets the content type anew: that needs what a HEAD returns.

copy_object is S3Store.copy and copy_from (this module is that class's copy
half, kept apart for size): the source's HEAD only when a listing cannot say
enough, then one CopyObject (the light sender of s3_light when the endpoint
allows it) or a multipart copy.

Multipart copy, for sources above S3's 5 GiB single-copy limit:

create_multipart_upload (content type, metadata, storage class of the source)
    -> abort registered at once: any failure below aborts the upload
upload_part_copy x N   (byte ranges of the source version, on a small pool)
complete_multipart_upload
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from lakeguard.errors import BucketNotFoundError, NotFoundError
from lakeguard.hashing import strip_etag
from lakeguard.storage.base import MAX_PARTS, MIN_PART_SIZE, ObjectInfo, PutResult
from lakeguard.storage.s3_light import Copied

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from lakeguard.storage.s3 import S3Store

MiB = 1024 * 1024


def part_ranges(size: int, part_size: int) -> list[tuple[int, int]]:
    """Inclusive byte ranges of ``part_size`` (rounded up to a MiB) covering ``size`` bytes."""
    part = math.ceil(part_size / MiB) * MiB
    return [(start, min(start + part, size) - 1) for start in range(0, size, part)]


def enough_to_copy(
    src_info: ObjectInfo,
    src_key: str,
    src_version_id: str | None,
    metadata: Mapping[str, str] | None,
    *,
    multipart_threshold: int,
) -> bool:
    """Whether ``src_info`` tells a copy all it needs, so the source's HEAD can go."""
    if src_info.is_delete_marker or src_info.key != src_key:
        return False
    if src_version_id is not None and src_info.version_id != src_version_id:
        return False
    if src_info.storage_class is None:  # unknown: a non-STANDARD class would be lost
        return False
    rewrites = metadata is not None or src_info.size > multipart_threshold
    # metadata None: a listing, which knows no content type or user metadata.
    return not rewrites or src_info.metadata is not None


def single_copy(
    run: Callable[[str, Callable[[], Any]], Any],  # runs a boto3 call, mapping its errors
    client: S3Client,
    copy_source: Mapping[str, str],
    kwargs: Mapping[str, Any],
    info: ObjectInfo,
    metadata: Mapping[str, str] | None,
    *,
    light: Callable[[], Copied] | None = None,
) -> PutResult:
    """Copy ``copy_source`` to ``kwargs['Bucket']/kwargs['Key']`` in one CopyObject.

    ``light`` sends the plain copy (metadata kept) without botocore (s3_light).
    """
    if metadata is None and light is not None:
        copied = light()
        return PutResult(kwargs["Key"], strip_etag(copied.etag), copied.version_id, info.size)
    request: dict[str, Any] = dict(kwargs)
    if metadata is not None:
        # REPLACE drops every attribute not given again: keep the content type.
        request["MetadataDirective"] = "REPLACE"
        request["Metadata"] = dict(metadata)
        if info.content_type:
            request["ContentType"] = info.content_type
    else:
        request["MetadataDirective"] = "COPY"
    response = run(
        "copy",
        lambda: client.copy_object(CopySource=copy_source, **request),  # type: ignore[arg-type]
    )
    etag = strip_etag(response.get("CopyObjectResult", {}).get("ETag"))
    return PutResult(request["Key"], etag, response.get("VersionId"), info.size)


def multipart_copy(
    run: Callable[[str, Callable[[], Any]], Any],  # runs a boto3 call, mapping its errors
    client: S3Client,
    copy_source: Mapping[str, str],
    kwargs: Mapping[str, Any],
    info: ObjectInfo,
    metadata: Mapping[str, str] | None,
    *,
    part_size: int,
    workers: int,
) -> PutResult:
    """Copy ``copy_source`` to ``kwargs['Bucket']/kwargs['Key']`` part by part."""
    bucket, dst_key = kwargs["Bucket"], kwargs["Key"]
    create: dict[str, Any] = dict(kwargs)
    create["Metadata"] = dict(metadata if metadata is not None else info.metadata or {})
    if info.content_type:
        create["ContentType"] = info.content_type
    upload = run("copy", lambda: client.create_multipart_upload(**create))
    upload_id = upload["UploadId"]
    try:

        def copy_part(number: int, first: int, last: int) -> dict[str, Any]:
            response = run(
                "copy",
                lambda: client.upload_part_copy(
                    Bucket=bucket,
                    Key=dst_key,
                    UploadId=upload_id,
                    PartNumber=number,
                    CopySource=copy_source,  # type: ignore[arg-type]
                    CopySourceRange=f"bytes={first}-{last}",
                ),
            )
            return {"PartNumber": number, "ETag": response["CopyPartResult"]["ETag"]}

        with ThreadPoolExecutor(workers) as pool:
            futures = [
                pool.submit(copy_part, number, first, last)
                for number, (first, last) in enumerate(part_ranges(info.size, part_size), 1)
            ]
            parts = [future.result() for future in futures]
        response = run(
            "copy",
            lambda: client.complete_multipart_upload(
                Bucket=bucket,
                Key=dst_key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},  # type: ignore[typeddict-item]
            ),
        )
    except BaseException:
        with contextlib.suppress(Exception):  # the first failure is the one to report
            client.abort_multipart_upload(Bucket=bucket, Key=dst_key, UploadId=upload_id)
        raise
    return PutResult(
        dst_key, strip_etag(response.get("ETag")), response.get("VersionId"), info.size
    )


def copy_object(
    self: S3Store,
    source: S3Store,
    src_key: str,
    dst_key: str,
    src_version_id: str | None,
    metadata: Mapping[str, str] | None,
    src_info: ObjectInfo | None = None,
) -> PutResult:
    """Copy ``source``'s object to ``self`` (S3Store.copy and copy_from); see the module doc."""
    # One request per copy instead of two when the caller listed the source.
    threshold = self.multipart_copy_threshold
    if src_info is None or not enough_to_copy(
        src_info, src_key, src_version_id, metadata, multipart_threshold=threshold
    ):
        info = source.head(src_key, version_id=src_version_id)
        return _copy_known(self, source, src_key, dst_key, src_version_id, metadata, info)
    try:
        return _copy_known(self, source, src_key, dst_key, src_version_id, metadata, src_info)
    except (NotFoundError, BucketNotFoundError):
        # A failed copy names the destination; when the source is what is
        # missing, its HEAD says so (and raises). Else the first error stands.
        source.head(src_key, version_id=src_version_id)
        raise


def _copy_known(
    self: S3Store,
    source: S3Store,
    src_key: str,
    dst_key: str,
    src_version_id: str | None,
    metadata: Mapping[str, str] | None,
    info: ObjectInfo,
) -> PutResult:
    copy_source: dict[str, str] = {"Bucket": source.bucket, "Key": src_key}
    if src_version_id is not None:
        copy_source["VersionId"] = src_version_id
    kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": dst_key}
    if info.storage_class and info.storage_class != "STANDARD":
        kwargs["StorageClass"] = info.storage_class

    def run(op: str, call: Callable[[], Any]) -> Any:
        return self._call(op, dst_key, call)

    request = (run, self.client, copy_source, kwargs, info, metadata)
    if info.size > self.multipart_copy_threshold:
        part = max(self.copy_part_size, MIN_PART_SIZE, math.ceil(info.size / MAX_PARTS))
        workers = max(1, min(8, self.settings.concurrency))
        return multipart_copy(*request, part_size=part, workers=workers)
    light = self._light()
    return single_copy(
        *request,
        light=None
        if light is None
        else lambda: light.copy(
            copy_source,
            self.bucket,
            dst_key,
            storage_class=kwargs.get("StorageClass"),
            where=self._where("copy", dst_key),
        ),
    )

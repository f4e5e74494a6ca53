"""Export files in an S3-compatible store (AWS S3, SeaweedFS, MinIO, Ceph), with boto3.

Files are streamed by multipart upload with flat memory (a few parts in flight). An
object exists only once CompleteMultipartUpload returns, so the store itself answers
404 NoSuchKey until the file is whole; an upload that fails is aborted, and one left
by a worker that died is aborted by the worker that takes its job over.

boto3 was measured beside obstore for a streamed upload to SeaweedFS
(bench/s3_upload.py, docs/benchmarks.md): the same league, and boto3 also lists and
aborts multipart uploads, which cleaning up after a crash needs.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, BinaryIO, cast
from urllib.parse import parse_qs, urlparse

import boto3
from botocore.config import Config

from msgtrail.clock import exact
from msgtrail.files.base import Served

PART_BYTES = 8 << 20
PARTS_IN_FLIGHT = 3
# SigV4 presigned URLs live at most 7 days.
MAX_PRESIGN_SECONDS = 7 * 24 * 3600


class _MultipartWriter:
    """A write-only file that uploads itself part by part."""

    def __init__(self, store: S3Store, key: str, upload_id: str) -> None:
        self.store, self.key, self.upload_id = store, key, upload_id
        self.buffer = bytearray()
        self.size = 0
        self.parts: list[Future[dict[str, Any]]] = []
        self.pool = ThreadPoolExecutor(PARTS_IN_FLIGHT, thread_name_prefix="s3-part")

    def write(self, data: bytes) -> int:
        self.buffer += data
        self.size += len(data)
        if len(self.buffer) >= PART_BYTES:
            self._send()
        return len(data)

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        pass

    def _send(self) -> None:
        # Flat memory: wait for a slot before buffering more parts.
        while sum(not p.done() for p in self.parts) >= PARTS_IN_FLIGHT:
            self.parts[next(i for i, p in enumerate(self.parts) if not p.done())].result()
        number, body = len(self.parts) + 1, bytes(self.buffer)
        self.buffer.clear()
        self.parts.append(self.pool.submit(self._upload, number, body))

    def _upload(self, number: int, body: bytes) -> dict[str, Any]:
        etag = self.store.client.upload_part(Bucket=self.store.bucket, Key=self.key,
                                             UploadId=self.upload_id, PartNumber=number,
                                             Body=body)["ETag"]
        return {"PartNumber": number, "ETag": etag}

    def complete(self) -> None:
        if self.buffer or not self.parts:
            self._send()
        parts = [p.result() for p in self.parts]
        self.pool.shutdown()
        self.store.client.complete_multipart_upload(
            Bucket=self.store.bucket, Key=self.key, UploadId=self.upload_id,
            MultipartUpload={"Parts": parts})

    def abort(self) -> None:
        self.pool.shutdown(cancel_futures=True)
        self.store.client.abort_multipart_upload(Bucket=self.store.bucket, Key=self.key,
                                                 UploadId=self.upload_id)


class S3Store:
    """Files as objects of one bucket; readers fetch them by presigned URL."""

    def __init__(self, bucket: str, endpoint: str | None = None, region: str | None = None,
                 prefix: str = "") -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.client = boto3.client(
            "s3", endpoint_url=endpoint, region_name=region or "us-east-1",
            # Parts carry a CRC32 checksum the store verifies; over plain http botocore
            # would also SHA-256 every byte to sign it (what it skips on https), CPU the
            # export needs for compression.
            config=Config(s3={"addressing_style": "path", "payload_signing_enabled": False},
                          signature_version="s3v4",
                          retries={"mode": "standard", "max_attempts": 5},
                          max_pool_connections=PARTS_IN_FLIGHT + 4))

    def _key(self, key: str) -> str:
        return self.prefix + key

    @contextmanager
    def writer(self, key: str) -> Iterator[BinaryIO]:
        """A file to write; the object appears under `key` only if the block ends cleanly."""
        self.abort_uploads(key)  # what a worker that died while writing it left
        upload = self.client.create_multipart_upload(Bucket=self.bucket, Key=self._key(key))
        writer = _MultipartWriter(self, self._key(key), upload["UploadId"])
        try:
            yield cast(BinaryIO, writer)  # the part of a file the pipeline uses
            writer.complete()
        except BaseException:
            writer.abort()
            raise

    def abort_uploads(self, key: str | None = None, older_than: float | None = None) -> int:
        """Abort unfinished multipart uploads of `key` (or of every key, if started
        more than `older_than` seconds ago); returns how many."""
        aborted = 0
        pages = self.client.get_paginator("list_multipart_uploads").paginate(
            Bucket=self.bucket, Prefix=self._key(key) if key else self.prefix)
        cutoff = exact() - (older_than or 0)
        for page in pages:
            for upload in page.get("Uploads", []):
                if key is not None and upload["Key"] != self._key(key):
                    continue
                if older_than is not None and upload["Initiated"].timestamp() > cutoff:
                    continue
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=upload["Key"],
                                                   UploadId=upload["UploadId"])
                aborted += 1
        return aborted

    def presign(self, key: str, seconds: float) -> str:
        return self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": self._key(key)},
            ExpiresIn=int(min(seconds, MAX_PRESIGN_SECONDS)))

    def served(self, key: str, seconds: float) -> Served:
        """The store serves the bytes itself, at a presigned URL (whether the object
        exists is the store's to answer: 404 NoSuchKey)."""
        return Served(url=self.presign(key, seconds))

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def reader(self, key: str) -> BinaryIO | None:
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
        except self.client.exceptions.NoSuchKey:
            return None
        return cast(BinaryIO, answer["Body"])

    def healthy(self) -> bool:
        try:
            self.client.head_bucket(Bucket=self.bucket)
            return True
        except Exception:  # noqa: BLE001 - any failure to reach the bucket is unhealthy
            return False

    def clean_partials(self, older_than: float) -> int:
        return self.abort_uploads(older_than=older_than)


def from_url(url: str) -> S3Store:
    """`s3://BUCKET[/PREFIX]?endpoint=http://host:8333&region=us-east-1`; credentials
    come from the standard AWS variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)."""
    parsed = urlparse(url)
    query = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
    prefix = parsed.path.lstrip("/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return S3Store(parsed.netloc, endpoint=query.get("endpoint"), region=query.get("region"),
                   prefix=prefix)

"""Which S3 client streams an export fastest: a 200 MB multipart upload to SeaweedFS.

Starts a throwaway SeaweedFS, then streams the same 200 MB (1 MiB writes, as the export
pipeline produces them) with boto3 (parts one after another, and 4 in flight) and with
obstore's streaming writer. Prints MB/s for each.

    python bench/s3_upload.py [--mb 200]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
from botocore.config import Config

from msgtrail.testing.seaweed import ACCESS_KEY, SECRET_KEY, start_seaweed

PART = 16 << 20
PIECE = 1 << 20


def boto3_upload(client, bucket: str, key: str, pieces: list[bytes], in_flight: int) -> None:  # type: ignore[no-untyped-def]
    upload = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    parts, buffer, futures = [], bytearray(), []
    with ThreadPoolExecutor(in_flight) as pool:
        def send(number: int, body: bytes) -> dict:
            etag = client.upload_part(Bucket=bucket, Key=key, UploadId=upload,
                                      PartNumber=number, Body=body)["ETag"]
            return {"PartNumber": number, "ETag": etag}

        for piece in pieces:
            buffer += piece
            if len(buffer) >= PART:
                futures.append(pool.submit(send, len(futures) + 1, bytes(buffer)))
                buffer.clear()
                # Flat memory: never more than `in_flight` parts waiting.
                while sum(not f.done() for f in futures) >= in_flight:
                    time.sleep(0.001)
        if buffer:
            futures.append(pool.submit(send, len(futures) + 1, bytes(buffer)))
        parts = [f.result() for f in futures]
    client.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload,
                                     MultipartUpload={"Parts": parts})


def obstore_upload(endpoint: str, bucket: str, key: str, pieces: list[bytes]) -> None:
    from obstore.store import S3Store

    store = S3Store(bucket, endpoint=endpoint, access_key_id=ACCESS_KEY,
                    secret_access_key=SECRET_KEY, region="us-east-1",
                    client_options={"allow_http": True})
    import obstore

    with obstore.open_writer(store, key, buffer_size=PART) as writer:
        for piece in pieces:
            writer.write(piece)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200)
    args = parser.parse_args()
    pieces = [os.urandom(PIECE) for _ in range(args.mb)]
    with tempfile.TemporaryDirectory() as tmp:
        weed = start_seaweed(Path(tmp))
        try:
            client = boto3.client("s3", endpoint_url=weed.endpoint, region_name="us-east-1",
                                  aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                                  config=Config(s3={"addressing_style": "path"},
                                                max_pool_connections=8))
            client.create_bucket(Bucket="bench")
            runs = [("boto3, parts one after another", lambda k: boto3_upload(
                        client, "bench", k, pieces, 1)),
                    ("boto3, 4 parts in flight", lambda k: boto3_upload(
                        client, "bench", k, pieces, 4)),
                    ("obstore open_writer", lambda k: obstore_upload(
                        weed.endpoint, "bench", k, pieces))]
            for round_ in range(2):
                for name, run in runs:
                    key = f"{name}-{round_}"
                    t = time.perf_counter()
                    run(key)
                    seconds = time.perf_counter() - t
                    size = client.head_object(Bucket="bench", Key=key)["ContentLength"]
                    assert size == args.mb * PIECE
                    rate = args.mb / seconds
                    print(f"{name}: {args.mb} MB in {seconds:.2f} s = {rate:,.0f} MB/s")
        finally:
            weed.stop()


if __name__ == "__main__":
    main()

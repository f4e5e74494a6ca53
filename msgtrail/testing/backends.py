"""The two configurations every behaviour test runs on.

embedded: SQLite and a files directory under the server's data dir (the default).
scale: PostgreSQL (a throwaway database per server), SeaweedFS S3 (a bucket per
server) and Redis, all real: the PostgreSQL and Redis the machine runs, and a
SeaweedFS the suite starts itself.
"""

from __future__ import annotations

import argparse
import shutil
import uuid
from pathlib import Path

import boto3
import psycopg
from botocore.config import Config
from botocore.exceptions import ClientError
from cryptography.fernet import Fernet

from msgtrail.testing.seaweed import ACCESS_KEY, SECRET_KEY, Seaweed

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/13"


class Embedded:
    name = "embedded"

    def provision(self, data_dir: Path) -> dict[str, str]:
        return {}

    def release(self, env: dict[str, str]) -> None:
        pass

    def stored_files(self, env: dict[str, str], data_dir: Path) -> list[str]:
        root = data_dir / "files"
        return sorted(str(p.relative_to(root)) for p in root.glob("*/*"))

    def pending_uploads(self, env: dict[str, str], data_dir: Path) -> int:
        return len(list((data_dir / "files" / ".partial").glob("*.part")))

    def break_storage(self, env: dict[str, str], data_dir: Path) -> None:
        shutil.rmtree(data_dir / "files", ignore_errors=True)
        (data_dir / "files").write_text("not a directory")

    def mend_storage(self, env: dict[str, str], data_dir: Path) -> None:
        (data_dir / "files").unlink()


class Scale:
    name = "scale"

    def __init__(self, seaweed: Seaweed) -> None:
        self.seaweed = seaweed
        self.s3 = boto3.client("s3", endpoint_url=seaweed.endpoint, region_name="us-east-1",
                               aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                               config=Config(s3={"addressing_style": "path"}))

    def provision(self, data_dir: Path) -> dict[str, str]:
        database = f"msgtrail_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {database}")
        bucket = f"msgtrail-{uuid.uuid4().hex[:12]}"
        self.s3.create_bucket(Bucket=bucket)
        return {"MSGTRAIL_DATABASE_URL": f"postgresql://postgres@127.0.0.1:5432/{database}",
                "MSGTRAIL_STORAGE_URL": f"s3://{bucket}?endpoint={self.seaweed.endpoint}"
                                        "&region=us-east-1",
                "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
                "MSGTRAIL_REDIS_URL": REDIS_URL}

    def release(self, env: dict[str, str]) -> None:
        database = env["MSGTRAIL_DATABASE_URL"].rsplit("/", 1)[1]
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        self._drop_bucket(self.bucket(env))

    def _drop_bucket(self, bucket: str) -> None:
        """Empty the bucket and delete it: SeaweedFS gives each bucket volumes of its
        own and frees them only with the bucket, so a long run that kept its buckets
        ran out of volumes after ~70 of them (PutObject: InternalError)."""
        try:
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
                if keys:
                    self.s3.delete_objects(Bucket=bucket, Delete={"Objects": keys})
            for upload in self.s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
                self.s3.abort_multipart_upload(Bucket=bucket, Key=upload["Key"],
                                               UploadId=upload["UploadId"])
            self.s3.delete_bucket(Bucket=bucket)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "NoSuchBucket":
                raise  # (a test that broke the storage deleted it already)

    @staticmethod
    def bucket(env: dict[str, str]) -> str:
        return env["MSGTRAIL_STORAGE_URL"].removeprefix("s3://").split("?")[0]

    def stored_files(self, env: dict[str, str], data_dir: Path) -> list[str]:
        listed = self.s3.list_objects_v2(Bucket=self.bucket(env))
        return sorted(o["Key"] for o in listed.get("Contents", []))

    def pending_uploads(self, env: dict[str, str], data_dir: Path) -> int:
        return len(self.s3.list_multipart_uploads(Bucket=self.bucket(env)).get("Uploads", []))

    def break_storage(self, env: dict[str, str], data_dir: Path) -> None:
        self.s3.delete_bucket(Bucket=self.bucket(env))

    def mend_storage(self, env: dict[str, str], data_dir: Path) -> None:
        self.s3.create_bucket(Bucket=self.bucket(env))


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    """Where a benchmark runs: the embedded default, `--scale`, or given services, and
    with how many API processes (`bench_service` starts that many)."""
    parser.add_argument("--processes", type=int, default=1, help="API processes")
    parser.add_argument("--scale", action="store_true",
                        help="a throwaway PostgreSQL database and SeaweedFS + Redis")
    parser.add_argument("--database-url", default=None, help="an existing database")
    parser.add_argument("--storage-url", default=None, help="an existing store")
    parser.add_argument("--replica", action="store_true",
                        help="replicate the embedded database to SeaweedFS with Litestream")


def bench_env(args: argparse.Namespace, data_dir: Path) -> tuple[dict[str, str],
                                                                 Scale | None]:
    """The settings a benchmark runs with (see add_bench_arguments)."""
    from msgtrail.testing.seaweed import start_seaweed

    env: dict[str, str] = {}
    scale_backend = None
    if args.scale:
        scale_backend = Scale(start_seaweed(data_dir / "seaweed"))
        env = scale_backend.provision(data_dir)
        # A store in use has its volumes: the first object of a fresh bucket waits for
        # SeaweedFS to grow them, which cost a first 113 MB upload up to 8 s (1 s warm).
        # (An empty object is kept by the filer alone and warms nothing.)
        scale_backend.s3.put_object(Bucket=Scale.bucket(env), Key="warm-up", Body=b"x" * 1024)
    if getattr(args, "replica", False):
        if args.scale or args.database_url:
            raise SystemExit("--replica replicates the embedded database: not with --scale")
        seaweed = start_seaweed(data_dir / "seaweed-replica")
        replica_backend = Scale(seaweed)
        replica_backend.s3.create_bucket(Bucket="replica")
        env.update({"MSGTRAIL_REPLICA_URL": f"s3://replica/msgtrail?endpoint={seaweed.endpoint}"
                                            "&region=us-east-1",
                    "MSGTRAIL_SECRET_KEY": Fernet.generate_key().decode(),
                    "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY})
        scale_backend = replica_backend
    if args.database_url:
        env["MSGTRAIL_DATABASE_URL"] = args.database_url
    if args.storage_url:
        env["MSGTRAIL_STORAGE_URL"] = args.storage_url
    return env, scale_backend


def bench_teardown(env: dict[str, str], scale_backend: Scale | None) -> None:
    if scale_backend:
        if "MSGTRAIL_DATABASE_URL" in env:
            scale_backend.release(env)
        scale_backend.seaweed.stop()

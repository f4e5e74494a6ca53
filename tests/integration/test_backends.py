"""What a test's configuration leaves behind once released: nothing."""

from __future__ import annotations

import psycopg
from botocore.exceptions import ClientError

from msgtrail.testing.backends import PG_ADMIN, Embedded, Scale


def test_a_released_configuration_leaves_nothing(tmp_path, backend: Embedded | Scale) -> None:  # type: ignore[no-untyped-def]
    env = backend.provision(tmp_path)
    if isinstance(backend, Embedded):
        # Everything lives under the test's own data directory.
        assert env == {}
        backend.release(env)
        return
    bucket = Scale.bucket(env)
    backend.s3.put_object(Bucket=bucket, Key="a/file.csv.gz", Body=b"x" * 1024)
    backend.s3.create_multipart_upload(Bucket=bucket, Key="a/partial.csv.gz")
    backend.release(env)
    # SeaweedFS frees a bucket's volumes only with the bucket: a long run that kept them
    # ran out of volumes.
    try:
        backend.s3.head_bucket(Bucket=bucket)
        raise AssertionError(f"bucket {bucket} is still there")
    except ClientError as exc:
        assert exc.response["Error"]["Code"] in ("404", "NoSuchBucket")
    database = env["MSGTRAIL_DATABASE_URL"].rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN) as conn:
        assert conn.execute("SELECT count(*) FROM pg_database WHERE datname = %s",
                            (database,)).fetchone() == (0,)
    backend.release(env)  # twice (or after a test deleted the bucket): no error

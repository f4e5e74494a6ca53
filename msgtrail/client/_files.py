"""Finishing a download: verify it, convert it if asked, publish it atomically.

Nothing appears under the final name unless the whole file arrived and is valid.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import shutil
import uuid
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from isal import igzip

from msgtrail.client._exceptions import ClientError, CorruptFileError

# Audience-activity columns that hold ISO 8601 times; history's `timestamp` is unix seconds.
EVENT_COLUMNS = {"sent", "delivered", "clicked", "failed", "unsubscribed", "opened", "bounced",
                 "suppressed", "reported_spam", "rejected"}
FORMATS = ("csv", "parquet")


@contextmanager
def temp_path(dest: Path) -> Iterator[Path]:
    """A temporary name beside `dest` (same filesystem, so the rename is atomic),
    removed whatever happens."""
    tmp = dest.parent / f".{dest.name}.{uuid.uuid4().hex[:8]}.part"
    try:
        yield tmp
    finally:
        tmp.unlink(missing_ok=True)


def is_gzip(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def _open_csv(path: Path) -> BinaryIO:
    return igzip.open(path, "rb") if is_gzip(path) else open(path, "rb")


def count_rows(path: Path) -> int:
    """CSV records after the header; reading a gzip file through also verifies it."""
    try:
        with _open_csv(path) as raw:
            text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
            return max(sum(1 for _ in csv.reader(text)) - 1, 0)
    except (OSError, EOFError, zlib.error, UnicodeDecodeError, csv.Error) as exc:
        raise CorruptFileError(f"downloaded file is not a valid CSV/gzip file: {exc}") from exc


def count_lines(path: Path) -> int:
    """JSON Lines records; reading a gzip file through also verifies it."""
    try:
        with _open_csv(path) as raw:
            return sum(1 for _ in raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise CorruptFileError(f"downloaded file is not a valid gzip file: {exc}") from exc


# Set once this process ran pyarrow: `msgtrail export` then ends without the
# interpreter's teardown (msgtrail/__main__.py says why).
used_arrow = False


def count_parquet_rows(path: Path) -> int:
    """A Parquet file's rows, from its footer (which a truncated file lacks)."""
    global used_arrow
    used_arrow = True
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ClientError("Parquet files need pyarrow: pip install pyarrow") from None
    try:
        return int(pq.ParquetFile(path).metadata.num_rows)
    except (OSError, pa.ArrowException) as exc:
        raise CorruptFileError(f"downloaded file is not a valid Parquet file: {exc}") from exc


def check_manifest(downloaded: Path, rows: int, manifest: dict[str, Any]) -> None:
    """Raise CorruptFileError unless the download is the file the manifest describes:
    its SHA-256 (of the bytes as served) and its rows."""
    digest = hashlib.sha256()
    with open(downloaded, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    if digest.hexdigest() != manifest.get("sha256"):
        raise CorruptFileError(f"downloaded file's SHA-256 {digest.hexdigest()} is not the "
                               f"manifest's {manifest.get('sha256')}")
    if rows != manifest.get("rows"):
        raise CorruptFileError(f"downloaded file holds {rows} rows; its manifest says "
                               f"{manifest.get('rows')}")


def output_name(name: str, decompress: bool, fmt: str) -> str:
    """The file name to write, from the server's: `.gz` dropped when decompressing,
    `.parquet` for Parquet."""
    stem = name[:-3] if name.endswith(".gz") else name
    if fmt == "parquet":
        return (stem[:-4] if stem.endswith(".csv") else stem) + ".parquet"
    return stem if decompress else name


def publish(downloaded: Path, dest: Path, decompress: bool, fmt: str,
            manifest: dict[str, Any] | None = None, served: str = "csv") -> tuple[int, int]:
    """Verify the download (against its manifest, if any) and move it (or its
    conversion) to `dest`; returns (rows, bytes of the file written). `served`: the
    format the server wrote (only CSV is converted to `fmt`)."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}")
    counters = {"csv": count_rows, "jsonl": count_lines, "parquet": count_parquet_rows}
    rows = counters[served](downloaded)
    if manifest is not None:
        check_manifest(downloaded, rows, manifest)
    with temp_path(dest) as converted:
        if fmt == "parquet":
            to_parquet(downloaded, converted)
            source = converted
        elif decompress and is_gzip(downloaded):
            with igzip.open(downloaded, "rb") as src, open(converted, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
            source = converted
        else:
            source = downloaded
        os.replace(source, dest)
    return rows, dest.stat().st_size


def to_parquet(csv_path: Path, out: Path) -> None:
    """CSV to Parquet, streamed by record batch, with event times as timestamps."""
    global used_arrow
    used_arrow = True
    try:
        import pyarrow as pa
        import pyarrow.csv as pacsv
        import pyarrow.parquet as pq
    except ImportError:
        raise ClientError("Parquet output needs pyarrow: pip install pyarrow") from None
    with _open_csv(csv_path) as raw:
        header = next(csv.reader([raw.readline().decode()]))
    when = pa.timestamp("s", tz="UTC")
    types = {c: when if c in EVENT_COLUMNS else pa.string() for c in header}
    if "timestamp" in header:
        types["timestamp"] = pa.int64()  # unix seconds, cast below
    convert = pacsv.ConvertOptions(column_types=types, strings_can_be_null=True,
                                   null_values=[""], quoted_strings_can_be_null=True)
    # The reader is closed before the file under it: its read-ahead thread must not
    # outlive the process's Python objects (at exit it aborted the process).
    with _open_csv(csv_path) as raw, pacsv.open_csv(
            raw, convert_options=convert,
            read_options=pacsv.ReadOptions(block_size=8 << 20)) as reader:
        writer = None
        try:
            for batch in reader:
                if "timestamp" in batch.schema.names:
                    i = batch.schema.get_field_index("timestamp")
                    batch = batch.set_column(i, pa.field("timestamp", when),
                                             batch.column(i).cast(when))
                if writer is None:
                    writer = pq.ParquetWriter(out, batch.schema)
                writer.write_batch(batch)
            if writer is None:  # a header and no rows
                schema = pa.schema([pa.field(c, when if c == "timestamp" else types[c])
                                    for c in header])
                writer = pq.ParquetWriter(out, schema)
        finally:
            if writer is not None:
                writer.close()

"""Rows of S3 Inventory data files (CSV.gz and Parquet) as listing entries.

Both readers stream: CSV line by line through the ``csv`` module over a
gzip text stream, Parquet by record batches of at most :data:`BATCH_ROWS`
rows. Rows that are not the current version of an object (``IsLatest`` false)
or that are delete markers are skipped when those columns exist.

Column names are matched without case or underscores, so ``LastModifiedDate``
(CSV ``fileSchema``) and ``last_modified_date`` (Parquet) are one column.
"""

from __future__ import annotations

import csv
import functools
import gzip
import zlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from s3ferry.errors import IntegrityError, UsageError
from s3ferry.storage.listing import Entry

if TYPE_CHECKING:
    import pyarrow

# Rows decoded at once from a Parquet file: 16,384 keys of at most 1 KiB
# bound a batch to 16 MiB whatever the file holds.
BATCH_ROWS = 16_384
PYARROW_HINT = "reading Parquet inventory reports needs pyarrow: pip install 's3ferry[inventory]'"
_WANTED = (
    "key",
    "size",
    "lastmodifieddate",
    "etag",
    "storageclass",
    "checksumalgorithm",
    "islatest",
    "isdeletemarker",
)


def column_id(name: str) -> str:
    """``LastModifiedDate`` and ``last_modified_date`` both become ``lastmodifieddate``."""
    return name.strip().replace("_", "").lower()


def csv_entries(path: Path, subject: str, columns: Sequence[str], prefix: str) -> Iterator[Entry]:
    """Entries of a gzip-compressed CSV file without a header, in file order.

    ``columns`` are the names of the manifest's ``fileSchema`` (one is ``Key``); keys are
    URL-encoded (``+`` for a space) in the file and decoded here.

    Raises:
        UsageError: a row does not have one field per column, or a size is not a number.
        IntegrityError: the file is not gzip-compressed UTF-8 CSV.
    """
    to_entry = _csv_row_reader(columns, subject)
    try:
        with gzip.open(path, "rt", encoding="utf-8", newline="") as text:
            for line, row in enumerate(csv.reader(text), 1):
                if len(row) != len(columns):
                    raise UsageError(
                        subject,
                        f"line {line} has {len(row)} fields, the manifest's fileSchema"
                        f" names {len(columns)}",
                    )
                entry = to_entry(row, line)
                if entry is not None and entry.key.startswith(prefix):
                    yield entry
    except (OSError, EOFError, zlib.error, UnicodeDecodeError, csv.Error) as e:
        raise IntegrityError(subject, f"not a readable gzip-compressed CSV file ({e})") from e


def _csv_row_reader(
    columns: Sequence[str], subject: str
) -> Callable[[list[str], int], Entry | None]:
    at = {column_id(c): i for i, c in enumerate(columns)}
    key, size, modified = at["key"], at.get("size"), at.get("lastmodifieddate")
    etag, storage, checksum = at.get("etag"), at.get("storageclass"), at.get("checksumalgorithm")
    latest, marker = at.get("islatest"), at.get("isdeletemarker")

    def to_entry(row: list[str], line: int) -> Entry | None:
        if latest is not None and row[latest].lower() == "false":
            return None
        if marker is not None and row[marker].lower() == "true":
            return None
        size_text = row[size] if size is not None else ""
        try:
            size_bytes = int(size_text or 0)
        except ValueError:
            raise UsageError(subject, f"line {line}: size {size_text!r} is not a number") from None
        return Entry(
            unquote_plus(row[key]),
            size_bytes,
            row[etag].strip('"') if etag is not None else "",
            row[modified] if modified is not None else "",
            (row[storage] if storage is not None else "") or "STANDARD",
            (row[checksum] if checksum is not None else "") or None,
        )

    return to_entry


def require_pyarrow(subject: str) -> None:
    """Raise UsageError (naming ``subject``) unless pyarrow can be imported."""
    try:
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise UsageError(subject, PYARROW_HINT) from None


def parquet_entries(path: Path, subject: str, prefix: str) -> Iterator[Entry]:
    """Entries of a Parquet file, in file order; keys are stored as they are.

    Raises:
        UsageError: pyarrow is not installed, or the file has no ``key`` column.
        IntegrityError: the file is not Parquet.
    """
    require_pyarrow(subject)
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        source = pq.ParquetFile(path)
        names = {column_id(n): n for n in source.schema_arrow.names}
        if "key" not in names:
            raise UsageError(subject, "the Parquet file has no key column")
        wanted = [names[c] for c in _WANTED if c in names]
        for batch in source.iter_batches(batch_size=BATCH_ROWS, columns=wanted):
            yield from _batch_entries(batch.rename_columns([column_id(n) for n in wanted]), prefix)
    except (pa.ArrowException, OSError) as e:
        raise IntegrityError(subject, f"not a readable Parquet file ({e})") from e


def _batch_entries(batch: pyarrow.RecordBatch, prefix: str) -> Iterator[Entry]:
    keep = _wanted_rows(_columns(batch), prefix)
    if keep is not None:
        batch = batch.filter(keep)
    columns = _columns(batch)
    empty = [None] * batch.num_rows
    yield from map(
        Entry,
        columns["key"].to_pylist(),
        (s or 0 for s in _values(columns, "size", empty)),
        (str(e or "").strip('"') for e in _values(columns, "etag", empty)),
        (m or "" for m in _timestamps(columns, empty)),
        (c or "STANDARD" for c in _values(columns, "storageclass", empty)),
        (a or None for a in _values(columns, "checksumalgorithm", empty)),
    )


def _columns(batch: pyarrow.RecordBatch) -> dict[str, Any]:
    return dict(zip(batch.schema.names, batch.columns, strict=True))


def _wanted_rows(columns: dict[str, Any], prefix: str) -> Any:
    """A mask of current versions, not delete markers, under ``prefix``; ``None``: every row."""
    import pyarrow.compute as pc

    masks = []
    if "islatest" in columns:
        masks.append(pc.fill_null(columns["islatest"], True))
    if "isdeletemarker" in columns:
        masks.append(pc.invert(pc.fill_null(columns["isdeletemarker"], False)))
    if prefix:
        masks.append(pc.starts_with(columns["key"], pattern=prefix))
    return functools.reduce(pc.and_, masks) if masks else None


def _values(columns: dict[str, Any], name: str, empty: list[None]) -> list[Any]:
    return columns[name].to_pylist() if name in columns else empty


def _timestamps(columns: dict[str, Any], empty: list[None]) -> list[Any]:
    """``LastModifiedDate`` as S3 listings print it: ``2024-05-01T12:00:00.000Z``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    column = columns.get("lastmodifieddate")
    if column is None:
        return empty
    if not pa.types.is_string(column.type):
        # Epoch milliseconds (TIMESTAMP_MILLIS) in UTC, printed with milliseconds.
        as_ms = column.cast(pa.timestamp("ms", tz="UTC"), safe=False)
        column = pc.strftime(as_ms, format="%Y-%m-%dT%H:%M:%SZ")
    return list(column.to_pylist())

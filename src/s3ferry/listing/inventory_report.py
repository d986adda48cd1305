"""Read an AWS S3 Inventory report as a stream of listing entries, instead of listing a bucket.

A report is a ``manifest.json`` naming data files (gzip-compressed CSV, or
Parquet) by their keys in the destination bucket. AWS writes them as::

    <dest-prefix>/<source-bucket>/<config-id>/<YYYY-MM-DDTHH-MMZ>/manifest.json
    <dest-prefix>/<source-bucket>/<config-id>/data/<uuid>.csv.gz

A data file is looked up from where the manifest is (so a report copied to a
local folder or to another bucket reads the same): first by its key from the
``<source-bucket>`` segment on, under the folder holding ``<source-bucket>``
(that layout), then as ``data/<name>`` beside ``manifest.json`` (a flat copy).

**Order**: entries come in the order of the manifest's files and of the rows
within each file. That is *not* S3 key order; a caller that merges with a
listing must sort the stream first (on disk: there may be billions).

**Verified**: each data file is checked against the manifest's size and
``MD5checksum`` before any of its rows is yielded. Files in a bucket are
downloaded one at a time into a temporary directory (``TMPDIR``) first,
because Parquet needs random access and the MD5 comes before the rows.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from s3ferry.config import StoreConfig
from s3ferry.errors import IntegrityError, LocalIOError, NotFoundError, UsageError
from s3ferry.listing.inventory_formats import (
    column_id,
    csv_entries,
    parquet_entries,
    require_pyarrow,
)
from s3ferry.locations import is_s3_url, parse_s3_url
from s3ferry.storage.listing import Entry
from s3ferry.storage.s3 import S3Store

MANIFEST = "manifest.json"
_CHUNK_BYTES = 1024 * 1024
_FORMATS = {"csv": "CSV", "parquet": "Parquet"}


@dataclass(frozen=True, slots=True)
class DataFile:
    """One data file of a report: its key in the destination bucket, as the manifest gives it."""

    key: str
    size_bytes: int | None
    md5_hex: str | None


@dataclass(frozen=True, slots=True)
class Manifest:
    """What s3ferry uses of a ``manifest.json``; ``columns`` only for CSV (its ``fileSchema``)."""

    source_bucket: str
    destination_bucket: str
    file_format: str
    columns: tuple[str, ...]
    files: tuple[DataFile, ...]


def read_inventory_report(
    source: str | os.PathLike[str],
    *,
    store: StoreConfig | None = None,
    prefix: str = "",
    bucket: str | None = None,
) -> Iterator[Entry]:
    """The objects an S3 Inventory report lists, under ``prefix``, in file order (not key order).

    ``source`` is a local ``manifest.json`` or the folder holding it, or
    ``s3://bucket/.../manifest.json`` or that ``s3://`` folder (read with
    ``store``). Versions that are not the latest and delete markers are left
    out when the report has those columns; a missing size counts as 0 bytes.
    With ``bucket``, a report of another source bucket is refused.
    The manifest is read before this returns; data files as the iterator
    reaches them.

    Raises:
        UsageError: no manifest, or it is malformed, ORC, or names a missing local data file;
            a Parquet report without pyarrow installed; a report of a bucket other than
            ``bucket``.
        NotFoundError, AccessDeniedError, StoreError: from the store, for ``s3://`` sources.
        IntegrityError: a data file differs from the manifest's size or MD5, or cannot be decoded.
        LocalIOError: a local file cannot be read or a temporary copy written.
    """
    text = os.fspath(source)
    report: _Report = _S3Report(text, store) if is_s3_url(text) else _LocalReport(text)
    manifest = parse_manifest(report.manifest_bytes(), report.subject)
    if bucket is not None and manifest.source_bucket != bucket:
        raise UsageError(
            report.subject, f"is a report of bucket {manifest.source_bucket!r}, not {bucket!r}"
        )
    if manifest.file_format == "Parquet":
        require_pyarrow(report.subject)
    return _entries(report, manifest, prefix)


def _entries(report: _Report, manifest: Manifest, prefix: str) -> Iterator[Entry]:
    for data in manifest.files:
        with report.fetched(data, manifest) as (path, subject):
            if manifest.file_format == "CSV":
                yield from csv_entries(path, subject, manifest.columns, prefix)
            else:
                yield from parquet_entries(path, subject, prefix)


def parse_manifest(data: bytes, subject: str) -> Manifest:
    """The fields of an S3 Inventory ``manifest.json`` that s3ferry reads.

    Raises:
        UsageError: not JSON, a field missing or of the wrong type, an ORC or unknown format.
    """
    try:
        doc = json.loads(data)
    except ValueError as e:
        raise UsageError(subject, f"not valid JSON ({e})") from None
    if not isinstance(doc, dict):
        raise UsageError(subject, "not an S3 Inventory manifest (expected a JSON object)")
    file_format = _file_format(_text(doc, "fileFormat", subject), subject)
    columns: tuple[str, ...] = ()
    if file_format == "CSV":
        columns = tuple(c.strip() for c in _text(doc, "fileSchema", subject).split(","))
        if "key" not in map(column_id, columns):
            raise UsageError(subject, "the manifest's fileSchema has no Key column")
    files = doc.get("files")
    if not isinstance(files, list):
        raise UsageError(subject, "manifest has no 'files' list")
    return Manifest(
        source_bucket=_text(doc, "sourceBucket", subject),
        # "arn:aws:s3:::name" (any partition); bucket names hold no ':'.
        destination_bucket=_text(doc, "destinationBucket", subject).rsplit(":", 1)[-1],
        file_format=file_format,
        columns=columns,
        files=tuple(_data_file(f, subject, i) for i, f in enumerate(files)),
    )


def _text(doc: dict[str, Any], name: str, subject: str) -> str:
    value = doc.get(name)
    if not isinstance(value, str) or not value.strip():
        raise UsageError(subject, f"manifest has no '{name}' text")
    return value


def _file_format(name: str, subject: str) -> str:
    if name.lower() == "orc":
        raise UsageError(subject, "ORC inventory reports are not supported; use CSV or Parquet")
    if name.lower() not in _FORMATS:
        raise UsageError(subject, f"unknown fileFormat {name!r}; expected CSV or Parquet")
    return _FORMATS[name.lower()]


def _data_file(item: Any, subject: str, index: int) -> DataFile:
    where = f"files[{index}]"
    if not isinstance(item, dict) or not isinstance(item.get("key"), str) or not item["key"]:
        raise UsageError(subject, f"{where} has no 'key'")
    key: str = item["key"]
    if ".." in key.split("/"):
        raise UsageError(subject, f"{where} key {key!r} has a '..' segment")
    size, md5 = item.get("size"), item.get("MD5checksum")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
        raise UsageError(subject, f"{where} size {size!r} is not a byte count")
    if md5 is not None and not isinstance(md5, str):
        raise UsageError(subject, f"{where} MD5checksum {md5!r} is not text")
    return DataFile(key, size, md5.lower() if md5 else None)


def data_file_candidates(
    manifest_dir: Sequence[str], key: str, source_bucket: str
) -> list[tuple[str, ...]]:
    """Where the data file ``key`` may be, as path segments, for a manifest in ``manifest_dir``.

    Example: a manifest in ``("inv", "src", "daily", "2024-05-01T01-00Z")``
    with source bucket ``src`` finds ``inv/src/daily/data/a.csv.gz`` at
    ``("inv", "src", "daily", "data", "a.csv.gz")`` (the AWS layout), then at
    ``("inv", "src", "daily", "2024-05-01T01-00Z", "data", "a.csv.gz")`` (flat).
    """
    parts = key.split("/")
    found: list[tuple[str, ...]] = []
    holders = [i for i, name in enumerate(manifest_dir) if name == source_bucket]
    if holders:
        base = tuple(manifest_dir[: holders[-1]])
        starts = [j for j, name in enumerate(parts) if name == source_bucket]
        found += [base + tuple(parts[j:]) for j in reversed(starts)]
    found.append((*manifest_dir, "data", parts[-1]))
    return list(dict.fromkeys(found))


class _Report(Protocol):
    subject: str

    def manifest_bytes(self) -> bytes: ...

    def fetched(
        self, data: DataFile, manifest: Manifest
    ) -> AbstractContextManager[tuple[Path, str]]: ...


class _LocalReport:
    def __init__(self, source: str) -> None:
        path = Path(source).absolute()
        self.path = path / MANIFEST if path.is_dir() else path
        self.subject = str(self.path)
        if not self.path.is_file():
            raise UsageError(self.subject, "no such file (expected an S3 Inventory manifest.json)")

    def manifest_bytes(self) -> bytes:
        try:
            return self.path.read_bytes()
        except OSError as e:
            raise LocalIOError(self.subject, e.strerror or str(e)) from e

    @contextmanager
    def fetched(self, data: DataFile, manifest: Manifest) -> Iterator[tuple[Path, str]]:
        candidates = data_file_candidates(self.path.parent.parts, data.key, manifest.source_bucket)
        paths = [Path(*c) for c in candidates]
        path = next((p for p in paths if p.is_file()), None)
        if path is None:
            looked = " or ".join(str(p) for p in paths)
            raise UsageError(self.subject, f"data file {data.key} is not at {looked}")
        if data.md5_hex is not None or data.size_bytes is not None:
            _check(str(path), data, *_digest(path))
        yield path, str(path)


def _digest(path: Path) -> tuple[int, str]:
    """Size and MD5 (hex) of a local file, read in 1 MiB chunks."""
    digest = hashlib.md5(usedforsecurity=False)
    size = 0
    try:
        with path.open("rb") as f:
            while chunk := f.read(_CHUNK_BYTES):
                digest.update(chunk)
                size += len(chunk)
    except OSError as e:
        raise LocalIOError(str(path), e.strerror or str(e)) from e
    return size, digest.hexdigest()


def _check(subject: str, data: DataFile, size: int, md5_hex: str) -> None:
    if data.size_bytes is not None and size != data.size_bytes:
        raise IntegrityError(subject, f"{size} bytes, the manifest says {data.size_bytes}")
    if data.md5_hex is not None and md5_hex != data.md5_hex:
        raise IntegrityError(subject, f"MD5 {md5_hex}, the manifest says {data.md5_hex}")


class _S3Report:
    def __init__(self, source: str, config: StoreConfig | None) -> None:
        url = parse_s3_url(source)
        named = url.key == MANIFEST or url.key.endswith("/" + MANIFEST)
        self.key = url.key if named else url.as_prefix() + MANIFEST
        self.store = S3Store(url.bucket, config or StoreConfig(), max_connections=4)
        self.subject = self.store.url(self.key)

    def manifest_bytes(self) -> bytes:
        self.store.check_bucket()
        size = self._size(self.key)
        if size is None:
            raise NotFoundError(self.subject, "no such key (expected an S3 Inventory manifest)")
        body = bytearray()
        self._read(self.key, size, body.extend)
        return bytes(body)

    @contextmanager
    def fetched(self, data: DataFile, manifest: Manifest) -> Iterator[tuple[Path, str]]:
        key, size = self._locate(data, manifest)
        subject = self.store.url(key)
        with tempfile.TemporaryDirectory(prefix="s3ferry-inventory-") as folder:
            path = Path(folder) / PurePosixPath(key).name
            digest = hashlib.md5(usedforsecurity=False)
            try:
                with path.open("wb") as f:

                    def keep(chunk: memoryview) -> None:
                        f.write(chunk)
                        digest.update(chunk)

                    self._read(key, size, keep)
            except OSError as e:
                raise LocalIOError(str(path), e.strerror or str(e)) from e
            _check(subject, data, size, digest.hexdigest())
            yield path, subject

    def _locate(self, data: DataFile, manifest: Manifest) -> tuple[str, int]:
        """The key of ``data`` in this bucket and its size."""
        folder = self.key.split("/")[:-1]
        keys = ["/".join(c) for c in data_file_candidates(folder, data.key, manifest.source_bucket)]
        if manifest.destination_bucket == self.store.bucket:
            keys.insert(0, data.key)
        for key in dict.fromkeys(keys):
            size = self._size(key)
            if size is not None:
                return key, size
        looked = " or ".join(self.store.url(k) for k in dict.fromkeys(keys))
        raise NotFoundError(self.subject, f"data file {data.key} is not at {looked}")

    def _size(self, key: str) -> int | None:
        info = self.store.head(key)
        return None if info is None else info.size_bytes

    def _read(self, key: str, size: int, consume: Callable[[memoryview], None]) -> None:
        if size:
            self.store.read_range(key, 0, size, lambda chunk, _offset: consume(chunk))

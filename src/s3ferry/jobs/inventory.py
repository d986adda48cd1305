"""``inventory``: a bucket listing streamed to compressed shard files plus a manifest.

The listing comes out in the store's key order, so the inventory is a
sequence of shards, each a contiguous key range. A shard is written to a
temporary file, then renamed, then recorded in ``manifest.json`` (itself
replaced atomically). Killed at any point, the same command resumes after
the last recorded shard's last key: finished ranges are not listed again,
an unfinished shard is discarded, and every key ends up in exactly one shard.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from s3ferry.config import StoreConfig
from s3ferry.errors import LocalIOError, UsageError
from s3ferry.events import EventSink, ShardWritten, discard
from s3ferry.jobs.listing import iter_objects
from s3ferry.locations import parse_s3_url
from s3ferry.storage.listing import Entry
from s3ferry.storage.s3 import S3Store

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
FORMATS = ("jsonl", "csv")
DEFAULT_SHARD_SIZE = 1_000_000
CSV_COLUMNS = (
    "bucket",
    "key",
    "size",
    "last_modified",
    "etag",
    "storage_class",
    "checksum_algorithm",
)
_GZIP_LEVEL = 5
# Entries encoded and compressed at a time: memory does not grow with --shard-size.
_WRITE_BATCH = 2000


@dataclass(frozen=True, slots=True)
class InventoryReport:
    output: str
    shards: int
    objects: int
    size_bytes: int
    resumed_after: str | None
    already_complete: bool
    seconds: float


def inventory(
    source: str,
    output: str | Path,
    *,
    fmt: str = "jsonl",
    shard_size: int = DEFAULT_SHARD_SIZE,
    store: StoreConfig | None = None,
    workers: int | None = None,
    sink: EventSink = discard,
) -> InventoryReport:
    """Write the listing of ``source`` to ``output`` as gzip shards and ``manifest.json``.

    Resumes an unfinished inventory of the same source and settings in ``output``.

    Raises:
        UsageError: bad format or shard size; ``output`` holds another inventory, or
            misses a shard file its manifest records.
        LocalIOError: ``output`` cannot be written.
        NotFoundError / AccessDeniedError: the bucket is missing or refuses us.
    """
    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt}", f"unknown format (choose {' or '.join(FORMATS)})")
    if shard_size < 1:
        raise UsageError(f"--shard-size {shard_size}", "must be at least 1")
    url = parse_s3_url(source)
    root = Path(output)
    started = time.monotonic()
    settings = {"source": str(url), "format": fmt, "shard_size": shard_size}
    # A missing bucket or wrong credentials must not leave a manifest behind.
    S3Store(url.bucket, store or StoreConfig(), max_connections=1).check_bucket()
    manifest = _load_or_start(root, settings)
    _check_shards(root, [s["file"] for s in manifest["shards"]])
    was_complete = bool(manifest["complete"])
    resumed_after = manifest["shards"][-1]["last_key"] if manifest["shards"] else None
    if not was_complete:
        listing = iter_objects(
            str(url), start_after=resumed_after or "", store=store, workers=workers
        )
        writer: _ShardWriter | None = None
        for entry in listing:
            writer = writer or _ShardWriter(root, manifest, url.bucket, fmt)
            writer.add(entry)
            if writer.objects == shard_size:
                record = writer.finish()
                sink(ShardWritten(record["file"], record["objects"], record["bytes"]))
                writer = None
        if writer is not None:
            record = writer.finish()
            sink(ShardWritten(record["file"], record["objects"], record["bytes"]))
        manifest["complete"] = True
        manifest["finished"] = _now()
        _save(root, manifest)
    return InventoryReport(
        str(root),
        len(manifest["shards"]),
        sum(s["objects"] for s in manifest["shards"]),
        sum(s["bytes"] for s in manifest["shards"]),
        None if was_complete else resumed_after,
        was_complete,
        time.monotonic() - started,
    )


def read_inventory(directory: str | Path) -> tuple[str, Iterator[Entry]]:
    """The source URL of a finished inventory and its entries, shard by shard in key order.

    Raises:
        UsageError: ``directory`` holds no s3ferry inventory, an unfinished one, or
            misses a shard file its manifest records.
    """
    root = Path(directory)
    try:
        manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
        source, fmt, shards = manifest["source"], manifest["format"], manifest["shards"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UsageError(str(root), "holds no s3ferry inventory (manifest.json)") from e
    if not isinstance(shards, list) or not all(map(_is_shard, shards)):
        raise UsageError(str(root / MANIFEST), "is not an s3ferry inventory manifest")
    if not manifest.get("complete"):
        raise UsageError(str(root), "inventory is unfinished; run the inventory command again")
    files = [str(s["file"]) for s in shards]
    _check_shards(root, files)
    return str(source), _shard_entries(root, files, str(fmt))


def _check_shards(root: Path, files: list[str]) -> None:
    """Raises UsageError naming the first shard file the manifest records that is not there
    (deleted by hand): its keys are in no other shard, so the inventory would lack them."""
    for name in files:
        path = root / name
        if not path.is_file():
            raise UsageError(
                str(path),
                "recorded in manifest.json but missing; run the inventory again"
                " into an empty --output directory",
            )


def _shard_entries(root: Path, files: list[str], fmt: str) -> Iterator[Entry]:
    for name in files:
        path = root / name
        try:
            with gzip.open(path, "rt", encoding="utf-8", errors="surrogateescape") as f:
                if fmt == "csv":
                    for row in csv.reader(f):
                        yield Entry(row[1], int(row[2]), row[4], row[3], row[5], row[6] or None)
                    continue
                for line in f:
                    d = json.loads(line)
                    yield Entry(
                        d["key"],
                        d["size"],
                        d["etag"],
                        d["last_modified"],
                        d["storage_class"],
                        d["checksum_algorithm"],
                    )
        except (OSError, EOFError) as e:
            raise LocalIOError(str(path), f"cannot read inventory shard: {e}") from e
        except (ValueError, KeyError, IndexError) as e:
            raise UsageError(str(path), f"is not an s3ferry inventory shard: {e}") from e


class _ShardWriter:
    """Streams entries into ``part-NNNNN.<fmt>.gz.tmp``; :meth:`finish` renames and records it."""

    def __init__(self, root: Path, manifest: dict[str, Any], bucket: str, fmt: str) -> None:
        self.root, self.manifest, self.bucket, self.fmt = root, manifest, bucket, fmt
        self.name = f"part-{len(manifest['shards']):05d}.{fmt}.gz"
        self.tmp = root / f"{self.name}.tmp"
        self.objects = self.size_bytes = 0
        self.first_key = self.last_key = ""
        self.batch: list[Entry] = []
        try:
            self.raw = open(self.tmp, "wb")  # noqa: SIM115 - closed by finish()
        except OSError as e:
            raise LocalIOError(str(self.tmp), f"cannot write: {e.strerror}") from e
        self.gz = gzip.GzipFile(fileobj=self.raw, mode="wb", compresslevel=_GZIP_LEVEL, mtime=0)

    def add(self, entry: Entry) -> None:
        if not self.objects:
            self.first_key = entry.key
        self.objects += 1
        self.size_bytes += entry.size_bytes
        self.last_key = entry.key
        self.batch.append(entry)
        if len(self.batch) >= _WRITE_BATCH:
            self._flush()

    def _flush(self) -> None:
        if not self.batch:
            return  # an empty batch would write an empty line
        try:
            self.gz.write(_encode(self.batch, self.bucket, self.fmt))
        except OSError as e:
            raise LocalIOError(str(self.tmp), f"cannot write: {e.strerror}") from e
        self.batch.clear()

    def finish(self) -> dict[str, Any]:
        self._flush()
        try:
            self.gz.close()
            self.raw.flush()
            os.fsync(self.raw.fileno())
            self.raw.close()
            os.replace(self.tmp, self.root / self.name)
        except OSError as e:
            raise LocalIOError(str(self.root / self.name), f"cannot write: {e.strerror}") from e
        record = {
            "file": self.name,
            "objects": self.objects,
            "bytes": self.size_bytes,
            "first_key": self.first_key,
            "last_key": self.last_key,
        }
        self.manifest["shards"].append(record)
        _save(self.root, self.manifest)
        return record


def _load_or_start(root: Path, settings: dict[str, Any]) -> dict[str, Any]:
    path = root / MANIFEST
    try:
        root.mkdir(parents=True, exist_ok=True)
        text = path.read_text(encoding="utf-8") if path.exists() else None
        # s3ferry's own leftovers (a shard or a manifest cut short by a kill) go; a
        # directory holding anything else and no manifest is not ours to write into.
        leftovers = {*root.glob("part-*.tmp"), root / f"{MANIFEST}.tmp"}
        others = text is None and any(p not in leftovers for p in root.iterdir())
        for stale in [] if others else leftovers:
            stale.unlink(missing_ok=True)
    except OSError as e:
        raise LocalIOError(str(root), f"cannot use the output directory: {e.strerror}") from e
    if others:
        raise UsageError(str(root), "is not empty and holds no inventory; use an empty directory")
    if text is None:
        manifest = {
            "format_version": FORMAT_VERSION,
            **settings,
            "complete": False,
            "started": _now(),
            "finished": None,
            "shards": [],
        }
        _save(root, manifest)
        return manifest
    try:
        manifest = json.loads(text)
        theirs = {k: manifest[k] for k in settings}
        if not all(map(_is_shard, manifest["shards"])):
            raise TypeError("a shard record is malformed")
    except (ValueError, KeyError, TypeError) as e:
        raise UsageError(str(path), "is not an s3ferry inventory manifest") from e
    if theirs != settings:
        raise UsageError(
            str(root),
            f"holds an inventory of {theirs['source']} ({theirs['format']}, shard size "
            f"{theirs['shard_size']}); use another directory or the same settings",
        )
    return dict(manifest)


def _is_shard(record: object) -> bool:
    """Whether ``record`` is a shard record as :meth:`_ShardWriter.finish` writes it: its
    file a plain name in the inventory's directory (never a path out of it)."""
    fields = {"file": str, "objects": int, "bytes": int, "first_key": str, "last_key": str}
    return (
        isinstance(record, dict)
        and all(isinstance(record.get(name), kind) for name, kind in fields.items())
        and Path(record["file"]).name == record["file"] not in ("", ".", "..")
    )


def _encode(entries: list[Entry], bucket: str, fmt: str) -> bytes:
    if fmt == "csv":
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerows(
            (
                bucket,
                e.key,
                e.size_bytes,
                e.last_modified,
                e.etag,
                e.storage_class,
                e.checksum_algorithm or "",
            )
            for e in entries
        )
        return text.getvalue().encode("utf-8", "surrogateescape")
    lines = [
        json.dumps(
            {
                "key": e.key,
                "size": e.size_bytes,
                "etag": e.etag,
                "last_modified": e.last_modified,
                "storage_class": e.storage_class,
                "checksum_algorithm": e.checksum_algorithm,
            },
            ensure_ascii=False,
        )
        for e in entries
    ]
    return ("\n".join(lines) + "\n").encode("utf-8", "surrogateescape")


def _save(root: Path, manifest: dict[str, Any]) -> None:
    path = root / MANIFEST
    tmp = root / f"{MANIFEST}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(manifest, f, ensure_ascii=False, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        raise LocalIOError(str(path), f"cannot write: {e.strerror}") from e


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")

"""Listing datasets: buckets of tiny objects, seeded once with concurrent PUTs (untimed).

``keys-nested``: a date-partitioned tree, ``tenant-TT/YYYY/MM/DD/part-IIIIIII.parquet``
(16 tenants x 365 days, four ``/`` per key). ``keys-flat``: no ``/`` at all, every key
``sensor-2026-<8 hex>-IIIIIII`` (one long shared prefix, hash order); one key in 20 ends
in ``-Zürich-東京`` and one in 100 starts ``sensör-`` (non-ASCII, sorting after all ASCII).
Every object holds the one byte ``x``.

A dataset of N objects lives in bucket ``NAME-N``. Once it is completely seeded, an object
in the bucket ``bench-list-meta`` (named after the bucket, empty, with the dataset's
parameters as user metadata, so checking it needs no volume read) records it, so a later
run on a kept server data dir (``--keep-server``) reuses it. Without a matching record, the
bucket is brought to exactly the planned keys: extra keys deleted, missing keys PUT (a
seeding run that was cut short resumes).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

import obstore
from obstore.store import S3Store

from s3ferry.localserver import LocalS3Info

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

KEY_NAMES = ("keys-nested", "keys-flat")
DEFAULT_OBJECTS = 100_000
QUICK_OBJECTS = 5_000
KEYS_VERSION = 1
META_BUCKET = "bench-list-meta"
BODY = b"x"
PUTS_IN_FLIGHT = 64
DELETE_BATCH = 1000
TENANTS = 16
DAYS = 365
FIRST_DAY = date(2026, 1, 1)


@dataclass(frozen=True, slots=True)
class KeySet:
    """One listing dataset: ``count`` objects named by ``key(name, i)``."""

    name: str
    count: int

    @property
    def bucket(self) -> str:
        return f"{self.name}-{self.count}"

    @property
    def total_bytes(self) -> int:
        return self.count * len(BODY)

    def keys(self) -> Iterator[str]:
        return (key(self.name, i) for i in range(self.count))

    def params(self) -> dict[str, object]:
        return {"version": KEYS_VERSION, "name": self.name, "count": self.count, "body": "x"}


def key(name: str, i: int) -> str:
    if name == "keys-nested":
        day = FIRST_DAY + timedelta(days=(i // TENANTS) % DAYS)
        return f"tenant-{i % TENANTS:02d}/{day:%Y/%m/%d}/part-{i:07d}.parquet"
    if name == "keys-flat":
        digest = hashlib.sha1(f"{KEYS_VERSION}:{i}".encode()).hexdigest()[:8]
        stem = "sensör" if i % 100 == 7 else "sensor"
        suffix = "-Zürich-東京" if i % 20 == 3 else ""
        return f"{stem}-2026-{digest}-{i:07d}{suffix}"
    raise ValueError(f"unknown key dataset {name!r}; choose from {', '.join(KEY_NAMES)}")


def ensure_seeded(info: LocalS3Info, s3: S3Client, keyset: KeySet) -> None:
    """Make ``keyset.bucket`` hold exactly the planned objects, unless its record says so."""
    marker = json.dumps(keyset.params(), sort_keys=True)
    _create_bucket(s3, META_BUCKET)
    if _read_marker(s3, keyset.bucket) == marker:
        print(f"{keyset.bucket}: already seeded", file=sys.stderr, flush=True)
        return
    _create_bucket(s3, keyset.bucket)
    start = time.monotonic()
    existing = _list_keys(s3, keyset.bucket)
    planned = list(keyset.keys())
    extra = existing - set(planned)
    missing = [k for k in planned if k not in existing]
    print(
        f"{keyset.bucket}: seeding {len(missing):,} objects, deleting {len(extra):,}",
        file=sys.stderr,
        flush=True,
    )
    _delete(s3, keyset.bucket, sorted(extra))
    asyncio.run(_put_all(_store(info, keyset.bucket), missing))
    if (found := len(_list_keys(s3, keyset.bucket))) != keyset.count:
        raise SystemExit(f"seeding {keyset.bucket} failed: {found:,} objects, not {keyset.count:,}")
    s3.put_object(Bucket=META_BUCKET, Key=keyset.bucket, Body=b"", Metadata={"params": marker})
    print(
        f"{keyset.bucket}: seeded in {time.monotonic() - start:.0f} s", file=sys.stderr, flush=True
    )


def _create_bucket(s3: S3Client, bucket: str) -> None:
    try:
        s3.head_bucket(Bucket=bucket)
    except s3.exceptions.ClientError:
        s3.create_bucket(Bucket=bucket)


def _read_marker(s3: S3Client, bucket: str) -> str | None:
    try:
        return s3.head_object(Bucket=META_BUCKET, Key=bucket)["Metadata"].get("params")
    except s3.exceptions.ClientError as e:
        if e.response["Error"]["Code"] in ("404", "NoSuchKey"):
            return None
        raise


def _list_keys(s3: S3Client, bucket: str) -> set[str]:
    found: set[str] = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        found.update(entry["Key"] for entry in page.get("Contents", []))
    return found


def _delete(s3: S3Client, bucket: str, keys: list[str]) -> None:
    for start in range(0, len(keys), DELETE_BATCH):
        batch = keys[start : start + DELETE_BATCH]
        s3.delete_objects(
            Bucket=bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True}
        )


def _store(info: LocalS3Info, bucket: str) -> S3Store:
    return S3Store(
        bucket,
        endpoint=info.endpoint_url,
        region="us-east-1",
        access_key_id=info.access_key_id,
        secret_access_key=info.secret_access_key,
        virtual_hosted_style_request=False,
        client_options={"allow_http": True, "pool_max_idle_per_host": str(PUTS_IN_FLIGHT)},
    )


async def _put_all(store: S3Store, keys: Iterable[str]) -> None:
    """PUT every key with ``PUTS_IN_FLIGHT`` requests in flight (workers share one iterator)."""
    todo = list(keys)
    pending = iter(todo)
    step, done = max(len(todo) // 10, 1), 0

    async def worker() -> None:
        nonlocal done
        for k in pending:
            await obstore.put_async(store, k, BODY)
            done += 1
            if done % step == 0 and len(todo) >= 100_000:
                print(f"  {done:,} / {len(todo):,}", file=sys.stderr, flush=True)

    await asyncio.gather(*(worker() for _ in range(PUTS_IN_FLIGHT)))

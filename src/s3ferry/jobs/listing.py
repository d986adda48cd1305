"""What is in a bucket: ``ls`` (one level or recursive) and ``du``."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NamedTuple
from urllib.parse import urlsplit

from s3ferry.config import StoreConfig
from s3ferry.listing.bucket import list_objects
from s3ferry.locations import parse_s3_url
from s3ferry.storage.listing import Entry
from s3ferry.storage.s3 import BucketInfo, S3Store, buckets_of


class Folder(NamedTuple):
    """A common prefix of a one-level listing (ends with ``/``)."""

    prefix: str


def list_buckets(*, store: StoreConfig | None = None) -> list[BucketInfo]:
    """The buckets these credentials own, by name."""
    return sorted(buckets_of(store or StoreConfig()), key=lambda b: b.name)


def default_list_workers() -> int:
    """Listing requests in flight: 2 per CPU, 4..16 (the server lists in parallel too)."""
    return max(4, min(16, 2 * (os.cpu_count() or 1)))


def merge_list_workers(endpoint: str) -> int:
    """Listing requests in flight for a sync's merge-join with the local walk.

    A store served from this machine (a loopback ``endpoint``) lists with the
    cores the walk and the merge need: beyond one request per core but one,
    more requests only move CPU from them to the server, and each shard split
    costs it probes and a partly discarded page.
    """
    workers = default_list_workers()
    host = urlsplit(endpoint).hostname
    try:
        local = host == "localhost" or (host is not None and ipaddress.ip_address(host).is_loopback)
    except ValueError:  # a host name
        local = False
    return min(workers, max(1, (os.cpu_count() or 1) - 1)) if local else workers


def list_bucket(
    source: str,
    *,
    recursive: bool = False,
    start_after: str = "",
    store: StoreConfig | None = None,
    workers: int | None = None,
) -> Iterator[Entry | Folder]:
    """Objects under ``source`` (``s3://bucket[/prefix]``), in S3 key order.

    One level by default: objects directly under the prefix and a
    :class:`Folder` per common prefix, as ``aws s3 ls`` shows them. With
    ``recursive``, every object below, listed by ``workers`` parallel requests.
    The prefix is matched as typed: ``s3://b/logs`` also lists ``logs-old/``.

    Raises:
        UsageError: ``source`` is not an S3 URL.
        NotFoundError / AccessDeniedError: the bucket is missing or refuses us.
    """
    if recursive:
        return iter_objects(source, start_after=start_after, store=store, workers=workers)
    url = parse_s3_url(source)
    return _one_level(S3Store(url.bucket, store or StoreConfig()), url.key, start_after)


def iter_objects(
    source: str,
    *,
    start_after: str = "",
    store: StoreConfig | None = None,
    workers: int | None = None,
) -> Iterator[Entry]:
    """Every object under ``source`` after ``start_after``, in S3 key order.

    ``workers`` listing requests run at once (bisecting the key space); the
    entries still come out sorted, and memory is bounded by ``workers``.
    """
    url = parse_s3_url(source)
    n = workers or default_list_workers()
    s3 = S3Store(url.bucket, store or StoreConfig(), max_connections=n + 2)
    return list_objects(s3, url.key, start_after=start_after, workers=n)


def _one_level(s3: S3Store, prefix: str, start_after: str) -> Iterator[Entry | Folder]:
    continuation: str | None = None
    while True:
        page = s3.list_page(
            prefix,
            start_after=start_after if continuation is None else "",
            continuation=continuation,
            delimiter="/",
        )
        yield from _merged(page.entries, [Folder(p) for p in page.prefixes])
        if not page.truncated or not page.continuation:
            return
        continuation = page.continuation


def _merged(entries: list[Entry], folders: list[Folder]) -> Iterator[Entry | Folder]:
    """Two key-ordered lists as one key-ordered stream."""
    i = 0
    for folder in folders:
        while i < len(entries) and entries[i].key < folder.prefix:
            yield entries[i]
            i += 1
        yield folder
    yield from entries[i:]


@dataclass(frozen=True, slots=True)
class ClassUsage:
    objects: int
    size_bytes: int


@dataclass(frozen=True, slots=True)
class Usage:
    """Objects and bytes under a prefix, in total and per storage class."""

    source: str
    objects: int
    size_bytes: int
    by_storage_class: dict[str, ClassUsage] = field(default_factory=dict)


def disk_usage(
    source: str, *, store: StoreConfig | None = None, workers: int | None = None
) -> Usage:
    """Count the objects and bytes under ``source`` (a parallel recursive listing)."""
    counts: dict[str, list[int]] = {}
    for e in iter_objects(source, store=store, workers=workers):
        c = counts.setdefault(e.storage_class, [0, 0])
        c[0] += 1
        c[1] += e.size_bytes
    by_class = {k: ClassUsage(v[0], v[1]) for k, v in sorted(counts.items())}
    return Usage(
        source,
        sum(c.objects for c in by_class.values()),
        sum(c.size_bytes for c in by_class.values()),
        by_class,
    )

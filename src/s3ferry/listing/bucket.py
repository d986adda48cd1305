"""Parallel listing of a bucket, in key order, in bounded memory.

The key range under a prefix is cut into shards ``(after, upto]``. Workers
list shards page by page with ``start-after``. While the consumer waits for
its next page, a worker with nothing to do splits the earliest shard still
being listed, one split at a time: when the keys have structure, at the
middle common prefix (``/``) of its remaining range, at the highest directory
level that has one there (a tree is cut into halves, not into slivers next to
the cursor); else at the midpoint of the remaining
key range (:func:`.keyspace.midpoint`), probing with a one-key page that the
upper half is not empty. This works on any key space: nested trees, flat
keys, any Unicode. A consumer that one worker keeps fed (a sync's
merge-join) gets no splits: each costs the server its probes and a last
page partly thrown away.

Shards are consumed in key order, so the output is sorted exactly as a
serial listing is. Shards ahead of the one being consumed may buffer
:data:`PAGES_PER_WORKER` x ``workers`` pages between them (the consumed one
up to :data:`HEAD_PAGES` more), and at most ``2 x workers`` shards are live,
so memory is bounded by the worker count, never by the number of keys.

Each shard keeps its last page to judge how densely keys fill its range
(:func:`.keyspace.keys_between`): a shard near its end asks for about the
keys left, not a full page whose rest belongs to the next shard, and a shard
judged to hold less than :data:`SPLIT_MIN_PAGES` pages is not split.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

from s3ferry.errors import Cancelled, NotFoundError
from s3ferry.listing.keyspace import KeyOrder, alphabet_of, key_order, keys_between, midpoint
from s3ferry.locations import S3Url
from s3ferry.storage.listing import S3_MAX_KEYS, Entry, Page
from s3ferry.storage.s3 import S3Store

DEFAULT_LIST_WORKERS = 4
# Pages listed ahead of the consumer, per worker: shards later in key order
# keep listing while the first one is consumed (~300 bytes an entry).
PAGES_PER_WORKER = 16
HEAD_PAGES = 4
# Probes of an empty upper half before a shard is left unsplit.
SPLIT_PROBES = 12
# Pages a shard must list after a split of it found nothing, before it is tried again.
SPLIT_RETRY_PAGES = 4
# Entries asked for when looking for common prefixes to split at: a probe
# should cost the server far less than a page.
PROBE_KEYS = 100
# A shard judged to hold fewer pages than this is not split: each split costs probes
# and a last page partly thrown away.
SPLIT_MIN_PAGES = 2
# What a shard asks for near its end: the keys judged left, times this, plus these.
TAIL_MARGIN = 1.25
TAIL_KEYS = 50


@dataclass(slots=True)
class _Shard:
    """Keys ``k`` with ``after < k <= upto`` (``upto`` None: no upper end)."""

    after: str
    upto: str | None
    cursor: str
    pages: deque[list[Entry]] = field(default_factory=deque)
    busy: bool = False
    done: bool = False
    splitting: bool = False
    # The keys of the last page: keys near the cursor share a prefix and characters with them.
    page: list[Entry] = field(default_factory=list)
    # About how many keys are left before ``upto``, judged from the last page (None: unknown).
    left: float | None = None
    # Pages accepted, and how many there must be before it is split again (a split
    # that found nothing to split off is not tried again at once).
    listed: int = 0
    split_after: int = 0

    def kept(self, entries: list[Entry], order: KeyOrder) -> list[Entry]:
        if self.upto is None:
            return entries
        limit = order(self.upto)
        return [e for e in entries if order(e.key) <= limit]


def _prefixes_spanned(keys: list[str], depth: int) -> int:
    """How many prefixes ending in their ``depth``-th ``/`` the ``keys`` fall under (at
    least 1)."""
    seen = set()
    for key in keys:
        end = -1
        for _ in range(depth):
            end = key.find("/", end + 1)
            if end < 0:
                break
        else:
            seen.add(key[: end + 1])
    return max(1, len(seen))


def list_objects(
    store: S3Store,
    prefix: str = "",
    *,
    start_after: str = "",
    workers: int = DEFAULT_LIST_WORKERS,
    page_keys: int = S3_MAX_KEYS,
    cancel: threading.Event | None = None,
) -> Iterator[Entry]:
    """Every object under ``prefix`` after ``start_after``, in S3 key order.

    ``workers`` requests are in flight at once (1: a plain serial listing),
    each asking for up to ``page_keys`` keys.

    Raises:
        NotFoundError, AccessDeniedError, StoreError, TransientError: from the store.
        Cancelled: ``cancel`` was set.
    """
    lister = _Lister(store, prefix, start_after, workers, page_keys)
    return lister.run(cancel or threading.Event())


def list_key_or_prefix(
    store: S3Store, url: S3Url, workers: int = DEFAULT_LIST_WORKERS
) -> Iterator[Entry]:
    """Every object under ``url`` taken as a prefix, for a URL that named no object.

    Raises:
        NotFoundError: at once, when ``url`` (without a trailing ``/``) is no
            prefix either: a command then says so instead of doing nothing.
    """
    listing = list_objects(store, url.as_prefix(), workers=workers)
    if url.is_prefix:
        return listing
    first = next(listing, None)
    if first is None:
        raise NotFoundError(str(url), "no such key or prefix")
    return itertools.chain([first], listing)


class _Lister:
    def __init__(
        self, store: S3Store, prefix: str, after: str, workers: int, page_keys: int
    ) -> None:
        self.store = store
        self.page_keys = page_keys
        self.prefix = prefix
        self.workers = max(1, workers)
        self.max_shards = 2 * self.workers
        self.shards: list[_Shard] = [_Shard(after, None, after)]
        self.cond = threading.Condition()
        self.error: BaseException | None = None
        self.stopped = False
        self.splitting = 0
        self.buffered = 0  # pages in all shards' buffers
        self.starved = False  # the consumer waits for the head shard's next page
        self.order: KeyOrder = key_order(path_ordered=False)
        self.first_key = prefix

    def run(self, cancel: threading.Event) -> Iterator[Entry]:
        # The first page is fetched before any split: its response tells the
        # store's key order, which every split point must respect.
        head = self.shards[0]
        head.busy = True
        first = self.store.list_page(self.prefix, start_after=head.after, max_keys=self.page_keys)
        self.order = key_order(first.path_ordered)
        self.first_key = first.entries[0].key if first.entries else self.prefix
        self._accept(head, first)
        head.busy = False  # a worker takes it on from its cursor
        threads = [
            threading.Thread(target=self._work, name=f"s3ferry-ls-{i}", daemon=True)
            for i in range(self.workers)
        ]
        for t in threads:
            t.start()
        try:
            while True:
                with self.cond:
                    page = self._next_page(cancel)
                if page is None:
                    return
                yield from page
        finally:
            with self.cond:
                self.stopped = True
                self.cond.notify_all()

    def _full(self, shard: _Shard) -> bool:
        """Must ``shard`` wait for the consumer? The first shard never waits on the others."""
        if self.shards and self.shards[0] is shard:
            return len(shard.pages) >= HEAD_PAGES
        return self.buffered >= PAGES_PER_WORKER * self.workers

    def _next_page(self, cancel: threading.Event) -> list[Entry] | None:
        """The head shard's next page (waits for it); ``None`` once every shard is done."""
        while True:
            if self.error is not None:
                raise self.error
            if cancel.is_set():
                raise Cancelled(f"s3://{self.store.bucket}/{self.prefix}", "listing cancelled")
            if not self.shards:
                return None
            head = self.shards[0]
            if head.pages:
                self.buffered -= 1
                self.starved = False
                self.cond.notify_all()
                return head.pages.popleft()
            if head.done:
                self.shards.pop(0)
                self.cond.notify_all()
                continue
            if not self.starved:
                self.starved = True
                self.cond.notify_all()
            self.cond.wait(0.2)

    def _work(self) -> None:
        try:
            while (shard := self._claim()) is not None:
                self._list_shard(shard)
        except BaseException as e:  # handed to the consumer, which re-raises it
            with self.cond:
                self.error = self.error or e
                self.cond.notify_all()

    def _claim(self) -> _Shard | None:
        """A shard to list: an idle one, else a new one split off a busy one; ``None``
        once the listing is over. A split that finds nothing is tried again later (on
        that shard, :data:`SPLIT_RETRY_PAGES` pages on)."""
        while True:
            with self.cond:
                while not self.stopped:
                    for shard in self.shards:
                        if not shard.busy and not shard.done:
                            shard.busy = True
                            return shard
                    if not self.shards:
                        return None
                    victim = self._victim()
                    if victim is not None:
                        victim.splitting = True
                        self.splitting += 1
                        break
                    self.cond.wait(0.2)
                else:
                    return None
            new: _Shard | None = None
            try:
                new = self._split(victim)
            finally:
                with self.cond:
                    victim.splitting = False
                    if new is None:
                        victim.split_after = victim.listed + SPLIT_RETRY_PAGES
                    self.splitting -= 1
                    self.cond.notify_all()
            if new is not None:
                return new

    def _victim(self) -> _Shard | None:
        """The earliest shard worth splitting, while the consumer waits and no other split
        is under way, if another shard may be made."""
        if not self.starved or self.splitting or len(self.shards) >= self.max_shards:
            return None
        for shard in self.shards:
            idle = shard.done or shard.splitting or shard.listed < shard.split_after
            small = shard.left is not None and shard.left < SPLIT_MIN_PAGES * self.page_keys
            if shard.busy and not idle and not small:
                return shard
        return None

    def _split(self, victim: _Shard) -> _Shard | None:
        """Cut ``victim``'s remaining range in two; the upper half is returned, claimed."""
        with self.cond:
            lo, hi, page = max(victim.cursor, self.prefix), victim.upto, victim.page
        near = [e.key for e in page]
        nested = any("/" in k[len(self.prefix) :] for k in (lo, hi or "", *near[:1]))
        point, probe = self._structural_point(lo, hi, near) if nested else (None, True)
        if point is None and probe:
            point = self._probed_point(lo, hi, near)
        if point is None:
            return None
        with self.cond:
            if victim.done or not self._between(victim.cursor, point, victim.upto):
                return None
            new = _Shard(point, victim.upto, point, busy=True, page=victim.page)
            if victim.upto is not None:
                new.left = keys_between(near, point, victim.upto)
            victim.upto = point
            victim.left = keys_between(near, victim.cursor, point)
            self.shards.insert(self.shards.index(victim) + 1, new)
            return new

    def _between(self, lo: str, key: str, hi: str | None) -> bool:
        """``lo < key < hi`` in the store's key order (``hi`` None: no upper end)."""
        k = self.order(key)
        return self.order(lo) < k and (hi is None or k < self.order(hi))

    def _structural_point(
        self, lo: str, hi: str | None, near: list[str]
    ) -> tuple[str | None, bool]:
        """The middle common prefix between ``lo`` and ``hi`` at the highest directory
        level that has one, going down toward ``lo`` a level at a time: the split nearest
        to halving the range. Without one, whether a bisection is worth its probes:
        only where the last page (``near``) lay in one directory (a large flat one).

        No split where the prefixes found hold fewer than :data:`SPLIT_MIN_PAGES`
        pages, judged by how many of that level the last page spanned: at the tail
        of a tree the levels go down to a few days' worth of keys, each found by a
        probe of its own.

        Some stores (SeaweedFS) also return deeper prefixes at a level; only the
        shallowest found count.
        """
        level = self.prefix
        while True:
            page = self.store.list_page(
                level, start_after=lo, delimiter="/", max_keys=min(self.page_keys, PROBE_KEYS)
            )
            inside = [p for p in page.prefixes if self._between(lo, p, hi)]
            if inside:
                depth = min(p.count("/") for p in inside)
                top = [p for p in inside if p.count("/") == depth]
                pages = (len(top) + 1) / _prefixes_spanned(near, depth)
                if page.truncated or pages >= SPLIT_MIN_PAGES:
                    return top[len(top) // 2], True
                return None, False
            below = lo.find("/", len(level))
            if below < 0:
                one_directory = bool(near) and (
                    near[0].rpartition("/")[0] == near[-1].rpartition("/")[0]
                )
                return None, one_directory
            level = lo[: below + 1]

    def _probed_point(self, lo: str, hi: str | None, near: list[str]) -> str | None:
        """A midpoint of ``(lo, hi)`` with keys above it, found by bisection.

        The first guesses stay among keys that share the prefix of the listing's
        first key and ``lo``: a flat directory keeps its prefix. They use only
        characters seen past that prefix in the last page (hex keys: hex digits).
        """
        shared = os.path.commonprefix([self.first_key, lo])
        alphabet = alphabet_of(near, len(shared))
        local_top = shared + "\x7f"
        if len(shared) > len(self.prefix) and lo[len(shared) : len(shared) + 1] < "\x7f":
            hi = local_top if self._between(lo, local_top, hi) else hi
        for _ in range(SPLIT_PROBES):
            mid = midpoint(lo, hi, alphabet)
            if mid is None or not mid.startswith(self.prefix) or not self._between(lo, mid, hi):
                return None
            first = self.store.list_page(self.prefix, start_after=mid, max_keys=1).entries
            if first and (hi is None or self.order(first[0].key) <= self.order(hi)):
                return mid
            hi = mid
        return None

    def _accept(self, shard: _Shard, page: Page) -> bool:
        """Buffer the part of ``page`` inside ``shard``; True while the shard goes on."""
        with self.cond:
            kept = shard.kept(page.entries, self.order)
            if kept:
                shard.pages.append(kept)
                self.buffered += 1
                shard.page, shard.cursor = kept, kept[-1].key
                if shard.upto is not None:
                    shard.left = keys_between([e.key for e in kept], shard.cursor, shard.upto)
                shard.listed += 1
            if not page.truncated or len(kept) < len(page.entries):
                shard.done = True
            self.cond.notify_all()
            return not shard.done

    def _list_shard(self, shard: _Shard) -> None:
        trusted = True  # the estimate of what is left; not after it fell short once
        while True:
            with self.cond:
                left = shard.left if trusted else None
            # Near its end a shard asks for about what is left: the rest of a full page
            # would be keys of the next shard, listed twice.
            wanted = self.page_keys if left is None else int(left * TAIL_MARGIN) + TAIL_KEYS
            asked = min(self.page_keys, wanted)
            page = self.store.list_page(self.prefix, start_after=shard.cursor, max_keys=asked)
            trusted = asked == self.page_keys or not page.truncated
            self._accept(shard, page)
            with self.cond:
                while not shard.done and self._full(shard):
                    if self.stopped:
                        return
                    self.cond.wait(0.2)
                if shard.done or self.stopped:
                    shard.busy = False
                    return

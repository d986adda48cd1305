"""``restore``: bring a prefix back to local disk, restoring what Glacier or Deep Archive
holds first, then downloading and verifying everything as ``cp`` does.

One pass over the listing looks at every object (a HEAD each: the listing
carries neither the restore state nor the attributes a backup recorded) and
puts it in one state:

- ``done``: the target already holds it (same size and stored mtime, or the
  same link): skipped. This is what makes a second run resume;
- ``exists``: something else is at the target and ``overwrite`` is off: skipped;
- ``ready``: readable now (not archived, or a restored copy is there):
  downloaded, verified as ``cp`` does and, where s3ferry recorded one (in
  metadata or a tag), by the SHA-256 tree hash of the file written; a file
  that does not match is removed and the object fails. A symbolic link is
  recreated from its metadata alone;
- ``archived``: RestoreObject is sent and the key waits;
- ``restoring``: a restore is already in flight (an earlier run's): the key waits;
- ``failed``: it could not be looked at (its HEAD or RestoreObject failed, it
  is gone, or its key cannot be a path): reported failed with the reason.

Unless ``wait`` is off, the waiting keys are then looked at again with
back-off (from ``poll_interval_s`` doubling to :data:`MAX_POLL_INTERVAL_S`,
jittered by ±:data:`POLL_JITTER`) and downloaded as their restores finish.

Memory does not grow with the number of objects: the listing, the HEADs
(:data:`HEADS_IN_FLIGHT`) and the download engine are each bounded, and the
keys waiting for a restore are spooled to a temporary file (one JSON line
each) that every poll reads back and rewrites.
"""

from __future__ import annotations

import json
import os
import random
import tempfile
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import IO

from s3ferry.config import StoreConfig, TransferConfig, resolve
from s3ferry.errors import IntegrityError, LocalIOError, NotFoundError, S3ferryError, UsageError
from s3ferry.events import (
    EventSink,
    JobStarted,
    RestoreRequested,
    RestoresPending,
    RestoreStatus,
    discard,
)
from s3ferry.jobs.download import SafeParents, ensure_dir, run_downloads
from s3ferry.jobs.lanes import job_journal, open_store
from s3ferry.jobs.listing import default_list_workers
from s3ferry.jobs.report import JobReport
from s3ferry.listing.bucket import list_objects
from s3ferry.locations import is_s3_url, parse_s3_url, path_for
from s3ferry.storage.glacier import ArchiveState, archive_state
from s3ferry.storage.listing import Entry
from s3ferry.storage.s3 import ObjectInfo, S3Store
from s3ferry.transfer.attributes import (
    Attributes,
    Local,
    apply_owner_and_mode,
    local_state,
    make_symlink,
)
from s3ferry.transfer.checksums import stored_tree_hash
from s3ferry.transfer.download import DownloadItem
from s3ferry.transfer.journal import Journal
from s3ferry.transfer.recorder import Recorder
from s3ferry.transfer.treehash import file_tree_hash

TIERS = ("Bulk", "Standard", "Expedited")
# The cheapest retrieval, and one Deep Archive offers (it has no Expedited).
DEFAULT_TIER = "Bulk"
# The restored copy is billed as Standard storage while it lasts; three days
# leave time to resume an interrupted run the next day.
DEFAULT_DAYS = 3
# Expedited restores take 1-5 minutes; Standard 3-5 hours and Bulk 5-12, for
# which the back-off soon stretches the interval.
DEFAULT_POLL_INTERVAL_S = 60.0
# Polling a restore that takes hours more often than twice an hour buys nothing.
MAX_POLL_INTERVAL_S = 1800.0
POLL_JITTER = 0.1  # ±10%, so many runs started together do not poll together
# HEAD (and RestoreObject) requests in flight: a HEAD is small, and 16 hide
# the round trip without taking the connections the downloads use.
HEADS_IN_FLIGHT = 16
RESTORE_DIR = "glacierrestore"  # where the field tool put restored files under DIR


class State(Enum):
    """Where an object stood when the run first looked at it (see the module docstring)."""

    ARCHIVED = "archived"
    RESTORING = "restoring"
    READY = "ready"
    DONE = "done"
    EXISTS = "exists"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class RestoreReport:
    """What a restore did.

    ``states`` counts objects per :class:`State` value as first seen;
    ``requested`` counts RestoreObject requests sent; ``pending`` is the
    number of restores still in flight when the job returned (0 when it waited).
    """

    transfer: JobReport
    states: dict[str, int]
    requested: int
    pending: int

    @property
    def ok(self) -> bool:
        return self.transfer.ok


def restore(
    source: str,
    destination: str | os.PathLike[str] | None = None,
    *,
    tier: str = DEFAULT_TIER,
    days: int = DEFAULT_DAYS,
    wait: bool = True,
    into: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    poll_interval_s: float = DEFAULT_POLL_INTERVAL_S,
    transfer: TransferConfig | None = None,
    store: StoreConfig | None = None,
    sink: EventSink = discard,
    sleep: Callable[[float], None] = time.sleep,
    jitter: Callable[[], float] = random.random,
    state_dir: Path | None = None,
) -> RestoreReport:
    """Restore every object under ``source`` (``s3://bucket/prefix``) into
    ``destination/glacierrestore/`` or, given ``into``, into ``into/`` itself.

    Archived objects get a restore of ``days`` days at ``tier``; with ``wait``
    the job then polls until they are readable and downloads them, else it
    returns once every restore was asked for (``report.pending`` says how many
    are in flight) and downloads nothing. Files already there are skipped
    unless ``overwrite`` (those already restored are skipped in any case).
    ``sleep`` and ``jitter`` (a float in [0, 1)) are injected for tests.
    With ``state_dir``, a rerun after an interruption skips what was downloaded
    and continues large downloads from their temporary files (restores asked
    for are found again by HEAD: the store keeps that state).

    Raises:
        UsageError: a malformed URL, tier, days or poll interval; no destination;
            a destination that cannot be a directory.
        NotFoundError / AccessDeniedError: the bucket is missing or refuses us.
    """
    _check_options(tier, days, poll_interval_s)
    url = parse_s3_url(source)
    if into is None and destination is None:
        raise UsageError("restore", "needs a destination directory (DIR or --into DIR)")
    for local in (destination, into):
        if local is not None and is_s3_url(str(local)):
            raise UsageError(str(local), "restore writes to a local directory, not to a bucket")
    root = Path(into) if into is not None else Path(str(destination)) / RESTORE_DIR
    cfg = resolve(transfer or TransferConfig(), downloading=True)
    recorder = _AttributeRecorder(sink)
    s3 = open_store(url.bucket, cfg, store, recorder.store_event)
    ensure_dir(root)
    sink(JobStarted("restore", str(url), str(root)))
    started = time.monotonic()
    job = _Job(s3, root, url.as_prefix(), tier, days, wait, overwrite, recorder, sink)
    identity = {"endpoint": (store or StoreConfig()).endpoint_url, "overwrite": overwrite}
    with (
        ThreadPoolExecutor(HEADS_IN_FLIGHT, thread_name_prefix="s3ferry-head") as heads,
        _spool() as spool,
        _spool() as spare,
        job_journal(
            state_dir if wait else None,
            recorder,
            "restore",
            str(url),
            os.path.abspath(root),
            identity,
        ) as job.journal,
    ):
        listing = list_objects(s3, job.prefix, workers=default_list_workers())
        first = job.scan(_object_keys(listing, recorder), heads, spool, first=True)
        if wait:
            run_downloads(s3, cfg, first, recorder, job.journal)
            poller = _Poller(poll_interval_s, sleep, jitter, sink)
            job.wait_for(spool, spare, heads, poller, cfg)
        else:
            for _ in first:
                pass
    report = JobReport.from_tally(
        "restore", str(url), str(root), recorder.tally, time.monotonic() - started
    )
    return RestoreReport(report, dict(job.states), job.requested, job.spooled)


def _check_options(tier: str, days: int, poll_interval_s: float) -> None:
    if tier not in TIERS:
        raise UsageError(f"--tier {tier}", f"must be one of {', '.join(TIERS)}")
    if days < 1:
        raise UsageError(f"--days {days}", "must be 1 or more")
    if not poll_interval_s > 0:
        raise UsageError(f"--poll-interval {poll_interval_s}", "must be more than 0 seconds")


def _spool() -> IO[str]:
    return tempfile.TemporaryFile("w+", encoding="utf-8")


def _object_keys(listing: Iterable[Entry], recorder: Recorder) -> Iterator[str]:
    """The listed keys, less folder markers (which have nothing to restore)."""
    for entry in listing:
        if entry.key.endswith("/") and entry.size_bytes == 0:
            recorder.skipped(entry.key, "", "directory marker")
        else:
            yield entry.key


def _spooled_keys(spool: IO[str]) -> Iterator[str]:
    spool.seek(0)
    for line in spool:
        yield json.loads(line)


@dataclass(frozen=True, slots=True)
class _Finish:
    """What is left to do once the engine has written and verified a file."""

    url: str
    attributes: Attributes
    tree_hash: str | None  # the SHA-256 tree hash s3ferry stored, if any

    def check(self, path: str) -> str | None:
        """Compare the file with the stored tree hash; returns ``"sha256-tree"`` if it did.

        Raises:
            IntegrityError: the file's tree hash differs (the file is removed).
            OSError: the file cannot be read.
        """
        if self.tree_hash is None:
            return None
        # One thread: the download lanes already hash several files at once.
        got = file_tree_hash(path, threads=1)
        if got != self.tree_hash:
            os.unlink(path)
            raise IntegrityError(self.url, f"SHA-256 tree hash {got} != stored {self.tree_hash}")
        return "sha256-tree"


class _AttributeRecorder(Recorder):
    """A recorder that checks each downloaded file against its stored tree hash and gives
    it its recorded mode and owner before counting it done (the engine has already set
    its mtime).

    Holds what is left to do for objects handed to the engine and not finished
    yet: at most the engine's items in flight.
    """

    def __init__(self, sink: EventSink) -> None:
        super().__init__(sink)
        self._waiting: dict[str, _Finish] = {}
        self._waiting_lock = threading.Lock()

    def expect(self, key: str, finish: _Finish) -> None:
        if finish.attributes.settable or finish.tree_hash is not None:
            with self._waiting_lock:
                self._waiting[key] = finish

    def _take(self, key: str) -> _Finish | None:
        with self._waiting_lock:
            return self._waiting.pop(key, None)

    def done(
        self,
        key: str,
        path: str,
        size_bytes: int,
        verified_by: str,
        seconds: float,
        in_parts: bool = False,
    ) -> None:
        finish = self._take(key)
        if finish is not None:
            try:
                verified_by = finish.check(path) or verified_by
            except IntegrityError as e:
                self.failed(key, path, e)
                return
            except OSError as e:
                self.failed(key, path, LocalIOError(path, f"cannot read: {e.strerror}"))
                return
            try:
                apply_owner_and_mode(path, finish.attributes)
            except OSError as e:
                problem = f"cannot set mode or owner: {e.strerror}"
                self.failed(key, path, LocalIOError(path, problem))
                return
        super().done(key, path, size_bytes, verified_by, seconds, in_parts)

    def failed(self, key: str, path: str, error: S3ferryError) -> None:
        self._take(key)
        super().failed(key, path, error)

    def resumed(self, key: str, path: str, size_bytes: int) -> None:
        self._take(key)  # applied by the run that downloaded it
        super().resumed(key, path, size_bytes)


@dataclass(frozen=True, slots=True)
class _Look:
    """One object as a HEAD worker found it; ``info`` is ``None`` if it is gone."""

    info: ObjectInfo | None
    attributes: Attributes
    local: Local
    requested: str | None  # RestoreObject's outcome, if one was sent
    tree_hash: str | None = None  # asked for only when the object is to be downloaded now


class _Poller:
    """When to look again: doubling from the interval to the cap, reset by progress."""

    def __init__(
        self,
        interval_s: float,
        sleep: Callable[[float], None],
        jitter: Callable[[], float],
        sink: EventSink,
    ) -> None:
        self._base = self._next = interval_s
        self._sleep, self._jitter, self._sink = sleep, jitter, sink

    def pause(self, pending: int) -> None:
        delay = min(self._next, MAX_POLL_INTERVAL_S) * (1 + POLL_JITTER * (2 * self._jitter() - 1))
        self._sink(RestoresPending(pending, delay))
        self._sleep(delay)

    def progressed(self, progress: bool) -> None:
        self._next = self._base if progress else min(2 * self._next, MAX_POLL_INTERVAL_S)


class _Job:
    def __init__(
        self,
        s3: S3Store,
        root: Path,
        prefix: str,
        tier: str,
        days: int,
        wait: bool,
        overwrite: bool,
        recorder: _AttributeRecorder,
        sink: EventSink,
    ) -> None:
        self.s3, self.root, self.prefix = s3, root, prefix
        self.tier, self.days, self.wait, self.overwrite = tier, days, wait, overwrite
        self.recorder, self.sink = recorder, sink
        self.parents = SafeParents(root)
        self.states: Counter[str] = Counter({s.value: 0 for s in State})
        self.requested = 0
        self.spooled = 0
        self.journal: Journal | None = None

    def wait_for(
        self,
        spool: IO[str],
        spare: IO[str],
        heads: ThreadPoolExecutor,
        poller: _Poller,
        cfg: TransferConfig,
    ) -> None:
        """Look at the spooled keys until none waits: each round reads one spool and
        writes the keys still waiting to the other."""
        while self.spooled:
            poller.pause(self.spooled)
            before = self.spooled
            spare.seek(0)
            spare.truncate()
            items = self.scan(_spooled_keys(spool), heads, spare, first=False)
            run_downloads(self.s3, cfg, items, self.recorder, self.journal)
            spool, spare = spare, spool
            poller.progressed(self.spooled < before)

    def scan(
        self, keys: Iterable[str], heads: ThreadPoolExecutor, spool: IO[str], first: bool
    ) -> Iterator[DownloadItem]:
        """Look at each key (in order, ``HEADS_IN_FLIGHT`` at once); yield what to download
        and spool what waits for a restore."""
        self.spooled = 0
        window: deque[tuple[str, Path, Future[_Look]]] = deque()
        try:
            for key in keys:
                try:
                    path = path_for(self.root, self.prefix, key)
                except S3ferryError as e:
                    self._failed(key, "", e, first)
                    continue
                window.append((key, path, heads.submit(self._look, key, str(path))))
                if len(window) >= HEADS_IN_FLIGHT:
                    yield from self._decided(*window.popleft(), spool, first)
            while window:
                yield from self._decided(*window.popleft(), spool, first)
        finally:
            for *_, future in window:
                future.cancel()

    def _look(self, key: str, path: str) -> _Look:
        """HEAD, compare with the target, and ask for a restore if one is needed (a worker)."""
        info = self.s3.head(key)
        if info is None:
            return _Look(None, Attributes(), Local.ABSENT, None)
        attributes = Attributes.of(info.metadata)
        local = local_state(path, attributes, info.size_bytes, info.last_modified)
        wanted = local is Local.ABSENT or (local is Local.OTHER and self.overwrite)
        archive = archive_state(info) if wanted and attributes.symlink is None else None
        requested = tree = None
        if archive is ArchiveState.ARCHIVED:
            requested = self.s3.restore_object(key, self.days, self.tier)
        elif archive is ArchiveState.READABLE and self.wait:
            tree = stored_tree_hash(self.s3, info)
        return _Look(info, attributes, local, requested, tree)

    def _decided(
        self, key: str, path: Path, future: Future[_Look], spool: IO[str], first: bool
    ) -> Iterator[DownloadItem]:
        try:
            look = future.result()
        except S3ferryError as e:
            self._failed(key, str(path), e, first)
            return
        except OSError as e:
            self._failed(key, str(path), LocalIOError(str(path), str(e.strerror)), first)
            return
        if look.info is None:
            gone = NotFoundError(self.s3.url(key), "gone since it was listed")
            self._failed(key, str(path), gone, first)
            return
        if look.requested is not None:
            self.requested += 1
            self.sink(RestoreRequested(key, self.tier, self.days, look.requested))
        state = self._state(look, look.info)
        if first:
            self.states[state.value] += 1
            self.sink(RestoreStatus(key, str(path), state.value))
        if state in (State.ARCHIVED, State.RESTORING):
            spool.write(json.dumps(key) + "\n")
            self.spooled += 1
        elif state is State.DONE:
            self.recorder.skipped(key, str(path), "already restored")
        elif state is State.EXISTS:
            self.recorder.skipped(key, str(path), "exists (--overwrite replaces it)")
        elif self.wait:
            yield from self._ready(key, path, look, look.info)

    def _failed(self, key: str, path: str, error: S3ferryError, first: bool) -> None:
        if first:
            self.states[State.FAILED.value] += 1
            self.sink(RestoreStatus(key, path, State.FAILED.value))
        self.recorder.failed(key, path, error)

    def _state(self, look: _Look, info: ObjectInfo) -> State:
        if look.local is Local.SAME:
            return State.DONE
        if look.local is Local.OTHER and not self.overwrite:
            return State.EXISTS
        if look.attributes.symlink is not None:
            return State.READY  # its metadata is all of it: nothing to restore
        if look.requested is not None:
            # "restored" too waits for the next look, which HEAD confirms: a copy that
            # appeared between our HEAD and our request is rare, a wrong GET costs a failure.
            return State.ARCHIVED if look.requested == "started" else State.RESTORING
        return {
            ArchiveState.READABLE: State.READY,
            ArchiveState.RESTORING: State.RESTORING,
            ArchiveState.ARCHIVED: State.ARCHIVED,
        }[archive_state(info)]

    def _ready(self, key: str, path: Path, look: _Look, info: ObjectInfo) -> Iterator[DownloadItem]:
        """Make the parents, then the link, or hand the object to the download engine."""
        handed = False
        with self.recorder.reporting(key, str(path)):
            self.parents.make(path)
            if look.attributes.symlink is not None:
                make_symlink(str(path), look.attributes)
                self.recorder.done(key, str(path), 0, "metadata", 0.0)
            else:
                finish = _Finish(self.s3.url(key), look.attributes, look.tree_hash)
                self.recorder.expect(key, finish)
                handed = True
        if handed:
            yield DownloadItem(key, str(path), info.size_bytes, info.etag)

"""``sync`` and ``compare``: make a bucket prefix like a local tree (or the reverse), or say how
they differ, by a merge-join of the local walk and the bucket listing in the same key order.

Nothing is held per key: the walk and the listing stream, decisions are made
pair by pair, and keys to delete wait in a temporary file until every
transfer is done (they are deleted only if the source was read completely).

Each direction imports only its own transfer modules, and the upload lanes
start with the first file to upload: a sync to a bucket that finds nothing
changed pays for the walk and the listing alone.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Protocol

from s3ferry.config import StoreConfig, TransferConfig, resolve
from s3ferry.errors import LocalIOError, S3ferryError, StoreError, UsageError
from s3ferry.events import Compared, Event, EventSink, JobStarted, ObjectFailed, Planned, discard
from s3ferry.jobs.lanes import job_journal, open_store, refuse_overlap
from s3ferry.jobs.listing import default_list_workers, merge_list_workers
from s3ferry.jobs.report import JobReport
from s3ferry.listing.bucket import list_objects
from s3ferry.listing.keyspace import key_order
from s3ferry.listing.local import LocalEntry, WalkProblem, walk
from s3ferry.locations import is_s3_url, key_for, parse_s3_url, path_for
from s3ferry.planning.diff import Pair, merge_join
from s3ferry.planning.policy import (
    Action,
    Decision,
    Filters,
    Listed,
    Rule,
    between_buckets,
    by_checksum,
    by_stored_mtime,
    first_look,
    iso_to_ns,
)
from s3ferry.storage.listing import Entry
from s3ferry.storage.s3 import S3Store, crc32c_b64
from s3ferry.transfer.checksums import (
    META_CRC32C,
    META_MTIME_NS,
    META_PART_SIZE,
    FileDigests,
    composite_crc32c,
    file_digests,
    is_plain_md5,
    stored_tree_hash,
)
from s3ferry.transfer.recorder import Recorder
from s3ferry.transfer.treehash import file_tree_hash

if TYPE_CHECKING:
    from s3ferry.transfer.copy import CopyItem
    from s3ferry.transfer.download import DownloadItem
    from s3ferry.transfer.journal import Journal
    from s3ferry.transfer.upload import UploadItem

DELETE_BATCH = 1000
TREE_HASH = "SHA-256 tree hash"  # how reasons name it: "same ...", "... differs"


@dataclass(frozen=True, slots=True)
class SyncReport:
    """What a sync did (or, with ``dry_run``, would do)."""

    transfer: JobReport
    planned: dict[str, int]
    deleted: int
    dry_run: bool

    @property
    def ok(self) -> bool:
        return self.transfer.ok


@dataclass
class _Plan:
    """Counts and the spool of keys to delete, filled while pairs stream by."""

    deletions: IO[str]
    counts: dict[str, int] = field(default_factory=lambda: {"copy": 0, "skip": 0, "delete": 0})
    source_incomplete: bool = False
    source_files: int = 0


def sync(
    source: str | os.PathLike[str],
    destination: str | os.PathLike[str],
    *,
    rule: Rule = Rule.SIZE_AND_MTIME,
    delete: bool = False,
    max_delete: int | None = None,
    dry_run: bool = False,
    filters: Filters | None = None,
    transfer: TransferConfig | None = None,
    store: StoreConfig | None = None,
    dest_store: StoreConfig | None = None,
    sink: EventSink = discard,
    state_dir: Path | None = None,
    follow_symlinks: bool = False,
) -> SyncReport:
    """Copy what is new or changed from ``source`` to ``destination``; with ``delete``,
    remove from the destination what the source does not have.

    Either side is a local directory or ``s3://bucket/prefix`` (not both local).
    ``store`` configures the bucket side; between two buckets it is the
    source's, and ``dest_store`` (default: the same) the destination's. A sync
    is idempotent by itself; with ``state_dir`` its journal also lets a rerun
    after an interruption continue the multipart uploads and large downloads it left.
    Local symbolic links are skipped unless ``follow_symlinks``.

    Raises:
        UsageError: neither side is in S3; the source is missing or empty with
            ``delete``; a bad option.
        NotFoundError / AccessDeniedError: a bucket is missing or refuses us.
    """
    return run_sync(
        source,
        destination,
        rule=rule,
        delete=delete,
        max_delete=max_delete,
        dry_run=dry_run,
        filters=filters,
        transfer=transfer,
        store=store,
        dest_store=dest_store,
        sink=sink,
        state_dir=state_dir,
        follow_symlinks=follow_symlinks,
    )


class UploadShaper(Protocol):
    """Turns a walked file into the object to upload (a backup adds class and attributes)."""

    @property
    def links(self) -> bool:
        """Walk symbolic links as entries of their own."""
        ...

    def item(self, file: LocalEntry, key: str) -> UploadItem: ...


def run_sync(
    source: str | os.PathLike[str],
    destination: str | os.PathLike[str],
    *,
    rule: Rule,
    delete: bool,
    max_delete: int | None,
    dry_run: bool,
    filters: Filters | None,
    transfer: TransferConfig | None,
    store: StoreConfig | None,
    sink: EventSink,
    shaper: UploadShaper | None = None,
    kind: str = "sync",
    dest_store: StoreConfig | None = None,
    state_dir: Path | None = None,
    follow_symlinks: bool = False,
) -> SyncReport:
    """:func:`sync`, with uploads shaped by ``shaper`` (see :mod:`.backup`)."""
    src, dst = str(source), str(destination)
    if not is_s3_url(src) and not is_s3_url(dst):
        raise UsageError(f"{src} {dst}", "sync needs at least one s3:// side")
    if max_delete is not None and max_delete < 0:
        raise UsageError(f"--max-delete {max_delete}", "must be 0 or more")
    if is_s3_url(src) and is_s3_url(dst):
        if shaper is not None:
            raise UsageError(f"{src} {dst}", f"{kind} needs a local source")
        ctx_args = (rule, filters or Filters(), delete, dry_run)
        return _sync_buckets(
            src, dst, ctx_args, max_delete, transfer, store, dest_store or store, sink
        )
    uploading = not is_s3_url(src)
    local = Path(src if uploading else dst)
    url = parse_s3_url(dst if uploading else src)
    prefix = url.as_prefix()
    if uploading:
        _check_source_dir(local, delete and not dry_run)
    cfg = resolve(transfer or TransferConfig(), downloading=not uploading)
    recorder = Recorder(sink)
    s3 = open_store(url.bucket, cfg, store, recorder.store_event)
    if not uploading and not dry_run:
        from s3ferry.jobs.download import ensure_dir

        ensure_dir(local)  # only once the bucket answered: a failed start leaves nothing
    elif not uploading and local.exists() and not local.is_dir():
        raise UsageError(str(local), "exists and is not a directory")
    sink(JobStarted(kind, src, dst))
    started = time.monotonic()
    links = shaper is not None and shaper.links
    pairs = _pairs(s3, local, prefix, links, follow_symlinks)
    with tempfile.TemporaryFile("w+", encoding="utf-8", errors="surrogateescape") as spool:
        plan = _Plan(spool)
        ctx = _Context(
            s3, local, prefix, rule, filters or Filters(), delete, dry_run, plan, sink, shaper
        )
        identity = {
            "endpoint": (store or StoreConfig()).endpoint_url,
            "rule": rule,
            "filters": filters,
            "delete": delete,
            "shaper": shaper,
        }
        ends = (os.path.abspath(src), dst) if uploading else (src, os.path.abspath(dst))
        with job_journal(
            None if dry_run else state_dir, recorder, kind, *ends, identity
        ) as journal:
            if uploading:
                _upload(s3, cfg, ctx.uploads(pairs, recorder), recorder, journal)
            else:
                from s3ferry.jobs.download import run_downloads

                run_downloads(s3, cfg, ctx.downloads(pairs, recorder), recorder, journal)
        deleted = 0
        if delete and not dry_run and plan.counts["delete"]:
            deleted = _delete(s3, plan, max_delete, uploading, recorder)
    report = JobReport.from_tally(kind, src, dst, recorder.tally, time.monotonic() - started)
    return SyncReport(report, dict(plan.counts), deleted, dry_run)


def _upload(
    s3: S3Store,
    cfg: TransferConfig,
    items: Iterator[UploadItem],
    recorder: Recorder,
    journal: Journal | None,
) -> None:
    """Upload ``items``; the upload lanes start with the first one (none: the listing is over)."""
    first = next(items, None)
    if first is None:
        recorder.listing_finished()
        return
    from s3ferry.jobs.upload import run_uploads

    run_uploads(s3, cfg, itertools.chain([first], items), recorder, journal)


def _sync_buckets(
    src: str,
    dst: str,
    ctx_args: tuple[Rule, Filters, bool, bool],
    max_delete: int | None,
    transfer: TransferConfig | None,
    source_store: StoreConfig | None,
    dest_store: StoreConfig | None,
    sink: EventSink,
) -> SyncReport:
    """Bucket to bucket: both listings merge-joined, copies as ``cp`` makes them."""
    from s3ferry.jobs.copy import probe, run_copies

    src_url, dst_url = parse_s3_url(src), parse_s3_url(dst)
    cfg = resolve(transfer or TransferConfig())
    recorder = Recorder(sink)
    source = open_store(src_url.bucket, cfg, source_store, recorder.store_event)
    target = open_store(dst_url.bucket, cfg, dest_store, recorder.store_event)
    refuse_overlap(source, src_url, target, dst_url)
    sink(JobStarted("sync", src, dst))
    started = time.monotonic()
    src_prefix, dst_prefix = src_url.as_prefix(), dst_url.as_prefix()
    order = source.path_ordered()
    if target.path_ordered() != order:
        raise UsageError(f"{src} {dst}", "the two stores list keys in different orders")
    workers = default_list_workers()
    pairs = merge_join(
        ((e.key[len(src_prefix) :], e) for e in list_objects(source, src_prefix, workers=workers)),
        ((e.key[len(dst_prefix) :], e) for e in list_objects(target, dst_prefix, workers=workers)),
        key_order(order),
    )
    with tempfile.TemporaryFile("w+", encoding="utf-8", errors="surrogateescape") as spool:
        plan = _Plan(spool)
        ctx = _Context(target, Path(), dst_prefix, *ctx_args, plan, sink)
        paths = probe(
            source, target, source_store or StoreConfig(), dest_store or StoreConfig(), "auto"
        )
        copier = run_copies(
            source, target, cfg, ctx.copies(pairs, recorder, source), recorder, paths
        )
        deleted = 0
        if ctx.delete and not ctx.dry_run and plan.counts["delete"]:
            deleted = _delete(target, plan, max_delete, True, recorder)
    report = dataclasses.replace(
        JobReport.from_tally("sync", src, dst, recorder.tally, time.monotonic() - started),
        server_side_objects=copier.server_side_objects,
        bytes_through_client=copier.bytes_through_client,
    )
    return SyncReport(report, dict(plan.counts), deleted, ctx.dry_run)


@dataclass(frozen=True, slots=True)
class Comparison:
    """How two sides differ; each key is counted once."""

    identical: int
    different: int
    only_source: int
    only_target: int

    @property
    def same(self) -> bool:
        return not (self.different or self.only_source or self.only_target)


def compare(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    *,
    rule: Rule = Rule.SIZE_AND_MTIME,
    filters: Filters | None = None,
    store: StoreConfig | None = None,
    dest_store: StoreConfig | None = None,
    sink: EventSink = discard,
) -> Comparison:
    """Compare a local tree and a bucket prefix, or two bucket prefixes, by the rules ``sync``
    uses; nothing is changed.

    Every key is reported as a :class:`Compared` event (identical, different
    with the reason, only-source, only-target).
    """
    counts = {"identical": 0, "different": 0, "only-source": 0, "only-target": 0}

    def relay(event: Event) -> None:
        if isinstance(event, Planned):
            if event.action == "skip":
                status = "identical"
            elif event.action == "delete":
                status = "only-target"
            else:
                status = "only-source" if event.reason == "new" else "different"
            counts[status] += 1
            sink(Compared(event.key, event.path, status, event.reason))
        elif isinstance(event, ObjectFailed):
            sink(event)

    report = sync(
        source,
        target,
        rule=rule,
        delete=True,
        dry_run=True,
        filters=filters,
        store=store,
        dest_store=dest_store,
        sink=relay,
    )
    if report.transfer.failures:
        failure = report.transfer.failures[0]
        raise LocalIOError(failure.path or failure.key, failure.message)
    return Comparison(
        counts["identical"], counts["different"], counts["only-source"], counts["only-target"]
    )


def _check_source_dir(path: Path, delete: bool) -> None:
    if path.exists() and not path.is_dir():
        raise UsageError(str(path), "is not a directory (sync takes a directory; cp a file)")
    if not path.is_dir():
        raise UsageError(str(path), "no such directory")
    try:
        with os.scandir(path) as it:
            empty = next(it, None) is None
    except OSError as e:
        raise UsageError(str(path), f"cannot read directory: {e.strerror}") from e
    if empty and delete:
        raise UsageError(str(path), "source is empty; refusing to --delete everything")


LocalSide = LocalEntry | WalkProblem


def _pairs(
    s3: S3Store, local: Path, prefix: str, links: bool, follow: bool
) -> Iterator[Pair[LocalSide, Entry]]:
    """Local walk and bucket listing, joined on the key relative to the root and prefix."""
    path_ordered = s3.path_ordered()
    order = key_order(path_ordered)

    def local_side() -> Iterator[tuple[str, LocalSide]]:
        for e in walk(str(local), path_ordered, links, follow):
            yield e.relative, e

    workers = merge_list_workers(s3.endpoint)
    remote = ((e.key[len(prefix) :], e) for e in list_objects(s3, prefix, workers=workers))
    return merge_join(local_side(), remote, order)


@dataclass
class _Context:
    s3: S3Store
    local: Path
    prefix: str
    rule: Rule
    filters: Filters
    delete: bool
    dry_run: bool
    plan: _Plan
    sink: EventSink
    shaper: UploadShaper | None = None

    def uploads(
        self, pairs: Iterator[Pair[LocalSide, Entry]], recorder: Recorder
    ) -> Iterator[UploadItem]:
        for pair in pairs:
            if not self.filters.admits(pair.key):
                continue
            file, obj = pair.left, pair.right
            key = self.prefix + pair.key
            if isinstance(file, WalkProblem):
                self._problem(key, file, recorder)
                continue
            if file is None:
                assert obj is not None
                self._planned(key, "", Decision(Action.DELETE, "not in the source"))
                continue
            self.plan.source_files += 1
            try:
                decision = self._decide_upload(file, obj, key)
            except S3ferryError as e:
                recorder.failed(key, file.path, e)
                continue
            if self._planned(key, file.path, decision, recorder):
                try:
                    yield self._upload_item(file, key_for(self.prefix, pair.key))
                except S3ferryError as e:
                    recorder.failed(key, file.path, e)

    def downloads(
        self, pairs: Iterator[Pair[LocalSide, Entry]], recorder: Recorder
    ) -> Iterator[DownloadItem]:
        from s3ferry.jobs.download import SafeParents
        from s3ferry.transfer.download import DownloadItem

        parents = SafeParents(self.local)
        for pair in pairs:
            if not self.filters.admits(pair.key):
                continue
            file, obj = pair.left, pair.right
            key = self.prefix + pair.key
            if isinstance(file, WalkProblem):
                if obj is None:
                    continue  # nothing to download; a local path we cannot judge stays
                file = None
            if obj is None:
                assert file is not None
                self._planned(file.path, file.path, Decision(Action.DELETE, "not in the source"))
                continue
            self.plan.source_files += 1
            if obj.key.endswith("/") and obj.size_bytes == 0:
                continue  # a folder marker
            try:
                path = path_for(self.local, self.prefix, obj.key)
            except S3ferryError as e:
                recorder.failed(key, "", e)
                continue
            try:
                decision = self._decide_download(obj, file)
            except S3ferryError as e:
                recorder.failed(key, str(path), e)
                continue
            if self._planned(key, str(path), decision, recorder):
                try:
                    parents.make(path)
                except S3ferryError as e:
                    recorder.failed(key, str(path), e)
                    continue
                yield DownloadItem(obj.key, str(path), obj.size_bytes, obj.etag)

    def copies(
        self, pairs: Iterator[Pair[Entry, Entry]], recorder: Recorder, source: S3Store
    ) -> Iterator[CopyItem]:
        """The copies a bucket-to-bucket sync makes (``self.s3`` is the destination)."""
        from s3ferry.transfer.copy import CopyItem

        for pair in pairs:
            if not self.filters.admits(pair.key):
                continue
            obj, there = pair.left, pair.right
            key = self.prefix + pair.key
            if obj is None:
                self._planned(key, "", Decision(Action.DELETE, "not in the source"))
                continue
            self.plan.source_files += 1
            try:
                decision = self._decide_copy(source, obj, there, key)
            except S3ferryError as e:
                recorder.failed(obj.key, self.s3.url(key), e)
                continue
            if self._planned(key, source.url(obj.key), decision, recorder):
                yield CopyItem(obj.key, obj.size_bytes, obj.etag, key)

    def _decide_copy(self, source: S3Store, obj: Entry, there: Entry | None, key: str) -> Decision:
        decision = between_buckets(self.rule, _listed(obj), _listed(there) if there else None)
        if decision.action is not Action.NEEDS_METADATA:
            return decision
        theirs, ours = source.head(obj.key), self.s3.head(key)
        if theirs is None or ours is None:
            return Decision(Action.COPY, "gone from the store since it was listed")
        source_tree = stored_tree_hash(source, theirs)
        target_tree = stored_tree_hash(self.s3, ours) if source_tree else None
        if source_tree and target_tree:
            return by_checksum(source_tree, target_tree, TREE_HASH)
        if META_CRC32C in theirs.metadata and META_CRC32C in ours.metadata:
            return by_checksum(theirs.metadata[META_CRC32C], ours.metadata[META_CRC32C], "CRC32C")
        if theirs.checksum_crc32c is None:
            return Decision(Action.COPY, "no checksum stored to compare with")
        return by_checksum(theirs.checksum_crc32c, ours.checksum_crc32c, "CRC32C")

    def _problem(self, key: str, problem: WalkProblem, recorder: Recorder) -> None:
        """An unreadable path fails (and stops --delete); a skipped one (link, socket) is said."""
        if problem.unreadable:
            self.plan.source_incomplete = True
            recorder.failed(key, problem.path, LocalIOError(problem.path, problem.reason))
        elif problem.reason != "empty directory":
            recorder.skipped(key, problem.path, problem.reason)

    def _upload_item(self, file: LocalEntry, key: str) -> UploadItem:
        if self.shaper is None:
            from s3ferry.transfer.upload import UploadItem

            return UploadItem(file.path, key, file.size_bytes, file.mtime_ns)
        return self.shaper.item(file, key)

    def _planned(
        self, key: str, path: str, decision: Decision, recorder: Recorder | None = None
    ) -> bool:
        """Count and report a decision; True when the object should be transferred now."""
        name = decision.action.value
        self.plan.counts[name] += 1
        self.sink(Planned(key, path, name, decision.reason))
        if decision.action is Action.DELETE:
            self.plan.deletions.write(key if path == "" else path)
            self.plan.deletions.write("\n")
            return False
        if decision.action is Action.SKIP or self.dry_run:
            if recorder is not None:
                recorder.skipped(key, path, decision.reason if not self.dry_run else "dry run")
            return False
        return True

    def _decide_upload(self, file: LocalEntry, obj: Entry | None, key: str) -> Decision:
        decision = first_look(
            self.rule,
            file.size_bytes,
            file.mtime_ns,
            obj.size_bytes if obj else None,
            obj.last_modified if obj else "",
            file.ctime_ns,
        )
        if decision.action is not Action.NEEDS_METADATA:
            return decision
        assert obj is not None
        return self._by_content_or_mtime(file, obj, key)

    def _decide_download(self, obj: Entry, file: LocalEntry | None) -> Decision:
        if file is None:
            return Decision(Action.COPY, "new")
        if file.size_bytes != obj.size_bytes:
            return Decision(Action.COPY, f"size differs ({obj.size_bytes} != {file.size_bytes})")
        if self.rule is Rule.SIZE_ONLY:
            return Decision(Action.SKIP, "same size")
        if self.rule is Rule.SIZE_AND_MTIME and _same_second(file, obj.last_modified):
            # What a download gives an object that records no mtime of its own.
            return Decision(Action.SKIP, "same size, mtime of the object's last modification")
        return self._by_content_or_mtime(file, obj, obj.key)

    def _by_content_or_mtime(self, file: LocalEntry, obj: Entry, key: str) -> Decision:
        """Same size: the stored mtime, or with ``Rule.CHECKSUM`` the content, decides.

        Content is compared by the first of: a plain-MD5 ETag (no HEAD); the
        SHA-256 tree hash s3ferry stored; the CRC32C stored (s3ferry's or the store's).
        """
        if self.rule is Rule.CHECKSUM and is_plain_md5(obj.etag):
            return by_checksum(_digests(file, None).md5_hex, obj.etag, "MD5")
        info = self.s3.head(key)
        if info is None:
            return Decision(Action.COPY, "gone from the store since it was listed")
        if self.rule is not Rule.CHECKSUM:
            return by_stored_mtime(file.mtime_ns, info.metadata.get(META_MTIME_NS))
        tree = stored_tree_hash(self.s3, info)
        if tree is not None:
            return by_checksum(_tree_hash(file), tree, TREE_HASH)
        part = info.metadata.get(META_PART_SIZE)
        part_size = int(part) if part and part.isdigit() else None
        digests = _digests(file, part_size)
        if META_CRC32C in info.metadata:
            return by_checksum(str(digests.crc32c), info.metadata[META_CRC32C], "CRC32C")
        stored = info.checksum_crc32c
        if stored is None:
            return by_checksum("", None, "CRC32C")
        ours = composite_crc32c(digests.part_crcs) if "-" in stored else crc32c_b64(digests.crc32c)
        return by_checksum(ours, stored, "CRC32C")


def _same_second(file: LocalEntry, last_modified: str) -> bool:
    """Whether the file's mtime falls in the second of the listing's ``LastModified``."""
    modified = iso_to_ns(last_modified)
    return modified is not None and file.mtime_ns // 10**9 == modified // 10**9


def _listed(e: Entry) -> Listed:
    return Listed(e.size_bytes, e.etag, e.last_modified)


def _digests(file: LocalEntry, part_size: int | None) -> FileDigests:
    try:
        return file_digests(file.path, part_size)
    except OSError as e:
        raise LocalIOError(file.path, f"cannot read: {e.strerror}") from e


def _tree_hash(file: LocalEntry) -> str:
    try:
        return file_tree_hash(file.path)
    except OSError as e:
        raise LocalIOError(file.path, f"cannot read: {e.strerror}") from e


def _delete(
    s3: S3Store, plan: _Plan, max_delete: int | None, uploading: bool, recorder: Recorder
) -> int:
    """Delete the spooled keys (or local files) once every transfer is done; returns how many."""
    count = plan.counts["delete"]
    refusal = None
    if plan.source_incomplete:
        refusal = "the source could not be read completely"
    elif plan.source_files == 0:
        refusal = "the source is empty"
    elif max_delete is not None and count > max_delete:
        refusal = f"{count} deletions exceed --max-delete {max_delete}"
    if refusal is not None:
        recorder.failed("", "", UsageError("--delete", f"{refusal}; nothing deleted"))
        return 0
    plan.deletions.seek(0)
    deleted = 0
    batch: list[str] = []
    for line in plan.deletions:
        batch.append(line[:-1])
        if len(batch) == DELETE_BATCH:
            deleted += _delete_batch(s3, batch, uploading, recorder)
            batch = []
    if batch:
        deleted += _delete_batch(s3, batch, uploading, recorder)
    return deleted


def _delete_batch(s3: S3Store, batch: list[str], uploading: bool, recorder: Recorder) -> int:
    if uploading:
        failed = s3.delete_keys(batch)
        for key, message in failed:
            recorder.failed(key, "", StoreError(s3.url(key), f"not deleted: {message}"))
        return len(batch) - len(failed)
    deleted = 0
    for path in batch:
        try:
            os.unlink(path)
            deleted += 1
        except OSError as e:
            recorder.failed("", path, LocalIOError(path, f"not deleted: {e.strerror}"))
    return deleted

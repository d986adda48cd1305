"""The quick-start job: start an embedded S3, upload a generated sample tree,
download it back and compare every byte, then count it with ``du`` and
``inventory``, read a byte range and records back, and copy the prefix to two
others (``cp`` server-side, ``migrate`` through a queue and worker
processes), each compared with the original."""

from __future__ import annotations

import filecmp
import os
import random
import sys
from collections.abc import Callable
from pathlib import Path

from s3ferry.cli.exit_codes import ExitCode
from s3ferry.cli.render import JsonRenderer, TextRenderer
from s3ferry.config import StoreConfig
from s3ferry.jobs.copy import copy
from s3ferry.jobs.download import download
from s3ferry.jobs.inventory import inventory
from s3ferry.jobs.listing import disk_usage
from s3ferry.jobs.migrate import migrate
from s3ferry.jobs.read import iter_records, read_range
from s3ferry.jobs.sync import compare
from s3ferry.jobs.upload import upload
from s3ferry.jobs.worker import WorkerConfig
from s3ferry.localserver import LocalS3

BUCKET = "s3ferry-demo"
LARGE_FILE_BYTES = 40 * 1024 * 1024


def make_sample_tree(root: Path, files: int, seed: int = 2026) -> int:
    """Small files of 0 B..64 KiB in nested directories, plus two large ones; returns bytes."""
    rng = random.Random(seed)
    total = 0
    for i in range(files):
        path = root / f"dir{i % 20:02d}" / f"sub{i % 3}" / f"file {i:05d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        data = rng.randbytes(rng.choice((0, 100, 4096, 65536)))
        path.write_bytes(data)
        total += len(data)
    for name in ("large-1.bin", "large-2.bin"):
        (root / "large").mkdir(exist_ok=True)
        (root / "large" / name).write_bytes(rng.randbytes(LARGE_FILE_BYTES))
        total += LARGE_FILE_BYTES
    return total


def _same_trees(a: Path, b: Path) -> list[str]:
    """Relative paths that differ or are missing on either side (byte-for-byte)."""
    problems: list[str] = []
    for dirpath, _, names in os.walk(a):
        for name in names:
            left = Path(dirpath) / name
            rel = left.relative_to(a)
            right = b / rel
            if not right.is_file() or not filecmp.cmp(left, right, shallow=False):
                problems.append(str(rel))
    extra = sum(len(n) for _, _, n in os.walk(b)) - sum(len(n) for _, _, n in os.walk(a))
    if extra:
        problems.append(f"{extra} unexpected file(s) in the download")
    return problems


def run(work: Path, files: int, renderer: Callable[[], TextRenderer | JsonRenderer]) -> int:
    source, back = work / "source", work / "downloaded"
    print(f"demo: generating {files:,} small files and 2 x 40 MiB in {source}", file=sys.stderr)
    make_sample_tree(source, files)
    with LocalS3() as server:
        import boto3

        print(f"demo: embedded S3 (SeaweedFS) at {server.endpoint_url}", file=sys.stderr)
        boto3.client(
            "s3",
            endpoint_url=server.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id=server.access_key_id,
            aws_secret_access_key=server.secret_access_key,
        ).create_bucket(Bucket=BUCKET)
        os.environ.update(server.env())
        store = StoreConfig(endpoint_url=server.endpoint_url)
        url = f"s3://{BUCKET}/demo/"
        r = renderer()
        r.start()
        report = upload(source, url, store=store, sink=r)
        r.finish(report)
        if report.ok:
            r = renderer()
            r.start()
            report = download(url, back, store=store, sink=r)
            r.finish(report)
        if not report.ok:
            return ExitCode.PARTIAL_FAILURE
        problems = _same_trees(source, back)
        if problems:
            print(
                f"demo: FAILED: {len(problems)} differences, e.g. {problems[:3]}", file=sys.stderr
            )
            return ExitCode.PARTIAL_FAILURE
        print(
            "demo: OK: every file downloaded back is byte-identical to its source", file=sys.stderr
        )
        problems = _check_listing_and_reads(url, source, work / "inventory", store)
        problems += _check_copies(url, work / "state", store)
    for problem in problems:
        print(f"demo: FAILED: {problem}", file=sys.stderr)
    return ExitCode.PARTIAL_FAILURE if problems else ExitCode.OK


def _check_listing_and_reads(
    url: str, source: Path, inventory_dir: Path, store: StoreConfig
) -> list[str]:
    """du, inventory, a byte range and a record read against what was uploaded."""
    files = [p for p in source.rglob("*") if p.is_file()]
    want = (len(files), sum(p.stat().st_size for p in files))
    problems: list[str] = []
    usage = disk_usage(url, store=store)
    if (usage.objects, usage.size_bytes) != want:
        problems.append(f"du counted {usage.objects} objects / {usage.size_bytes} B, not {want}")
    report = inventory(url, inventory_dir, shard_size=1000, store=store)
    if (report.objects, report.size_bytes) != want:
        problems.append(f"inventory holds {report.objects} objects, not {want[0]}")
    large = (source / "large" / "large-1.bin").read_bytes()
    if read_range(f"{url}large/large-1.bin", 7920, 7999, store=store) != large[7920:8000]:
        problems.append("bytes 7920-7999 of large/large-1.bin differ from the source")
    records = dict(iter_records(f"{url}large/large-1.bin", 80, "99,5000-5002", store=store))
    if records != {n: large[n * 80 : n * 80 + 80] for n in (99, 5000, 5001, 5002)}:
        problems.append("80-byte records 99 and 5000-5002 of large/large-1.bin differ")
    if not problems:
        print(
            f"demo: OK: du and inventory ({report.shards} shards in {inventory_dir}) count "
            f"{want[0]:,} objects; byte range 7920-7999 and records 99, 5000-5002 match",
            file=sys.stderr,
        )
    return problems


def _check_copies(url: str, state: Path, store: StoreConfig) -> list[str]:
    """Copy the prefix server-side and through a queue; both must compare identical."""
    copied, migrated = f"s3://{BUCKET}/copy/", f"s3://{BUCKET}/migrated/"
    problems: list[str] = []
    report = copy(url, copied, source_store=store)
    if not report.ok or report.bytes_through_client:
        problems.append(f"cp {url} {copied}: {report.objects_failed} failed")
    workers = WorkerConfig(source_store=store, dest_store=store, wait_seconds=0.5)
    moved = migrate(url, migrated, workers=2, state_dir=state, worker=workers)
    if not moved.ok:
        problems.append(f"migrate {url} {migrated}: {moved.dead} tasks dead")
    for target in (copied, migrated):
        if not compare(url, target, store=store).same:
            problems.append(f"{target} differs from {url}")
    if not problems:
        print(
            f"demo: OK: cp copied {report.objects_done:,} objects server-side "
            f"({report.bytes_through_client} B through this machine), migrate "
            f"{moved.plan.tasks:,} tasks with 2 worker processes; both compare identical",
            file=sys.stderr,
        )
    return problems

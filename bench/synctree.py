"""The untimed parts of ``--ops sync``: per-tool trees, the 1% change, and the checks.

Every tool syncs its own copy of the dataset (``copy2``: same bytes and mtimes), so one
tool's change or bucket never meets another's. Before each timed ``sync-1pct`` run, the
same files of every copy get the same new bytes: run r changes the files whose index is
r-1 modulo 100 (1%), half of them (every other one) rewritten with the same size, the other
half with a different size (still 1-4 KiB), and every changed file's mtime is moved 10 s
later. Each run picks other files, so the changes do not pile up on the same ones.

The expected state (size and MD5 of every file) is computed once from the dataset and
updated with every change; a check compares it with one listing of the tool's prefix.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bench.datasets import KIB, Dataset, _file_seed
from bench.verify import compare_sizes

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

CHANGE_EVERY = 100  # 1 file in 100
MTIME_BUMP_NS = 10 * 10**9
MIN_SIZE, MAX_SIZE = KIB, 4 * KIB


@dataclass(frozen=True, slots=True)
class Obj:
    size: int
    etag: str  # without quotes
    last_modified: str


def file_states(root: Path, files: tuple[tuple[str, int], ...]) -> dict[str, tuple[int, str]]:
    """Relative path -> (size, MD5 hex) of every file of a tree."""
    states = {}
    for rel, _ in files:
        data = (root / rel).read_bytes()
        states[rel] = (len(data), hashlib.md5(data).hexdigest())
    return states


def fresh_copy(source: Path, target: Path) -> None:
    """``target`` becomes a copy of ``source`` with the same mtimes (never hardlinks)."""
    shutil.rmtree(target, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(source, target, copy_function=shutil.copy2)


def change_files(
    dataset: Dataset,
    seed: int,
    run: int,
    trees: list[Path],
    expected: dict[str, tuple[int, str]],
) -> list[str]:
    """Apply run ``run``'s 1% change to every tree alike; update ``expected``; return the paths.

    Same-size rewrites are the even positions of the chosen list, new sizes the odd ones.
    """
    chosen = [
        rel
        for i, (rel, _) in enumerate(dataset.files)
        if i % CHANGE_EVERY == (run - 1) % CHANGE_EVERY
    ]
    for position, rel in enumerate(chosen):
        old_size, old_md5 = expected[rel]
        if position % 2 == 0:
            size = old_size
        else:
            size = MIN_SIZE + (old_size - MIN_SIZE + 1536) % (MAX_SIZE - MIN_SIZE + 1)
        rng = random.Random(_file_seed(seed, f"{dataset.name}@change{run}", rel))
        data = rng.randbytes(size)
        md5 = hashlib.md5(data).hexdigest()
        if md5 == old_md5:
            raise AssertionError(f"change {run} did not change {rel}")
        for tree in trees:
            path = tree / rel
            mtime = path.stat().st_mtime_ns + MTIME_BUMP_NS
            path.write_bytes(data)
            os.utime(path, ns=(mtime, mtime))
        expected[rel] = (size, md5)
    return chosen


def list_objects(s3: S3Client, bucket: str, prefix: str) -> dict[str, Obj]:
    """Key (relative to ``prefix``) -> size, ETag and LastModified of every object."""
    found: dict[str, Obj] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for entry in page.get("Contents", []):
            found[entry["Key"].removeprefix(prefix)] = Obj(
                entry["Size"], entry["ETag"].strip('"'), entry["LastModified"].isoformat()
            )
    return found


def verify_sync(
    expected: dict[str, tuple[int, str]], listing: dict[str, Obj], changed: list[str]
) -> str | None:
    """Keys and sizes of the listing against the tree; ETag = MD5 for every single-part object.

    ``changed``: the files changed for this run, counted apart (with how many kept their size)
    from objects that differ from files not changed this run.
    """
    problems = []
    sizes = {rel: obj.size for rel, obj in listing.items()}
    if problem := compare_sizes({rel: size for rel, (size, _) in expected.items()}, sizes):
        problems.append(problem)
    stale = [
        rel
        for rel, (_, md5) in expected.items()
        if rel in listing and "-" not in listing[rel].etag and listing[rel].etag != md5
    ]
    changed_set = set(changed)
    stale_changed = [rel for rel in stale if rel in changed_set]
    if stale_changed:
        position = {rel: i for i, rel in enumerate(changed)}
        same_size = sum(1 for rel in stale_changed if position[rel] % 2 == 0)
        problems.append(
            f"{len(stale_changed)} of {len(changed)} changed files not uploaded "
            f"({same_size} of them same-size rewrites; e.g. {stale_changed[0]})"
        )
    if stale_other := [rel for rel in stale if rel not in changed_set]:
        problems.append(
            f"{len(stale_other)} other objects differ from their files (e.g. {stale_other[0]})"
        )
    return "; ".join(problems) or None


def rewritten(before: dict[str, Obj], after: dict[str, Obj]) -> int:
    """Objects written between two listings (new, or a new ETag or LastModified)."""
    return sum(1 for rel, obj in after.items() if before.get(rel) != obj)

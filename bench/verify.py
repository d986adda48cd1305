"""Check a finished transfer against its dataset (untimed). Each check returns an error or None."""

from __future__ import annotations

import filecmp
import gzip
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from bench.datasets import MIB, Dataset

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

UPLOAD_BYTE_SAMPLE = 20
DOWNLOAD_BYTE_SAMPLE = 200
READ_CHUNK = MIB


def list_sizes(s3: S3Client, bucket: str, prefix: str) -> dict[str, int]:
    """Key (relative to ``prefix``) -> size of every object under ``prefix``."""
    sizes: dict[str, int] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for entry in page.get("Contents", []):
            sizes[entry["Key"].removeprefix(prefix)] = entry["Size"]
    return sizes


def verify_upload(s3: S3Client, dataset: Dataset, bucket: str, prefix: str) -> str | None:
    """All keys and sizes, plus the bytes of a sample (always including the largest file)."""
    if problem := compare_sizes(dict(dataset.files), list_sizes(s3, bucket, prefix)):
        return problem
    largest = max(dataset.files, key=lambda entry: entry[1])
    for rel, _ in {*sample(dataset.files, UPLOAD_BYTE_SAMPLE), largest}:
        body = s3.get_object(Bucket=bucket, Key=prefix + rel)["Body"]
        if not _same_stream(body.iter_chunks(READ_CHUNK), dataset.path / rel):
            return f"object bytes differ: {rel}"
    return None


def verify_download(dataset: Dataset, local: Path) -> str | None:
    """All paths and sizes, plus the bytes of a sample and of every file over 1 MiB."""
    if problem := compare_sizes(dict(dataset.files), local_sizes(local)):
        return problem
    to_check = {
        *sample(dataset.files, DOWNLOAD_BYTE_SAMPLE),
        *(entry for entry in dataset.files if entry[1] > MIB),
    }
    for rel, _ in to_check:
        if not filecmp.cmp(dataset.path / rel, local / rel, shallow=False):
            return f"file bytes differ: {rel}"
    return None


def local_sizes(root: Path) -> dict[str, int]:
    sizes = {}
    for directory, _, names in os.walk(root):
        for name in names:
            path = Path(directory, name)
            sizes[path.relative_to(root).as_posix()] = path.stat().st_size
    return sizes


def compare_sizes(expected: dict[str, int], actual: dict[str, int]) -> str | None:
    missing = sorted(expected.keys() - actual.keys())
    extra = sorted(actual.keys() - expected.keys())
    wrong = sorted(k for k in expected.keys() & actual.keys() if expected[k] != actual[k])
    if not (missing or extra or wrong):
        return None
    parts = [
        f"{len(names)} {label} (e.g. {names[0]})"
        for label, names in (("missing", missing), ("unexpected", extra), ("wrong size", wrong))
        if names
    ]
    return "; ".join(parts)


def sample(files: tuple[tuple[str, int], ...], count: int) -> list[tuple[str, int]]:
    """Up to ``count`` entries spread evenly over ``files``."""
    step = max(1, len(files) // count)
    return list(files[::step][:count])


def _same_stream(chunks: Iterator[bytes], path: Path) -> bool:
    with open(path, "rb") as f:
        for chunk in chunks:
            if f.read(len(chunk)) != chunk:
                return False
        return f.read(1) == b""


def verify_inventory(directory: Path, expected: set[str]) -> str | None:
    """A finished inventory (manifest.json + gzip JSON-lines shards) holds every key once."""
    manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    if not manifest.get("complete"):
        return "manifest.json says the inventory is unfinished"
    keys: list[str] = []
    for shard in manifest["shards"]:
        with gzip.open(directory / shard["file"], "rt", encoding="utf-8") as f:
            keys.extend(json.loads(line)["key"] for line in f)
    found = set(keys)
    problems = []
    if len(keys) != len(expected):
        problems.append(f"{len(keys):,} entries for {len(expected):,} objects")
    if len(found) != len(keys):
        problems.append(f"{len(keys) - len(found):,} repeated keys")
    if found != expected:
        problems.append(
            f"{len(expected - found):,} keys missing, {len(found - expected):,} unknown"
        )
    return "; ".join(problems) or None


def verify_listing(out: Path, expected: set[str], size: int, key_only: bool) -> str | None:
    """One output line per object: the line count, then every key (and size) against the plan.

    ``key_only``: a line is the key; otherwise ``DATE TIME SIZE KEY`` (keys have no spaces).
    """
    with open(out, encoding="utf-8", errors="replace", newline="\n") as f:
        lines = [line.removesuffix("\n") for line in f]
    if len(lines) != len(expected):
        problem = f"{len(lines):,} lines for {len(expected):,} objects"
    else:
        problem = None
    sizes: dict[str, int] = {}
    for line in lines:
        if key_only:
            sizes[line] = size
            continue
        fields = line.split(None, 3)
        if len(fields) != 4 or not fields[2].isdigit():
            return "; ".join(filter(None, (problem, f"unparsable line {line[:100]!r}")))
        sizes[fields[3]] = int(fields[2])
    repeated = len(lines) - len(sizes)
    repeats = f"{repeated:,} repeated keys" if repeated else None
    differences = compare_sizes(dict.fromkeys(expected, size), sizes)
    return "; ".join(filter(None, (problem, repeats, differences))) or None

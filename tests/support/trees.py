"""Build local trees and compare them with what a bucket or a download holds."""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path
from typing import Any


def write_tree(root: Path, files: dict[str, bytes]) -> None:
    """Create ``files`` (``/``-separated relative path -> content) under ``root``."""
    for rel, data in files.items():
        path = root.joinpath(*rel.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def random_files(count: int, sizes: tuple[int, ...], seed: int = 1) -> dict[str, bytes]:
    rng = random.Random(seed)
    return {
        f"d{i % 7}/s{i % 3}/f{i:04d}.bin": rng.randbytes(rng.choice(sizes)) for i in range(count)
    }


def read_tree(root: Path) -> dict[str, bytes]:
    """Every regular file under ``root`` as relative path -> content."""
    out: dict[str, bytes] = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = Path(dirpath) / name
            out[path.relative_to(root).as_posix()] = path.read_bytes()
    return out


def bucket_contents(client: Any, bucket: str, prefix: str = "") -> dict[str, str]:
    """Key (minus prefix) -> MD5 hex of the object's bytes."""
    out: dict[str, str] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for o in page.get("Contents", ()):
            body = client.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
            out[o["Key"][len(prefix) :]] = hashlib.md5(body).hexdigest()
    return out


def md5s(files: dict[str, bytes]) -> dict[str, str]:
    return {k: hashlib.md5(v).hexdigest() for k, v in files.items()}

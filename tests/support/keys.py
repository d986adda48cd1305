"""Putting many small objects quickly (untimed test setup)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any


def put_keys(s3client: Any, bucket: str, keys: list[str], body: bytes = b"x") -> None:
    """PUT ``body`` under every key, 32 at a time."""
    with ThreadPoolExecutor(32) as pool:
        list(pool.map(lambda k: s3client.put_object(Bucket=bucket, Key=k, Body=body), keys))

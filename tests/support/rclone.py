"""``rclone serve s3`` on 127.0.0.1: a second real S3 server, of another make than SeaweedFS.

It serves a local directory (each top-level directory is a bucket) and departs
from S3 in ways s3ferry must survive: it answers a byte range with 200 (and its
Content-Range) instead of 206, and takes ``PUT key?tagging`` for a PutObject.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from support.served import served

ACCESS_KEY = "rcloneaccess"
SECRET_KEY = "rclonesecret"


@contextmanager
def rclone_s3_server(root: Path) -> Iterator[dict[str, str]]:
    """Serve ``root`` by ``rclone serve s3`` with access-key authentication; yields the
    environment that points AWS tools (and s3ferry) at it."""
    rclone = str(Path(sys.executable).parent / "rclone")
    auth = f"{ACCESS_KEY},{SECRET_KEY}"

    def command(port: int) -> list[str]:
        address = f"127.0.0.1:{port}"
        return [
            rclone,
            "serve",
            "s3",
            "--config",
            "/dev/null",
            "--addr",
            address,
            "--auth-key",
            auth,
            str(root),
        ]

    with served(command, "rclone serve s3") as port:
        yield {
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": "us-east-1",
        }

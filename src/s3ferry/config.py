"""Frozen configuration records and the auto-tuning that fills them.

Memory bound of a transfer (upload or download), in bytes::

    peak ≈ large_file_buffers × part_size_bytes      (large-file lane: the buffer pool)
         + small_lane_bytes                          (small-file lane: bytes in flight)
         + ~120 MiB                                  (interpreter, clients, walk state)

Neither term depends on the number or the size of the files: the walk
streams entries, a large file never holds more than the pool, and small
files wait for room in the byte budget before they are read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

S3_MAX_PARTS = 10_000
S3_MIN_PART_BYTES = 5 * MiB
S3_MAX_PART_BYTES = 5 * GiB

# 16 MiB parts cost one request per 16 MiB: per-request CPU is what limits a
# Python client, and 16 MiB x the pool still fits small machines.
DEFAULT_PART_BYTES = 16 * MiB
DEFAULT_MULTIPART_THRESHOLD_BYTES = 16 * MiB
# Downloads stream objects from 4 MiB up to their file in ranges instead of holding
# each whole in memory: on the mixed benchmark set (2,000 files, 1 GiB) that took
# ~8 s where 16 MiB took ~10 s, with less memory (see the issue 2 note).
DEFAULT_DOWNLOAD_THRESHOLD_BYTES = 4 * MiB
# Downloads read ranges of 64 MiB (unless a composite checksum needs the upload's parts):
# a range streams into its file through one 1 MiB buffer, so its size costs no memory,
# and a quarter of the requests cost the server less. 4 x 512 MiB, 8 alternating runs:
# mean 3.16 s against 3.50 s with 16 MiB ranges (s5cmd, 50 MiB: 2.96 s).
DEFAULT_DOWNLOAD_RANGE_BYTES = 64 * MiB
# Async PUT/GET of small objects costs ~0.3 ms of client CPU; 64 in flight
# hides the loopback round trip without starving the server of CPU.
DEFAULT_SMALL_FILE_WORKERS = 64
DEFAULT_SMALL_LANE_BYTES = 64 * MiB


@dataclass(frozen=True, slots=True)
class TransferConfig:
    """How a transfer uses the machine. ``None`` fields are chosen by :func:`resolve`.

    Attributes:
        multipart_threshold_bytes: files of at least this size take the
            large-file lane (multipart upload / parallel ranged download).
        part_size_bytes: size of one part or range; grown per file so that no
            file needs more than 10,000 parts.
        large_file_buffers: buffers in the pool; each holds one part.
        large_file_workers: parts sent or fetched at once.
        small_file_workers: small objects in flight at once.
        small_lane_bytes: bytes of small objects held in memory at once.
    """

    multipart_threshold_bytes: int | None = None
    part_size_bytes: int | None = None
    large_file_buffers: int | None = None
    large_file_workers: int | None = None
    small_file_workers: int | None = None
    small_lane_bytes: int | None = None

    def memory_bound_bytes(self) -> int:
        """Peak bytes held by both lanes: the module docstring's formula less its constant."""
        r = resolve(self)
        assert r.large_file_buffers is not None and r.part_size_bytes is not None
        assert r.small_lane_bytes is not None
        return r.large_file_buffers * r.part_size_bytes + r.small_lane_bytes


@dataclass(frozen=True, slots=True)
class Machine:
    """What auto-tuning looks at."""

    cpus: int
    memory_bytes: int

    @classmethod
    def detect(cls) -> Machine:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        pages = os.sysconf("SC_PHYS_PAGES") if hasattr(os, "sysconf") else 0
        page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 0
        return cls(cpus=cpus or 1, memory_bytes=pages * page or 4 * GiB)


def resolve(
    config: TransferConfig, machine: Machine | None = None, downloading: bool = False
) -> TransferConfig:
    """Fill every ``None`` field of ``config`` from the machine (and, for the multipart
    threshold and the part size, from the direction: ``downloading`` takes a lower
    threshold and larger ranges).

    Raises:
        ValueError: a given value is out of range (the CLI reports the option).
    """
    m = machine or Machine.detect()
    _check_positive(config)
    part = config.part_size_bytes or (
        DEFAULT_DOWNLOAD_RANGE_BYTES if downloading else DEFAULT_PART_BYTES
    )
    # Parts run in threads that mostly wait on the network: a few per core.
    workers = config.large_file_workers or max(8, min(32, 4 * m.cpus))
    # Two spare buffers keep the one sequential reader busy while every worker sends.
    wanted_buffers = config.large_file_buffers or workers + 2
    # The pool never takes more than an eighth of the machine's memory.
    cap = max(2, (m.memory_bytes // 8) // part)
    buffers = wanted_buffers if config.large_file_buffers else min(wanted_buffers, cap)
    return replace(
        config,
        multipart_threshold_bytes=config.multipart_threshold_bytes
        or (DEFAULT_DOWNLOAD_THRESHOLD_BYTES if downloading else DEFAULT_MULTIPART_THRESHOLD_BYTES),
        part_size_bytes=part,
        large_file_buffers=buffers,
        large_file_workers=workers,
        small_file_workers=config.small_file_workers or DEFAULT_SMALL_FILE_WORKERS,
        small_lane_bytes=config.small_lane_bytes or DEFAULT_SMALL_LANE_BYTES,
    )


def part_size_for(file_size_bytes: int, part_size_bytes: int) -> int:
    """The part size to use for one file: ``part_size_bytes`` grown so parts <= 10,000.

    Grown sizes are rounded up to a whole MiB. Example: a 5 TiB file with
    16 MiB parts gets 525 MiB parts (9,987 parts).
    """
    size = max(part_size_bytes, S3_MIN_PART_BYTES)
    if file_size_bytes <= size * S3_MAX_PARTS:
        return size
    needed = -(-file_size_bytes // S3_MAX_PARTS)
    return min(-(-needed // MiB) * MiB, S3_MAX_PART_BYTES)


def _check_positive(config: TransferConfig) -> None:
    for name in config.__slots__:
        value = getattr(config, name)
        if value is not None and value <= 0:
            raise ValueError(f"{name} must be positive, got {value}")
    part = config.part_size_bytes
    if part is not None and not S3_MIN_PART_BYTES <= part <= S3_MAX_PART_BYTES:
        raise ValueError(f"part_size_bytes must be between 5 MiB and 5 GiB, got {part}")


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """How to reach one S3 endpoint; each side of a transfer has its own.

    ``None`` means "as the AWS CLI would decide": environment variables
    (``AWS_ENDPOINT_URL``, ``AWS_PROFILE``, ``AWS_REGION`` ...) and the AWS
    config and credentials files. ``verify_ssl`` False accepts any TLS
    certificate (self-signed test servers only: it allows interception).

    Server-side encryption of what is written: ``sse`` ``"AES256"`` (SSE-S3)
    or ``"aws:kms"`` (SSE-KMS, with ``sse_kms_key_id`` or the account's
    default key); or ``sse_c_key``, 32 bytes of the caller's own AES-256 key
    (SSE-C), which every later read of those objects needs too. The key is a
    secret: it is sent only in request headers and never printed.
    """

    endpoint_url: str | None = None
    profile: str | None = None
    region: str | None = None
    no_sign_request: bool = False
    verify_ssl: bool = True
    sse: str | None = None
    sse_kms_key_id: str | None = None
    sse_c_key: bytes | None = field(default=None, repr=False)


def cache_dir() -> Path:
    """Where s3ferry keeps state between runs: ``$XDG_CACHE_HOME/s3ferry`` (``~/.cache``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "s3ferry"

"""Every command finishes, byte-identical, through a proxy that throttles, resets, truncates
and delays a share of its requests."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support.faultproxy import FaultProxy, Faults
from support.measured import run_measured
from support.trees import bucket_contents, md5s, random_files, read_tree, write_tree

from s3ferry import TransferConfig, upload
from s3ferry.config import StoreConfig
from s3ferry.events import Event, PaceChanged, Retried
from s3ferry.storage.retry import MAX_LIMIT
from s3ferry.storage.s3 import S3Store

from .conftest import ChaosRow

MiB = 1024 * 1024
S3FERRY = str(Path(sys.executable).parent / "s3ferry")
SMALL_PARTS = ("--multipart-threshold", "5MiB", "--part-size", "5MiB")


def _run(
    row: ChaosRow, env: dict[str, str], *args: str | Path
) -> subprocess.CompletedProcess[bytes]:
    """Run ``s3ferry args`` to the end; its peak RSS goes to ``row``."""
    done, peak_rss = run_measured([S3FERRY, *map(str, args)], env, timeout=300)
    row.measured(peak_rss)
    return done


def _summary(run: subprocess.CompletedProcess[bytes]) -> dict[str, Any]:
    assert run.returncode == 0, run.stderr.decode()
    records = [json.loads(line) for line in run.stdout.decode().splitlines()]
    assert records[-1]["type"] == "summary" and records[-1]["ok"], records[-1]
    return records[-1]


def _open_uploads(s3client: Any, bucket: str) -> int:
    return len(s3client.list_multipart_uploads(Bucket=bucket).get("Uploads", ()))


def _mixed_tree(seed: int, small: int, large: tuple[int, ...]) -> dict[str, bytes]:
    files = random_files(small, (0, 1, 700, 5000, 40_000), seed=seed)
    for i, size in enumerate(large):
        files[f"large/l{i}.bin"] = os.urandom(size)
    return files


def _cp_sync_ls_cat(
    tmp_path: Path,
    proxy: FaultProxy,
    env: dict[str, str],
    s3client: Any,
    bucket: str,
    files: dict[str, bytes],
    row: ChaosRow,
) -> None:
    """Upload, download, list, sync and cat through ``proxy``; verify each against the source."""
    env = {**env, "AWS_ENDPOINT_URL": proxy.endpoint_url}
    src = tmp_path / "src"
    write_tree(src, files)
    reports = [_summary(_run(row, env, "cp", "--json", src, f"s3://{bucket}/p/", *SMALL_PARTS))]
    reports.append(_summary(_run(row, env, "cp", "--json", f"s3://{bucket}/p/", tmp_path / "out")))

    listed = _run(row, env, "ls", "-r", f"s3://{bucket}/p/")
    assert listed.returncode == 0, listed.stderr.decode()
    assert len(listed.stdout.decode().splitlines()) == len(files)

    synced = _run(row, env, "sync", src, f"s3://{bucket}/q/", *SMALL_PARTS)
    assert synced.returncode == 0, synced.stderr.decode()
    retried = re.search(r"retried +(\d+) requests \(", synced.stderr.decode())
    assert retried, synced.stderr.decode()

    big = max(files, key=lambda k: len(files[k]))
    cat = _run(row, env, "cat", f"s3://{bucket}/p/{big}", "--range", f"3-{len(files[big]) - 4}")
    assert cat.returncode == 0, cat.stderr.decode()
    assert hashlib.md5(cat.stdout).digest() == hashlib.md5(files[big][3:-3]).digest()

    want = md5s(files)
    copies = [bucket_contents(s3client, bucket, p) for p in ("p/", "q/")]
    copies.append(md5s(read_tree(tmp_path / "out")))
    row.injected = dict(proxy.injected)
    row.retries = sum(sum(r["retries_by_kind"].values()) for r in reports) + int(retried[1])
    row.verified = sum(r["objects_done"] for r in reports) + len(files) + 1
    _check_copies(row, want, copies, s3client, bucket)


def _check_copies(
    row: ChaosRow, want: dict[str, str], copies: list[dict[str, str]], s3client: Any, bucket: str
) -> None:
    """Every copy holds exactly the wanted bytes, no upload is left open, faults were retried."""
    row.lost_or_corrupted = sum(copy.get(k) != md5 for copy in copies for k, md5 in want.items())
    row.open_uploads = _open_uploads(s3client, bucket)
    assert (row.lost_or_corrupted, row.open_uploads) == (0, 0)
    assert all(copy.keys() == want.keys() for copy in copies)
    assert row.retries > 0, "the proxy injected faults but nothing was retried"


def test_cp_ls_sync_cat_are_byte_identical_through_faults(
    tmp_path: Path,
    fault_proxy: Callable[[Faults], FaultProxy],
    cli_env: dict[str, str],
    s3client: Any,
    bucket: str,
    chaos_row: ChaosRow,
) -> None:
    files = _mixed_tree(seed=11, small=120, large=(11 * MiB, 6 * MiB))
    proxy = fault_proxy(Faults.every_kind(0.05, seed=3))

    _cp_sync_ls_cat(tmp_path, proxy, cli_env, s3client, bucket, files, chaos_row)

    assert set(proxy.injected) == {"slowdown", "reset_before", "reset_mid", "truncate", "delay"}


@pytest.mark.slow
def test_a_larger_tree_survives_one_request_in_three_failing(
    tmp_path: Path,
    fault_proxy: Callable[[Faults], FaultProxy],
    cli_env: dict[str, str],
    s3client: Any,
    bucket: str,
    chaos_row: ChaosRow,
) -> None:
    files = _mixed_tree(seed=12, small=1500, large=(23 * MiB, 17 * MiB, 9 * MiB, 5 * MiB))
    proxy = fault_proxy(Faults.every_kind(0.08, seed=4))

    _cp_sync_ls_cat(tmp_path, proxy, cli_env, s3client, bucket, files, chaos_row)


def test_throttling_lowers_the_pace_and_the_job_still_completes(
    tmp_path: Path,
    fault_proxy: Callable[[Faults], FaultProxy],
    store_config: StoreConfig,
    s3client: Any,
    bucket: str,
    chaos_row: ChaosRow,
) -> None:
    files = random_files(80, (10, 2000), seed=13)
    write_tree(tmp_path, files)
    proxy = fault_proxy(Faults(slowdown=0.25, seed=5))
    events: list[Event] = []

    report = upload(
        tmp_path,
        f"s3://{bucket}/t/",
        transfer=TransferConfig(small_file_workers=32),
        store=StoreConfig(endpoint_url=proxy.endpoint_url),
        sink=events.append,
    )

    assert report.ok and report.objects_done == len(files)
    assert bucket_contents(s3client, bucket, "t/") == md5s(files)
    paces = [e.limit for e in events if isinstance(e, PaceChanged)]
    assert paces and min(paces) < 32 and report.lowest_pace == min(paces) < MAX_LIMIT
    throttled = [e for e in events if isinstance(e, Retried) and e.kind == "throttled"]
    assert report.retries_by_kind["throttled"] == len(throttled) > 0
    chaos_row.injected = dict(proxy.injected)
    chaos_row.retries = len(throttled)
    chaos_row.verified = report.objects_done


def test_a_broken_range_stream_resumes_from_the_first_byte_not_consumed(
    fault_proxy: Callable[[Faults], FaultProxy],
    store_config: StoreConfig,
    s3client: Any,
    bucket: str,
    chaos_row: ChaosRow,
) -> None:
    data = os.urandom(3 * MiB)
    s3client.put_object(Bucket=bucket, Key="k", Body=data)
    proxy = fault_proxy(Faults(truncate=1.0, max_faults=1))
    store = S3Store(bucket, StoreConfig(endpoint_url=proxy.endpoint_url))
    got = bytearray()
    offsets: list[int] = []

    def consume(chunk: memoryview, offset: int) -> None:
        assert offset == len(got), "a byte consumed twice or skipped"
        offsets.append(offset)
        got.extend(chunk)

    store.read_range("k", 0, len(data), consume)

    assert got == data
    gets = [rng for line, rng in proxy.requests if line.startswith("GET ")]
    assert len(gets) == 2 and proxy.injected == {"truncate": 1}
    resumed_at = int(gets[1].removeprefix("bytes=").split("-")[0])
    assert 0 < resumed_at < len(data) and resumed_at in offsets, (gets, offsets)
    chaos_row.injected = dict(proxy.injected)
    chaos_row.retries = 1
    chaos_row.verified = 1


def test_copies_and_a_migration_are_byte_identical_through_faults(
    tmp_path: Path,
    fault_proxy: Callable[[Faults], FaultProxy],
    cli_env: dict[str, str],
    s3client: Any,
    bucket: str,
    chaos_row: ChaosRow,
) -> None:
    """cp between buckets (server-side and streamed) and migrate with two worker processes."""
    files = _mixed_tree(seed=13, small=150, large=(11 * MiB, 6 * MiB))
    for key, body in files.items():
        s3client.put_object(Bucket=bucket, Key=f"src/{key}", Body=body)
    proxy = fault_proxy(Faults.every_kind(0.05, seed=5))
    env = {**cli_env, "AWS_ENDPOINT_URL": proxy.endpoint_url}
    source = f"s3://{bucket}/src/"
    reports = [
        _summary(_run(chaos_row, env, "cp", "--json", source, f"s3://{bucket}/c1/", *SMALL_PARTS)),
        _summary(
            _run(
                chaos_row,
                env,
                "cp",
                "--json",
                "--copy-path",
                "streamed",
                source,
                f"s3://{bucket}/c2/",
                *SMALL_PARTS,
            )
        ),
    ]
    migrated = _run(
        chaos_row,
        env,
        "migrate",
        source,
        f"s3://{bucket}/m/",
        "--workers",
        "2",
        "--state-dir",
        tmp_path,
        "--visibility-timeout",
        "10",
        "--json",
    )
    assert migrated.returncode == 0, migrated.stderr.decode()
    assert json.loads(migrated.stdout.decode().splitlines()[-1])["ok"]

    want = md5s(files)
    copies = [bucket_contents(s3client, bucket, p) for p in ("c1/", "c2/", "m/")]
    chaos_row.injected = dict(proxy.injected)
    chaos_row.retries = sum(sum(r["retries_by_kind"].values()) for r in reports)
    chaos_row.verified = sum(r["objects_done"] for r in reports) + len(copies[2])
    _check_copies(chaos_row, want, copies, s3client, bucket)

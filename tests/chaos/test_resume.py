"""``kill -9`` (or Ctrl-C) in the middle of a transfer, then the same command again: it
finishes, reuses what the stopped run had verified, and leaves no multipart upload,
temporary file or journal behind.

The kill waits on observable state (parts listed by the store, ranges committed to
the journal), never on a sleep, so it lands mid-transfer on a fast or slow machine.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support.faultproxy import FaultProxy, Faults
from support.measured import run_measured

from .conftest import ChaosRow

S3FERRY = str(Path(sys.executable).parent / "s3ferry")
MiB = 1024 * 1024
PARTS = ["--multipart-threshold", "5MiB", "--part-size", "5MiB", "--large-file-workers", "2"]
SMALL_FILES = 200
POLL_S = 0.01


def _run(args: list[str], env: dict[str, str], row: ChaosRow) -> tuple[int, dict[str, Any], str]:
    """Exit code, the ``--json`` summary and stderr of one complete run (its peak RSS and
    what it resumed go to ``row``)."""
    done, peak_rss = run_measured([S3FERRY, *args, "--json"], env, timeout=240)
    row.measured(peak_rss)
    lines = [json.loads(line) for line in done.stdout.decode().splitlines()]
    summary = next((r for r in lines if r["type"] == "summary"), {})
    row.resumed = summary.get("objects_resumed", 0) + summary.get("parts_reused", 0)
    row.verified = summary.get("objects_done", 0) + summary.get("objects_resumed", 0)
    return done.returncode, summary, done.stderr.decode()


def _stop_when(
    args: list[str], env: dict[str, str], ready: Callable[[], bool], sig: int = signal.SIGKILL
) -> tuple[int, str]:
    """Start ``s3ferry args``, send ``sig`` as soon as ``ready()`` (it must not finish
    first) and return its exit code and stderr."""
    with subprocess.Popen(
        [S3FERRY, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    ) as proc:
        try:
            while not ready():
                assert proc.poll() is None, "the transfer ended before it could be stopped"
                time.sleep(POLL_S)
            proc.send_signal(sig)
            _, err = proc.communicate(timeout=120)
            return proc.returncode, err.decode()
        finally:
            if proc.poll() is None:
                proc.kill()


def _journals(state: Path) -> list[Path]:
    return sorted(state.glob("*.sqlite")) if state.exists() else []


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    (src / "small").mkdir(parents=True)
    for i in range(SMALL_FILES):
        (src / "small" / f"f{i:03d}.txt").write_bytes(os.urandom(1000 + i))
    (src / "big.bin").write_bytes(os.urandom(100 * MiB))
    return src


@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    ("command", "sig"),
    [
        ("cp", signal.SIGKILL),
        ("cp", signal.SIGINT),
        pytest.param("sync", signal.SIGKILL, marks=pytest.mark.slow),
        pytest.param("backup", signal.SIGKILL, marks=pytest.mark.slow),
    ],
    ids=["cp-kill-9", "cp-ctrl-c", "sync-kill-9", "backup-kill-9"],
)
def test_stopped_upload_resumes_from_its_parts(
    command: str,
    sig: int,
    tree: Path,
    tmp_path: Path,
    bucket: str,
    s3client: Any,
    cli_env: dict[str, str],
    chaos_row: ChaosRow,
) -> None:
    state = tmp_path / "state"
    args = [command, str(tree), f"s3://{bucket}/p/", "--state-dir", str(state), *PARTS]

    def parts_uploaded() -> bool:
        uploads = s3client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        return any(
            len(
                s3client.list_parts(Bucket=bucket, Key=u["Key"], UploadId=u["UploadId"]).get(
                    "Parts", []
                )
            )
            >= 2
            for u in uploads
        )

    code, err = _stop_when(args, cli_env, parts_uploaded, sig)
    if sig == signal.SIGINT:
        assert code == 130, err
        assert err.splitlines()[-1] == (
            f"error: interrupted; state saved in {state}; run the same command again to resume"
        )
    else:
        assert code == -signal.SIGKILL, err
    assert _journals(state), "the stopped run left no journal"
    assert "Uploads" in s3client.list_multipart_uploads(Bucket=bucket)

    code, summary, err = _run(args, cli_env, chaos_row)

    assert code == 0, err
    assert summary["parts_reused"] >= 2
    if command == "cp":  # sync and backup skip what is there before asking the journal
        assert summary["objects_done"] + summary["objects_resumed"] == SMALL_FILES + 1
    chaos_row.open_uploads = len(s3client.list_multipart_uploads(Bucket=bucket).get("Uploads", []))
    chaos_row.lost_or_corrupted = sum(
        s3client.get_object(Bucket=bucket, Key="p/" + f.relative_to(tree).as_posix())["Body"].read()
        != f.read_bytes()
        for f in [tree / "big.bin", *sorted((tree / "small").iterdir())]
    )
    assert (chaos_row.lost_or_corrupted, chaos_row.open_uploads) == (0, 0)
    assert s3client.list_objects_v2(Bucket=bucket)["KeyCount"] == SMALL_FILES + 1
    assert _journals(state) == []


@pytest.mark.timeout(300)
@pytest.mark.parametrize("command", ["cp", pytest.param("restore", marks=pytest.mark.slow)])
def test_killed_download_resumes_from_its_temporary_file(
    command: str,
    tmp_path: Path,
    bucket: str,
    s3client: Any,
    cli_env: dict[str, str],
    fault_proxy: Callable[[Faults], FaultProxy],
    chaos_row: ChaosRow,
) -> None:
    data = os.urandom(100 * MiB)
    s3client.put_object(Bucket=bucket, Key="big.bin", Body=data)
    # Every GET waits a little in a proxy, so that the download is still running when
    # two ranges are journaled however fast the machine is.
    slow = fault_proxy(Faults(delay=1.0, delay_s=0.2))
    env = {**cli_env, "AWS_ENDPOINT_URL": slow.endpoint_url}
    state, out = tmp_path / "state", tmp_path / "out"
    out.mkdir()
    ends = {
        "cp": [f"s3://{bucket}/big.bin", str(out) + "/"],
        "restore": [f"s3://{bucket}/", "--into", str(out)],
    }[command]
    args = [command, *ends, "--state-dir", str(state), *PARTS]

    def ranges_journaled() -> bool:
        for journal in _journals(state):
            try:
                with sqlite3.connect(journal) as db:
                    if db.execute("SELECT count(*) FROM ranges").fetchone()[0] >= 2:
                        return True
            except sqlite3.OperationalError:  # created but not yet given its tables
                continue
        return False

    code, err = _stop_when(args, env, ranges_journaled)
    assert code == -signal.SIGKILL, err
    kept = [f.name for f in out.iterdir()]
    assert len(kept) == 1 and kept[0].startswith(".big.bin.s3ferry-"), kept

    code, summary, err = _run(args, env, chaos_row)

    assert code == 0, err
    assert summary["parts_reused"] >= 2
    assert [f.name for f in out.iterdir()] == ["big.bin"]
    chaos_row.lost_or_corrupted = int((out / "big.bin").read_bytes() != data)
    assert chaos_row.lost_or_corrupted == 0
    assert _journals(state) == []

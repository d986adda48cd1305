"""Ctrl-C (SIGINT) stops a transfer cleanly: exit 130, no open multipart upload, no
partial object or file. Whether the signal lands mid-transfer or after the end, the
invariants are the same, so the test does not depend on timing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

S3FERRY = str(Path(sys.executable).parent / "s3ferry")
MiB = 1024 * 1024
PARTS = ["--multipart-threshold", "5MiB", "--part-size", "5MiB", "--large-file-workers", "2"]


def _interrupted(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    proc = subprocess.Popen(
        [S3FERRY, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    time.sleep(0.6)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, b"", err)


@pytest.fixture
def big_tree(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    for i in range(12):
        (src / f"f{i:02d}.bin").write_bytes(os.urandom(12 * MiB))
    return src


@pytest.mark.timeout(180)
def test_interrupted_upload_leaves_only_complete_objects(
    big_tree: Path, bucket: str, s3client: Any, cli_env: dict[str, str]
) -> None:
    result = _interrupted(["cp", str(big_tree), f"s3://{bucket}/p/", "-q", *PARTS], cli_env)
    assert result.returncode in (0, 130), result.stderr
    assert b"Traceback" not in result.stderr
    if result.returncode == 130:
        assert result.stderr.decode().splitlines()[-1].startswith("error: interrupted")
    assert "Uploads" not in s3client.list_multipart_uploads(Bucket=bucket)
    for o in s3client.list_objects_v2(Bucket=bucket).get("Contents", []):
        body = s3client.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
        assert body == (big_tree / o["Key"].removeprefix("p/")).read_bytes()


@pytest.mark.timeout(180)
def test_interrupted_download_leaves_only_complete_files(
    big_tree: Path, tmp_path: Path, bucket: str, s3client: Any, cli_env: dict[str, str]
) -> None:
    for f in big_tree.iterdir():
        s3client.put_object(Bucket=bucket, Key=f"p/{f.name}", Body=f.read_bytes())
    out = tmp_path / "out"
    result = _interrupted(["cp", f"s3://{bucket}/p/", str(out), "-q", *PARTS], cli_env)
    assert result.returncode in (0, 130), result.stderr
    assert b"Traceback" not in result.stderr
    # Interrupted before it began, the download created nothing at all.
    for f in out.iterdir() if out.exists() else ():
        assert not f.name.startswith("."), f"temporary file left behind: {f.name}"
        assert f.read_bytes() == (big_tree / f.name).read_bytes()


@pytest.mark.timeout(180)
def test_interrupted_sync_says_how_to_resume_and_resumes(
    big_tree: Path, bucket: str, s3client: Any, cli_env: dict[str, str]
) -> None:
    args = ["sync", str(big_tree), f"s3://{bucket}/p/", "-q", *PARTS]
    result = _interrupted(args, cli_env)
    assert result.returncode in (0, 130), result.stderr
    assert b"Traceback" not in result.stderr
    if result.returncode == 130:
        last = result.stderr.decode().splitlines()[-1]
        assert last == "error: interrupted; run the same command again to finish"
    assert "Uploads" not in s3client.list_multipart_uploads(Bucket=bucket)

    again = subprocess.run([S3FERRY, *args], env=cli_env, capture_output=True, timeout=120)

    assert again.returncode == 0, again.stderr
    for f in big_tree.iterdir():
        body = s3client.get_object(Bucket=bucket, Key=f"p/{f.name}")["Body"].read()
        assert body == f.read_bytes()

"""Ctrl-C (SIGINT) stops a transfer cleanly: exit 130, a one-line hint to resume, no
partial object or file in place; the same command run again finishes, and then no
multipart upload, temporary file or journal is left. Whether the signal lands
mid-transfer or after the end, the invariants are the same, so the test does not
depend on timing."""

from __future__ import annotations

import json
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


def _interrupted_then_rerun(args: list[str], env: dict[str, str]) -> None:
    """Interrupt ``s3ferry args``, check how it stopped, and run it again to the end."""
    proc = subprocess.Popen(
        [S3FERRY, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    time.sleep(0.6)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode in (0, 130), err
    assert b"Traceback" not in err
    records = [json.loads(line) for line in out.splitlines()] if "--json" in args else []
    if proc.returncode == 130:
        hint = err.decode().splitlines()[-1]
        assert hint.startswith("error: interrupted; state saved in "), hint
        assert hint.endswith("; run the same command again to resume"), hint
        if "--json" in args:
            assert records[-1]["type"] == "error" and records[-1]["exit_code"] == 130
            assert "error: interrupted; " + records[-1]["message"] == hint
    again = subprocess.run([S3FERRY, *args], env=env, capture_output=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert not list(Path(env["XDG_CACHE_HOME"]).glob("s3ferry/jobs/*.sqlite"))


@pytest.fixture
def big_tree(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    for i in range(12):
        (src / f"f{i:02d}.bin").write_bytes(os.urandom(12 * MiB))
    return src


@pytest.mark.timeout(180)
def test_interrupted_upload_resumes_to_complete_objects(
    big_tree: Path, bucket: str, s3client: Any, cli_env: dict[str, str]
) -> None:
    _interrupted_then_rerun(["cp", str(big_tree), f"s3://{bucket}/p/", "-q", *PARTS], cli_env)
    assert "Uploads" not in s3client.list_multipart_uploads(Bucket=bucket)
    objects = s3client.list_objects_v2(Bucket=bucket).get("Contents", [])
    assert len(objects) == len(list(big_tree.iterdir()))
    for o in objects:
        body = s3client.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
        assert body == (big_tree / o["Key"].removeprefix("p/")).read_bytes()


@pytest.mark.timeout(180)
def test_interrupted_download_resumes_to_complete_files(
    big_tree: Path, tmp_path: Path, bucket: str, s3client: Any, cli_env: dict[str, str]
) -> None:
    for f in big_tree.iterdir():
        s3client.put_object(Bucket=bucket, Key=f"p/{f.name}", Body=f.read_bytes())
    out = tmp_path / "out"
    _interrupted_then_rerun(["cp", f"s3://{bucket}/p/", str(out), "--json", *PARTS], cli_env)
    assert sorted(f.name for f in out.iterdir()) == sorted(f.name for f in big_tree.iterdir())
    for f in out.iterdir():
        assert f.read_bytes() == (big_tree / f.name).read_bytes()


@pytest.mark.timeout(180)
def test_interrupted_sync_says_how_to_resume_and_resumes(
    big_tree: Path, bucket: str, s3client: Any, cli_env: dict[str, str]
) -> None:
    _interrupted_then_rerun(["sync", str(big_tree), f"s3://{bucket}/p/", "-q", *PARTS], cli_env)
    assert "Uploads" not in s3client.list_multipart_uploads(Bucket=bucket)
    for f in big_tree.iterdir():
        body = s3client.get_object(Bucket=bucket, Key=f"p/{f.name}")["Body"].read()
        assert body == f.read_bytes()

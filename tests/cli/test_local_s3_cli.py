"""``s3ferry local-s3 start|env|stop``: a detached server a user's shell can point tools at."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

S3FERRY = str(Path(sys.executable).parent / "s3ferry")


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [S3FERRY, "local-s3", *args], capture_output=True, text=True, env=env, timeout=120
    )


def _exports(stdout: str) -> dict[str, str]:
    pairs = [line.removeprefix("export ").split("=", 1) for line in stdout.splitlines()]
    return {k: v for k, v in pairs}


@pytest.mark.timeout(180)
def test_start_env_stop(tmp_path: Path) -> None:
    import boto3

    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        "XDG_CACHE_HOME": str(tmp_path),
    }
    started = _run(env, "start")
    assert started.returncode == 0, started.stderr
    exports = _exports(started.stdout)
    try:
        assert set(exports) == {
            "AWS_ENDPOINT_URL",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_REGION",
        }
        assert exports["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
        again = _run(env, "env")
        assert again.returncode == 0 and _exports(again.stdout) == exports
        client = boto3.client(
            "s3",
            endpoint_url=exports["AWS_ENDPOINT_URL"],
            region_name="us-east-1",
            aws_access_key_id=exports["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=exports["AWS_SECRET_ACCESS_KEY"],
        )
        client.create_bucket(Bucket="local-s3-check")
        assert [b["Name"] for b in client.list_buckets()["Buckets"]] == ["local-s3-check"]
        same = _run(env, "start")
        assert same.returncode == 0 and _exports(same.stdout) == exports
        other = _run(env, "start", "--data-dir", str(tmp_path / "other"))
        assert other.returncode == 2
        assert "a local S3 is already running" in other.stderr
        assert not (tmp_path / "other").exists()
    finally:
        stopped = _run(env, "stop")
    assert stopped.returncode == 0, stopped.stderr
    after = _run(env, "env")
    assert after.returncode == 2
    assert after.stderr.startswith("error: local-s3: no server running")

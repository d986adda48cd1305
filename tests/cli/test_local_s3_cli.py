"""``s3ferry local-s3 start|env|stop``: a detached server a user's shell can point tools at."""

from __future__ import annotations

import os
import signal
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


def _ours(root: Path) -> list[int]:
    """The processes working in ``root`` (the servers started there: weed runs in its
    data dir)."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and Path(os.readlink(entry / "cwd")).is_relative_to(root):
                pids.append(int(entry.name))
        except OSError:
            pass
    return pids


@pytest.mark.timeout(180)
def test_two_starts_at_once_start_one_server(tmp_path: Path) -> None:
    temp = tmp_path / "tmp"  # where each start makes its server's data dir
    temp.mkdir()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "TMPDIR": str(temp),
    }
    command = [S3FERRY, "local-s3", "start"]
    try:
        starts = [subprocess.Popen(command, stdout=subprocess.PIPE, env=env) for _ in range(2)]
        outputs = [start.communicate(timeout=120)[0].decode() for start in starts]
        servers = _ours(tmp_path)
        data_dirs = sorted(p.name for p in temp.glob("s3ferry-local-s3-*"))
        stopped = _run(env, "stop")
    finally:
        for pid in _ours(tmp_path):  # an orphaned server, were there one
            os.kill(pid, signal.SIGKILL)

    assert [start.returncode for start in starts] == [0, 0]
    assert outputs[0] == outputs[1] and "AWS_ENDPOINT_URL" in outputs[0]
    assert len(servers) == 1 and len(data_dirs) == 1
    assert stopped.returncode == 0, stopped.stderr
    assert sorted(p.name for p in (tmp_path / "cache" / "s3ferry").iterdir()) == ["local-s3.lock"]
    assert list(temp.glob("s3ferry-local-s3-*")) == []

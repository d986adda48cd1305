"""TLS certificates are verified by default; ``--no-verify-ssl`` warns once on stderr and
turns verification off for every client (botocore, obstore, the lean lister and copier)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from support.tls import tls_front

if TYPE_CHECKING:
    from conftest import Cli

from s3ferry.localserver import LocalS3Info

WARNING = "warning: --no-verify-ssl: TLS certificates are not checked"


@pytest.fixture(scope="module")
def https_endpoint(
    s3server: LocalS3Info, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    with tls_front(s3server.endpoint_url, tmp_path_factory.mktemp("tls")) as url:
        yield url


@pytest.fixture
def files(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    (src / "small.txt").write_bytes(b"small")
    (src / "large.bin").write_bytes(os.urandom(6 * 1024 * 1024))  # multipart: botocore
    return src


def test_self_signed_certificate_is_refused_by_default(
    https_endpoint: str, files: Path, bucket: str, cli: Cli, keys: Any
) -> None:
    env = cli.with_env(AWS_ENDPOINT_URL=https_endpoint)

    for args in (["cp", files / "small.txt", f"s3://{bucket}/k"], ["ls", f"s3://{bucket}"]):
        run = cli.run(*args, env=env)
        assert run.returncode == 2, run.stderr
        line = cli.error_line(run)
        assert "certificate" in line.lower(), line
    assert keys() == []


def test_no_verify_ssl_warns_once_and_every_client_connects(
    https_endpoint: str, files: Path, bucket: str, tmp_path: Path, cli: Cli, keys: Any
) -> None:
    env = cli.with_env(AWS_ENDPOINT_URL=https_endpoint)
    out = tmp_path / "out"

    up = cli.run("--no-verify-ssl", "cp", *cli.small_parts, files, f"s3://{bucket}/p/", env=env)
    listed = cli.run("ls", "--no-verify-ssl", "-r", f"s3://{bucket}", env=env)
    down = cli.run("cp", "--no-verify-ssl", *cli.small_parts, f"s3://{bucket}/p/", out, env=env)
    copied = cli.run("cp", "--no-verify-ssl", f"s3://{bucket}/p/", f"s3://{bucket}/c/", env=env)

    for run in (up, listed, down, copied):
        assert run.returncode == 0, run.stderr
        assert run.stderr.decode().splitlines().count(WARNING) == 1, run.stderr
        assert b"Unverified HTTPS" not in run.stderr
    assert keys() == ["c/large.bin", "c/small.txt", "p/large.bin", "p/small.txt"]
    assert b"2 copied server-side" in copied.stderr
    assert b"p/large.bin" in listed.stdout
    for name in ("small.txt", "large.bin"):
        assert (out / name).read_bytes() == (files / name).read_bytes()

"""Server-side encryption: ``--sse-c-key`` against SeaweedFS (which enforces SSE-C), and
``--sse AES256|aws:kms`` against moto (SeaweedFS answers those with 500 InternalError
unless it is given a KMS, so the embedded server cannot store them: see README)."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import ClientError
from support.moto import ACCESS, REGION, client, moto_server
from support.trees import read_tree, write_tree

if TYPE_CHECKING:
    from conftest import Cli

KEY = b"0123456789abcdef0123456789abcdef"
MiB = 1024 * 1024
_numbers = itertools.count()


@pytest.fixture
def src(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    write_tree(root, {"small.txt": b"small secret", "d/large.bin": os.urandom(6 * MiB)})
    return root


def test_sse_c_round_trip_and_reads_without_the_key_refused(
    src: Path, tmp_path: Path, bucket: str, s3client: Any, cli: Cli
) -> None:
    key_file = tmp_path / "key"
    key_file.write_bytes(KEY)
    with_key = ["--sse-c-key", KEY.decode()]

    up = cli.run("cp", *with_key, *cli.small_parts, src, f"s3://{bucket}/p/")
    down = cli.run("cp", "--sse-c-key", f"fileb://{key_file}", f"s3://{bucket}/p/", tmp_path / "a")
    ranged = cli.run("cp", *with_key, *cli.small_parts, f"s3://{bucket}/p/", tmp_path / "b")
    synced = cli.run("sync", *with_key, f"s3://{bucket}/p/", tmp_path / "c")
    cat = cli.run("cat", *with_key, f"s3://{bucket}/p/small.txt")
    without = cli.run("cp", f"s3://{bucket}/p/", tmp_path / "none")
    copied = cli.run("cp", *with_key, *cli.small_parts, f"s3://{bucket}/p/", f"s3://{bucket}/q/")
    streamed = cli.run(
        "cp",
        *with_key,
        *cli.small_parts,
        "--copy-path",
        "streamed",
        f"s3://{bucket}/p/",
        f"s3://{bucket}/r/",
    )

    for run in (up, down, ranged, synced, cat, copied, streamed):
        assert run.returncode == 0, run.stderr
    assert cat.stdout == b"small secret"
    for out in ("a", "b", "c"):
        assert read_tree(tmp_path / out) == read_tree(src)
    keys = [f"{p}/{name}" for p in "pqr" for name in ("small.txt", "d/large.bin")]
    for key in keys:
        with pytest.raises(ClientError):
            s3client.get_object(Bucket=bucket, Key=key)
        body = s3client.get_object(
            Bucket=bucket, Key=key, SSECustomerAlgorithm="AES256", SSECustomerKey=KEY
        )["Body"].read()
        assert body == (src / key[2:]).read_bytes()
    assert without.returncode == 1
    errors = [e for e in without.stderr.decode().splitlines() if e.startswith("error: ")]
    assert len(errors) == 2 and all(e.endswith("needs its --sse-c-key") for e in errors), errors
    assert read_tree(tmp_path / "none") == {}


@pytest.mark.parametrize(
    "option",
    [
        ["--sse-c-key", "short"],
        ["--sse-kms-key-id", "k"],
        ["--sse", "AES256", "--sse-c-key", KEY.decode()],
    ],
)
def test_bad_encryption_options(option: list[str], src: Path, bucket: str, cli: Cli) -> None:
    run = cli.run("cp", *option, src, f"s3://{bucket}/p/")

    assert run.returncode == 2
    line = cli.error_line(run)
    assert KEY.decode() not in line and "short" not in line, line


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--sse", "AES256"], {"ServerSideEncryption": "AES256"}),
        (
            ["--sse", "aws:kms", "--sse-kms-key-id", "alias/s3ferry"],
            {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "alias/s3ferry"},
        ),
    ],
    ids=["sse-s3", "sse-kms"],
)
def test_sse_s3_and_kms_reach_every_write(
    options: list[str], expected: dict[str, str], src: Path, moto_endpoint: str, cli: Cli
) -> None:
    s3, bucket = client(moto_endpoint), f"sse-{os.getpid()}-{next(_numbers)}"
    s3.create_bucket(Bucket=bucket)
    env = {k: v for k, v in cli.env.items() if not k.startswith("AWS_")}
    env.update(ACCESS, AWS_REGION=REGION, AWS_ENDPOINT_URL=moto_endpoint)

    run = cli.run("cp", *options, *cli.small_parts, src, f"s3://{bucket}/p/", env=env)

    assert run.returncode == 0, run.stderr
    for key in ("p/small.txt", "p/d/large.bin"):  # one PutObject, one multipart upload
        head = s3.head_object(Bucket=bucket, Key=key)
        assert {k: head.get(k) for k in expected} == expected, key

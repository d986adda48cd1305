"""`s3ferry cat`: whole objects, byte ranges and records to stdout; errors write nothing."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from support.moto import moto_server

if TYPE_CHECKING:
    from conftest import Cli

CANNOT_START = 2
MiB = 1024 * 1024
# 10,000 records of 80 bytes, each unlike the others: 800,000 bytes.
RECORDS = b"".join(f"{n:079d}\n".encode() for n in range(10_000))


@pytest.fixture
def records_url(s3client: Any, bucket: str) -> str:
    s3client.put_object(Bucket=bucket, Key="data/records.bin", Body=RECORDS)
    return f"s3://{bucket}/data/records.bin"


def _ok(run: subprocess.CompletedProcess[bytes]) -> bytes:
    assert (run.returncode, run.stderr) == (0, b""), run.stderr
    return run.stdout


def test_whole_object_is_binary_safe(cli: Cli, s3client: Any, bucket: str) -> None:
    data = bytes(range(256)) * 64 + b"\r\n\x00\xff"
    s3client.put_object(Bucket=bucket, Key="bin", Body=data)

    assert _ok(cli.run("cat", f"s3://{bucket}/bin")) == data


def test_large_object_matches_byte_for_byte(cli: Cli, tmp_path: Path, bucket: str) -> None:
    data = os.urandom(12 * MiB + 3)
    (tmp_path / "big").write_bytes(data)
    _ok(cli.run("cp", "-q", tmp_path / "big", f"s3://{bucket}/big", *cli.small_parts))

    assert _ok(cli.run("cat", f"s3://{bucket}/big", *cli.small_parts)) == data


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (("--range", "7920-7999"), RECORDS[7920:8000]),
        (("--range", "799990-"), RECORDS[799_990:]),
        (("--range=-100",), RECORDS[-100:]),
        (("--range", "-100"), RECORDS[-100:]),
        (("--offset", "7920", "--length", "80"), RECORDS[7920:8000]),
        (("--offset", "799990"), RECORDS[799_990:]),
        (("--length", "5"), RECORDS[:5]),
        (("--record-size", "80", "--record", "99"), RECORDS[7920:8000]),
        (("--record-size", "80", "--record", "0", "--count", "3"), RECORDS[:240]),
        (("--record-size", "80", "--records", "120,5,5,99-101"), None),
    ],
)
def test_ranges_and_records(
    cli: Cli, records_url: str, options: tuple[str, ...], expected: bytes | None
) -> None:
    if expected is None:
        expected = b"".join(RECORDS[n * 80 : n * 80 + 80] for n in (120, 5, 5, 99, 100, 101))

    assert _ok(cli.run("cat", records_url, *options)) == expected


def test_record_99_is_80_bytes(cli: Cli, records_url: str) -> None:
    out = _ok(cli.run("cat", records_url, "--record-size", "80", "--record", "99"))

    assert out == f"{99:079d}\n".encode() and len(out) == 80


def test_large_range_with_small_parts(cli: Cli, s3client: Any, bucket: str) -> None:
    data = os.urandom(11 * MiB)
    s3client.put_object(Bucket=bucket, Key="big", Body=data)

    out = cli.run("cat", f"s3://{bucket}/big", "--range", f"7-{len(data) - 8}", *cli.small_parts)

    assert _ok(out) == data[7:-7]


def test_partial_last_record_warns_once_or_is_refused(cli: Cli, s3client: Any, bucket: str) -> None:
    s3client.put_object(Bucket=bucket, Key="k", Body=RECORDS[:810])
    url = f"s3://{bucket}/k"

    warned = cli.run("cat", url, "--record-size", "80", "--records", "9,10")
    quiet = cli.run("cat", url, "--record-size", "80", "--records", "10", "-q")
    strict = cli.run("cat", url, "--record-size", "80", "--record", "1", "--strict")

    assert (warned.returncode, warned.stdout) == (0, RECORDS[720:810])
    assert warned.stderr.decode().splitlines() == [
        f"warning: {url}: 810 bytes is not a whole number of 80-byte records; "
        "the last (record 10) is 10 bytes"
    ]
    assert _ok(quiet) == RECORDS[800:810]
    assert (strict.returncode, strict.stdout) == (CANNOT_START, b"")
    assert "not a whole number of 80-byte records" in cli.error_line(strict)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (("--range", "800000-"), "beyond the end of the object (800000 bytes)"),
        (("--range", "0-800000"), "beyond the end of the object (800000 bytes)"),
        (("--offset", "799999", "--length", "2"), "(800000 bytes)"),
        (("--record-size", "80", "--record", "10000"), "the object has 10000 records of 80"),
        (("--record-size", "80", "--record", "9999", "--count", "2"), "has 10000 records"),
        (("--record-size", "80", "--records", "1,2,10000"), "has 10000 records"),
        (("--range", "5"), "argument --range: not a byte range: '5'"),
        (("--range", "9-3"), "ends (3) before it starts (9)"),
        (("--records", "1,x", "--record-size", "80"), "'x'"),
        (("--range", "1-2", "--record-size", "80", "--record", "1"), "do not go together"),
        (("--range", "0-1", "--offset", "1"), "--offset --range: give --range or"),
        (("--record", "3"), "--record: needs --record-size W"),
        (("--record-size", "80"), "needs either --record N or --records LIST"),
        (("--record-size", "80", "--records", "1", "--count", "2"), "--count: goes with"),
        (("--length", "0"), "--length"),
        (("--part-size", "1MiB", "--range", "0-1"), "--part-size: must be between 5 MiB"),
    ],
)
def test_bad_ranges_and_records(
    cli: Cli, records_url: str, options: tuple[str, ...], message: str
) -> None:
    run = cli.run("cat", records_url, *options)

    assert (run.returncode, run.stdout) == (CANNOT_START, b"")
    assert message in cli.error_line(run)


@pytest.mark.parametrize(
    "options", [(), ("--range", "0-1"), ("--record-size", "8", "--record", "0")]
)
def test_missing_key_bucket_and_prefix(cli: Cli, bucket: str, options: tuple[str, ...]) -> None:
    for url, message in [
        (f"s3://{bucket}/nope", f"s3://{bucket}/nope: no such key"),
        ("s3://no-such-bucket-s3ferry/k", "s3://no-such-bucket-s3ferry: bucket does not exist"),
        (f"s3://{bucket}/dir/", "prefix"),
    ]:
        run = cli.run("cat", url, *options)

        assert (run.returncode, run.stdout) == (CANNOT_START, b"")
        assert message in cli.error_line(run)


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    """A moto S3 server on 127.0.0.1 (SeaweedFS has no Glacier storage class)."""
    with moto_server() as endpoint:
        yield endpoint


def test_archived_object_must_be_restored_first(cli: Cli, moto_endpoint: str) -> None:
    import boto3

    env = {k: v for k, v in cli.env.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_REGION="us-east-1",
        AWS_ENDPOINT_URL=moto_endpoint,
    )
    client = boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_bucket(Bucket="cold")
    client.put_object(Bucket="cold", Key="k", Body=RECORDS[:800], StorageClass="GLACIER")

    for options in [(), ("--range", "0-9"), ("--record-size", "80", "--record", "1")]:
        run = cli.run("cat", "s3://cold/k", *options, env=env)

        assert (run.returncode, run.stdout) == (CANNOT_START, b"")
        assert "s3://cold/k: object is archived in GLACIER; restore it first" in cli.error_line(run)

    client.restore_object(Bucket="cold", Key="k", RestoreRequest={"Days": 1})

    assert _ok(cli.run("cat", "s3://cold/k", "--range", "80-159", env=env)) == RECORDS[80:160]


@pytest.mark.parametrize("command", ["cat {url} --range 0-", "cat {url}", "cp {url} - --quiet"])
def test_a_reader_that_goes_away_ends_cat_quietly(
    command: str, cli: Cli, s3client: Any, bucket: str
) -> None:
    s3client.put_object(Bucket=bucket, Key="big", Body=os.urandom(4 << 20))

    shell = f"{cli.executable} {command.format(url=f's3://{bucket}/big')} | head -c 10 | wc -c"
    run = subprocess.run(["bash", "-o", "pipefail", "-c", shell], capture_output=True, env=cli.env)

    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == b"10"
    assert run.stderr == b""

"""`s3ferry restore` against moto's server, the only local server that emulates Glacier
storage classes and RestoreObject: output, files and exit codes."""

from __future__ import annotations

import itertools
import os
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from support.moto import ACCESS, REGION, client, moto_server, restore_delay

if TYPE_CHECKING:
    from conftest import Cli

CANNOT_START = 2
_numbers = itertools.count()


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture
def cold(endpoint: str) -> str:
    """A new bucket with one STANDARD and one GLACIER object under data/; its name."""
    s3, name = client(endpoint), f"cold-{os.getpid()}-{next(_numbers)}"
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="data/a.txt", Body=b"standard")
    s3.put_object(Bucket=name, Key="data/d/b.bin", Body=b"glacier", StorageClass="GLACIER")
    return name


@pytest.fixture
def env(cli: Cli, endpoint: str) -> dict[str, str]:
    clean = {k: v for k, v in cli.env.items() if not k.startswith("AWS_")}
    return {**clean, **ACCESS, "AWS_REGION": REGION, "AWS_ENDPOINT_URL": endpoint}


def test_restore_waits_downloads_and_resumes(
    cli: Cli, cold: str, endpoint: str, env: dict[str, str], tmp_path: Path
) -> None:
    with restore_delay(endpoint, looks=1):
        first = cli.run(
            "restore", f"s3://{cold}/data", tmp_path, "--poll-interval", "0.01", "-v", env=env
        )
    second = cli.run("restore", f"s3://{cold}/data/", tmp_path, env=env)

    root = tmp_path / "glacierrestore"
    assert first.returncode == 0, first.stderr
    assert (root / "a.txt").read_bytes() == b"standard"
    assert (root / "d" / "b.bin").read_bytes() == b"glacier"
    err = first.stderr.decode()
    assert f"archived  {root / 'd' / 'b.bin'}" in err
    assert "waiting: 1 restores in flight; next look in 0 s" in err
    assert "restore: 1 restores requested" in err
    assert second.returncode == 0, second.stderr
    assert "skipped  2 (2 already restored)" in second.stderr.decode()


def test_no_wait_prints_the_status_table(
    cli: Cli, cold: str, endpoint: str, env: dict[str, str], tmp_path: Path
) -> None:
    with restore_delay(endpoint, looks=1):
        run = cli.run("restore", f"s3://{cold}/data", "--into", tmp_path, "--no-wait", env=env)
        json_run = cli.run(
            "restore", f"s3://{cold}/data", "--into", tmp_path, "--no-wait", "--json", env=env
        )

    assert (run.returncode, run.stderr) == (0, b"")
    assert run.stdout.decode().splitlines() == [
        "state         objects",
        "archived            1",
        "restoring           0",
        "ready               1",
        "done                0",
        "exists              0",
        "failed              0",
        "1 restores requested; 1 in flight",
    ]
    assert json_run.stdout.decode().splitlines()[-1] == (
        '{"type": "restore-status", "archived": 0, "restoring": 1, "ready": 1, "done": 0, '
        '"exists": 0, "failed": 0, "requested": 0}'
    )
    assert os.listdir(tmp_path) == []


# moto grants every RestoreObject: the driver makes the one for refused.bin answer
# 403 AccessDenied, as a bucket policy denying s3:RestoreObject would.
_REFUSING_ONE_RESTORE = textwrap.dedent(
    """
    import os, sys
    from botocore.client import BaseClient
    from botocore.exceptions import ClientError

    real_call = BaseClient._make_api_call

    def refusing(self, name, params):
        if name == "RestoreObject" and params["Key"].endswith("refused.bin"):
            denied = {"Code": "AccessDenied", "Message": "Access Denied"}
            raise ClientError({"Error": denied, "ResponseMetadata": {"HTTPStatusCode": 403}}, name)
        return real_call(self, name, params)

    BaseClient._make_api_call = refusing
    from s3ferry.cli.main import main

    code = main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
    """
)


def test_no_wait_lists_an_object_whose_restore_was_refused(
    cli: Cli, cold: str, endpoint: str, env: dict[str, str], tmp_path: Path
) -> None:
    client(endpoint).put_object(
        Bucket=cold, Key="data/refused.bin", Body=b"x", StorageClass="GLACIER"
    )
    url = f"s3://{cold}/data"

    run = cli.run_python(
        _REFUSING_ONE_RESTORE, "restore", url, "--into", tmp_path, "--no-wait", "-v", env=env
    )

    assert run.returncode == 1
    assert run.stdout.decode().splitlines() == [
        "state         objects",
        "archived            1",
        "restoring           0",
        "ready               1",
        "done                0",
        "exists              0",
        "failed              1",
        "1 restores requested; 1 in flight",
    ]
    err = run.stderr.decode().splitlines()
    assert f"failed    {tmp_path / 'refused.bin'}" in err
    [error] = [line for line in err if line.startswith("error: ")]
    assert error.startswith(f"error: {tmp_path / 'refused.bin'}: {url}/refused.bin: "), error
    assert os.listdir(tmp_path) == []


def test_a_failed_object_exits_1(
    cli: Cli, cold: str, env: dict[str, str], endpoint: str, tmp_path: Path
) -> None:
    outside, into = tmp_path / "outside", tmp_path / "into"
    outside.mkdir()
    link = {"s3ferry-symlink": str(outside)}
    client(endpoint).put_object(Bucket=cold, Key="links/l", Body=b"", Metadata=link)
    client(endpoint).put_object(Bucket=cold, Key="links/l/x", Body=b"x")

    run = cli.run("restore", f"s3://{cold}/links", "--into", into, env=env)

    assert run.returncode == 1
    err = run.stderr.decode()
    assert f"error: {into / 'l' / 'x'}: {into / 'l'}: is a symbolic link; refusing" in err
    assert os.readlink(into / "l") == str(outside) and os.listdir(outside) == []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (("s3://no-such-bucket-here/data", "D"), "s3://no-such-bucket-here: bucket does not exist"),
        (("URL", "D", "--tier", "fast"), "--tier Fast: must be one of Bulk, Standard, Expedited"),
        (("URL", "D", "--days", "0"), "argument --days: not a positive integer: '0'"),
        (("URL", "D", "--days", "x"), "argument --days: not a positive integer: 'x'"),
        (("URL", "D", "--poll-interval", "0"), "not a number of seconds above 0: '0'"),
        (("URL",), "restore: needs DIR or --into DIR2"),
        (("URL", "--into", "F"), "exists and is not a directory"),
        (("cold/data", "D"), "not an S3 URL"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    cli: Cli, cold: str, env: dict[str, str], tmp_path: Path, options: tuple[str, ...], message: str
) -> None:
    (tmp_path / "F").write_bytes(b"")
    paths = {"D": str(tmp_path / "D"), "F": str(tmp_path / "F"), "URL": f"s3://{cold}/data"}

    run = cli.run("restore", *(paths.get(o, o) for o in options), env=env)

    assert run.returncode == CANNOT_START
    assert message in cli.error_line(run)
    assert not (tmp_path / "D").exists()

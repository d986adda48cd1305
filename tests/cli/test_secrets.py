"""No secret ever appears in output, logs, ``--json``, state files or error messages.

Every command runs, on its success and failure paths, with ``-v`` (a superset of the
plain output) and with ``--json``, holding a recognisable secret access key,
session token and SSE-C key; stdout, stderr and every file written (the targets and
``$XDG_CACHE_HOME``) are searched for them. moto's server accepts any credentials,
so success paths can carry the recognisable ones; SeaweedFS provides the
wrong-credentials path.
"""

from __future__ import annotations

import base64
import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from support.moto import REGION, client, moto_server
from support.trees import write_tree

if TYPE_CHECKING:
    from conftest import Cli

SECRET = "SeCrEtAcCeSsKeY-s3ferry-must-never-print"
TOKEN = "SeSsIoNtOkEn-s3ferry-must-never-print"
SSE_C_KEY = "SsEcKeY-s3ferry-must-never-print"  # 32 bytes: an AES-256 key
SECRETS = [SECRET, TOKEN, SSE_C_KEY, base64.b64encode(SSE_C_KEY.encode()).decode()]
_numbers = itertools.count()

# {b}: the bucket, {src}: a local tree, {out}: a fresh local target.
COMMANDS = [
    ["cp", "{src}", "s3://{b}/up/"],
    ["cp", "s3://{b}/p/", "{out}"],
    ["cp", "s3://{b}/p/a.txt", "-"],
    ["ls", "s3://{b}/p/"],
    ["ls", "-r", "s3://{b}"],
    ["du", "s3://{b}"],
    ["inventory", "s3://{b}", "-o", "{out}"],
    ["sync", "{src}", "s3://{b}/sync/"],
    ["sync", "s3://{b}/p/", "{out}"],
    ["backup", "{src}", "s3://{b}/backup/"],
    ["compare", "{src}", "s3://{b}/sync/"],
    ["cat", "s3://{b}/p/a.txt"],
    ["lifecycle", "show", "s3://{b}"],
    ["restore", "s3://{b}/p/", "--into", "{out}"],
    # failures: missing bucket, missing key, a key that would escape the target
    ["cp", "s3://no-such-bucket-s3ferry/p/", "{out}"],
    ["cat", "s3://{b}/no-such-key"],
    ["cp", "s3://{b}/bad/", "{out}"],
]


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with moto_server() as url:
        yield url


def _written(root: Path) -> Iterator[Path]:
    return (p for p in root.rglob("*") if p.is_file())


def _assert_no_secret(run_output: bytes, files: Iterator[Path], where: str) -> None:
    for secret in SECRETS:
        assert secret.encode() not in run_output, where
        for path in files:
            assert secret.encode() not in path.read_bytes(), (where, path)


# moto takes the SSE-C headers without checking them, so every command can carry the key;
# as moto keeps such objects unencrypted, s3ferry refuses to write them (without printing
# the key either): the uploads fail, and the compare of what they would have written differs.
@pytest.mark.parametrize(
    "flags",
    [["-v", "--sse-c-key", SSE_C_KEY], ["--json", "--sse-c-key", SSE_C_KEY]],
    ids=["verbose", "json"],
)
def test_no_secret_in_any_output_or_file(
    flags: list[str], endpoint: str, tmp_path: Path, cli: Cli
) -> None:
    bucket = f"secrets-{os.getpid()}-{next(_numbers)}"
    s3 = client(endpoint)
    s3.create_bucket(Bucket=bucket)
    for key in ["p/a.txt", "p/d/b.txt", "bad/../escape.txt"]:
        s3.put_object(Bucket=bucket, Key=key, Body=b"data")
    src = tmp_path / "src"
    write_tree(src, {"a.txt": b"a", "d/b.txt": b"b"})
    env = {k: v for k, v in cli.env.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID="AKIAS3FERRYTEST",
        AWS_SECRET_ACCESS_KEY=SECRET,
        AWS_SESSION_TOKEN=TOKEN,
        AWS_REGION=REGION,
        AWS_ENDPOINT_URL=endpoint,
        XDG_CACHE_HOME=str(tmp_path / "cache"),
    )
    codes = []
    for i, command in enumerate(COMMANDS):
        out = tmp_path / f"out{i}"
        args = [a.format(b=bucket, src=src, out=out) for a in command]
        run = cli.run(*flags, *args, env=env)
        codes.append(run.returncode)
        assert b"Traceback" not in run.stderr, (args, run.stderr)
        _assert_no_secret(run.stdout + run.stderr, _written(tmp_path), " ".join(args))
        if command[0] in ("cp", "sync", "backup") and command[1] == "{src}":  # the writes
            assert b"ignores SSE-C keys" in run.stdout + run.stderr, args
    # The reads succeeded (else the test proves little), the writes and failures failed.
    assert codes == [1] + [0] * 6 + [1, 0, 1, 1] + [0] * 3 + [2, 2, 1], codes


def test_no_secret_when_the_server_refuses_the_credentials(
    src_tree: Path, bucket: str, tmp_path: Path, cli: Cli
) -> None:
    env = cli.with_env(
        AWS_SECRET_ACCESS_KEY=SECRET, AWS_SESSION_TOKEN=TOKEN, XDG_CACHE_HOME=str(tmp_path)
    )
    for flags in (["-v"], ["--json"], ["--sse-c-key", SSE_C_KEY + "!"]):
        up = cli.run(*flags, "cp", src_tree, f"s3://{bucket}/p/", env=env)
        down = cli.run(*flags, "sync", f"s3://{bucket}/p/", tmp_path / "out", env=env)
        for run in (up, down):
            assert run.returncode == 2
            _assert_no_secret(run.stdout + run.stderr, _written(tmp_path), "refused")


@pytest.fixture
def src_tree(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    write_tree(root, {"a.txt": b"a"})
    return root

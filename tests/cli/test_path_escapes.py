"""Downloads and restores refuse keys that would land outside the target or cannot
be a local path (backslash, NUL): each is reported with its reason, skipped, the
job exits 1, the other objects still arrive, and nothing is written outside the
target.

The keys are stored for real on moto's server. SeaweedFS refuses ``.``/``..``
segments and NUL (InvalidRequest) and rewrites ``\\`` to ``/`` and ``//`` to ``/``
on PUT, so of these only a drive letter reaches it as such; the cases it cannot
store are covered by ``test_path_for_refuses_escapes`` (unit) and the doctored
listing in ``test_errors_cli.py``.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from support.moto import ACCESS, REGION, client, moto_server
from support.trees import read_tree

if TYPE_CHECKING:
    from conftest import Cli

OUTSIDE = "key would land outside the target directory; skipped"
ESCAPING = {
    "p/../escape-dotdot.txt": OUTSIDE,
    "p/sub/../../escape-deep.txt": OUTSIDE,
    "p/..\\escape-backslash.txt": "key cannot be a local path (a backslash); skipped",
    "p//escape-absolute.txt": OUTSIDE,
    "p/C:escape-drive.txt": OUTSIDE,
    "p/d/C:escape-drive2.txt": OUTSIDE,
    "p/escape\0nul.txt": "key cannot be a local path (a NUL byte); skipped",
}
_numbers = itertools.count()


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture
def hostile(endpoint: str) -> str:
    """A bucket with two good objects and every escaping key under p/; its name."""
    s3, name = client(endpoint), f"hostile-{os.getpid()}-{next(_numbers)}"
    s3.create_bucket(Bucket=name)
    for key in [*ESCAPING, "p/ok.txt", "p/d/ok2.txt"]:
        s3.put_object(Bucket=name, Key=key, Body=b"payload")
    return name


@pytest.mark.parametrize(
    "command",
    [
        ["cp", "s3://{b}/p/", "{out}"],
        ["sync", "s3://{b}/p/", "{out}"],
        ["restore", "s3://{b}/p/", "--into", "{out}"],
    ],
)
def test_escaping_keys_are_refused(
    command: list[str], hostile: str, endpoint: str, tmp_path: Path, cli: Cli
) -> None:
    jail = tmp_path / "a" / "b"
    out = jail / "out"
    env = {k: v for k, v in cli.env.items() if not k.startswith("AWS_")}
    env.update(ACCESS, AWS_REGION=REGION, AWS_ENDPOINT_URL=endpoint)

    run = cli.run(*(a.format(b=hostile, out=out) for a in command), env=env)

    err = run.stderr.decode("utf-8", "replace")
    assert run.returncode == 1, err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == len(ESCAPING), errors
    assert sorted(errors) == sorted(f"error: {k}: {why}" for k, why in ESCAPING.items())
    assert read_tree(out) == {"ok.txt": b"payload", "d/ok2.txt": b"payload"}
    assert sorted(p.name for p in tmp_path.rglob("*")) == [
        "a",
        "b",
        "d",
        "ok.txt",
        "ok2.txt",
        "out",
    ]
    assert not Path("/escape-absolute.txt").exists()

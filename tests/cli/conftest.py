"""Running the ``s3ferry`` command (and small Python drivers of it) as separate processes."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

S3FERRY = str(Path(sys.executable).parent / "s3ferry")


@dataclass(frozen=True)
class Cli:
    """Runs ``s3ferry`` against the session's test server."""

    env: dict[str, str]
    executable: str = S3FERRY
    # Large-file lanes with files of a few MiB.
    small_parts: tuple[str, ...] = ("--multipart-threshold", "5MiB", "--part-size", "5MiB")

    def run(
        self,
        *args: str | Path,
        stdin: bytes = b"",
        env: dict[str, str] | None = None,
        wrapper: Sequence[str] = (),
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[bytes]:
        """``[*wrapper, s3ferry, *args]``; stdin is ``stdin``, stdout and stderr are captured."""
        return subprocess.run(
            [*wrapper, self.executable, *map(str, args)],
            input=stdin,
            capture_output=True,
            env=self.env if env is None else env,
            timeout=timeout,
        )

    def run_python(
        self, code: str, *args: str | Path, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        """``python -c code args...`` in the same environment (or ``env``)."""
        return subprocess.run(
            [sys.executable, "-c", code, *map(str, args)],
            capture_output=True,
            env=self.env if env is None else env,
            timeout=120,
        )

    def with_env(self, **changes: str) -> dict[str, str]:
        return {**self.env, **changes}

    @staticmethod
    def error_line(result: subprocess.CompletedProcess[bytes]) -> str:
        """The one ``error: ...`` line a command that could not start prints, checked."""
        err = result.stderr.decode("utf-8", "replace")
        assert "Traceback" not in err, err
        lines = err.splitlines()
        assert len(lines) == 1, f"expected exactly one stderr line, got {lines!r}"
        assert lines[0].startswith("error: "), lines[0]
        return lines[0]


@pytest.fixture
def cli(cli_env: dict[str, str]) -> Cli:
    return Cli(cli_env)


def _object_keys(client: Any, bucket: str) -> list[str]:
    keys: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys.extend(o["Key"] for o in page.get("Contents", ()))
    return sorted(keys)


@pytest.fixture
def keys(s3client: Any, bucket: str) -> Callable[[], list[str]]:
    """``keys()``: every key in this test's bucket, sorted."""
    return lambda: _object_keys(s3client, bucket)

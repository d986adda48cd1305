"""Every successful ``s3ferry cp`` process exits 0: native runtimes must not abort at exit."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import Cli


@pytest.mark.parametrize("runs", [10, pytest.param(100, marks=pytest.mark.slow)])
def test_consecutive_uploads_all_exit_zero(
    tmp_path: Path, bucket: str, cli: Cli, keys: Callable[[], list[str]], runs: int
) -> None:
    f = tmp_path / "f.txt"
    f.write_bytes(b"exit status")

    for i in range(runs):
        run = cli.run("cp", f, f"s3://{bucket}/k{i}")
        assert run.returncode == 0, (i, run.returncode, run.stderr)
        assert run.stdout == b""

    assert keys() == sorted(f"k{i}" for i in range(runs))

"""Run a command to the end and measure its own peak RSS, through bench/launch.py.

A program started straight from pytest would report at least pytest's own peak
(Linux starts a new program's ru_maxrss at the size of the process that exec'ed
it); the bare launcher keeps that floor at a few MiB.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

LAUNCH = Path(__file__).resolve().parents[2] / "bench" / "launch.py"


def run_measured(
    argv: Sequence[str], env: dict[str, str], timeout: float
) -> tuple[subprocess.CompletedProcess[bytes], int]:
    """Its completed process (stdout and stderr captured) and its peak RSS in bytes.
    ``argv[0]`` must be a path (it is not looked up in ``PATH``)."""
    with tempfile.TemporaryDirectory() as work:
        report = Path(work) / "report"
        ran = subprocess.run(
            [sys.executable, "-I", "-S", str(LAUNCH), str(report), *argv],
            env=env,
            capture_output=True,
            timeout=timeout,
        )
        code, _, _, _, peak_kib = report.read_text().split()
    done = subprocess.CompletedProcess(list(argv), int(float(code)), ran.stdout, ran.stderr)
    return done, int(peak_kib) * 1024

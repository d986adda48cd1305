"""Run a command to the end and measure its own peak RSS (``wait4``), as bench/ does."""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading
from collections.abc import Sequence


def run_measured(
    argv: Sequence[str], env: dict[str, str], timeout: float
) -> tuple[subprocess.CompletedProcess[bytes], int]:
    """Its completed process (stdout and stderr captured) and its peak RSS in bytes.

    Raises:
        subprocess.TimeoutExpired: it ran longer than ``timeout`` seconds (it is killed).
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(list(argv), env=env, stdout=out, stderr=err)
        expired = threading.Event()

        def kill() -> None:
            expired.set()
            proc.kill()

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        if expired.is_set():
            raise subprocess.TimeoutExpired(list(argv), timeout)
        out.seek(0)
        err.seek(0)
        done = subprocess.CompletedProcess(list(argv), proc.returncode, out.read(), err.read())
    return done, usage.ru_maxrss * 1024

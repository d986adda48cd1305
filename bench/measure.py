"""Time one client process: wall clock, its CPU and peak RSS (wait4), and the server's CPU."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SPAWN_FAILED = 127
_WRITE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC


@dataclass(frozen=True, slots=True)
class Measurement:
    exit_code: int
    wall_s: float
    user_s: float
    sys_s: float
    max_rss_kib: int  # largest single process among the client and the children it waited for
    server_cpu_s: float
    stderr_tail: str


def server_cpu_s(pid: int) -> float:
    """utime + stime of process ``pid`` (``weed server`` is a single process)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def run_timed(argv: list[str], env: dict[str, str], server_pid: int, log_stem: Path) -> Measurement:
    """Run ``argv`` to completion; its stdout/stderr go to ``log_stem``.out/.err."""
    err_path = log_stem.with_suffix(".err")
    redirects = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, str(log_stem.with_suffix(".out")), _WRITE, 0o644),
        (os.POSIX_SPAWN_OPEN, 2, str(err_path), _WRITE, 0o644),
    ]
    server_before = server_cpu_s(server_pid)
    start = time.monotonic()
    try:
        pid = os.posix_spawn(argv[0], argv, env, file_actions=redirects)
    except OSError as e:
        return Measurement(SPAWN_FAILED, 0.0, 0.0, 0.0, 0, 0.0, f"cannot start {argv[0]}: {e}")
    _, status, usage = os.wait4(pid, 0)
    wall = time.monotonic() - start
    return Measurement(
        exit_code=os.waitstatus_to_exitcode(status), wall_s=wall, user_s=usage.ru_utime,
        sys_s=usage.ru_stime, max_rss_kib=usage.ru_maxrss,
        server_cpu_s=server_cpu_s(server_pid) - server_before, stderr_tail=_last_line(err_path),
    )



def _last_line(path: Path) -> str:
    lines = path.read_text(errors="replace").strip().splitlines()
    return lines[-1][:300] if lines else ""

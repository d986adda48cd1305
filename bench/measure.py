"""Time one client process: wall clock, its CPU and peak RSS (wait4), and the server's CPU.

The command runs under bench/launch.py, which spawns it, waits for it with wait4 and reports
the figures; see there for why the harness does not spawn it directly.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
LAUNCHER = Path(__file__).resolve().parent / "launch.py"
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
    err_path, report = log_stem.with_suffix(".err"), log_stem.with_suffix(".rusage")
    redirects = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, str(log_stem.with_suffix(".out")), _WRITE, 0o644),
        (os.POSIX_SPAWN_OPEN, 2, str(err_path), _WRITE, 0o644),
    ]
    launcher = [sys.executable, "-I", "-S", str(LAUNCHER), str(report), *argv]
    server_before = server_cpu_s(server_pid)
    _, status, _ = os.wait4(
        os.posix_spawn(sys.executable, launcher, env, file_actions=redirects), 0
    )
    server = server_cpu_s(server_pid) - server_before
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{LAUNCHER.name} failed (status {status}); see {err_path}")
    code, wall, user, system, rss = report.read_text().split()
    return Measurement(
        int(code), float(wall), float(user), float(system), int(rss), server, _last_line(err_path)
    )


def _last_line(path: Path) -> str:
    lines = path.read_text(errors="replace").strip().splitlines()
    return lines[-1][:300] if lines else ""

"""Run one command and write ``exit_code wall_s user_s sys_s max_rss_kib`` to a report file.

Usage: ``python -I -S bench/launch.py REPORT_FILE COMMAND [ARG ...]``

Why a separate small process: Linux starts a new program's ru_maxrss at the size of the
process that exec'ed it, so a command spawned straight from the harness (boto3 and all)
would never report less than the harness's own peak. Spawned from this bare interpreter,
the floor is ~8 MiB. Only builtin modules are imported, to keep it that way.
"""

import os
import sys
import time

SPAWN_FAILED = 127


def main() -> None:
    report, argv = sys.argv[1], sys.argv[2:]
    start = time.monotonic()
    try:
        pid = os.posix_spawn(argv[0], argv, os.environ)
    except OSError as e:
        print(f"cannot start {argv[0]}: {e}", file=sys.stderr)
        fields: tuple[float, ...] = (SPAWN_FAILED, 0.0, 0.0, 0.0, 0)
    else:
        _, status, usage = os.wait4(pid, 0)
        fields = (
            os.waitstatus_to_exitcode(status),
            time.monotonic() - start,
            usage.ru_utime,
            usage.ru_stime,
            usage.ru_maxrss,
        )
    with open(report, "w") as f:
        f.write(" ".join(map(str, fields)))


if __name__ == "__main__":
    main()

"""Bucket-to-bucket copy (``--ops copy``) and the SQLite task queue (``--ops queue``).

Both read a source prefix ``copy-src/DATASET/`` seeded once (untimed, by the ``--seed-with``
tool) and write into ``copy-dst``; every target prefix is emptied before a run and checked
after it (keys, sizes, bytes of a sample and of the largest object). See bench/README.md.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from statistics import median
from typing import TYPE_CHECKING

from bench.datasets import Dataset
from bench.measure import Measurement, run_timed, server_cpu_s
from bench.report import RunResult, num
from bench.tools import BIN_DIR, RCLONE_REMOTE, TOOLS, Transfer, in_turn, s5cmd_binary
from bench.verify import verify_upload

if TYPE_CHECKING:
    from bench.run import Bench

SRC_BUCKET = "copy-src"
DST_BUCKET = "copy-dst"
OTHER_REMOTE = "other"  # rclone remote of the second server
OTHER_KEY = "s3ferryother"  # access key id of the second server
PROFILE_FILES = ("aws-credentials", "aws-config")
# "  path     10,000 copied server-side, 0 B through this machine"
PATH_LINE = re.compile(r"path\s+([\d,]+) copied server-side, (.+) through this machine")


@dataclass(frozen=True, slots=True)
class Copy:
    """One copy of ``SRC_BUCKET/prefix`` to ``DST_BUCKET/prefix``; ``other`` = second server."""

    prefix: str
    endpoint: str
    other_endpoint: str | None = None


def _src(c: Copy) -> str:
    return f"s3://{SRC_BUCKET}/{c.prefix}"


def _dst(c: Copy) -> str:
    return f"s3://{DST_BUCKET}/{c.prefix}"


def s3ferry_cp(c: Copy, path: str = "auto") -> list[str]:
    # Not --quiet: the summary's "path" line (server-side objects, bytes through the client)
    # goes to stderr, which the harness keeps; there is no live progress without a terminal.
    return [str(BIN_DIR / "s3ferry"), "cp", "--copy-path", path, _src(c), _dst(c)]


def s3ferry_two(c: Copy) -> list[str]:
    """Default path (auto): s3ferry must find that the destination cannot read the source."""
    assert c.other_endpoint is not None
    return [
        str(BIN_DIR / "s3ferry"),
        "cp",
        "--source-endpoint-url",
        c.endpoint,
        "--source-profile",
        RCLONE_REMOTE,
        "--dest-endpoint-url",
        c.other_endpoint,
        "--dest-profile",
        OTHER_REMOTE,
        _src(c),
        _dst(c),
    ]


def s5cmd_copy(c: Copy) -> list[str]:
    return [str(s5cmd_binary()), "--endpoint-url", c.endpoint, "cp", f"{_src(c)}*", _dst(c)]


def _rclone_path(remote: str, bucket: str, prefix: str) -> str:
    return f"{remote}:{bucket}/{prefix.rstrip('/')}"


def rclone_copy(c: Copy, dest_remote: str = RCLONE_REMOTE) -> list[str]:
    return [
        str(BIN_DIR / "rclone"),
        "--config",
        "/dev/null",
        "copy",
        _rclone_path(RCLONE_REMOTE, SRC_BUCKET, c.prefix),
        _rclone_path(dest_remote, DST_BUCKET, c.prefix),
    ]


def aws_copy(c: Copy) -> list[str]:
    return [
        str(BIN_DIR / "aws"),
        "--endpoint-url",
        c.endpoint,
        "s3",
        "cp",
        "--recursive",
        "--only-show-errors",
        _src(c),
        _dst(c),
    ]


# Same server: s3ferry's default (auto -> server-side), s3ferry forced to stream, peers.
COPY_TOOLS: dict[str, Callable[[Copy], list[str]]] = {
    "s3ferry": s3ferry_cp,
    "s3ferry-streamed": lambda c: s3ferry_cp(c, "streamed"),
    "s5cmd": s5cmd_copy,
    "rclone": rclone_copy,
    "aws": aws_copy,
}
# Two servers with different keys: nothing can copy server-side, bytes pass the client.
TWO_SERVER_TOOLS: dict[str, Callable[[Copy], list[str]]] = {
    "s3ferry": s3ferry_two,
    "rclone": lambda c: rclone_copy(c, OTHER_REMOTE),
}
# Which --tools name selects which copy tool.
SELECTED_BY = {"s3ferry-streamed": "s3ferry"}


def seed_copy_source(bench: Bench, dataset: Dataset) -> str:
    """Upload the dataset once, untimed, to ``copy-src/NAME/``; returns the prefix."""
    from bench.run import create_bucket, empty_prefix

    prefix = f"{dataset.name}/"
    create_bucket(bench.s3, SRC_BUCKET)
    create_bucket(bench.s3, DST_BUCKET)
    empty_prefix(bench, prefix, SRC_BUCKET)
    url = f"s3://{SRC_BUCKET}/{prefix}"
    transfer = Transfer("upload", dataset.path, url, bench.info.endpoint_url)
    subprocess.run(
        TOOLS[bench.seed_tool](transfer), env=bench.env, check=True, stdout=subprocess.DEVNULL
    )
    if problem := verify_upload(bench.s3, dataset, SRC_BUCKET, prefix):
        raise SystemExit(f"seeding {url} failed: {problem}")
    return prefix


def write_profiles(directory: Path, bench: Bench, other: Bench) -> None:
    """An AWS credentials file and config file with one profile per server."""
    directory.mkdir(parents=True, exist_ok=True)
    credentials, config = (directory / name for name in PROFILE_FILES)
    creds, conf = [], []
    for name, b in ((RCLONE_REMOTE, bench), (OTHER_REMOTE, other)):
        creds += [
            f"[{name}]",
            f"aws_access_key_id = {b.info.access_key_id}",
            f"aws_secret_access_key = {b.info.secret_access_key}",
            "",
        ]
        conf += [f"[profile {name}]", "region = us-east-1", ""]
    credentials.write_text("\n".join(creds))
    config.write_text("\n".join(conf))
    credentials.chmod(0o600)


def two_server_env(bench: Bench, other: Bench, profiles: Path) -> dict[str, str]:
    """No default credentials or endpoint: each side must come from its own profile/remote."""
    drop = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"}
    env = {k: v for k, v in bench.env.items() if k not in drop and not k.startswith("AWS_PROFILE")}
    prefix = f"RCLONE_CONFIG_{OTHER_REMOTE.upper()}_"
    remote = {
        "TYPE": "s3",
        "PROVIDER": "Other",
        "ACCESS_KEY_ID": other.info.access_key_id,
        "SECRET_ACCESS_KEY": other.info.secret_access_key,
        "ENDPOINT": other.info.endpoint_url,
        "REGION": "us-east-1",
    }
    credentials, config = (str(profiles / name) for name in PROFILE_FILES)
    env |= {"AWS_SHARED_CREDENTIALS_FILE": credentials, "AWS_CONFIG_FILE": config}
    return env | {prefix + k: v for k, v in remote.items()}


def timed(
    bench: Bench,
    argv: list[str],
    log_stem: Path,
    env: dict[str, str] | None = None,
    other: Bench | None = None,
) -> Measurement:
    """run_timed, with the CPU of the second server (if one is involved) added to the server's."""
    before = server_cpu_s(other.info.pid) if other else 0.0
    m = run_timed(argv, env or bench.env, bench.info.pid, log_stem)
    if other is None:
        return m
    return replace(m, server_cpu_s=m.server_cpu_s + server_cpu_s(other.info.pid) - before)


def result(
    dataset: Dataset,
    op: str,
    tool: str,
    run: int,
    m: Measurement,
    error: str | None,
    note: str = "",
    files: int | None = None,
) -> RunResult:
    count = len(dataset.files) if files is None else files
    return RunResult.measured(
        dataset.name, op, tool, run, count, dataset.total_bytes, m, error, note
    )


def path_note(err_log: Path) -> tuple[str, int | None]:
    """("N server-side, X through client", N) from s3ferry's summary on stderr, if there."""
    text = err_log.read_text(errors="replace") if err_log.exists() else ""
    if not (match := PATH_LINE.search(text)):
        return "", None
    count = int(match.group(1).replace(",", ""))
    return f"{count:,} server-side, {match.group(2)} via client", count


def run_copy_case(
    bench: Bench,
    dataset: Dataset,
    tools: list[str],
    runs: int,
    other: Bench | None = None,
    profiles: Path | None = None,
) -> list[RunResult]:
    """All runs (tools interleaved) of one dataset: same server, or two servers if ``other``."""
    from bench.run import empty_prefix, record

    prefix = f"{dataset.name}/"
    op = "copy" if other is None else "copy-2srv"
    table = COPY_TOOLS if other is None else TWO_SERVER_TOOLS
    dest = other or bench
    env = two_server_env(bench, other, profiles) if other and profiles else bench.env
    copy = Copy(prefix, bench.info.endpoint_url, other.info.endpoint_url if other else None)
    # One untimed copy first: the server grows new volumes for the first copy after the
    # seeding, which made whichever tool ran first (always the first tool) ~1.5x slower.
    empty_prefix(dest, prefix, DST_BUCKET)
    timed(
        bench,
        table[tools[0]](copy),
        bench.root / "logs" / f"{dataset.name}-{op}-warmup",
        env,
        other,
    )
    results = []
    for run in range(1, runs + 1):
        for tool in in_turn(tools, run):
            empty_prefix(dest, prefix, DST_BUCKET)
            log_stem = bench.root / "logs" / f"{dataset.name}-{op}-{tool}-{run}"
            m = timed(bench, table[tool](copy), log_stem, env, other)
            error = f"exit {m.exit_code}: {m.stderr_tail}" if m.exit_code else None
            error = error or verify_upload(dest.s3, dataset, DST_BUCKET, prefix)
            note, server_side = path_note(log_stem.with_suffix(".err"))
            expect_server_side = {"s3ferry": len(dataset.files) if other is None else 0}
            expect_server_side["s3ferry-streamed"] = 0
            if error is None and tool in expect_server_side:
                if server_side is None:
                    error = "no 'path' line in s3ferry's summary"
                elif server_side != expect_server_side[tool]:
                    error = f"{server_side:,} objects copied server-side, expected "
                    error += f"{expect_server_side[tool]:,}"
            r = result(dataset, op, tool, run, m, error, note)
            record(bench, r)
            results.append(r)
    empty_prefix(dest, prefix, DST_BUCKET)
    return results


def copy_tools(asked: list[str], two_servers: bool) -> list[str]:
    table = TWO_SERVER_TOOLS if two_servers else COPY_TOOLS
    return [t for t in table if SELECTED_BY.get(t, t) in asked]


# ---------------------------------------------------------------------------------------------
# --ops queue


@dataclass(frozen=True, slots=True)
class QueueCase:
    """One timed step: ``kind`` = cp, plan, worker or migrate; ``processes`` worker processes."""

    kind: str
    processes: int
    path: str = "auto"

    @property
    def name(self) -> str:
        if self.kind == "cp":
            return f"cp --copy-path {self.path} (1 proc, no queue)"
        if self.kind == "migrate":
            return f"migrate --workers {self.processes}"
        return f"worker --processes {self.processes} ({self.path})"

    def prefix(self, dataset: Dataset) -> str:
        return f"q/{self.kind}-{self.path}-{self.processes}/{dataset.name}/"


def queue_cases(processes: list[int], paths: list[str], migrate_workers: int) -> list[QueueCase]:
    cases = [QueueCase("cp", 1, path) for path in paths]
    cases += [QueueCase("worker", n, path) for path in paths for n in processes]
    return cases + [QueueCase("migrate", migrate_workers)]


def run_queue_case(
    bench: Bench, dataset: Dataset, cases: list[QueueCase], runs: int
) -> tuple[list[RunResult], list[RunResult]]:
    """Per run and case: empty the target, (plan, timed separately,) copy (timed), verify.

    Returns (plan results, copy results).
    """
    from bench.run import empty_prefix, record

    source = f"s3://{SRC_BUCKET}/{dataset.name}/"
    work = bench.root / "queue"
    plans, copies = [], []
    for run in range(1, runs + 1):
        for case in cases:
            prefix = case.prefix(dataset)
            dest = f"s3://{DST_BUCKET}/{prefix}"
            empty_prefix(bench, prefix, DST_BUCKET)
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir(parents=True)
            queue = f"sqlite:///{work}/q-{case.processes}.db"
            stem = f"{dataset.name}-queue-{case.kind}-{case.path}-{case.processes}-{run}"
            logs = bench.root / "logs"
            if case.kind == "worker":
                argv = [str(BIN_DIR / "s3ferry"), "plan", "--inventory", source, "--dest", dest]
                m = timed(bench, [*argv, "--queue", queue], logs / f"{stem}-plan")
                error = f"exit {m.exit_code}: {m.stderr_tail}" if m.exit_code else None
                planned = _planned_tasks(logs / f"{stem}-plan.err")
                r = result(dataset, "plan", f"plan for {case.name}", run, m, error, planned)
                record(bench, r)
                plans.append(r)
                if error:
                    continue
            m = timed(bench, _queue_argv(case, source, dest, queue, work), logs / stem)
            error = f"exit {m.exit_code}: {m.stderr_tail}" if m.exit_code else None
            error = error or verify_upload(bench.s3, dataset, DST_BUCKET, prefix)
            r = result(dataset, "queue", case.name, run, m, error, str(case.processes))
            record(bench, r)
            copies.append(r)
            empty_prefix(bench, prefix, DST_BUCKET)
    shutil.rmtree(work, ignore_errors=True)
    return plans, copies


def _queue_argv(case: QueueCase, source: str, dest: str, queue: str, work: Path) -> list[str]:
    s3ferry = str(BIN_DIR / "s3ferry")
    if case.kind == "cp":
        return [s3ferry, "cp", "--copy-path", case.path, source, dest]
    if case.kind == "migrate":
        return [s3ferry, "migrate", source, dest, "--workers", str(case.processes),
                "--state-dir", str(work / "state")]  # fmt: skip
    return [s3ferry, "worker", "--queue", queue, "--processes", str(case.processes),
            "--exit-when-empty", "--copy-path", case.path]  # fmt: skip


def _planned_tasks(err_log: Path) -> str:
    """ "N tasks" from the plan's summary line on stderr."""
    text = err_log.read_text(errors="replace") if err_log.exists() else ""
    match = re.search(r"plan: ([\d,]+) tasks", text)
    return f"{match.group(1)} tasks" if match else ""


QUEUE_COLUMNS = (
    "step",
    "runs",
    "wall s (median [min-max])",
    "obj/s",
    "obj/s per process",
    "client CPU s",
    "CPU ms/obj",
    "peak RSS MiB",
    "server CPU s",
    "ok",
)


def queue_table(title: str, results: list[RunResult], per_process: bool) -> str:
    """One row per step (plan or copy case); per_process: obj/s divided by the note's N."""
    by_case: dict[str, list[RunResult]] = {}
    for r in results:
        by_case.setdefault(r.tool, []).append(r)
    lines = [title, "", _row(QUEUE_COLUMNS), _row(("---",) + ("---:",) * (len(QUEUE_COLUMNS) - 1))]
    for case, runs in by_case.items():
        good = [r for r in runs if r.ok]
        ok = "yes" if len(good) == len(runs) else f"{len(good)}/{len(runs)}"
        if not good:
            lines.append(_row((case, str(len(runs)), *("-",) * 7, "no")))
            continue
        walls = [r.wall_s for r in good]
        wall, cpu, first = median(walls), median(r.client_cpu_s for r in good), good[0]
        rate = first.files / wall
        procs = int(first.note) if per_process and first.note.isdigit() else None
        lines.append(
            _row(
                (
                    case + (f" [{first.note}]" if not per_process and first.note else ""),
                    str(len(runs)),
                    f"{wall:.2f} [{min(walls):.2f}-{max(walls):.2f}]",
                    num(rate),
                    num(rate / procs) if procs else "-",
                    f"{cpu:.2f}",
                    num(cpu * 1000 / first.files),
                    f"{max(r.max_rss_kib for r in good) / 1024:.0f}",
                    f"{median(r.server_cpu_s for r in good):.2f}",
                    ok,
                )
            )
        )
    failures = [f"- {r.tool} run {r.run}: {r.error}" for r in results if not r.ok]
    return "\n".join(lines + ([""] + failures if failures else []))


def _row(cells: tuple[str, ...]) -> str:
    return "| " + " | ".join(cells) + " |"


def loadavg() -> str:
    with open("/proc/loadavg") as f:
        return "load average (1/5/15 min): " + " ".join(f.read().split()[:3])


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)

"""Benchmark s3ferry against s5cmd, rclone, the AWS CLI and a naive boto3 loop.

One embedded SeaweedFS server (s3ferry.localserver.LocalS3) serves the whole run. Every
transfer or listing is a separate client process, timed as a whole; see bench/README.md.

Usage: python bench/run.py [--quick] [--datasets small,mixed,large,keys-nested,keys-flat,
                                       sync-10k,sync-100k]
                           [--tools ...] [--ops upload,download,list,sync,copy,queue] [--runs N]
                           [--no-two-servers] [--queue-processes 1,2,4]
                           [--queue-paths auto,streamed] [--migrate-workers N]
                           [--list-objects N] [--keep-server] [--root DIR] [--json FILE]
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping
from contextlib import ExitStack, nullcontext
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING

if __package__ in (None, ""):  # started as `python bench/run.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import boto3  # noqa: E402

import s3ferry  # noqa: E402
from bench.copybench import (  # noqa: E402
    OTHER_KEY,
    copy_tools,
    loadavg,
    queue_cases,
    queue_table,
    run_copy_case,
    run_queue_case,
    seed_copy_source,
    write_profiles,
)
from bench.datasets import DEFAULT_ROOT, DEFAULT_SEED, NAMES, SYNC_NAMES, Dataset, generate  # noqa: E402
from bench.keys import (  # noqa: E402
    BODY,
    DEFAULT_OBJECTS,
    KEY_NAMES,
    QUICK_OBJECTS,
    KeySet,
    ensure_seeded,
)
from bench.measure import Measurement, run_timed  # noqa: E402
from bench.report import RunResult, markdown_table  # noqa: E402
from bench.synctree import (  # noqa: E402
    Obj,
    change_files,
    file_states,
    fresh_copy,
    list_objects,
    rewritten,
    verify_sync,
)
from bench.tools import (  # noqa: E402
    LIST_KEY_ONLY,
    LIST_TOOLS,
    SYNC_TOOLS,
    TOOLS,
    Listing,
    Sync,
    Transfer,
    in_turn,
    s3ferry_inventory,
    tool_env,
)
from bench.verify import (  # noqa: E402
    list_sizes,
    verify_download,
    verify_inventory,
    verify_listing,
    verify_upload,
)
from s3ferry.localserver import LocalS3, LocalS3Info  # noqa: E402

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

BUCKET = "bench"
TRANSFER_OPS = ("upload", "download")
BUCKET_OPS = ("copy", "queue")  # bucket to bucket: read a seeded source bucket
OPS = (*TRANSFER_OPS, "list", "sync", *BUCKET_OPS)
SYNC_BUCKET = "bench-sync"
PREFIX_ROOT = {"upload": "up", "download": "src"}
DELETE_BATCH = 1000


@dataclass(frozen=True, slots=True)
class Bench:
    """Everything a run needs: the server, a client for untimed chores, where to write."""

    info: LocalS3Info
    s3: S3Client
    env: dict[str, str]
    root: Path
    json_out: IO[str] | None
    seed_tool: str


def main() -> None:
    args = parse_args()
    transfer_ops = [op for op in args.ops if op in TRANSFER_OPS]
    bucket_ops = [op for op in args.ops if op in BUCKET_OPS]
    file_sets = [name for name in args.datasets if name in NAMES]
    if not (transfer_ops or bucket_ops):
        file_sets = []
    sets = [generate(args.root, name, args.quick) for name in file_sets]
    list_count = args.list_objects or (QUICK_OBJECTS if args.quick else DEFAULT_OBJECTS)
    key_sets = [KeySet(name, list_count) for name in args.datasets if name in KEY_NAMES]
    if "list" not in args.ops:
        key_sets = []
    sync_names = [name for name in args.datasets if name in SYNC_NAMES]
    sync_sets = [generate(args.root, name, args.quick) for name in sync_names]
    if "sync" not in args.ops:
        sync_sets = []
    server_dir = args.root / "server"
    if not args.keep_server:
        shutil.rmtree(server_dir, ignore_errors=True)
    (args.root / "logs").mkdir(parents=True, exist_ok=True)
    shutil.rmtree(trash_dir(args.root), ignore_errors=True)  # left by an interrupted run
    # As `pip install` does: the timed runs load bytecode, not source compiled anew on every
    # start (~0.17 s of CPU), even where PYTHONDONTWRITEBYTECODE keeps Python from saving it.
    compileall.compile_dir(Path(s3ferry.__file__).parent, quiet=1)
    json_file = open(args.json, "w") if args.json else nullcontext(None)  # noqa: SIM115
    try:
        with ExitStack() as stack:
            info = stack.enter_context(LocalS3(data_dir=server_dir))
            json_out = stack.enter_context(json_file)
            bench = Bench(
                info, s3_client(info), tool_env(info), args.root, json_out, args.seed_with
            )
            if args.keep_server:
                wait_for_volumes(info, server_dir)
            if sets:
                create_bucket(bench.s3, BUCKET)
            for dataset in sets:
                for op in transfer_ops:
                    tools = usable(args.tools, TOOLS, op)
                    results = run_case(bench, dataset, op, tools, args.runs)
                    print(markdown_table(results) + "\n", flush=True)
            for keyset in key_sets:
                tools = usable(args.tools, LIST_TOOLS, "list")
                results = run_list_case(bench, keyset, tools, args.runs)
                print(markdown_table(results) + "\n", flush=True)
                if "s3ferry" in tools:
                    results = run_inventory_case(bench, keyset, args.runs)
                    print(markdown_table(results) + "\n", flush=True)
            if sync_sets:
                create_bucket(bench.s3, SYNC_BUCKET)
            for dataset in sync_sets:
                tools = usable(args.tools, SYNC_TOOLS, "sync")
                for results, written in run_sync_case(bench, dataset, tools, args.runs):
                    print(markdown_table(results) + "\n\n" + written + "\n", flush=True)
            if sets and bucket_ops:
                run_bucket_ops(bench, stack, args, sets, bucket_ops)
    finally:
        if not args.keep_server:
            shutil.rmtree(server_dir, ignore_errors=True)
        shutil.rmtree(args.root / "server2", ignore_errors=True)
        shutil.rmtree(trash_dir(args.root), ignore_errors=True)


def run_bucket_ops(
    bench: Bench, stack: ExitStack, args: argparse.Namespace, sets: list[Dataset], ops: list[str]
) -> None:
    """--ops copy and queue: seed each dataset's source once, then the cases (copybench.py)."""
    other = None
    if "copy" in ops and args.two_servers:
        # A second server with other keys: no credential reaches both, as across partitions.
        info2 = stack.enter_context(
            LocalS3(data_dir=args.root / "server2", access_key_id=OTHER_KEY)
        )
        other = replace(bench, info=info2, s3=s3_client(info2), env=tool_env(info2))
        create_bucket(other.s3, "copy-dst")
        write_profiles(args.root / "profiles", bench, other)
    for dataset in sets:
        start = time.monotonic()
        seed_copy_source(bench, dataset)
        print(
            f"{dataset.name}: seeded copy-src/{dataset.name}/ with {bench.seed_tool} "
            f"in {time.monotonic() - start:.1f} s (untimed)",
            file=sys.stderr,
            flush=True,
        )
        if "copy" in ops:
            results = run_copy_case(bench, dataset, copy_tools(args.tools, False), args.runs)
            print(markdown_table(results, "s3ferry path") + f"\n\n{loadavg()}\n", flush=True)
            if other is not None:
                tools = copy_tools(args.tools, True)
                results = run_copy_case(
                    bench, dataset, tools, args.runs, other, args.root / "profiles"
                )
                print(markdown_table(results, "s3ferry path") + f"\n\n{loadavg()}\n", flush=True)
        if "queue" in ops:
            cases = queue_cases(args.queue_processes, args.queue_paths, args.migrate_workers)
            plans, copies = run_queue_case(bench, dataset, cases, args.runs)
            title = f"### {dataset.name} / queue: {len(dataset.files):,} objects"
            print(queue_table(title + ", copy steps", copies, True) + "\n", flush=True)
            print(queue_table(title + ", plan steps", plans, False), flush=True)
            print(f"\n{loadavg()}\n", flush=True)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    all_sets = (*NAMES, *KEY_NAMES, *SYNC_NAMES)
    parser.add_argument(
        "--datasets",
        type=_names(all_sets),
        default=list(all_sets),
        help="files for upload/download, keys-* buckets for list, sync-* trees for sync "
        "(default: all)",
    )
    parser.add_argument("--tools", type=_names(tuple(TOOLS)), default=list(TOOLS))
    parser.add_argument("--ops", type=_names(OPS), default=list(OPS))
    parser.add_argument("--runs", type=int, default=1, help="runs per tool (default 1)")
    parser.add_argument(
        "--root",
        type=Path,
        default=DEFAULT_ROOT,
        help=f"datasets, server data, downloads and logs (default {DEFAULT_ROOT})",
    )
    parser.add_argument("--json", type=Path, help="also write every run as a JSON line here")
    parser.add_argument("--quick", action="store_true", help="reduced datasets for a smoke run")
    parser.add_argument(
        "--list-objects",
        type=int,
        metavar="N",
        help=f"objects per list bucket (default {DEFAULT_OBJECTS:,}; --quick {QUICK_OBJECTS:,})",
    )
    parser.add_argument(
        "--keep-server",
        action="store_true",
        help="keep ROOT/server (the server's data) before and after the run, so seeded "
        "list buckets are reused",
    )
    parser.add_argument(
        "--seed-with",
        choices=("s5cmd", "s3ferry"),
        default="s5cmd",
        help="tool that uploads the download source (default s5cmd: objects "
        "without checksums; s3ferry: objects with CRC32C checksums)",
    )
    parser.add_argument(
        "--no-two-servers",
        dest="two_servers",
        action="store_false",
        help="--ops copy: skip the streamed copy between two servers with different keys",
    )
    parser.add_argument(
        "--queue-processes",
        type=_ints,
        default=[1, 2, 4],
        help="--ops queue: worker processes per case (default 1,2,4)",
    )
    parser.add_argument(
        "--queue-paths",
        type=_names(("auto", "server-side", "streamed")),
        default=["auto"],
        help="--ops queue: --copy-path of the workers (default auto = server-side here)",
    )
    parser.add_argument(
        "--migrate-workers", type=int, default=2, help="--ops queue: migrate --workers (default 2)"
    )
    return parser.parse_args()


def _ints(value: str) -> list[int]:
    return [int(part) for part in value.split(",") if part]


def _names(allowed: tuple[str, ...]) -> Callable[[str], list[str]]:
    def parse(value: str) -> list[str]:
        names = [name for name in value.split(",") if name]
        if unknown := [name for name in names if name not in allowed]:
            raise argparse.ArgumentTypeError(
                f"unknown: {', '.join(unknown)} (choose from {', '.join(allowed)})"
            )
        return names

    return parse


def s3_client(info: LocalS3Info) -> S3Client:
    return boto3.client(
        "s3",
        endpoint_url=info.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=info.access_key_id,
        aws_secret_access_key=info.secret_access_key,
    )


def create_bucket(s3: S3Client, bucket: str) -> None:
    """Create ``bucket`` unless it exists (it may, on a kept server data dir)."""
    try:
        s3.head_bucket(Bucket=bucket)
    except s3.exceptions.ClientError:
        s3.create_bucket(Bucket=bucket)


def wait_for_volumes(info: LocalS3Info, server_dir: Path, timeout_s: float = 60.0) -> None:
    """On a kept data dir: wait until the master knows every volume on disk.

    The server answers S3 requests before its volume server's first heartbeat; until
    then, reading or writing an object of an existing bucket fails ("volume N not found").
    """
    on_disk = len(list((server_dir / "store").glob("*.dat")))
    url = f"http://127.0.0.1:{info.ports[0]}/vol/status"  # the master's HTTP port
    deadline = time.monotonic() + timeout_s
    while (known := _known_volumes(url)) < on_disk:
        if time.monotonic() > deadline:
            raise SystemExit(f"server knows {known} of {on_disk} volumes after {timeout_s:.0f} s")
        time.sleep(0.2)


def _known_volumes(url: str) -> int:
    with urllib.request.urlopen(url, timeout=10) as response:
        status = json.load(response)
    centers = status.get("Volumes", {}).get("DataCenters") or {}
    return sum(
        len(volumes or [])
        for racks in centers.values()
        for nodes in racks.values()
        for volumes in nodes.values()
    )


def usable(tools: list[str], commands: Mapping[str, object], op: str) -> list[str]:
    """The asked-for tools that have a command for ``op``; the others are skipped, said so."""
    if skipped := [tool for tool in tools if tool not in commands]:
        print(f"{op}: no command for {', '.join(skipped)}; skipped", file=sys.stderr, flush=True)
    return [tool for tool in tools if tool in commands]


# ext4 without a journal (this machine's root file system) passes over inodes freed in the
# last 5 minutes when it creates a file (RECENTCY_DIRTY in fs/ext4/ialloc.c). One tool's
# 10,000 downloaded files, deleted, made every later download of them scan past those inodes
# on each create: kernel CPU 1.3 -> 9.5 s (s3ferry), 5.1 -> 10.6 s (s5cmd), and no wait of
# 6 or 30 s helped. Downloads of many files are moved aside instead, and deleted when the
# bench ends.
MANY_FILES = 5_000


def trash_dir(root: Path) -> Path:
    """Where download targets of many files wait to be deleted at the end of the bench."""
    trash = root / "download-trash"
    trash.mkdir(parents=True, exist_ok=True)
    return trash


def run_case(
    bench: Bench, dataset: Dataset, op: str, tools: list[str], runs: int
) -> list[RunResult]:
    """All runs of all tools for one dataset and operation (runs interleave the tools, in
    turn)."""
    prefix = s3_prefix(op, dataset)
    if op == "download":
        seed_source(bench, dataset, prefix)
        # One untimed download first. The first download after the seeding ran up to 2x
        # slower, and it was always the first tool's: 4 x 512 MiB, 4.9 and 5.1 s against
        # 2.4-3.6 s for its later runs in two benches, where perf counted 8x the kernel
        # CPU in copying into the page cache.
        run_once(bench, dataset, op, tools[0], 0)
    results = [
        run_once(bench, dataset, op, tool, run)
        for run in range(1, runs + 1)
        for tool in in_turn(tools, run)
    ]
    empty_prefix(bench, prefix)
    return results


def run_once(bench: Bench, dataset: Dataset, op: str, tool: str, run: int) -> RunResult:
    """Prepare (untimed), run the tool (timed), verify (untimed) and record one run; run 0
    is a warm-up, only reported."""
    prefix = s3_prefix(op, dataset)
    local = dataset.path if op == "upload" else bench.root / "download" / dataset.name
    prepare(bench, op, prefix, local)
    transfer = Transfer(op, local, f"s3://{BUCKET}/{prefix}", bench.info.endpoint_url)
    m = run_timed(
        TOOLS[tool](transfer),
        bench.env,
        bench.info.pid,
        bench.root / "logs" / f"{dataset.name}-{op}-{tool}-{run}",
    )
    error = f"exit {m.exit_code}: {m.stderr_tail}" if m.exit_code else None
    error = error or check(bench, dataset, op, prefix, local)
    if op == "download":
        if len(dataset.files) >= MANY_FILES and local.exists():
            local.rename(trash_dir(bench.root) / f"{dataset.name}-{tool}-{run}")
        else:
            shutil.rmtree(local, ignore_errors=True)
    result = RunResult.measured(
        dataset.name, op, tool, run, len(dataset.files), dataset.total_bytes, m, error
    )
    if run == 0:
        status = "ok" if result.ok else f"FAILED: {result.error}"
        print(f"{dataset.name} {op} {tool} warm-up (untimed): {status}", file=sys.stderr)
    else:
        record(bench, result)
    return result


def s3_prefix(op: str, dataset: Dataset) -> str:
    """Uploads go to up/DS/; downloads read src/DS/."""
    return f"{PREFIX_ROOT[op]}/{dataset.name}/"


def prepare(bench: Bench, op: str, prefix: str, local: Path) -> None:
    """Upload: empty the target prefix. Download: remove the local target and sync."""
    if op == "upload":
        empty_prefix(bench, prefix)
    else:
        shutil.rmtree(local, ignore_errors=True)
        os.sync()


def check(bench: Bench, dataset: Dataset, op: str, prefix: str, local: Path) -> str | None:
    if op == "upload":
        return verify_upload(bench.s3, dataset, BUCKET, prefix)
    return verify_download(dataset, local)


def record(bench: Bench, result: RunResult) -> None:
    status = "ok" if result.ok else f"FAILED: {result.error}"
    print(
        f"{result.dataset} {result.op} {result.tool} run {result.run}: "
        f"{result.wall_s:.2f} s {status}",
        file=sys.stderr,
        flush=True,
    )
    if bench.json_out is not None:
        bench.json_out.write(json.dumps(asdict(result)) + "\n")
        bench.json_out.flush()


def seed_source(bench: Bench, dataset: Dataset, prefix: str) -> None:
    """Upload the dataset once, untimed, as the source of the download runs.

    Who uploads decides what downloads can verify against: s5cmd stores no
    checksums (an MD5 ETag is all there is), s3ferry stores CRC32C checksums.
    """
    empty_prefix(bench, prefix)
    transfer = Transfer("upload", dataset.path, f"s3://{BUCKET}/{prefix}", bench.info.endpoint_url)
    subprocess.run(
        TOOLS[bench.seed_tool](transfer), env=bench.env, check=True, stdout=subprocess.DEVNULL
    )
    if problem := verify_upload(bench.s3, dataset, BUCKET, prefix):
        raise SystemExit(f"seeding s3://{BUCKET}/{prefix} failed: {problem}")


def empty_prefix(bench: Bench, prefix: str, bucket: str = BUCKET) -> None:
    """Delete every object under ``prefix``, then have SeaweedFS reclaim the space, and
    flush what that wrote (and what the run before wrote) to disk: otherwise the kernel
    writes it back during the next timed run, on the cores the tool and server share."""
    keys = [prefix + rel for rel in list_sizes(bench.s3, bucket, prefix)]
    for start in range(0, len(keys), DELETE_BATCH):
        batch = keys[start : start + DELETE_BATCH]
        bench.s3.delete_objects(
            Bucket=bucket, Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True}
        )
    if keys:
        vacuum(bench.info)
    os.sync()


def vacuum(info: LocalS3Info) -> None:
    master_port = info.ports[0]  # LocalS3 lists the master's HTTP port first
    url = f"http://127.0.0.1:{master_port}/vol/vacuum?garbageThreshold=0.0001"
    with urllib.request.urlopen(url, timeout=600) as response:
        response.read()


def run_list_case(bench: Bench, keyset: KeySet, tools: list[str], runs: int) -> list[RunResult]:
    """Seed the bucket if needed (untimed), then all runs of all tools (runs interleave)."""
    ensure_seeded(bench.info, bench.s3, keyset)
    expected = set(keyset.keys())
    return [
        run_list_once(bench, keyset, expected, tool, run)
        for run in range(1, runs + 1)
        for tool in in_turn(tools, run)
    ]


def run_list_once(
    bench: Bench, keyset: KeySet, expected: set[str], tool: str, run: int
) -> RunResult:
    """List the whole bucket (timed, output to a file), then check the output (untimed).

    The output file is removed when it checks out (at 1,000,000 objects it is ~70 MB).
    """
    log_stem = bench.root / "logs" / f"{keyset.bucket}-list-{tool}-{run}"
    argv = LIST_TOOLS[tool](Listing(keyset.bucket, bench.info.endpoint_url))
    m = run_timed(argv, bench.env, bench.info.pid, log_stem)
    out = log_stem.with_suffix(".out")
    error = f"exit {m.exit_code}: {m.stderr_tail}" if m.exit_code else None
    error = error or verify_listing(out, expected, len(BODY), tool in LIST_KEY_ONLY)
    if error is None:
        out.unlink()
    result = keyset_result(keyset, "list", tool, run, m, error)
    record(bench, result)
    return result


def run_inventory_case(bench: Bench, keyset: KeySet, runs: int) -> list[RunResult]:
    """``s3ferry inventory`` of the whole bucket, each run into a new directory (so nothing
    resumes); its peak RSS is the figure the memory bound is about."""
    expected = set(keyset.keys())
    results = []
    for run in range(1, runs + 1):
        log_stem = bench.root / "logs" / f"{keyset.bucket}-inventory-{run}"
        output = bench.root / "inventory"
        shutil.rmtree(output, ignore_errors=True)
        argv = s3ferry_inventory(Listing(keyset.bucket, bench.info.endpoint_url), output)
        m = run_timed(argv, bench.env, bench.info.pid, log_stem)
        error = f"exit {m.exit_code}: {m.stderr_tail}" if m.exit_code else None
        error = error or verify_inventory(output, expected)
        shutil.rmtree(output, ignore_errors=True)
        result = keyset_result(keyset, "inventory", "s3ferry", run, m, error)
        record(bench, result)
        results.append(result)
    return results


def keyset_result(
    keyset: KeySet, op: str, tool: str, run: int, m: Measurement, error: str | None
) -> RunResult:
    return RunResult.measured(
        keyset.name, op, tool, run, keyset.count, keyset.total_bytes, m, error
    )


@dataclass(slots=True)
class SyncState:
    """One dataset's sync runs: each tool's tree and its prefix's last listing, what to expect."""

    dataset: Dataset
    trees: dict[str, Path]
    expected: dict[str, tuple[int, str]]  # relative path -> (size, MD5 hex) of every tree
    listings: dict[str, dict[str, Obj]]
    written: dict[tuple[str, str, int], int]  # (case, tool, run) -> objects the run wrote


def run_sync_case(
    bench: Bench, dataset: Dataset, tools: list[str], runs: int
) -> list[tuple[list[RunResult], str]]:
    """Seed every tool's prefix (untimed), then the no-op runs, then the 1% runs.

    Returns per case the results and a line with how many objects each run wrote.
    """
    work = bench.root / "sync-work" / dataset.path.parent.name / dataset.name
    state = SyncState(
        dataset,
        {tool: work / tool for tool in tools},
        file_states(dataset.path, dataset.files),
        {},
        {},
    )
    for tool in tools:
        seed_sync(bench, state, tool)
    noop = [
        run_sync_once(bench, state, "sync-noop", tool, run, [])
        for run in range(1, runs + 1)
        for tool in tools
    ]
    one_pct: list[RunResult] = []
    changed_per_run = []
    for run in range(1, runs + 1):
        changed = change_files(
            dataset, DEFAULT_SEED, run, list(state.trees.values()), state.expected
        )
        changed_per_run.append(len(changed))
        os.sync()
        one_pct += [run_sync_once(bench, state, "sync-1pct", tool, run, changed) for tool in tools]
    # The prefixes stay: deleting 400,000 objects takes minutes, the server's data dir goes
    # anyway unless --keep-server, and the next seeding empties its prefix first.
    for tool in tools:
        shutil.rmtree(state.trees[tool], ignore_errors=True)
    return [
        (noop, written_line(state, noop, [0] * runs)),
        (one_pct, written_line(state, one_pct, changed_per_run)),
    ]


def sync_prefix(tool: str, dataset: Dataset) -> str:
    return f"{tool}/{dataset.name}/"


def sync_target(bench: Bench, state: SyncState, tool: str) -> Sync:
    url = f"s3://{SYNC_BUCKET}/{sync_prefix(tool, state.dataset)}"
    return Sync(state.trees[tool], url, bench.info.endpoint_url)


def seed_sync(bench: Bench, state: SyncState, tool: str) -> None:
    """A fresh copy of the tree, fully synced by the tool itself (so it finds its own metadata)."""
    prefix = sync_prefix(tool, state.dataset)
    fresh_copy(state.dataset.path, state.trees[tool])
    empty_prefix(bench, prefix, SYNC_BUCKET)
    os.sync()
    start = time.monotonic()
    argv = SYNC_TOOLS[tool](sync_target(bench, state, tool))
    subprocess.run(argv, env=bench.env, check=True, stdout=subprocess.DEVNULL)
    seconds = time.monotonic() - start
    listing = list_objects(bench.s3, SYNC_BUCKET, prefix)
    if problem := verify_sync(state.expected, listing, []):
        raise SystemExit(f"seeding s3://{SYNC_BUCKET}/{prefix} with {tool} failed: {problem}")
    state.listings[tool] = listing
    print(
        f"{state.dataset.name}: seeded {prefix} with {tool} sync in {seconds:.1f} s (untimed)",
        file=sys.stderr,
        flush=True,
    )


def run_sync_once(
    bench: Bench, state: SyncState, case: str, tool: str, run: int, changed: list[str]
) -> RunResult:
    """Sync the tool's tree (timed), then check its prefix against the tree (untimed)."""
    prefix = sync_prefix(tool, state.dataset)
    m = run_timed(
        SYNC_TOOLS[tool](sync_target(bench, state, tool)),
        bench.env,
        bench.info.pid,
        bench.root / "logs" / f"{state.dataset.name}-{case}-{tool}-{run}",
    )
    error = f"exit {m.exit_code}: {m.stderr_tail}" if m.exit_code else None
    listing = list_objects(bench.s3, SYNC_BUCKET, prefix)
    if error is None and (problem := verify_sync(state.expected, listing, changed)):
        error = f"{problem} (wall {m.wall_s:.2f} s)"
    written = rewritten(state.listings[tool], listing)
    state.listings[tool] = listing
    result = RunResult.measured(
        state.dataset.name,
        case,
        tool,
        run,
        len(state.dataset.files),
        state.dataset.total_bytes,
        m,
        error,
    )
    record(bench, result)
    print(f"  wrote {written} objects ({len(changed)} files changed)", file=sys.stderr, flush=True)
    state.written[(case, tool, run)] = written
    return result


def written_line(state: SyncState, results: list[RunResult], changed_per_run: list[int]) -> str:
    """Objects written (new ETag or LastModified) per tool and run, against files changed."""
    by_tool: dict[str, list[str]] = {}
    for r in results:
        by_tool.setdefault(r.tool, []).append(str(state.written[(r.op, r.tool, r.run)]))
    tools = "; ".join(f"{tool} {', '.join(counts)}" for tool, counts in by_tool.items())
    changed = ", ".join(map(str, changed_per_run))
    return f"Objects written per run (files changed: {changed}): {tools}"


if __name__ == "__main__":
    main()

"""``s3ferry compare --checksum`` throughput against the local SHA-256 tree hash rate.

Uploads ``--files`` files of ``--size-mib`` MiB (random bytes, generated once
under ``--root``) with s3ferry to an embedded SeaweedFS, so each is a
multipart object whose tree hash is in a tag. Then, ``--runs`` times: the
files hashed locally by ``file_tree_hash`` (one thread, and the default
threads), the ``compare --checksum`` command over them, and the same command
over a tree of one 6 MiB multipart object, which is the fixed cost of a run
(interpreter, imports, listing, the botocore client that reads tags).
Medians of wall time; client CPU is that of the process (or of the command).

    python bench/checksum_compare.py [--files 4] [--size-mib 256] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):  # started as `python bench/checksum_compare.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import s3ferry  # noqa: E402
from bench.run import s3_client  # noqa: E402
from s3ferry import StoreConfig, TransferConfig  # noqa: E402
from s3ferry.localserver import LocalS3, LocalS3Info  # noqa: E402
from s3ferry.transfer.treehash import file_tree_hash  # noqa: E402

MiB = 1024 * 1024
BUCKET = "checksum-compare"


def _tree(root: Path, files: int, size_bytes: int) -> Path:
    data = root / f"{files}x{size_bytes // MiB}MiB"
    data.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        path = data / f"big{i}.bin"
        if not path.exists() or path.stat().st_size != size_bytes:
            with open(path, "wb") as f:
                for _ in range(size_bytes // MiB):
                    f.write(os.urandom(MiB))
    return data


def _in_process(work: Callable[[], object]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    return time.perf_counter() - wall, time.process_time() - cpu


def _command(info: LocalS3Info, local: Path, url: str) -> tuple[float, float]:
    cli = "import sys; from s3ferry.cli.main import entry; sys.exit(entry())"
    cmd = [sys.executable, "-c", cli, "--endpoint-url", info.endpoint_url]
    before, wall = os.times(), time.perf_counter()
    done = subprocess.run(
        [*cmd, "compare", "--checksum", str(local), url],
        env={**os.environ, **info.env()},
        capture_output=True,
        text=True,
    )
    wall, after = time.perf_counter() - wall, os.times()
    if done.returncode != 0:
        raise SystemExit(f"compare exited {done.returncode}: {done.stdout}{done.stderr}")
    cpu = after.children_user - before.children_user
    return wall, cpu + after.children_system - before.children_system


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--root", type=Path, default=Path("/tmp/s3ferry-bench-checksum"))
    args = parser.parse_args()
    data = _tree(args.root, args.files, args.size_mib * MiB)
    one = _tree(args.root, 1, 6 * MiB)
    paths = sorted(data.iterdir())
    megabytes = sum(p.stat().st_size for p in paths) / 1e6
    with LocalS3() as info:
        os.environ.update(info.env())
        store = StoreConfig(endpoint_url=info.endpoint_url)
        s3_client(info).create_bucket(Bucket=BUCKET)
        small_parts = TransferConfig(multipart_threshold_bytes=5 * MiB, part_size_bytes=5 * MiB)
        for tree, prefix, transfer in ((data, "d/", None), (one, "one/", small_parts)):
            report = s3ferry.upload(tree, f"s3://{BUCKET}/{prefix}", transfer=transfer, store=store)
            if not report.ok:
                raise SystemExit(f"upload failed: {report.failures}")
        rows: dict[str, list[tuple[float, float]]] = {
            "TreeHash, 1 thread": [],
            "TreeHash, default threads": [],
            "compare --checksum": [],
            "fixed cost of a run": [],
        }
        for _ in range(args.runs):
            rows["TreeHash, 1 thread"].append(
                _in_process(lambda: [file_tree_hash(p, threads=1) for p in paths])
            )
            rows["TreeHash, default threads"].append(
                _in_process(lambda: [file_tree_hash(p) for p in paths])
            )
            rows["compare --checksum"].append(_command(info, data, f"s3://{BUCKET}/d/"))
            rows["fixed cost of a run"].append(_command(info, one, f"s3://{BUCKET}/one/"))
    print(f"{args.files} x {args.size_mib} MiB, {args.runs} runs (medians)\n")
    print("| what | wall s | client CPU s | MB/s |\n| --- | ---: | ---: | ---: |")
    walls = {}
    for name, timings in rows.items():
        walls[name] = statistics.median(w for w, _ in timings)
        cpu = statistics.median(c for _, c in timings)
        rate = "" if name.startswith("fixed") else f"{megabytes / walls[name]:,.0f}"
        print(f"| {name} | {walls[name]:.2f} | {cpu:.2f} | {rate} |")
    net = walls["compare --checksum"] - walls["fixed cost of a run"]
    print(f"| compare less the fixed cost | {net:.2f} | | {megabytes / net:,.0f} |")


if __name__ == "__main__":
    main()

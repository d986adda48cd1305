"""Deterministic benchmark datasets: small, mixed and large (transfers), sync-10k and sync-100k.

Every file's bytes come from ``random.Random`` seeded with sha256(seed:dataset:relpath),
so they are incompressible and regenerate byte-identically; mtimes are pinned to
2026-01-01T00:00:00Z. A dataset is written to ``ROOT/{full,quick}/NAME`` and its manifest
to ``ROOT/{full,quick}/NAME.manifest.json`` (outside the tree the tools copy). Generation
is skipped when the manifest on disk equals the planned one.

Usage: ``python bench/datasets.py [--root DIR] [--quick] [--seed N] [NAME ...]``
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB
MTIME = 1767225600  # 2026-01-01T00:00:00Z
DEFAULT_SEED = 20261125
DEFAULT_ROOT = Path("/tmp/s3ferry-bench")
NAMES = ("small", "mixed", "large")
SYNC_NAMES = ("sync-10k", "sync-100k")  # tiny files in a nested tree, for --ops sync
SYNC_COUNTS = {"sync-10k": 10_000, "sync-100k": 100_000}
SYNC_QUICK_COUNT = 2_000
MANIFEST_VERSION = 1
CHUNK = 8 * MIB
LOGNORMAL_SIGMA = 2.3


@dataclass(frozen=True, slots=True)
class Dataset:
    """A generated dataset: its directory and its files as (relative path, size)."""

    name: str
    path: Path
    files: tuple[tuple[str, int], ...]

    @property
    def total_bytes(self) -> int:
        return sum(size for _, size in self.files)


def plan(name: str, quick: bool, seed: int) -> list[tuple[str, int]]:
    """The (relative path, size) list of one dataset, in a stable order."""
    if name == "small":
        return _small(2_000 if quick else 10_000)
    if name == "mixed":
        count, total = (200, 100 * MIB) if quick else (2_000, GIB)
        return _mixed(count, total, seed)
    if name == "large":
        count, size = (1, 256 * MIB) if quick else (4, 512 * MIB)
        return [(f"big{i}.bin", size) for i in range(count)]
    if name in SYNC_COUNTS:
        return _sync(name, SYNC_QUICK_COUNT if quick else SYNC_COUNTS[name], seed)
    raise ValueError(f"unknown dataset {name!r}; choose from {', '.join(NAMES + SYNC_NAMES)}")


def _small(count: int) -> list[tuple[str, int]]:
    return [(f"d{i // 100:03d}/f{i:05d}.bin", 4 * KIB) for i in range(count)]


def _sync(name: str, count: int, seed: int) -> list[tuple[str, int]]:
    """``dNN/eNN/fNNNNNN.dat``: 100 files per leaf directory, 1-4 KiB each (seeded)."""
    files = []
    for i in range(count):
        rel = f"d{i // 10_000:02d}/e{i // 100 % 100:02d}/f{i:06d}.dat"
        files.append((rel, KIB + _file_seed(seed, name, rel) % (3 * KIB + 1)))
    return files


def _mixed(count: int, total: int, seed: int) -> list[tuple[str, int]]:
    rng = random.Random(_file_seed(seed, "mixed", "@sizes"))
    weights = [rng.lognormvariate(0.0, LOGNORMAL_SIGMA) for _ in range(count)]
    sizes = _rescale(weights, total, KIB, 64 * MIB)
    return [(f"d{i % 20:02d}/f{i:04d}.bin", size) for i, size in enumerate(sizes)]


def _rescale(weights: list[float], total: int, low: int, high: int) -> list[int]:
    """Sizes proportional to ``weights``, clipped to [low, high], summing exactly to ``total``."""

    def clipped(scale: float) -> list[int]:
        return [min(high, max(low, round(w * scale))) for w in weights]

    lo, hi = 0.0, total / min(weights)
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if sum(clipped(mid)) < total else (lo, mid)
    sizes = clipped(hi)
    free = max((i for i, s in enumerate(sizes) if low < s < high), key=sizes.__getitem__)
    sizes[free] += total - sum(sizes)
    return sizes


def _file_seed(seed: int, dataset: str, relpath: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}:{dataset}:{relpath}".encode()).digest(), "big")


def generate(root: Path, name: str, quick: bool = False, seed: int = DEFAULT_SEED) -> Dataset:
    """Write one dataset under ``root`` unless an identical manifest says it is already there."""
    base = root / ("quick" if quick else "full")
    dataset = Dataset(name, base / name, tuple(plan(name, quick, seed)))
    manifest = {
        "version": MANIFEST_VERSION,
        "name": name,
        "seed": seed,
        "quick": quick,
        "files": [list(entry) for entry in dataset.files],
    }
    manifest_path = base / f"{name}.manifest.json"
    if _read_json(manifest_path) == manifest:
        return dataset
    manifest_path.unlink(missing_ok=True)
    shutil.rmtree(dataset.path, ignore_errors=True)
    _write_tree(dataset, seed)
    manifest_path.write_text(json.dumps(manifest))
    return dataset


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None


def _write_tree(dataset: Dataset, seed: int) -> None:
    for directory in {str(Path(rel).parent) for rel, _ in dataset.files}:
        (dataset.path / directory).mkdir(parents=True, exist_ok=True)
    jobs = [(str(dataset.path), dataset.name, rel, size, seed) for rel, size in dataset.files]
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        list(pool.map(_write_one, jobs, chunksize=max(1, len(jobs) // 64)))


def _write_one(job: tuple[str, str, str, int, int]) -> None:
    base, dataset, rel, size, seed = job
    rng = random.Random(_file_seed(seed, dataset, rel))
    path = os.path.join(base, rel)
    with open(path, "wb") as f:
        for offset in range(0, size, CHUNK):
            f.write(rng.randbytes(min(CHUNK, size - offset)))
    os.utime(path, (MTIME, MTIME))


def main() -> None:
    parser = argparse.ArgumentParser(description="Generate the benchmark datasets.")
    parser.add_argument(
        "names", nargs="*", help=f"any of {', '.join(NAMES + SYNC_NAMES)} (default: all)"
    )
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    parser.add_argument("--quick", action="store_true", help="reduced sizes for a smoke run")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args()
    if unknown := set(args.names) - set(NAMES + SYNC_NAMES):
        parser.error(f"unknown dataset(s): {', '.join(sorted(unknown))}")
    for name in args.names or NAMES + SYNC_NAMES:
        dataset = generate(args.root, name, args.quick, args.seed)
        print(
            f"{name}: {len(dataset.files)} files, {dataset.total_bytes / 1e6:,.1f} MB "
            f"in {dataset.path}"
        )


if __name__ == "__main__":
    main()

"""Memory of sync does not grow with the number of files (slow: 200,000 files)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from support.measured import run_measured

FILES = 200_000
PEAK_RSS_LIMIT_BYTES = 200 * 1024 * 1024
S3FERRY = str(Path(sys.executable).parent / "s3ferry")


def _peak_rss_of(args: list[str], env: dict[str, str]) -> tuple[int, int, str]:
    """Run a command; its exit status, peak RSS in bytes and the end of its stderr. Measured
    through bench/launch.py: started straight from pytest, a program's peak starts at
    pytest's own, which after the migration tests is already above the limit."""
    done, peak_rss = run_measured(args, env, timeout=1500)
    return done.returncode, peak_rss, done.stderr.decode(errors="replace")[-2000:]


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_sync_of_200k_files_stays_under_200_mb(
    tmp_path: Path, bucket: str, cli_env: dict[str, str]
) -> None:
    root = tmp_path / "tree"
    for i in range(FILES):
        d = root / f"d{i % 100:02d}" / f"e{i // 100 % 20:02d}"
        if i < 2000:
            d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i:06d}").write_bytes(b"%d" % i)
    args = [S3FERRY, "sync", str(root), f"s3://{bucket}/p/", "-q"]

    first, first_rss, first_err = _peak_rss_of(args, cli_env)
    again, again_rss, again_err = _peak_rss_of(args, cli_env)

    assert (first, again) == (0, 0), first_err + again_err
    assert first_rss < PEAK_RSS_LIMIT_BYTES, f"first sync peaked at {first_rss >> 20} MiB"
    assert again_rss < PEAK_RSS_LIMIT_BYTES, f"no-op sync peaked at {again_rss >> 20} MiB"

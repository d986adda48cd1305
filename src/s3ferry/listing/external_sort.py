"""Sort a stream of listing entries too large for memory, through runs on disk.

An S3 Inventory report lists objects in the order of its data files, and a
merge-join with a bucket listing needs them in the listing's order. Entries
are read :data:`RUN_ENTRIES` at a time, each run sorted in memory and written
to a gzip'd temporary file (none is written when everything fits in one run),
then the runs are merged, at most :data:`FAN_IN` files open at once (more runs
are first merged into fewer). Memory: one run, plus one entry per open file.
"""

from __future__ import annotations

import gzip
import heapq
import json
import tempfile
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path

from s3ferry.errors import LocalIOError
from s3ferry.listing.keyspace import KeyOrder
from s3ferry.storage.listing import Entry

RUN_ENTRIES = 200_000
FAN_IN = 256


def sorted_entries(
    entries: Iterable[Entry],
    order: KeyOrder,
    *,
    run_entries: int = RUN_ENTRIES,
    fan_in: int = FAN_IN,
    temp_dir: str | None = None,
) -> Iterator[Entry]:
    """``entries`` sorted by ``order(entry.key)``; temporary files go under ``temp_dir``
    (default ``TMPDIR``) and are removed when the iterator is exhausted or closed.

    Raises:
        LocalIOError: a temporary file cannot be written or read.
    """
    source = iter(entries)
    first = sorted(islice(source, run_entries), key=lambda e: order(e.key))
    if len(first) < run_entries:
        yield from first
        return
    try:
        with tempfile.TemporaryDirectory(prefix="s3ferry-sort-", dir=temp_dir) as work:
            folder = Path(work)
            runs = [_write_run(folder / "run-0.jsonl.gz", first)]
            del first
            while run := sorted(islice(source, run_entries), key=lambda e: order(e.key)):
                runs.append(_write_run(folder / f"run-{len(runs)}.jsonl.gz", run))
            passes = 0
            while len(runs) > fan_in:
                passes += 1
                runs = [
                    _merge_to_file(
                        folder / f"merge-{passes}-{i}.jsonl.gz", runs[i : i + fan_in], order
                    )
                    for i in range(0, len(runs), fan_in)
                ]
            yield from heapq.merge(*map(_read_run, runs), key=lambda e: order(e.key))
    except OSError as e:
        raise LocalIOError(e.filename or "temporary sort file", e.strerror or str(e)) from e


def _write_run(path: Path, run: Iterable[Entry]) -> Path:
    with gzip.open(path, "wt", encoding="utf-8", errors="surrogateescape", compresslevel=1) as f:
        for e in run:
            f.write(json.dumps(e, ensure_ascii=False))
            f.write("\n")
    return path


def _read_run(path: Path) -> Iterator[Entry]:
    with gzip.open(path, "rt", encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            yield Entry(*json.loads(line))


def _merge_to_file(path: Path, runs: list[Path], order: KeyOrder) -> Path:
    _write_run(path, heapq.merge(*map(_read_run, runs), key=lambda e: order(e.key)))
    for p in runs:
        p.unlink()
    return path

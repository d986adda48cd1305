"""Renderers: event sinks that draw progress and the final summary.

All human-readable output goes to stderr (stdout may carry object data for
``cp s3://b/k -``); ``--json`` writes one JSON object per line to its stream.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from dataclasses import asdict
from typing import TextIO

from s3ferry.events import (
    BytesTransferred,
    Event,
    ListingFinished,
    ObjectDone,
    ObjectFailed,
    ObjectQueued,
    ObjectSkipped,
)
from s3ferry.jobs.report import JobReport

REFRESH_S = 0.2


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


class TextRenderer:
    """Live progress on a terminal (bytes, objects, rate, ETA) and a one-screen summary."""

    def __init__(
        self,
        out: TextIO = sys.stderr,
        live: bool | None = None,
        verbose: bool = False,
        quiet: bool = False,
    ) -> None:
        self._out = out
        self._live = (out.isatty() if live is None else live) and not quiet
        self._verbose = verbose and not quiet
        self._quiet = quiet
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._queued = self._queued_bytes = self._done = self._failed = 0
        self._bytes = 0
        self._total_known = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __call__(self, event: Event) -> None:
        if isinstance(event, ObjectSkipped):  # nothing to count: a sync skips most files
            if self._verbose:
                self._line(f"skipped: {event.path or event.key}: {event.reason}")
            return
        with self._lock:
            self._count(event)
        if isinstance(event, ObjectFailed):
            where = event.path or event.key
            # The message names its subject; repeat the path only when it is another thing.
            text = event.message if event.message.startswith(where) else f"{where}: {event.message}"
            self._line(f"error: {text}")
        elif isinstance(event, ObjectDone) and self._verbose:
            self._line(f"done: {event.path} <-> {event.key} ({event.verified_by})")

    def _count(self, event: Event) -> None:
        if isinstance(event, ObjectQueued):
            self._queued += 1
            self._queued_bytes += event.size_bytes
        elif isinstance(event, BytesTransferred):
            self._bytes += event.size_bytes
        elif isinstance(event, ObjectDone):
            self._done += 1
            if not event.in_parts:
                self._bytes += event.size_bytes
        elif isinstance(event, ObjectFailed):
            self._failed += 1
        elif isinstance(event, ListingFinished):
            self._total_known = True

    def _line(self, text: str) -> None:
        with self._lock:
            self._out.write(("\r\x1b[K" if self._live else "") + text + "\n")
            self._out.flush()

    def start(self) -> None:
        if self._live:
            self._thread = threading.Thread(target=self._draw_loop, daemon=True)
            self._thread.start()

    def _draw_loop(self) -> None:
        while not self._stop.wait(REFRESH_S):
            with self._lock:
                self._out.write("\r\x1b[K" + self._status())
                self._out.flush()

    def _status(self) -> str:
        elapsed = max(time.monotonic() - self._started, 1e-6)
        rate = self._bytes / elapsed
        total = human_bytes(self._queued_bytes) + ("" if self._total_known else "+")
        eta = ""
        if self._total_known and rate > 0:
            eta = f"  ETA {max(self._queued_bytes - self._bytes, 0) / rate:.0f}s"
        return (
            f"{human_bytes(self._bytes)} / {total}  {self._done:,}/{self._queued:,} objects"
            f"  {human_bytes(rate)}/s{eta}"
        )

    def finish(self, report: JobReport) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._out.write("\r\x1b[K")
        if not self._quiet or not report.ok:
            self._out.write(summary(report) + "\n")
        self._out.flush()


def summary(report: JobReport) -> str:
    """The end-of-job summary: objects, bytes, time, throughput, failures by reason."""
    secs = max(report.seconds, 1e-6)
    lines = [
        f"{report.kind}: {report.source} -> {report.destination}",
        f"  done     {report.objects_done:,} objects, {human_bytes(report.bytes_done)} "
        f"in {report.seconds:.2f} s ({human_bytes(report.bytes_done / secs)}/s, "
        f"{report.objects_done / secs:,.0f} objects/s)",
        "  verified "
        + (", ".join(f"{n:,} by {m}" for m, n in sorted(report.verified_by.items())) or "-"),
    ]
    if report.kind == "copy" or report.server_side_objects or report.bytes_through_client:
        lines.append(
            f"  path     {report.server_side_objects:,} copied server-side, "
            f"{human_bytes(report.bytes_through_client)} through this machine"
        )
    if report.objects_resumed or report.parts_reused:
        lines.append(
            f"  resumed  {report.objects_resumed:,} objects done before the interruption, "
            f"{report.parts_reused:,} parts kept"
        )
    if report.objects_skipped:
        reasons = ", ".join(f"{n:,} {r}" for r, n in sorted(report.skipped_by_reason.items()))
        lines.append(f"  skipped  {report.objects_skipped:,} ({reasons})")
    if report.retries_by_kind:
        kinds = ", ".join(f"{n:,} {k}" for k, n in sorted(report.retries_by_kind.items()))
        retried = f"  retried  {sum(report.retries_by_kind.values()):,} requests ({kinds})"
        if report.lowest_pace is not None:
            retried += f"; throttled down to {report.lowest_pace:,} in flight"
        lines.append(retried)
    if report.objects_failed:
        reasons = ", ".join(f"{n:,} {r}" for r, n in sorted(report.failures_by_reason.items()))
        lines.append(f"  FAILED   {report.objects_failed:,} ({reasons})")
    return "\n".join(lines)


class JsonRenderer:
    """One JSON object per line: per-object results, then a summary."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        if isinstance(event, ObjectDone | ObjectFailed | ObjectSkipped):
            kind = {ObjectDone: "done", ObjectFailed: "failed", ObjectSkipped: "skipped"}
            self._emit({"type": kind[type(event)], **asdict(event)})

    def _emit(self, record: dict[str, object]) -> None:
        # ASCII escapes keep every line valid JSON, whatever bytes a file name holds.
        line = json.dumps(record)
        with self._lock:
            self._out.write(line + "\n")
            self._out.flush()

    def start(self) -> None:
        """Nothing to draw live."""

    def finish(self, report: JobReport) -> None:
        record = asdict(report)
        record["failures"] = [asdict(f) for f in report.failures]
        self._emit({"type": "summary", "ok": report.ok, **record})

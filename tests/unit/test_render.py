from __future__ import annotations

import io
import json
from dataclasses import replace

from s3ferry.cli.render import JsonRenderer, TextRenderer, human_bytes, summary
from s3ferry.events import BytesTransferred, ListingFinished, ObjectDone, ObjectFailed, ObjectQueued
from s3ferry.jobs.report import JobReport
from s3ferry.transfer.recorder import Failure


def _report(failed: int = 0) -> JobReport:
    failures = tuple(Failure("k", "/p", "IntegrityError", "bad") for _ in range(failed))
    return JobReport(
        kind="upload",
        source="src",
        destination="s3://b/p/",
        objects_done=3,
        bytes_done=3 * 1024 * 1024,
        objects_skipped=1,
        objects_failed=failed,
        seconds=2.0,
        verified_by={"crc32c": 3},
        failures_by_reason={"IntegrityError": failed} if failed else {},
        skipped_by_reason={"empty directory": 1},
        failures=failures,
    )


def test_human_bytes() -> None:
    assert human_bytes(0) == "0 B"
    assert human_bytes(1536) == "1.5 KiB"
    assert human_bytes(3 * 1024**4) == "3.0 TiB"


def test_summary_names_counts_rate_and_reasons() -> None:
    text = summary(_report(failed=2))
    assert "3 objects, 3.0 MiB in 2.00 s (1.5 MiB/s, 2 objects/s)" in text
    assert "3 by crc32c" in text
    assert "skipped  1 (1 empty directory)" in text
    assert "FAILED   2 (2 IntegrityError)" in text


def test_summary_shows_retries_by_kind_and_how_far_throttling_lowered_the_pace() -> None:
    report = replace(_report(), retries_by_kind={"throttled": 5, "transient": 2}, lowest_pace=4)
    text = summary(report)
    assert "retried  7 requests (5 throttled, 2 transient); throttled down to 4 in flight" in text
    assert "retried" not in summary(_report())
    out = io.StringIO()
    JsonRenderer(out).finish(report)
    record = json.loads(out.getvalue())
    assert record["retries_by_kind"] == {"throttled": 5, "transient": 2}
    assert record["lowest_pace"] == 4


def test_live_status_counts_bytes_once_and_shows_eta() -> None:
    out = io.StringIO()
    r = TextRenderer(out, live=True)
    r(ObjectQueued("a", 100))
    r(ObjectQueued("big", 1000))
    r(ListingFinished(2, 1100))
    r(ObjectDone("a", "/a", 100, "sha256", 0.1))
    r(BytesTransferred("big", 500))
    r(ObjectDone("big", "/big", 1000, "crc32c", 0.1, in_parts=True))
    status = r._status()
    assert status.startswith("600 B / 1.1 KiB  2/2 objects")
    assert "ETA" in status


def test_quiet_still_prints_failures_and_the_summary_of_a_failed_job() -> None:
    out = io.StringIO()
    r = TextRenderer(out, live=False, quiet=True)
    r(ObjectFailed("k", "/p", "IntegrityError", "k: bad"))
    r.finish(_report(failed=1))
    text = out.getvalue()
    assert "error: /p: k: bad" in text and "FAILED" in text
    quiet_ok = io.StringIO()
    r = TextRenderer(quiet_ok, live=False, quiet=True)
    r.finish(_report())
    assert quiet_ok.getvalue() == ""


def test_json_lines_are_ascii_and_end_with_a_summary() -> None:
    out = io.StringIO()
    r = JsonRenderer(out)
    r(ObjectDone("é/\udcff", "/x", 1, "md5", 0.5))
    r(ObjectQueued("ignored", 1))
    r.finish(_report())
    lines = out.getvalue().splitlines()
    assert all(line.isascii() for line in lines)
    records = [json.loads(line) for line in lines]
    assert [rec["type"] for rec in records] == ["done", "summary"]
    assert records[-1]["ok"] is True and records[-1]["objects_done"] == 3

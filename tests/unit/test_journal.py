"""The job journal: identity, what a reopened journal knows, batching, locking, removal."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from s3ferry.errors import UsageError
from s3ferry.transfer.journal import (
    COMMIT_EVERY_RECORDS,
    InFlightUpload,
    Journal,
    default_state_dir,
    job_id,
)

ENDS = ("upload", "/data", "s3://b/p/")


def _open(state: Path, **options: object) -> Journal:
    return Journal.open(state, *ENDS, options)


def test_job_id_is_stable_and_changes_with_what_changes_the_result() -> None:
    same = job_id(*ENDS, {"endpoint": None, "rule": "size"})
    assert same == job_id(*ENDS, {"rule": "size", "endpoint": None})
    assert same != job_id(*ENDS, {"endpoint": None, "rule": "checksum"})
    assert same != job_id("download", *ENDS[1:], {"endpoint": None, "rule": "size"})
    assert same.startswith("upload-")


def test_default_state_dir_follows_xdg_cache_home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", "/tmp/cache")
    assert default_state_dir() == Path("/tmp/cache/s3ferry/jobs")
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_state_dir() == Path.home() / ".cache" / "s3ferry" / "jobs"


def test_a_reopened_journal_knows_what_was_done_and_in_flight(tmp_path: Path) -> None:
    journal = _open(tmp_path)
    assert not journal.resumed
    journal.finished("a", 10, "111", "crc-a")
    journal.upload_started("big", 100, 222, "upload-1", 5)
    journal.download_started("obj", 50, "etag-1", "/out/.obj.tmp")
    journal.range_written("obj", 0, 25, 7)
    journal.close()

    again = _open(tmp_path)
    assert again.resumed
    assert again.is_done("a", 10, "111")
    assert not again.is_done("a", 10, "112")  # the file changed since
    assert not again.is_done("a", 11, "111")
    assert again.upload_in_flight("big", 100, 222) == InFlightUpload("upload-1", 5)
    assert again.upload_in_flight("big", 100, 223) is None
    assert again.stale_upload("big") == "upload-1"
    found = again.download_in_flight("obj")
    assert found is not None
    size, etag, partial = found
    assert (size, etag, partial.temp_path) == (50, "etag-1", "/out/.obj.tmp")
    assert partial.ranges == {(0, 25): 7}
    again.close()


def test_forgetting_a_key_drops_its_in_flight_rows(tmp_path: Path) -> None:
    journal = _open(tmp_path)
    journal.upload_started("big", 100, 222, "upload-1", 5)
    journal.download_started("obj", 50, "etag-1", "/out/.obj.tmp")
    journal.range_written("obj", 0, 25, 7)
    journal.forget("big")
    journal.forget("obj")
    journal.flush()
    assert journal.stale_upload("big") is None
    assert journal.download_in_flight("obj") is None
    journal.close()


def test_a_new_download_of_a_key_starts_without_the_old_ranges(tmp_path: Path) -> None:
    journal = _open(tmp_path)
    journal.download_started("obj", 50, "etag-1", "/out/.obj.1")
    journal.range_written("obj", 0, 25, 7)
    journal.download_started("obj", 60, "etag-2", "/out/.obj.2")
    journal.flush()
    found = journal.download_in_flight("obj")
    assert found is not None and found[2].ranges == {}
    journal.close()


def test_the_writer_commits_without_being_asked(tmp_path: Path) -> None:
    journal = _open(tmp_path)
    for i in range(COMMIT_EVERY_RECORDS + 1):
        journal.finished(f"k{i:05d}", i, "1", "c")
    with sqlite3.connect(journal.path) as db:
        while db.execute("SELECT count(*) FROM done").fetchone()[0] <= COMMIT_EVERY_RECORDS:
            time.sleep(0.01)
    journal.close()


def test_a_second_process_on_the_same_job_is_refused(tmp_path: Path) -> None:
    journal = _open(tmp_path)
    with pytest.raises(UsageError, match="another s3ferry is running this job"):
        _open(tmp_path)
    journal.close()
    _open(tmp_path).close()


def test_closing_complete_removes_the_journal_and_incomplete_keeps_it(tmp_path: Path) -> None:
    journal = _open(tmp_path)
    journal.finished("a", 1, "1", "c")
    journal.close(complete=False)
    assert list(tmp_path.glob("*.sqlite")) == [journal.path]
    _open(tmp_path).close(complete=True)
    assert list(tmp_path.iterdir()) == []

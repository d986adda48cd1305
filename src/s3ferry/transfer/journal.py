"""The job journal: what a job finished and what it left half-done, so that running the
same job again after ``kill -9`` or Ctrl-C redoes nothing that was verified.

One SQLite file per job in a state directory, named by the job's identity (a
hash of the command, both ends and the options that change the result, see
:func:`job_id`). Tables (schema version 1)::

    done      (key PK, size_bytes, version, checksum)    verified objects; version is the
                                                         source file's mtime_ns (uploads) or
                                                         the object's ETag (downloads)
    uploads   (key PK, size_bytes, mtime_ns, upload_id,  multipart uploads in flight
               part_size_bytes)
    downloads (key PK, size_bytes, etag, temp_path)      large downloads in flight
    ranges    (key, start, end_exclusive, crc32c,        ranges of those written to the
               PK (key, start))                          temporary file

Rows are looked up one key at a time, never loaded whole. Writes are queued
for one writer thread that commits every :data:`COMMIT_EVERY_RECORDS` records
or :data:`COMMIT_EVERY_S` seconds; what a crash loses of the last batch is only
redone, never wrongly skipped. A row that names a resource to clean up (an
upload id, a temporary file) is committed before the call returns.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import sqlite3
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from s3ferry.config import cache_dir
from s3ferry.errors import LocalIOError, UsageError

SCHEMA_VERSION = 1
# 1,000 rows a transaction keeps the writer at a few µs a row; 0.5 s bounds
# what a crash makes the next run redo.
COMMIT_EVERY_RECORDS = 1000
COMMIT_EVERY_S = 0.5

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS done (
    key TEXT PRIMARY KEY, size_bytes INTEGER NOT NULL, version TEXT NOT NULL,
    checksum TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS uploads (
    key TEXT PRIMARY KEY, size_bytes INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    upload_id TEXT NOT NULL, part_size_bytes INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS downloads (
    key TEXT PRIMARY KEY, size_bytes INTEGER NOT NULL, etag TEXT NOT NULL,
    temp_path TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ranges (
    key TEXT NOT NULL, start INTEGER NOT NULL, end_exclusive INTEGER NOT NULL,
    crc32c INTEGER NOT NULL, PRIMARY KEY (key, start)) WITHOUT ROWID;
"""


def default_state_dir() -> Path:
    """``$XDG_CACHE_HOME/s3ferry/jobs``, else ``~/.cache/s3ferry/jobs``."""
    return cache_dir() / "jobs"


def job_id(kind: str, source: str, destination: str, options: Mapping[str, object]) -> str:
    """The identity of a job: equal for the same command run again, whatever the tuning.

    ``options`` holds what changes the result (an endpoint, a rule, filters);
    worker counts and part sizes do not belong there, so a rerun may change them.
    """
    text = json.dumps([kind, source, destination, dict(options)], sort_keys=True, default=str)
    return f"{kind}-{hashlib.sha256(text.encode()).hexdigest()[:24]}"


@dataclass(frozen=True, slots=True)
class InFlightUpload:
    upload_id: str
    part_size_bytes: int


@dataclass(frozen=True, slots=True)
class PartialDownload:
    temp_path: str
    # (start, end_exclusive) -> CRC32C of the bytes written there
    ranges: dict[tuple[int, int], int]


class Journal:
    """The journal of one job. Thread-safe; :meth:`close` it when the job ends.

    Raises (from :meth:`open`):
        UsageError: another s3ferry process is running the same job.
        LocalIOError: the state directory cannot be written.
    """

    def __init__(self, path: Path, lock: IO[bytes], resumed: bool) -> None:
        self.path = path
        # An earlier run left verified objects. A key comes once per run, so
        # when none did, no lookup can find one: the small-file lane skips them.
        self.resumed = resumed
        self._lock_file = lock
        self._wake = threading.Condition()
        self._pending: list[tuple[str, tuple[object, ...]]] = []
        self._flushes: list[threading.Event] = []
        self._closing = False
        self._readers = threading.local()
        self._reader_list: list[sqlite3.Connection] = []
        self._reader_lock = threading.Lock()
        self._error: sqlite3.Error | None = None
        self._writer = threading.Thread(target=self._write_loop, name="s3ferry-journal")
        self._writer.start()

    @classmethod
    def open(
        cls,
        state_dir: Path,
        kind: str,
        source: str,
        destination: str,
        options: Mapping[str, object],
    ) -> Journal:
        """The journal of this job in ``state_dir``, created if new, resumed if it exists."""
        path = state_dir / f"{job_id(kind, source, destination, options)}.sqlite"
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
            lock = open(path.with_suffix(".lock"), "wb")  # noqa: SIM115 - held until close()
        except OSError as e:
            raise LocalIOError(str(state_dir), f"cannot write job state: {e.strerror}") from e
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise UsageError(str(path), "another s3ferry is running this job") from None
        with contextlib.closing(_connect(path)) as db, db:
            db.executescript(_SCHEMA)
            db.executemany(
                "INSERT OR IGNORE INTO meta VALUES (?, ?)",
                [
                    ("schema", str(SCHEMA_VERSION)),
                    ("kind", kind),
                    ("source", source),
                    ("destination", destination),
                ],
            )
            resumed = bool(db.execute("SELECT EXISTS (SELECT 1 FROM done)").fetchone()[0])
        return cls(path, lock, resumed)

    # Reads: one connection per thread, committed rows only.

    def _reader(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._readers, "db", None)
        if db is None:
            db = _connect(self.path)
            self._readers.db = db
            with self._reader_lock:
                self._reader_list.append(db)
        return db

    def is_done(self, key: str, size_bytes: int, version: str) -> bool:
        """Whether an earlier run verified ``key`` with this size and version (mtime_ns or ETag)."""
        if not self.resumed:
            return False
        row = (
            self._reader()
            .execute(
                "SELECT 1 FROM done WHERE key = ? AND size_bytes = ? AND version = ?",
                (key, size_bytes, version),
            )
            .fetchone()
        )
        return row is not None

    def upload_in_flight(self, key: str, size_bytes: int, mtime_ns: int) -> InFlightUpload | None:
        """The multipart upload an earlier run started for this file, if the file is unchanged."""
        row = (
            self._reader()
            .execute(
                "SELECT upload_id, part_size_bytes FROM uploads"
                " WHERE key = ? AND size_bytes = ? AND mtime_ns = ?",
                (key, size_bytes, mtime_ns),
            )
            .fetchone()
        )
        return InFlightUpload(row[0], row[1]) if row else None

    def stale_upload(self, key: str) -> str | None:
        """The upload id recorded for ``key`` whatever the file's state (to abort it)."""
        row = (
            self._reader().execute("SELECT upload_id FROM uploads WHERE key = ?", (key,)).fetchone()
        )
        return str(row[0]) if row else None

    def download_in_flight(self, key: str) -> tuple[int, str, PartialDownload] | None:
        """``(size_bytes, etag, partial)`` of the download an earlier run left, if any."""
        db = self._reader()
        row = db.execute(
            "SELECT size_bytes, etag, temp_path FROM downloads WHERE key = ?", (key,)
        ).fetchone()
        if row is None:
            return None
        ranges = {
            (start, end): crc
            for start, end, crc in db.execute(
                "SELECT start, end_exclusive, crc32c FROM ranges WHERE key = ?", (key,)
            )
        }
        return row[0], row[1], PartialDownload(row[2], ranges)

    # Writes, through the writer thread.

    def upload_started(
        self, key: str, size_bytes: int, mtime_ns: int, upload_id: str, part_size_bytes: int
    ) -> None:
        """Record a new multipart upload; committed before returning."""
        self._write(
            "INSERT OR REPLACE INTO uploads VALUES (?, ?, ?, ?, ?)",
            key,
            size_bytes,
            mtime_ns,
            upload_id,
            part_size_bytes,
        )
        self.flush()

    def download_started(self, key: str, size_bytes: int, etag: str, temp_path: str) -> None:
        """Record the temporary file of a large download; committed before returning."""
        self._write("DELETE FROM ranges WHERE key = ?", key)
        self._write(
            "INSERT OR REPLACE INTO downloads VALUES (?, ?, ?, ?)",
            key,
            size_bytes,
            etag,
            temp_path,
        )
        self.flush()

    def range_written(self, key: str, start: int, end_exclusive: int, crc32c: int) -> None:
        self._write(
            "INSERT OR REPLACE INTO ranges VALUES (?, ?, ?, ?)", key, start, end_exclusive, crc32c
        )

    def finished(self, key: str, size_bytes: int, version: str, checksum: str) -> None:
        """``key`` is verified done. Rows of it in flight, if any, are the caller's to
        :meth:`forget` (a small file has none, and :meth:`is_done` is asked first)."""
        self._write(
            "INSERT OR REPLACE INTO done VALUES (?, ?, ?, ?)", key, size_bytes, version, checksum
        )

    def forget(self, key: str) -> None:
        """Drop what is recorded in flight for ``key`` (it failed, or starts over)."""
        self._write("DELETE FROM uploads WHERE key = ?", key)
        self._write("DELETE FROM downloads WHERE key = ?", key)
        self._write("DELETE FROM ranges WHERE key = ?", key)

    def _write(self, sql: str, *params: object) -> None:
        with self._wake:
            self._pending.append((sql, params))
            if len(self._pending) >= COMMIT_EVERY_RECORDS:
                self._wake.notify()

    def flush(self) -> None:
        """Wait until every write so far is committed.

        Raises:
            LocalIOError: the journal could not be written (e.g. the disk is full).
        """
        flushed = threading.Event()
        with self._wake:
            self._flushes.append(flushed)
            self._wake.notify()
        flushed.wait()
        if self._error is not None:
            raise LocalIOError(str(self.path), f"cannot write job state: {self._error}")

    def _write_loop(self) -> None:
        """Every ``COMMIT_EVERY_S``, or when a batch is full or someone waits: one transaction.

        Writers only append to a list, so the transfer threads never wait for
        SQLite and this thread wakes once a batch, not once a record.
        """
        db = _connect(self.path)
        try:
            while True:
                with self._wake:
                    full = len(self._pending) >= COMMIT_EVERY_RECORDS
                    if not (full or self._flushes or self._closing):
                        self._wake.wait(COMMIT_EVERY_S)
                    batch, self._pending = self._pending, []
                    flushes, self._flushes = self._flushes, []
                    closing = self._closing
                for sql, params in batch:
                    self._execute(db, sql, params)
                self._commit(db)
                for flushed in flushes:
                    flushed.set()
                if closing:
                    return
        finally:
            db.close()

    def _execute(self, db: sqlite3.Connection, sql: str, params: tuple[object, ...]) -> None:
        try:
            db.execute(sql, params)
        except sqlite3.Error as e:
            self._error = self._error or e

    def _commit(self, db: sqlite3.Connection) -> None:
        try:
            db.commit()
        except sqlite3.Error as e:
            self._error = self._error or e

    def close(self, complete: bool = False) -> None:
        """Commit and close; with ``complete`` (the job finished, none failed) delete the file.

        A write that fails here is not raised: it costs the next run only the
        work it redoes (only :meth:`flush` callers depend on their rows).
        """
        with self._wake:
            self._closing = True
            self._wake.notify()
        self._writer.join()
        with self._reader_lock:
            for db in self._reader_list:
                db.close()
        if complete:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
            self.path.with_suffix(".lock").unlink(missing_ok=True)
        self._lock_file.close()


def _connect(path: Path) -> sqlite3.Connection:
    # WAL: readers do not wait for the writer; NORMAL sync: a killed process loses
    # nothing committed (only a power cut could lose the last commits).
    db = sqlite3.connect(path, check_same_thread=False, isolation_level="DEFERRED")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA busy_timeout=10000")
    return db

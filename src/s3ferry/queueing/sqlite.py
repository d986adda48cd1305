"""The embedded task queue: one SQLite file shared by many worker processes on one machine.

URLs: ``sqlite:///abs/path/queue.db`` or ``sqlite://relative/queue.db`` (from
the working directory).

Every task is one row with a state, a ``visible_at`` time (wall clock,
seconds; shared by all processes), an attempt count and the receipt of its
latest delivery. The file is in WAL mode (readers never wait for the writer)
and every change is one ``BEGIN IMMEDIATE`` transaction, so two processes
never claim the same row; a process that finds the file locked waits up to
:data:`BUSY_TIMEOUT_S` before :class:`~s3ferry.errors.TransientError`.

Claiming (``receive``) takes the rows visible longest (index on
``(state, visible_at)``: O(log n) in millions of rows) and gives each
``visible_at = now + visibility_timeout``, ``attempts + 1`` and a new random
receipt. A delivery that uses the last of ``max_attempts`` marks the row
*last*; a last row whose visibility passes counts as dead at once and is moved
to the dead letters by the next ``receive`` (or ``dead_letters``).

Stale receipts (the message was released, acked or delivered again since):
``ack`` and ``release`` do nothing, as the message is in other hands now
(SQS documents the same for DeleteMessage with an old handle); ``extend``
raises :class:`~s3ferry.errors.NotFoundError`, so a heartbeat learns that its
task may now run twice.

Nothing is held in memory per task: ``send`` writes in transactions of
:data:`SEND_ROWS` rows, ``dead_letters`` reads pages, ``stats`` counts in SQL.
Acked rows stay in the file (state *done*) so that ``stats`` can count them.
"""

from __future__ import annotations

import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from enum import IntEnum
from pathlib import Path
from urllib.request import pathname2url

from s3ferry.errors import LocalIOError, NotFoundError, TransientError, UsageError
from s3ferry.queueing.base import Message, QueueStats

SCHEMA_VERSION = 1  # PRAGMA user_version of a queue file this code reads and writes
# A writer holds the lock for one short transaction; waiting this long means something is wrong.
BUSY_TIMEOUT_S = 30.0
# Rows per send transaction: big enough to amortise the commit, small enough
# that receivers are not kept waiting behind a large plan.
SEND_ROWS = 1000
DEAD_PAGE_ROWS = 100
# An idle receiver looks again this often; a look is one indexed query.
POLL_INTERVAL_S = 0.1

_SCHEMA = """
CREATE TABLE messages (
    id INTEGER PRIMARY KEY,
    body TEXT NOT NULL,
    state INTEGER NOT NULL,
    visible_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    receipt TEXT
);
CREATE INDEX messages_by_state ON messages (state, visible_at);
"""


class _State(IntEnum):
    QUEUED = 0  # waiting, or in flight while visible_at is in the future
    DONE = 1
    DEAD = 2
    LAST = 3  # in flight on its last attempt; dead once visible_at passes


_HELD = f"state IN ({_State.QUEUED:d}, {_State.LAST:d})"


def sqlite_path(url: str) -> Path:
    """The database file of a ``sqlite://`` URL, made absolute.

    Raises:
        UsageError: the URL names no file.
    """
    rest = url.removeprefix("sqlite://")
    if not rest.strip("/") or rest.endswith("/"):
        raise UsageError(url, "no database file; use sqlite:///abs/path/queue.db")
    if rest.startswith("/"):
        rest = "/" + rest.lstrip("/")  # POSIX keeps a leading "//" apart; SQLite would not
    return Path(rest).absolute()


class SqliteQueue:
    """A :class:`~s3ferry.queueing.base.TaskQueue` in one SQLite file (see the module docstring).

    One object per process; its methods may be called from several threads
    (a worker and its heartbeat). ``clock`` (wall-clock seconds, shared by
    processes) and ``sleep`` are injectable for tests.

    Raises:
        UsageError: bad URL, or the file is not a queue of this version.
        NotFoundError: the file does not exist and ``create`` is False.
        LocalIOError: the file cannot be opened or written.
    """

    def __init__(
        self,
        url: str,
        *,
        visibility_timeout: float = 300,
        max_attempts: int = 5,
        create: bool = False,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = url
        self._visibility_s = visibility_timeout
        self._max_attempts = max_attempts
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        path = sqlite_path(url)
        if not create and not path.exists():
            raise NotFoundError(url, "no such queue database (create it first)")
        with self._translated():
            self._db = sqlite3.connect(
                f"file:{pathname2url(str(path))}?mode={'rwc' if create else 'rw'}",
                uri=True,
                timeout=BUSY_TIMEOUT_S,
                isolation_level=None,
                check_same_thread=False,
            )
        try:
            self._prepare(create)
        except BaseException:
            self._db.close()
            raise

    def _prepare(self, create: bool) -> None:
        with self._translated():
            # WAL is a property of the file: set once, by whoever creates it.
            if create:
                self._db.execute("PRAGMA journal_mode=WAL")
            # Safe against a killed process; an OS crash may undo the last
            # commits, which at-least-once delivery and idempotent tasks absorb.
            self._db.execute("PRAGMA synchronous=NORMAL")
        with self._write() as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            tables = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            if version == 0 and tables:
                raise UsageError(self.url, "holds another application's tables; not a queue")
            if version == 0 and create:
                for statement in _SCHEMA.split(";"):
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION:d}")
            elif version != SCHEMA_VERSION:
                raise UsageError(self.url, f"not an s3ferry queue (schema version {version})")

    def send(self, bodies: Sequence[str]) -> None:
        """Enqueue ``bodies``, :data:`SEND_ROWS` to a transaction."""
        for start in range(0, len(bodies), SEND_ROWS):
            now = self._clock()
            rows = ((body, _State.QUEUED, now) for body in bodies[start : start + SEND_ROWS])
            with self._write() as db:
                db.executemany(
                    "INSERT INTO messages (body, state, visible_at) VALUES (?, ?, ?)", rows
                )

    def receive(self, max_messages: int = 1, wait_seconds: float = 0) -> list[Message]:
        """Claim up to ``max_messages``; while there are none, look again every
        :data:`POLL_INTERVAL_S` until ``wait_seconds`` have passed.
        """
        deadline = self._clock() + wait_seconds
        while True:
            messages = self._claim(max_messages)
            remaining = deadline - self._clock()
            if messages or remaining <= 0:
                return messages
            self._sleep(min(POLL_INTERVAL_S, remaining))

    def _claim(self, limit: int) -> list[Message]:
        with self._write() as db:
            now = self._clock()
            _bury_spent(db, now)
            rows = db.execute(
                "SELECT id, body, attempts FROM messages WHERE state = ? AND visible_at <= ?"
                " ORDER BY state, visible_at LIMIT ?",
                (_State.QUEUED, now, limit),
            ).fetchall()
            messages = []
            for row_id, body, attempts in rows:
                message = Message(body, f"{row_id}.{secrets.token_hex(8)}", attempts + 1)
                last = message.attempts >= self._max_attempts
                db.execute(
                    "UPDATE messages SET state = ?, visible_at = ?, attempts = ?, receipt = ?"
                    " WHERE id = ?",
                    (
                        _State.LAST if last else _State.QUEUED,
                        now + self._visibility_s,
                        message.attempts,
                        message.receipt,
                        row_id,
                    ),
                )
                messages.append(message)
        return messages

    def extend(self, message: Message, seconds: float) -> None:
        """Keep ``message`` invisible for ``seconds`` from now.

        Raises:
            NotFoundError: the receipt is stale (see the module docstring).
        """
        with self._write() as db:
            changed = db.execute(
                f"UPDATE messages SET visible_at = ? WHERE id = ? AND receipt = ? AND {_HELD}",
                (self._clock() + seconds, _row_id(message), message.receipt),
            ).rowcount
        if not changed:
            raise NotFoundError(
                self.url,
                f"message {_row_id(message)} is no longer held by this receipt"
                " (acked, released or delivered again)",
            )

    def ack(self, message: Message) -> None:
        """Mark the task done; a stale receipt changes nothing."""
        with self._write() as db:
            db.execute(
                f"UPDATE messages SET state = ?, receipt = NULL WHERE id = ? AND receipt = ?"
                f" AND {_HELD}",
                (_State.DONE, _row_id(message), message.receipt),
            )

    def release(self, message: Message) -> None:
        """Make ``message`` visible now (the attempt counts); a stale receipt changes nothing."""
        with self._write() as db:
            db.execute(
                f"UPDATE messages SET visible_at = ?, receipt = NULL WHERE id = ? AND receipt = ?"
                f" AND {_HELD}",
                (self._clock(), _row_id(message), message.receipt),
            )

    def stats(self) -> QueueStats:
        """Exact counts, from one scan of the state index (one consistent snapshot)."""
        with self._lock, self._translated():
            row = self._db.execute(
                "SELECT"
                " total(state = :queued AND visible_at <= :now),"
                " total(state IN (:queued, :last) AND visible_at > :now),"
                " total(state = :done),"
                " total(state = :dead OR (state = :last AND visible_at <= :now))"
                " FROM messages",
                {"now": self._clock(), **{s.name.lower(): s.value for s in _State}},
            ).fetchone()
        queued, in_flight, done, dead = (int(n) for n in row)
        return QueueStats(queued=queued, in_flight=in_flight, done=done, dead=dead)

    def dead_letters(self) -> Iterator[str]:
        """Bodies of dead tasks in the order they died, read :data:`DEAD_PAGE_ROWS` at a time."""
        with self._write() as db:
            _bury_spent(db, self._clock())
        after = (-1.0, 0)  # before any time the clock gives (seconds since the epoch)
        while True:
            with self._lock, self._translated():
                rows = self._db.execute(
                    "SELECT visible_at, id, body FROM messages"
                    " WHERE state = ? AND (visible_at, id) > (?, ?)"
                    " ORDER BY state, visible_at, id LIMIT ?",
                    (_State.DEAD, *after, DEAD_PAGE_ROWS),
                ).fetchall()
            for died_at, row_id, body in rows:
                after = (died_at, row_id)
                yield body
            if len(rows) < DEAD_PAGE_ROWS:
                return

    def done_bodies(self) -> Iterator[str]:
        """Bodies of done tasks in the order they were sent, :data:`DEAD_PAGE_ROWS` at a time."""
        after = 0
        while True:
            with self._lock, self._translated():
                rows = self._db.execute(
                    # Walks the rowids from where the last page ended (the state
                    # index would sort every done row again for each page).
                    "SELECT id, body FROM messages NOT INDEXED"
                    " WHERE id > ? AND state = ? ORDER BY id LIMIT ?",
                    (after, _State.DONE, DEAD_PAGE_ROWS),
                ).fetchall()
            for row_id, body in rows:
                after = row_id
                yield body
            if len(rows) < DEAD_PAGE_ROWS:
                return

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction, committed unless the block raises."""
        with self._lock, self._translated():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            finally:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")

    @contextmanager
    def _translated(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.DatabaseError as e:
            raise _translate(e, self.url) from e


def _bury_spent(db: sqlite3.Connection, now: float) -> None:
    """Move messages whose last attempt timed out (or was released) to the dead letters."""
    db.execute(
        "UPDATE messages SET state = ?, visible_at = ?, receipt = NULL"
        " WHERE state = ? AND visible_at <= ?",
        (_State.DEAD, now, _State.LAST, now),
    )


def _row_id(message: Message) -> int:
    row_id, _, _ = message.receipt.partition(".")
    if not row_id.isdigit():
        raise UsageError(message.receipt, "not a receipt of an SQLite queue")
    return int(row_id)


def _translate(e: sqlite3.DatabaseError, url: str) -> Exception:
    name = getattr(e, "sqlite_errorname", "")
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return TransientError(url, f"queue database busy for over {BUSY_TIMEOUT_S:g} s")
    if name == "SQLITE_NOTADB":
        return UsageError(url, "not an SQLite database")
    return LocalIOError(url, " ".join(str(e).split()))

"""Where the files of small downloads are created: on the event loop, or ahead on a thread.

A create costs ~20-50 µs on a local disk, less than handing it to a thread and
back: 10,000 x 4 KiB downloaded with every file made ahead took 3.7 s of user
CPU against 3.0 s (5 alternating runs), ~60 µs more a file. So files are created
on the event loop, just before their bytes are written. Some file systems make
creates far dearer: ext4 without a journal scans past every inode freed in the
last minutes (~0.8 ms a create, median, in a tree deleted just before), network
and parallel file systems pay a round trip.
A loop that waits on each create starves the network meanwhile, so a
:class:`Creator` times the creates as the job goes, and while they are slow (on
average above :data:`SLOW_CREATE_S`) each file is made ahead, on threads of their
own, while its object's GET is in flight (figures at :data:`CREATE_THREADS`).

A file made ahead is unnamed (``O_TMPFILE``) and linked into place once its bytes
are verified, so nothing is left behind if the process dies, and the threads never
hold a directory's lock for a whole create, as a named create would: the loop's
renames into that directory would wait on it. Where the file system has no
``O_TMPFILE``, or ``/proc`` is not mounted (the link goes through
``/proc/self/fd``), files are always created on the loop.
"""

from __future__ import annotations

import errno
import os
import time
from concurrent.futures import Future, ThreadPoolExecutor

# Creates slower than this on average are made ahead, on the creator's threads; faster
# than FAST_CREATE_S, on the loop again. Handing a create to a thread costs the loop
# ~60 µs (above); the gap between the two keeps the lane from switching at every file.
SLOW_CREATE_S = 200e-6
FAST_CREATE_S = 100e-6
# Files made ahead at once: unnamed creates take no directory lock, so two overlap.
# Mixed 1 GiB download with creates at ~0.8 ms, 6 alternating runs: 3.24 s with two
# threads, 3.40 s with one, 3.52 s on the loop (s5cmd 3.53 s).
CREATE_THREADS = 2
# Weight of the latest create in the running average.
_WEIGHT = 1 / 8
# What says the file system (or /proc) cannot make or link unnamed files.
_UNSUPPORTED = frozenset({errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.EXDEV, errno.EPERM})


class Creator:
    """Creates the files of one job's small downloads (see the module docstring).

    Its methods may be called from any thread; :meth:`close` when the job ends.
    """

    def __init__(self) -> None:
        self._average_s = 0.0
        self._ahead = False
        self._threads: ThreadPoolExecutor | None = None
        self._links = _open_fd_directory()
        self._usable = self._links is not None

    def ahead(self, path: str) -> Future[int | None] | None:
        """While creates are slow: an unnamed file in ``path``'s directory, being made on a
        creator's thread (the future's ``None``: make a named one after all, :meth:`create`).
        Otherwise ``None``: create the file when it is written.

        The caller has the file descriptor closed (:func:`close_made`) whatever happens.
        """
        if not self._ahead:
            return None
        if self._threads is None:
            self._threads = ThreadPoolExecutor(CREATE_THREADS, thread_name_prefix="s3ferry-create")
        return self._threads.submit(self._unnamed, os.path.dirname(path))

    def create(self, path: str) -> int:
        """Create (or truncate) ``path`` and open it for writing, here and now."""
        started = time.perf_counter()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
        self._observe(time.perf_counter() - started)
        return fd

    def link(self, fd: int, path: str) -> bool:
        """Give the unnamed file ``fd`` the name ``path``: False if the file system cannot
        (then never again in this job), and the caller writes a named file instead.

        Raises:
            FileExistsError: ``path`` exists (the caller links to a temporary name and
                renames that over it).
            OSError: the link failed otherwise.
        """
        assert self._links is not None
        try:
            os.link(str(fd), path, src_dir_fd=self._links, follow_symlinks=True)
        except FileExistsError:
            raise
        except OSError as e:
            if e.errno in _UNSUPPORTED:
                self._unsupported()
                return False
            raise OSError(e.errno, e.strerror, path) from None
        return True

    def close(self) -> None:
        """Wait for the files being made ahead; let go of ``/proc/self/fd``."""
        if self._threads is not None:
            self._threads.shutdown(wait=True)
        if self._links is not None:
            os.close(self._links)
            self._links = None

    def _unnamed(self, directory: str) -> int | None:
        started = time.perf_counter()
        try:
            fd = os.open(directory or ".", os.O_TMPFILE | os.O_WRONLY | os.O_CLOEXEC, 0o666)
        except OSError as e:
            if e.errno in _UNSUPPORTED:
                self._unsupported()
            return None  # a named create reports any other error, as it would have anyway
        self._observe(time.perf_counter() - started)
        return fd

    def _observe(self, seconds: float) -> None:
        """Fold one create's duration into the average; switch where files are made."""
        self._average_s += (seconds - self._average_s) * _WEIGHT
        if self._ahead and self._average_s < FAST_CREATE_S:
            self._ahead = False
        elif not self._ahead and self._average_s > SLOW_CREATE_S and self._usable:
            self._ahead = True

    def _unsupported(self) -> None:
        self._usable = False
        self._ahead = False


def close_made(made: Future[int | None]) -> None:
    """Close the file ``made`` made ahead, if it made one: a done callback
    (``made.add_done_callback(close_made)``, which calls it at once if ``made`` is done)."""
    if not made.cancelled() and made.exception() is None and (fd := made.result()) is not None:
        os.close(fd)


def _open_fd_directory() -> int | None:
    """``/proc/self/fd`` open as a directory (links of unnamed files go through it), or
    ``None`` where there is none (no ``O_TMPFILE`` either: not Linux)."""
    if not hasattr(os, "O_TMPFILE"):
        return None
    try:
        return os.open("/proc/self/fd", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return None

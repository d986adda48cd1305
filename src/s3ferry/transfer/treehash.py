"""The SHA-256 tree hash, as Amazon Glacier defines it.

The bytes are cut into 1 MiB leaves (the last may be shorter), each hashed
with SHA-256; adjacent digests are then hashed in pairs, level by level, an
odd one out moving up a level unchanged, until one digest is left. No bytes
at all hash to ``sha256(b"")``.

s3ferry records it at upload (``s3ferry-sha256-tree``: object metadata for a
single PUT, an object tag for a multipart upload, whose metadata is fixed
before the bytes are read) so that ``sync --checksum``, ``compare`` and
``restore`` can check content whatever the ETag is.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections import deque
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

LEAF_BYTES = 1024 * 1024
# Read size when hashing a file: large reads keep per-call overhead negligible.
FILE_CHUNK_BYTES = 8 * 1024 * 1024
# Threads hashing one file: past a few, memory (a chunk each) buys little more.
MAX_HASH_THREADS = 4


class TreeHash:
    """An incremental tree hash: ``update`` with chunks of any size, then ``hexdigest``.

    Memory is O(log n) digests: two subtrees of the same height are joined as
    soon as both exist. Whole leaves are hashed as 1 MiB slices of the chunk
    given (hashlib releases the GIL for those), never copied.
    """

    def __init__(self) -> None:
        self._leaf = hashlib.sha256()
        self._leaf_bytes = 0
        # (height, digest) of complete subtrees, heights strictly decreasing.
        self._stack: list[tuple[int, bytes]] = []

    def update(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data).cast("B")
        pos = 0
        if self._leaf_bytes:
            pos = min(LEAF_BYTES - self._leaf_bytes, len(view))
            self._leaf.update(view[:pos])
            self._leaf_bytes += pos
            if self._leaf_bytes < LEAF_BYTES:
                return
            self._push(self._leaf.digest())
            self._leaf_bytes = 0
        while len(view) - pos >= LEAF_BYTES:
            self._push(hashlib.sha256(view[pos : pos + LEAF_BYTES]).digest())
            pos += LEAF_BYTES
        if pos < len(view):
            self._leaf = hashlib.sha256(view[pos:])
            self._leaf_bytes = len(view) - pos

    def add_leaves(self, digests: Iterable[bytes]) -> None:
        """Add the SHA-256 digests of the next leaves, hashed elsewhere (in parallel).

        Every leaf but the very last must be whole, and so must all bytes given
        to :meth:`update` before.
        """
        if self._leaf_bytes:
            raise ValueError("a partial leaf is pending")
        for digest in digests:
            self._push(digest)

    def _push(self, digest: bytes) -> None:
        height = 0
        while self._stack and self._stack[-1][0] == height:
            digest = hashlib.sha256(self._stack.pop()[1] + digest).digest()
            height += 1
        self._stack.append((height, digest))

    def hexdigest(self) -> str:
        """The tree hash of everything given so far, in lower-case hex (more may follow)."""
        nodes = [d for _, d in self._stack]
        if self._leaf_bytes:
            nodes.append(self._leaf.digest())
        if not nodes:
            return hashlib.sha256(b"").hexdigest()
        # The subtrees left are the right edge of the tree: an odd one moved up
        # unchanged until it met its left neighbour.
        top = nodes.pop()
        while nodes:
            top = hashlib.sha256(nodes.pop() + top).digest()
        return top.hex()


def tree_hash(data: bytes | bytearray | memoryview) -> str:
    """The tree hash of ``data`` (hex)."""
    if len(data) <= LEAF_BYTES:
        return hashlib.sha256(data).hexdigest()  # one leaf (or none) is its own root
    hasher = TreeHash()
    hasher.update(data)
    return hasher.hexdigest()


def file_tree_hash(
    path: str | os.PathLike[str],
    chunk_bytes: int = FILE_CHUNK_BYTES,
    threads: int | None = None,
) -> str:
    """The tree hash of a file's bytes (hex), read to its end in ``chunk_bytes`` reads.

    With more than one thread (default: one per CPU, at most
    :data:`MAX_HASH_THREADS`), consecutive chunks are read and their leaves
    hashed on ``threads`` threads, then joined in order: hashing is CPU-bound
    and one core is slower than a read from the page cache. ``threads`` chunks
    are in memory, and they are adjacent, so the disk still sees one nearly
    sequential read.

    Raises:
        OSError: the file cannot be read.
    """
    threads = threads or min(os.cpu_count() or 1, MAX_HASH_THREADS)
    with open(path, "rb", buffering=0) as f:
        if threads == 1 or os.fstat(f.fileno()).st_size <= chunk_bytes:
            return _hashed_in_turn(f, chunk_bytes)
        return _hashed_in_parallel(
            f.fileno(), max(LEAF_BYTES, chunk_bytes // LEAF_BYTES * LEAF_BYTES), threads
        )


def _hashed_in_turn(f: io.FileIO, chunk_bytes: int) -> str:
    hasher = TreeHash()
    buf = bytearray(chunk_bytes)
    view = memoryview(buf)
    while n := f.readinto(buf):
        hasher.update(view[:n])
    return hasher.hexdigest()


def _hashed_in_parallel(fd: int, chunk_bytes: int, threads: int) -> str:
    """Chunks (whole leaves) at offsets 0, chunk, 2 x chunk... until one comes back short."""
    buffers = [bytearray(chunk_bytes) for _ in range(threads)]

    def leaves(number: int) -> tuple[list[bytes], int]:
        # Chunk ``number`` reuses the buffer of chunk ``number - threads``, which was
        # joined before this one was submitted.
        view = memoryview(buffers[number % threads])
        offset, n = number * chunk_bytes, 0
        while n < chunk_bytes and (got := os.preadv(fd, [view[n:]], offset + n)):
            n += got  # short only at the end of the file
        return [
            hashlib.sha256(view[i : min(i + LEAF_BYTES, n)]).digest()
            for i in range(0, n, LEAF_BYTES)
        ], n

    hasher = TreeHash()
    with ThreadPoolExecutor(threads, thread_name_prefix="s3ferry-hash") as pool:
        pending = deque(pool.submit(leaves, number) for number in range(threads))
        submitted = len(pending)
        while pending:
            digests, n = pending.popleft().result()
            hasher.add_leaves(digests)
            if n < chunk_bytes:
                for future in pending:
                    future.cancel()
                break
            pending.append(pool.submit(leaves, submitted))
            submitted += 1
    return hasher.hexdigest()

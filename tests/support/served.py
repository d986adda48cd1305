"""Start a test server on a free port of 127.0.0.1 and wait until it answers."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def served(command: Callable[[int], list[str]], name: str, timeout_s: float = 60) -> Iterator[int]:
    """Run ``command(port)`` on a free port until one accepts connections (another
    process may take the port first); yields the port, stops the server afterwards."""
    for _ in range(5):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = subprocess.Popen(
            command(port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            if _answers(port, server, timeout_s):
                yield port
                return
        finally:
            server.terminate()
            server.wait()
    raise RuntimeError(f"{name} did not start")


def _answers(port: int, server: subprocess.Popen[bytes], timeout_s: float) -> bool:
    """True once the server accepts connections; False if it exited (port taken)."""
    deadline = time.monotonic() + timeout_s
    while server.poll() is None and time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False

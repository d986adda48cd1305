"""A moto S3 server on a free 127.0.0.1 port, for what SeaweedFS does not emulate."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

MOTO_KEYS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": "us-east-1",
}


@contextmanager
def moto_server() -> Iterator[str]:
    """Start ``python -m moto.server``; yields its endpoint URL, stops it afterwards.

    A port found free can be taken before moto binds it: up to 5 ports are tried.
    """
    for _ in range(5):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            if _answers(port, server):
                yield f"http://127.0.0.1:{port}"
                return
        finally:
            server.terminate()
            server.wait()
    raise RuntimeError("moto server did not start")


def _answers(port: int, server: subprocess.Popen[bytes]) -> bool:
    """True once the server accepts connections; False if it exited (port taken)."""
    deadline = time.monotonic() + 60
    while server.poll() is None and time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False

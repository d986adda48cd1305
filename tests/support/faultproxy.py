"""A fault-injecting HTTP/1.1 proxy on 127.0.0.1, between s3ferry and the test's S3 server.

Each request the client sends draws one fault (or none) from a seeded RNG, at
the per-kind rates of :class:`Faults`:

- ``slowdown``: answered by the proxy, never forwarded: ``503 SlowDown`` with
  S3's XML error body; to a CompleteMultipartUpload, ``200`` with a SlowDown
  error document (as S3 does once it has begun answering);
- ``reset_before``: forwarded, the server's answer dropped, the connection reset
  (the store did the work, the client never hears of it);
- ``reset_mid``: forwarded, the headers and half the body sent, then reset;
- ``truncate``: forwarded, the full ``Content-Length`` and half the body sent,
  then the connection closed (a response without a body passes untouched);
- ``delay``: forwarded after ``delay_s`` seconds.

The proxy counts the faults it injected (by kind) and logs the requests it
saw (start line and ``Range`` header).
It keeps one upstream connection per client connection, answers
``Expect: 100-continue`` itself, and relays bodies framed by Content-Length,
chunked transfer coding or the end of the connection.
"""

from __future__ import annotations

import asyncio
import random
import socket
import struct
import threading
from collections import Counter
from dataclasses import dataclass, fields
from urllib.parse import urlsplit

_SLOWDOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message>"
    b"<RequestId>faultproxy</RequestId></Error>"
)


@dataclass(frozen=True)
class Faults:
    """The share (0..1) of requests that get each fault; their sum must be <= 1."""

    slowdown: float = 0.0
    reset_before: float = 0.0
    reset_mid: float = 0.0
    truncate: float = 0.0
    delay: float = 0.0
    delay_s: float = 0.2
    seed: int = 0
    max_faults: int | None = None  # None: no limit

    @classmethod
    def every_kind(cls, rate: float, seed: int = 0) -> Faults:
        """``rate`` of the requests for each kind of fault."""
        return cls(rate, rate, rate, rate, rate, seed=seed)

    def draw(self, rng: random.Random) -> str | None:
        """The fault for one request (a field name), or ``None``."""
        r = rng.random()
        for f in fields(self):
            if f.name in ("delay_s", "seed", "max_faults"):
                continue
            r -= getattr(self, f.name)
            if r < 0:
                return f.name
        return None


@dataclass
class _Message:
    head: bytes  # start line and headers, with the final blank line
    body: bytes
    headers: dict[str, str]  # lower-case names

    @property
    def start_line(self) -> str:
        return self.head.split(b"\r\n", 1)[0].decode("latin-1")


class FaultProxy:
    """The proxy, run on an event loop in a thread of its own (see :meth:`start`)."""

    def __init__(self, upstream_url: str, faults: Faults) -> None:
        split = urlsplit(upstream_url)
        self._upstream = (split.hostname or "127.0.0.1", split.port or 80)
        self.faults = faults
        self.injected: Counter[str] = Counter()
        self.requests: list[tuple[str, str | None]] = []
        self._rng = random.Random(faults.seed)
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._clients: dict[asyncio.StreamWriter, asyncio.Task[None]] = {}
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.port = 0

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FaultProxy:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._serve, "127.0.0.1", 0), self._loop
        ).result(10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        async def close() -> None:
            assert self._server is not None
            self._server.close()
            tasks = list(self._clients.values())
            for writer in list(self._clients):
                writer.transport.abort()
            await asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.sleep(0.01)  # lets the closed transports release their sockets

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        task = asyncio.current_task()
        assert task is not None
        self._clients[writer] = task
        try:
            while (request := await _read_request(reader, writer)) is not None:
                self.requests.append((request.start_line, request.headers.get("range")))
                fault = self._draw()
                if fault == "slowdown":
                    self.injected[fault] += 1
                    writer.write(_slowdown(request))
                    await writer.drain()
                    continue
                if fault == "delay":
                    self.injected[fault] += 1
                    await asyncio.sleep(self.faults.delay_s)
                if upstream is None:
                    upstream = await asyncio.open_connection(*self._upstream)
                response = await _exchange(upstream, request)
                if _closes(response):
                    upstream[1].close()
                    upstream = None
                if await self._deliver(fault, request, response, writer):
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            del self._clients[writer]
            if upstream is not None:
                upstream[1].close()
            writer.close()

    def _draw(self) -> str | None:
        limit = self.faults.max_faults
        if limit is not None and sum(self.injected.values()) >= limit:
            return None
        return self.faults.draw(self._rng)

    async def _deliver(
        self, fault: str | None, request: _Message, response: _Message, writer: asyncio.StreamWriter
    ) -> bool:
        """Send ``response`` (or the fault made of it); True when the connection is done."""
        half = response.body[: len(response.body) // 2]
        if fault == "reset_before":
            self.injected[fault] += 1
            _reset(writer)
            return True
        if fault == "reset_mid":
            self.injected[fault] += 1
            writer.write(response.head + half)
            await writer.drain()
            _reset(writer)
            return True
        if fault == "truncate" and len(response.body) > 1 and "content-length" in response.headers:
            self.injected[fault] += 1
            writer.write(response.head + half)
            await writer.drain()
            return True
        writer.write(response.head + response.body)
        await writer.drain()
        return _closes(request) or _closes(response)


def _slowdown(request: _Message) -> bytes:
    method, target = request.start_line.split(" ")[:2]
    completing = method == "POST" and "uploadId=" in target
    status = b"200 OK" if completing else b"503 Slow Down"
    body = b"" if method == "HEAD" else _SLOWDOWN
    return (
        b"HTTP/1.1 " + status + b"\r\nContent-Type: application/xml\r\n"
        b"Content-Length: " + str(len(_SLOWDOWN)).encode() + b"\r\n\r\n" + body
    )


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST instead of a FIN: what a client sees as 'connection reset'."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def _closes(message: _Message) -> bool:
    return message.headers.get("connection", "").lower() == "close"


async def _read_head(reader: asyncio.StreamReader) -> tuple[bytes, dict[str, str]] | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as e:
        if e.partial:
            raise
        return None
    headers = {}
    for line in head.split(b"\r\n")[1:]:
        if b":" in line:
            name, value = line.split(b":", 1)
            headers[name.decode("latin-1").strip().lower()] = value.decode("latin-1").strip()
    return head, headers


async def _read_request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> _Message | None:
    """The next request on the client connection (``None`` when the client closed it)."""
    got = await _read_head(reader)
    if got is None:
        return None
    head, headers = got
    if headers.get("expect", "").lower() == "100-continue":
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        await writer.drain()
        head = b"\r\n".join(
            line for line in head.split(b"\r\n") if not line.lower().startswith(b"expect:")
        )
    body = await _read_body(reader, headers, until_close=False)
    return _Message(head, body, headers)


async def _exchange(
    upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter], request: _Message
) -> _Message:
    reader, writer = upstream
    writer.write(request.head + request.body)
    await writer.drain()
    while True:
        got = await _read_head(reader)
        if got is None:
            raise ConnectionResetError("upstream closed the connection")
        head, headers = got
        status = int(head.split(b" ", 2)[1])
        if status != 100:
            break
    no_body = request.start_line.startswith("HEAD ") or status in (204, 304)
    body = b"" if no_body else await _read_body(reader, headers, until_close=True)
    return _Message(head, body, headers)


async def _read_body(
    reader: asyncio.StreamReader, headers: dict[str, str], until_close: bool
) -> bytes:
    """The body as framed on the wire (chunked bodies keep their chunk framing)."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        framed = bytearray()
        while True:
            size_line = await reader.readuntil(b"\r\n")
            framed += size_line
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                while (trailer := await reader.readuntil(b"\r\n")) != b"\r\n":
                    framed += trailer
                return bytes(framed + b"\r\n")
            framed += await reader.readexactly(size + 2)
    if "content-length" in headers:
        return await reader.readexactly(int(headers["content-length"]))
    return await reader.read() if until_close else b""

"""CopyObject and whole-object GETs sent from an event loop: no thread per request,
no urllib3.

Through urllib3 on a thread, one CopyObject of a small object cost the client
~1 ms of CPU (the pool's bookkeeping, http.client's header parser from the
e-mail package, the hand-off to a thread and back); written and parsed here on
non-blocking sockets with the loop's ``sock_*`` methods it costs ~0.25 ms.
Where the store shares the machine's cores, that is copies per second. A GET
through obstore costs its hand-offs between the loop and the library's own
threads (context switches), which a small object's download cannot hide.

Sockets belong to no event loop: every loop and thread of the process shares
one pool per client, so a worker that runs one short loop per task keeps its
connections. TLS runs through an :class:`ssl.SSLObject` over memory buffers,
as ``sock_*`` take no SSL sockets.
"""

from __future__ import annotations

import asyncio
import base64
import re
import socket
import ssl
import threading
import weakref
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

from s3ferry.errors import BodyTooLarge, StoreError, TransientError
from s3ferry.storage.listing import (
    UNTRUSTED_CERTIFICATE,
    _error_of,
    _etag,
    address_of,
    signed_headers,
)

if TYPE_CHECKING:
    from obstore.store import S3Credential

# Seconds without a byte from the store before a request fails (and is retried): botocore's
# read timeout. A long CopyObject is kept alive by the store sending whitespace.
IDLE_TIMEOUT_S = 60.0
RECV_BYTES = 64 * 1024
_UNRESERVED = "-_.~"
_ETAG = re.compile(rb"<ETag>([^<]*)</ETag>")


class AsyncLeanClient:
    """Signs and sends CopyObject and GET requests to one bucket from any event loop;
    thread-safe.

    ``keys`` as for :class:`~s3ferry.storage.listing.LeanClient`; ``code_error(code,
    message, subject)`` builds the error for a store's refusal about ``subject`` (the
    object's ``s3://`` URL; a copy's source and destination).
    Connections are kept for the next requests: never more than were once in use at a
    time, which the callers bound.
    """

    def __init__(
        self,
        bucket: str,
        region: str,
        endpoint_url: str | None,
        keys: Callable[[], S3Credential] | None,
        code_error: Callable[[str, str, str], Exception],
        verify_ssl: bool = True,
        get_headers: Mapping[str, str] | None = None,
    ) -> None:
        base, self._path = address_of(bucket, region, endpoint_url)
        self._get_headers = dict(get_headers or {})
        split = urlsplit(base)
        self.bucket = bucket
        self._region = region
        self._keys = keys
        self._code_error = code_error
        self._host = split.netloc
        tls = None
        if split.scheme == "https":
            tls = ssl.create_default_context()
            if not verify_ssl:
                tls.check_hostname = False
                tls.verify_mode = ssl.CERT_NONE
        port = split.port or (443 if tls else 80)
        self._pool = _Pool(split.hostname or "", port, tls)
        weakref.finalize(self, self._pool.close)

    async def copy(self, source_bucket: str, source_key: str, key: str) -> str:
        """Server-side CopyObject of ``source_bucket/source_key`` to ``key`` (metadata copied);
        returns the new ETag. An error inside a 200 response is raised like any other."""
        path = f"{self._path.rstrip('/')}/{key}"
        copy_source = quote(f"/{source_bucket}/{source_key}", safe="/" + _UNRESERVED)
        subject = f"s3://{source_bucket}/{source_key} -> s3://{self.bucket}/{key}"
        _, body = await self._request("PUT", path, subject, {"x-amz-copy-source": copy_source})
        if b"<Error>" in body:
            raise self._code_error(*_error_of(200, body), subject)
        match = _ETAG.search(body)
        return _etag(match.group(1).decode()) if match else ""

    async def put(self, key: str, body: bytes, crc32c: int, headers: Mapping[str, str]) -> str:
        """PUT ``body`` as ``key`` with ``headers``; returns the ETag. ``crc32c`` (the body's
        CRC32C) goes as the flexible checksum, so the store refuses a body that does not
        match it; the payload itself is not hashed (UNSIGNED-PAYLOAD): a SHA-256 of every
        byte would cost several times the CRC, which is hardware-assisted."""
        path = f"{self._path.rstrip('/')}/{key}"
        subject = f"s3://{self.bucket}/{key}"
        checksum = base64.b64encode(crc32c.to_bytes(4, "big")).decode()
        answer, _ = await self._request(
            "PUT", path, subject, {"x-amz-checksum-crc32c": checksum, **headers}, body
        )
        return _etag(answer.get("etag", ""))

    async def get(self, key: str, max_bytes: int) -> tuple[dict[str, str], bytearray]:
        """GET the whole of ``key``: the response's headers (lower-case names) and its body.

        ``key`` must survive URL normalisation (no empty or dot segments).

        Raises:
            BodyTooLarge: the object holds more than ``max_bytes``.
        """
        path = f"{self._path.rstrip('/')}/{key}"
        subject = f"s3://{self.bucket}/{key}"
        return await self._request("GET", path, subject, self._get_headers, max_body=max_bytes)

    def close(self) -> None:
        """Close the idle connections (those in use close when their request ends)."""
        self._pool.close()

    async def _request(
        self,
        method: str,
        path: str,
        subject: str,
        extra: Mapping[str, str],
        content: bytes = b"",
        max_body: int | None = None,
    ) -> tuple[dict[str, str], bytearray]:
        """The headers and body of the answer to a successful request; every failure
        raised (the caller retries), and :class:`BodyTooLarge` for a successful answer
        whose body would pass ``max_body``."""
        headers = signed_headers(self._keys, self._region, self._host, method, path, "", extra)
        lines = [
            f"{method} {quote(path, safe='/' + _UNRESERVED)} HTTP/1.1",
            f"Host: {self._host}",
            *([f"Content-Length: {len(content)}"] if method == "PUT" else []),
            *(f"{name}: {value}" for name, value in headers.items()),
        ]
        try:
            status, answer, body = await self._pool.exchange(
                ("\r\n".join(lines) + "\r\n\r\n").encode(), content, max_body
            )
        except ssl.SSLCertVerificationError as e:
            # Permanent: trying again meets the same certificate.
            raise StoreError(f"s3://{self.bucket}", UNTRUSTED_CERTIFICATE) from e
        except OSError as e:  # refused, reset, closed early, timed out, malformed, TLS
            raise TransientError(f"s3://{self.bucket}", f"{method} failed: {e!r}") from e
        if status == 200:
            return answer, body
        raise self._code_error(*_error_of(status, body), subject)


class _Stale(Exception):
    """A kept connection that the store had closed: it answered nothing, so send again."""


class _Pool:
    """Idle connections to one host, shared by every loop and thread."""

    def __init__(self, host: str, port: int, tls: ssl.SSLContext | None) -> None:
        self._host, self._port, self._tls = host, port, tls
        self._idle: list[_Connection] = []
        self._lock = threading.Lock()

    async def exchange(
        self, message: bytes, content: bytes = b"", max_body: int | None = None
    ) -> tuple[int, dict[str, str], bytearray]:
        """Send ``message`` (a request's head) and ``content`` (its body) and read the
        answer: its status, headers and body (a 200's body at most ``max_body`` bytes)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        async with asyncio.timeout(IDLE_TIMEOUT_S) as limit:
            while True:
                kept = conn is not None
                if conn is None:
                    conn = await _Connection.open(loop, self._host, self._port, self._tls)
                try:
                    status, headers, body, reusable = await conn.exchange(
                        loop, message, content, limit, max_body
                    )
                    break
                except _Stale as e:
                    conn.close()
                    conn = None
                    if not kept:
                        raise ConnectionError("the store closed a new connection") from e
                except BaseException:
                    conn.close()
                    raise
        if reusable:
            with self._lock:
                self._idle.append(conn)
        else:
            conn.close()
        return status, headers, body

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


class _Connection:
    """One HTTP/1.1 connection, plain or TLS; used by one request at a time."""

    def __init__(self, sock: socket.socket, tls: ssl.SSLObject | None) -> None:
        self._sock = sock
        self._tls = tls
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._buffer = bytearray()

    @classmethod
    async def open(
        cls,
        loop: asyncio.AbstractEventLoop,
        host: str,
        port: int,
        tls: ssl.SSLContext | None,
    ) -> _Connection:
        error: OSError = ConnectionError(f"no address for {host}")
        for family, kind, proto, _, address in await loop.getaddrinfo(
            host, port, type=socket.SOCK_STREAM
        ):
            sock = socket.socket(family, kind, proto)
            try:
                sock.setblocking(False)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                await loop.sock_connect(sock, address)
                conn = cls(sock, None)
                if tls is not None:
                    conn._tls = tls.wrap_bio(conn._incoming, conn._outgoing, server_hostname=host)
                    await conn._handshake(loop)
                return conn
            except OSError as e:
                sock.close()
                error = e
            except BaseException:
                sock.close()
                raise
        raise error

    def close(self) -> None:
        self._sock.close()

    async def exchange(
        self,
        loop: asyncio.AbstractEventLoop,
        message: bytes,
        content: bytes,
        limit: asyncio.Timeout,
        max_body: int | None = None,
    ) -> tuple[int, dict[str, str], bytearray, bool]:
        """Send one request, read its answer: (status, headers with lower-case names, body,
        can the connection be reused). A 200 whose body passes ``max_body`` raises
        :class:`BodyTooLarge` once that is known, leaving the rest unread."""
        buf = self._buffer
        try:
            if len(content) <= RECV_BYTES:  # one segment for a small request
                await self._send(loop, message + content)
            else:
                await self._send(loop, message)
                await self._send(loop, content)
            while (end := buf.find(b"\r\n\r\n")) < 0:
                if not await self._more(loop, limit):
                    raise _Stale if not buf else ConnectionError("the store closed mid-answer")
        except (ConnectionResetError, BrokenPipeError) as e:
            if buf:
                raise
            raise _Stale from e
        head = buf[:end].decode("latin-1").split("\r\n")
        del buf[: end + 4]
        try:
            status = int(head[0].split(" ", 2)[1])
        except (IndexError, ValueError):
            raise ConnectionError(f"not an HTTP answer: {head[0][:80]!r}") from None
        headers = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        reusable = headers.get("connection", "").lower() != "close"
        most = max_body if status == 200 else None
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = await self._chunked(loop, limit, most)
        elif "content-length" in headers:
            length = int(headers["content-length"])
            if most is not None and length > most:
                raise BodyTooLarge(length)
            body = await self._body(loop, limit, length)
        else:  # the body ends with the connection
            while most is None or len(buf) <= most:
                if not await self._more(loop, limit):
                    break
            else:
                raise BodyTooLarge(len(buf))
            body, reusable = bytearray(buf), False
            buf.clear()
        return status, headers, body, reusable and not buf

    async def _body(
        self, loop: asyncio.AbstractEventLoop, limit: asyncio.Timeout, length: int
    ) -> bytearray:
        """A body of ``length`` bytes, received straight into a buffer of its own: one copy
        from the socket, where collecting it in the connection's buffer makes three."""
        buf = self._buffer
        body = bytearray(length)
        filled = min(len(buf), length)
        body[:filled] = buf[:filled]
        del buf[:filled]
        view = memoryview(body)
        while filled < length:
            received = await self._recv_into(loop, view[filled:])
            if not received:
                raise ConnectionError("the store closed mid-answer")
            filled += received
            _extend(loop, limit)
        return body

    async def _chunked(
        self, loop: asyncio.AbstractEventLoop, limit: asyncio.Timeout, most: int | None
    ) -> bytearray:
        buf, body = self._buffer, bytearray()
        while True:
            line = await self._line(loop, limit)
            try:
                size = int(line.split(b";", 1)[0], 16)
            except ValueError:
                raise ConnectionError(f"bad chunk size {line[:40]!r}") from None
            if size == 0:
                while await self._line(loop, limit):  # trailers, up to an empty line
                    pass
                return body
            if most is not None and len(body) + size > most:
                raise BodyTooLarge(len(body) + size)
            while len(buf) < size + 2:
                if not await self._more(loop, limit):
                    raise ConnectionError("the store closed mid-answer")
            body += buf[:size]
            del buf[: size + 2]

    async def _line(self, loop: asyncio.AbstractEventLoop, limit: asyncio.Timeout) -> bytes:
        buf = self._buffer
        while (end := buf.find(b"\r\n")) < 0:
            if not await self._more(loop, limit):
                raise ConnectionError("the store closed mid-answer")
        line = bytes(buf[:end])
        del buf[: end + 2]
        return line

    async def _more(self, loop: asyncio.AbstractEventLoop, limit: asyncio.Timeout) -> bool:
        """Read what the store sent next into the buffer; False at the end of the stream."""
        data = await self._recv(loop)
        if data:
            self._buffer += data
            _extend(loop, limit)
        return bool(data)

    async def _send(self, loop: asyncio.AbstractEventLoop, data: bytes) -> None:
        if self._tls is not None:
            self._tls.write(data)
            data = self._outgoing.read()
        await loop.sock_sendall(self._sock, data)

    async def _recv(self, loop: asyncio.AbstractEventLoop, size: int = RECV_BYTES) -> bytes:
        """At most ``size`` bytes, as soon as some arrive; empty at the end of the stream."""
        if self._tls is None:
            return await loop.sock_recv(self._sock, size)
        while True:
            try:
                return self._tls.read(size)
            except ssl.SSLWantReadError:
                if not await self._pull(loop):
                    return b""
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return b""

    async def _recv_into(self, loop: asyncio.AbstractEventLoop, view: memoryview) -> int:
        """Receive at most ``len(view)`` bytes into ``view``; 0 at the end of the stream."""
        if self._tls is None:
            return await loop.sock_recv_into(self._sock, view)
        data = await self._recv(loop, len(view))  # TLS decrypts into bytes of its own
        view[: len(data)] = data
        return len(data)

    async def _handshake(self, loop: asyncio.AbstractEventLoop) -> None:
        assert self._tls is not None
        while True:
            try:
                self._tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                if not await self._pull(loop):
                    raise ConnectionError("the store closed during the TLS handshake") from None
        if self._outgoing.pending:
            await loop.sock_sendall(self._sock, self._outgoing.read())

    async def _pull(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Send what TLS has to say, then hand it the next bytes from the socket; False at
        the end of the stream."""
        if self._outgoing.pending:
            await loop.sock_sendall(self._sock, self._outgoing.read())
        data = await loop.sock_recv(self._sock, RECV_BYTES)
        self._incoming.write(data)
        return bool(data)


def _extend(loop: asyncio.AbstractEventLoop, limit: asyncio.Timeout) -> None:
    """Leave at least half the idle timeout after a read (one reschedule per half:
    rescheduling on each read costs more than a small copy's parsing)."""
    now = loop.time()
    if (limit.when() or now) - now < IDLE_TIMEOUT_S / 2:
        limit.reschedule(now + IDLE_TIMEOUT_S)

"""The event-loop CopyObject and GET client against a scripted HTTP server: answers in one
piece, in chunks and byte by byte, connections the server closed while idle, errors in a
200 and failures that the retry policy must see as transient."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from s3ferry.errors import BodyTooLarge, StoreError, ThrottledError, TransientError
from s3ferry.storage.lean_async import AsyncLeanClient

COPIED = b"<CopyObjectResult><ETag>&#34;0123abcd&#34;</ETag></CopyObjectResult>"
# One connection's answers, in order: each gets the request and returns the bytes to send
# (None: close the connection without answering). The connection closes after the last.
Script = list[Callable[[bytes], bytes | None]]


def answer(body: bytes = COPIED, status: bytes = b"200 OK") -> Callable[[bytes], bytes]:
    return lambda _: b"HTTP/1.1 %s\r\nContent-Length: %d\r\n\r\n%s" % (status, len(body), body)


def chunked(_: bytes) -> bytes:
    chunks = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(c), c) for c in (COPIED[:9], COPIED[9:]))
    return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\nX: y\r\n\r\n"


def close(_: bytes) -> None:
    return None


@contextmanager
def server(connections: list[Script], drip: bool = False) -> Iterator[tuple[str, list[bytes]]]:
    """``http://127.0.0.1:PORT`` answering connection i by ``connections[i]``; yields it and
    the requests received. ``drip`` sends answers one byte at a time."""
    listener = socket.create_server(("127.0.0.1", 0))
    requests: list[bytes] = []

    def serve() -> None:
        for script in connections:
            conn, _ = listener.accept()
            with conn:
                for reply in script:
                    request = b""
                    while b"\r\n\r\n" not in request:
                        request += conn.recv(65536)
                    requests.append(request)
                    sent = reply(request)
                    if sent is None:
                        break
                    for piece in [sent[i : i + 1] for i in range(len(sent))] if drip else [sent]:
                        conn.sendall(piece)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", requests
    finally:
        thread.join()
        listener.close()


def _client(endpoint: str) -> AsyncLeanClient:
    def error(code: str, message: str, subject: str) -> Exception:
        return ThrottledError(subject, code) if code == "SlowDown" else StoreError(subject, code)

    keys = {"access_key_id": "AK", "secret_access_key": "SK"}
    return AsyncLeanClient("dst", "us-east-1", endpoint, lambda: keys, error)


def _copies(endpoint: str, keys: list[str]) -> list[str]:
    client = _client(endpoint)

    async def run() -> list[str]:
        return [await client.copy("src", key, "to/" + key) for key in keys]

    try:
        return asyncio.run(run())
    finally:
        client.close()


@pytest.mark.parametrize("drip", [False, True])
def test_answers_whole_chunked_and_dripped_on_one_connection(drip: bool) -> None:
    with server([[answer(), chunked, answer()]], drip=drip) as (endpoint, requests):
        assert _copies(endpoint, ["a", "ü b", "c"]) == ["0123abcd"] * 3
    first = requests[0].decode()
    assert first.startswith("PUT /dst/to/a HTTP/1.1\r\n")
    assert "x-amz-copy-source: /src/a\r\n" in first
    assert "Authorization: AWS4-HMAC-SHA256 Credential=AK/" in first
    assert "x-amz-copy-source: /src/%C3%BC%20b\r\n" in requests[1].decode()


def test_a_connection_closed_while_idle_is_replaced_without_a_failure() -> None:
    with server([[answer(), close], [answer()]]) as (endpoint, requests):
        assert _copies(endpoint, ["a", "b"]) == ["0123abcd"] * 2
    assert len(requests) == 3  # b was sent on the closed connection, then on a new one


def test_a_new_connection_closed_without_an_answer_is_transient() -> None:
    with server([[close]]) as (endpoint, _), pytest.raises(TransientError):
        _copies(endpoint, ["a"])


def test_an_answer_cut_short_is_transient() -> None:
    cut = answer()(b"")[:-5]
    with server([[lambda _: cut]]) as (endpoint, _), pytest.raises(TransientError):
        _copies(endpoint, ["a"])


def test_errors_in_a_200_and_in_a_503_are_raised_by_code() -> None:
    slow_down = b"<Error><Code>SlowDown</Code><Message>m</Message></Error>"
    replies = [answer(slow_down), answer(slow_down, b"503 Slow Down")]
    with server([replies]) as (endpoint, _):
        client = _client(endpoint)

        async def run() -> None:
            for key in ("a", "b"):
                with pytest.raises(ThrottledError):
                    await client.copy("src", key, key)

        try:
            asyncio.run(run())
        finally:
            client.close()


def test_a_get_returns_headers_and_body_and_names_the_object_it_could_not_find() -> None:
    body = bytes(range(256)) * 1000
    found = (
        b'HTTP/1.1 200 OK\r\nContent-Length: %d\r\nETag: "e1"\r\nX-Amz-Meta-S3ferry-Mtime: 7'
        % len(body)
    )
    missing = b"<Error><Code>NoSuchKey</Code><Message>gone</Message></Error>"
    replies = [lambda _: found + b"\r\n\r\n" + body, answer(missing, b"404 Not Found")]
    with server([replies], drip=False) as (endpoint, requests):
        client = _client(endpoint)

        async def run() -> None:
            headers, got = await client.get("d/ü", len(body))
            assert got == body
            assert (headers["etag"], headers["x-amz-meta-s3ferry-mtime"]) == ('"e1"', "7")
            with pytest.raises(StoreError, match="^s3://dst/gone: NoSuchKey$"):
                await client.get("gone", 1)

        try:
            asyncio.run(run())
        finally:
            client.close()
    assert requests[0].decode().startswith("GET /dst/d/%C3%BC HTTP/1.1\r\n")
    assert "Content-Length" not in requests[0].decode()


def _to_close(body: bytes) -> Callable[[bytes], bytes]:
    return lambda _: b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + body


@pytest.mark.parametrize("framing", ["content-length", "chunked", "to-close"])
def test_a_get_larger_than_allowed_is_refused_before_it_is_held_and_its_connection_dropped(
    framing: str,
) -> None:
    body = b"x" * 10_000
    too_large = {
        "content-length": answer(body),
        "chunked": lambda _: (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"".join(b"%x\r\n%s\r\n" % (1000, body[i : i + 1000]) for i in range(0, 10_000, 1000))
            + b"0\r\n\r\n"
        ),
        "to-close": _to_close(body),
    }[framing]
    # The second GET must come on a new connection: the first one's body was left unread.
    with server([[too_large], [answer(body[:100])]]) as (endpoint, requests):
        client = _client(endpoint)

        async def run() -> None:
            with pytest.raises(BodyTooLarge) as refused:
                await client.get("grew", 9_999)
            assert refused.value.size_bytes > 9_999
            _, got = await client.get("small", 100)
            assert got == body[:100]

        try:
            asyncio.run(run())
        finally:
            client.close()
    assert len(requests) == 2


def test_an_error_answer_is_read_whatever_the_limit() -> None:
    missing = b"<Error><Code>NoSuchKey</Code><Message>" + b"m" * 500 + b"</Message></Error>"
    with server([[answer(missing, b"404 Not Found")]]) as (endpoint, _):
        client = _client(endpoint)
        try:
            with pytest.raises(StoreError, match="NoSuchKey$"):
                asyncio.run(client.get("gone", 0))
        finally:
            client.close()

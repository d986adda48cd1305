"""ListObjectsV2, HEAD, ranged GETs and GetObjectTagging without botocore: one signed
request, one parsed response.

botocore spends ~190 ms of client CPU turning a 1,000-key page into dicts
(its model-driven parser and datetime conversions); a SigV4-signed
``http.client`` GET parsed by one regular expression costs ~3 ms. On a
machine where the client and the server share two cores, that difference is
the listing speed. HEADs and tag reads go the same way, so a download or a
``compare --checksum`` never pays botocore's ~0.3 s of import and client setup.

Keys are requested with ``encoding-type=url`` (XML 1.0 cannot carry control
characters) and decoded only when the response says it applied that encoding.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import hmac
import html
import http.client
import re
import ssl
import threading
import time
import weakref
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import quote, unquote_plus, urlsplit

from s3ferry.errors import BodyTooLarge, StoreError, TransientError

if TYPE_CHECKING:
    from obstore.store import S3Credential

S3_MAX_KEYS = 1000
# Ranged GETs: bytes read from the socket per call (the consumer's chunk), and how
# long a connection may stay silent before the read is retried from where it stopped.
# Ranged GETs read 1 MiB at a time: an eighth of the Python per byte of 128 KiB reads
# (4 x 512 MiB download: client user CPU ~1.0 -> ~0.7 s). Larger reads once cost more
# in the kernel because each was one large file write; downloads now write in 32 KiB
# pieces (transfer.download.WRITE_PIECE_BYTES).
RANGE_READ_BYTES = 1024 * 1024
READ_TIMEOUT_SECONDS = 60
UNTRUSTED_CERTIFICATE = "TLS certificate not trusted (--no-verify-ssl: test servers only)"
_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
_UNRESERVED = "-_.~"
# 5xx codes kept as sent; any other 5xx is reported by its status.
_SERVER_CODES = frozenset({"SlowDown", "InternalError", "ServiceUnavailable"})


class Entry(NamedTuple):
    """One object as a listing reports it (a tuple: 10^8 of them must be cheap).

    ``etag`` has no quotes; ``last_modified`` is the ISO 8601 text the store
    sent (parsing 10^8 timestamps nobody reads is not free);
    ``checksum_algorithm`` is e.g. ``CRC32C`` when the store names one.
    """

    key: str
    size_bytes: int
    etag: str
    last_modified: str
    storage_class: str = "STANDARD"
    checksum_algorithm: str | None = None


@dataclass(frozen=True, slots=True)
class Head:
    """The response headers of a HEAD (lower-case names)."""

    headers: dict[str, str]

    @property
    def metadata(self) -> dict[str, str]:
        return {k[11:]: v for k, v in self.headers.items() if k.startswith("x-amz-meta-")}

    @property
    def last_modified(self) -> datetime | None:
        text = self.headers.get("last-modified")
        try:
            return parsedate_to_datetime(text) if text else None
        except ValueError:
            return None


@dataclass(frozen=True, slots=True)
class Page:
    entries: list[Entry]
    prefixes: list[str]
    truncated: bool
    continuation: str | None
    # The store lists keys in path-segment order (a file-system store such as
    # SeaweedFS), not in S3's byte order: see listing.keyspace.key_order.
    path_ordered: bool = False


class LeanClient:
    """Signs and sends ListObjectsV2, HEAD, GET and ranged GET requests for one bucket;
    thread-safe.

    ``keys`` returns the current credentials (``None``: unsigned requests).
    ``code_error(code, status, message)`` builds the exception for an S3
    error code, so the caller keeps one table of error translations.
    """

    def __init__(
        self,
        bucket: str,
        region: str,
        endpoint_url: str | None,
        keys: Callable[[], S3Credential] | None,
        code_error: Callable[[str, str], Exception],
        verify_ssl: bool = True,
        head_headers: Mapping[str, str] | None = None,
    ) -> None:
        self.bucket = bucket
        self._region = region
        self._keys = keys
        self._code_error = code_error
        # Sent with every HEAD and GET: the SSE-C key headers, when objects are encrypted with one.
        self._sse_headers = dict(head_headers or {})
        self._head_headers = {"x-amz-checksum-mode": "ENABLED", **self._sse_headers}
        self._verify_ssl = verify_ssl
        self._server: str | None = None  # the Server header of the latest answer
        self._local = threading.local()
        # Kept-alive connections (every request), closed when this client is collected.
        self._idle: deque[http.client.HTTPConnection] = deque()
        weakref.finalize(self, _close_all, self._idle)
        base, self._path = address_of(bucket, region, endpoint_url)
        self._base = base
        self._host = urlsplit(base).netloc

    def page(
        self,
        prefix: str = "",
        *,
        start_after: str = "",
        continuation: str | None = None,
        delimiter: str | None = None,
        max_keys: int = S3_MAX_KEYS,
    ) -> Page:
        """One page of keys after ``start_after`` (or ``continuation``) under ``prefix``.

        Raises:
            NotFoundError, AccessDeniedError, StoreError, TransientError: as ``code_error``
            builds them; TransientError also for a broken connection or a timeout.
        """
        query = {"list-type": "2", "encoding-type": "url", "max-keys": str(max_keys)}
        if prefix:
            query["prefix"] = prefix
        if start_after:
            query["start-after"] = start_after
        if continuation:
            query["continuation-token"] = continuation
        if delimiter:
            query["delimiter"] = delimiter
        body, server = self._get(query)
        page = _parse(body)
        return replace(page, path_ordered=True) if server.startswith("SeaweedFS") else page

    @property
    def path_ordered(self) -> bool | None:
        """Whether the store lists in path-segment order, as its ``Server`` header said
        (``None`` before its first answer)."""
        return None if self._server is None else self._server.startswith("SeaweedFS")

    def get(
        self, key: str, query: Mapping[str, str] | None = None, max_bytes: int | None = None
    ) -> bytes:
        """The body of ``key`` (a whole GET, for small answers only), or of its subresource
        ``query`` names (``{"tagging": ""}``).

        ``key`` must survive URL normalisation (no empty or dot segments).

        Raises:
            BodyTooLarge: the answer holds more than ``max_bytes`` (the rest is not read).
        """
        path = f"{self._path.rstrip('/')}/{key}"
        extra = {} if query else self._sse_headers
        return self._request("GET", path, query or {}, extra, max_bytes)[2]

    def head(self, key: str, part_number: int | None = None) -> Head | None:
        """HEAD of ``key`` (with its stored checksum); ``None`` if it does not exist.

        ``key`` must survive URL normalisation (no empty or dot segments).
        """
        query = {"partNumber": str(part_number)} if part_number else {}
        path = f"{self._path.rstrip('/')}/{key}"
        status, headers, _ = self._request("HEAD", path, query, self._head_headers)
        if status == 404:
            return None
        return Head({k.lower(): v for k, v in headers.items()})

    def read_range(
        self,
        key: str,
        start: int,
        end: int,
        consume: Callable[[memoryview, int], None],
        etag: str = "",
    ) -> None:
        """Stream bytes ``start`` to ``end`` (exclusive) of ``key`` into ``consume(view, offset)``.

        The body is read by ``http.client`` straight into a buffer of
        :data:`RANGE_READ_BYTES` kept per thread (one copy from the socket,
        where a library handing out byte chunks makes two or three), on a
        kept-alive connection. ``key`` must survive URL normalisation. With ``etag``,
        only that version is read (If-Match).

        Raises:
            TransientError: the connection broke or timed out (what was consumed stays consumed).
            StoreError and the errors ``code_error`` builds: the store refused the request.
        """
        subject = f"s3://{self.bucket}/{key}"
        path = f"{self._path.rstrip('/')}/{key}"
        condition = {"If-Match": f'"{etag}"'} if etag else {}
        headers = self._signed(
            "GET",
            path,
            "",
            {"Range": f"bytes={start}-{end - 1}", **condition, **self._sse_headers},
        )
        connection, response = self._send(subject, quote(path, safe="/" + _UNRESERVED), headers)
        reusable = False
        try:
            if response.status not in (200, 206):
                with self._network(subject):
                    body = response.read()
            if response.status not in (200, 206):
                raise self._code_error(*_error_of(response.status, body))
            # Some stores (rclone's) answer a range with 200 and its Content-Range.
            ranged = response.status == 206 or (
                response.getheader("Content-Range") or ""
            ).startswith(f"bytes {start}-{end - 1}/")
            if not ranged and start != 0:
                raise StoreError(subject, "the store ignored the byte range")
            view = self._buffer()
            offset = start
            while offset < end:
                with self._network(subject):
                    n = response.readinto(view[: min(len(view), end - offset)])
                if n == 0:
                    raise TransientError(
                        subject, f"connection closed after {offset - start} of {end - start} bytes"
                    )
                consume(view[:n], offset)
                offset += n
            # A range is read to its end, so the connection can serve the next request;
            # the rest of a whole object is not wanted.
            reusable = ranged and not response.read(1)
        finally:
            if reusable:
                self._idle.append(connection)
            else:
                connection.close()

    def _send(
        self, subject: str, url_path: str, headers: Mapping[str, str], method: str = "GET"
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        """Send a request without a body and read its status and headers. A kept-alive
        connection the server has closed meanwhile is replaced by a new one at once, as a
        browser would."""
        while True:
            connection, reused = self._take_connection()
            try:
                with self._network(subject, method):
                    connection.request(method, url_path, headers=headers)
                    return connection, connection.getresponse()
            except TransientError as e:
                connection.close()
                stale = isinstance(
                    e.__cause__,
                    (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError),
                )
                if not (reused and stale):
                    raise

    @contextlib.contextmanager
    def _network(self, subject: str, method: str = "GET") -> Iterator[None]:
        """Socket and HTTP failures inside the block as TransientError (an untrusted
        certificate as the permanent StoreError)."""
        try:
            yield
        except ssl.SSLCertVerificationError as e:
            # Permanent: trying again meets the same certificate.
            raise StoreError(f"s3://{self.bucket}", UNTRUSTED_CERTIFICATE) from e
        except (OSError, http.client.HTTPException) as e:
            raise TransientError(subject, f"{method} failed: {e!r}") from e

    def _take_connection(self) -> tuple[http.client.HTTPConnection, bool]:
        """An idle kept-alive connection (and True), or a new one (connected on first use)."""
        try:
            return self._idle.pop(), True
        except IndexError:
            split = urlsplit(self._base)
            if split.scheme == "https":
                return http.client.HTTPSConnection(
                    split.netloc, timeout=READ_TIMEOUT_SECONDS, context=self._ssl_context()
                ), False
            return http.client.HTTPConnection(split.netloc, timeout=READ_TIMEOUT_SECONDS), False

    def _buffer(self) -> memoryview:
        view: memoryview | None = getattr(self._local, "buffer", None)
        if view is None:
            view = self._local.buffer = memoryview(bytearray(RANGE_READ_BYTES))
        return view

    def _ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if not self._verify_ssl:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def _get(self, query: Mapping[str, str]) -> tuple[bytes, str]:
        """The body of a successful listing and the ``Server`` header that came with it."""
        _, headers, body = self._request("GET", self._path, query, {})
        return body, headers.get("Server", "")

    def _request(
        self,
        method: str,
        path: str,
        query: Mapping[str, str],
        extra: Mapping[str, str],
        max_bytes: int | None = None,
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        """Status, headers and body of one signed request (the caller retries); a HEAD's 404
        is returned, every other failure raised, and a body over ``max_bytes`` raised as
        :class:`BodyTooLarge`."""
        canonical_query = "&".join(
            f"{quote(k, safe=_UNRESERVED)}={quote(v, safe=_UNRESERVED)}"
            for k, v in sorted(query.items())
        )
        url_path = quote(path, safe="/" + _UNRESERVED)
        url_path += f"?{canonical_query}" if canonical_query else ""
        subject = f"s3://{self.bucket}"
        headers = self._signed(method, path, canonical_query, extra)
        connection, r = self._send(subject, url_path, headers, method)
        try:
            with self._network(subject, method):
                data = r.read() if max_bytes is None else r.read(max_bytes + 1)
        except BaseException:
            connection.close()
            raise
        too_large = max_bytes is not None and len(data) > max_bytes
        if r.will_close or too_large:
            connection.close()
        else:
            self._idle.append(connection)
        self._server = r.headers.get("Server", "")
        if too_large and r.status == 200:
            raise BodyTooLarge(len(data))
        if r.status in (200, 206) or (method == "HEAD" and r.status == 404):
            return r.status, r.headers, data
        code, message = _error_of(r.status, data)
        raise self._code_error(code, message)

    def _signed(
        self, method: str, path: str, canonical_query: str, extra: Mapping[str, str]
    ) -> dict[str, str]:
        """SigV4 headers for a request without a body."""
        return signed_headers(
            self._keys, self._region, self._host, method, path, canonical_query, extra
        )


def address_of(bucket: str, region: str, endpoint_url: str | None) -> tuple[str, str]:
    """``(scheme://host[:port], path of the bucket)`` for requests to ``bucket``: path-style
    on a given endpoint and for names with dots (TLS), else virtual-hosted on AWS."""
    if endpoint_url:
        split = urlsplit(endpoint_url)
        return f"{split.scheme}://{split.netloc}", f"/{bucket}"
    if "." in bucket:
        return f"https://s3.{region}.amazonaws.com", f"/{bucket}"
    return f"https://{bucket}.s3.{region}.amazonaws.com", "/"


def signed_headers(
    keys: Callable[[], S3Credential] | None,
    region: str,
    host: str,
    method: str,
    path: str,
    canonical_query: str,
    extra: Mapping[str, str],
) -> dict[str, str]:
    """The headers of a request without a body: ``extra``, SigV4's and, unless ``keys`` is
    ``None`` (unsigned), the signature by the credentials ``keys()`` gives now."""
    amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    headers = {"x-amz-content-sha256": "UNSIGNED-PAYLOAD", "x-amz-date": amz_date, **extra}
    if keys is None:
        return headers
    creds = keys()
    if creds.get("token"):
        headers["x-amz-security-token"] = str(creds["token"])
    return headers | {
        "Authorization": sigv4_authorization(
            creds["access_key_id"],
            creds["secret_access_key"],
            region,
            host,
            path,
            canonical_query,
            headers,
            method,
        )
    }


def _close_all(connections: deque[http.client.HTTPConnection]) -> None:
    while connections:
        connections.pop().close()


def sigv4_authorization(
    access_key: str,
    secret_key: str,
    region: str,
    host: str,
    path: str,
    canonical_query: str,
    amz_headers: Mapping[str, str],
    method: str = "GET",
) -> str:
    """The ``Authorization`` header of an S3 request without a body (Signature Version 4)."""
    signed = sorted([("host", host), *((k.lower(), v) for k, v in amz_headers.items())])
    names = ";".join(k for k, _ in signed)
    canonical_headers = "".join(f"{k}:{v.strip()}\n" for k, v in signed)
    request = "\n".join(
        [
            method,
            quote(path, safe="/" + _UNRESERVED),
            canonical_query,
            canonical_headers,
            names,
            amz_headers["x-amz-content-sha256"],
        ]
    )
    amz_date = amz_headers["x-amz-date"]
    scope = f"{amz_date[:8]}/{region}/s3/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(request.encode()).hexdigest()]
    )
    key = _signing_key(secret_key, amz_date[:8], region)
    signature = hmac.digest(key, to_sign.encode(), "sha256")
    return (
        f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, "
        f"SignedHeaders={names}, Signature={signature.hex()}"
    )


@functools.lru_cache(maxsize=16)
def _signing_key(secret_key: str, day: str, region: str) -> bytes:
    """SigV4's key of one day and region: four HMACs, the same for every request that day."""
    key = f"AWS4{secret_key}".encode()
    for part in (day, region, "s3", "aws4_request"):
        key = hmac.digest(key, part.encode(), "sha256")
    return key


def _parse(body: bytes) -> Page:
    try:
        text = _without_start_after(body.decode())
        root = ET.fromstring(_without_contents(text))
    except (UnicodeDecodeError, ET.ParseError) as e:
        raise StoreError("listing", f"the store sent a listing that is not XML: {e}") from e
    url_encoded = root.findtext(_NS + "EncodingType") == "url"
    # ElementTree has resolved XML entities already; the regular expression has not.
    decode: Callable[[str], str] = unquote_plus if url_encoded else _same
    entries = _fast_entries(text, _url_decode if url_encoded else _unescape)
    if entries is None:
        entries = [_entry(c, decode) for c in ET.fromstring(text).iter(_NS + "Contents")]
    prefixes = [decode(p.findtext(_NS + "Prefix") or "") for p in root.iter(_NS + "CommonPrefixes")]
    return Page(
        entries,
        prefixes,
        root.findtext(_NS + "IsTruncated") == "true",
        root.findtext(_NS + "NextContinuationToken"),
    )


def _without_start_after(text: str) -> str:
    """``text`` less the ``<StartAfter>`` it echoes. Split points between keys may hold
    control characters, which XML cannot carry; some stores (moto) echo them unencoded
    even when asked for URL-encoded keys, and the echo is never needed."""
    start = text.find("<StartAfter>")
    if start < 0:
        return text
    end = text.find("</StartAfter>", start)
    return text if end < 0 else text[:start] + text[end + len("</StartAfter>") :]


_CONTENTS = re.compile(r"<Contents>.*?</Contents>", re.S)
_LEAF = re.compile(r"<(\w+)>([^<]*)</\1>")


def _without_contents(text: str) -> str:
    """``text`` less its ``<Contents>`` elements, for the XML parser to read the rest.

    Stores send them one after the other: then they are cut out in one piece
    (the regular expression takes ~4 us a key); else each is removed by itself.
    """
    first = text.find("<Contents>")
    if first < 0:
        return text
    end = text.rfind("</Contents>") + len("</Contents>")
    run = text[first:end]
    if run.count("</Contents><Contents>") == run.count("<Contents>") - 1:
        return text[:first] + text[end:]
    return _CONTENTS.sub("", text)


def _fast_entries(text: str, decode: Callable[[str], str]) -> list[Entry] | None:
    """Entries by one regular expression built from the first entry's field order.

    Parsing a page this way costs ~3 ms where ElementTree plus per-entry
    dicts cost ~15 ms. ``None`` when any entry has other fields, or nested
    ones, than the first (the caller then parses the page as XML).
    """
    first = text.find("<Contents>")
    if first < 0:
        return []
    names = [n for n, _ in _LEAF.findall(text[first : text.find("</Contents>", first)])]
    if not {"Key", "Size"} <= set(names):
        return None
    row = re.compile("<Contents>" + "".join(f"<{n}>([^<]*)</{n}>" for n in names) + "</Contents>")
    rows = row.findall(text)
    if len(rows) != text.count("<Contents>"):
        return None
    if len(names) == 1:
        return None  # findall gives strings, not tuples, for one group; no store sends that
    at = {n: i for i, n in enumerate(names)}
    key, size = at["Key"], at["Size"]
    etag, modified = at.get("ETag"), at.get("LastModified")
    storage, checksum = at.get("StorageClass"), at.get("ChecksumAlgorithm")
    return [
        Entry(
            decode(r[key]),
            int(r[size]),
            _etag(r[etag]) if etag is not None else "",
            r[modified] if modified is not None else "",
            r[storage] or "STANDARD" if storage is not None else "STANDARD",
            r[checksum] or None if checksum is not None else None,
        )
        for r in rows
    ]


def _url_decode(text: str) -> str:
    return unquote_plus(_unescape(text)) if "%" in text or "&" in text or "+" in text else text


def _etag(text: str) -> str:
    """An ETag without its quotes, which stores send raw, as ``&#34;`` or as ``&quot;``."""
    return text.replace("&#34;", "").replace("&quot;", "").strip('"')


def _same(text: str) -> str:
    return text


def _unescape(text: str) -> str:
    return html.unescape(text) if "&" in text else text


def _entry(c: Any, decode: Callable[[str], str]) -> Entry:
    fields = {child.tag[len(_NS) :]: child.text or "" for child in c}
    return Entry(
        key=decode(fields["Key"]),
        size_bytes=int(fields.get("Size") or 0),
        etag=fields.get("ETag", "").strip('"'),
        last_modified=fields.get("LastModified", ""),
        storage_class=fields.get("StorageClass") or "STANDARD",
        checksum_algorithm=fields.get("ChecksumAlgorithm") or None,
    )


def _error_of(status: int, body: bytes | bytearray) -> tuple[str, str]:
    """The S3 error code (or the HTTP status) and message of a failed request."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return str(status), f"HTTP {status}"
    code = root.findtext("Code") or str(status)
    if status >= 500 and code not in _SERVER_CODES:
        code = str(status)  # an unknown 5xx code is still a server-side failure
    return code, root.findtext("Message") or f"HTTP {status}"

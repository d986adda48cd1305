"""The s3ferry exception tree.

Every error s3ferry raises is an :class:`S3ferryError`. Each carries the
*subject* it is about (a path, an ``s3://`` URL, an option name) and whether
trying again could help, so callers decide without parsing messages::

    S3ferryError
    ├── UsageError            bad option, malformed URL, bad local path (never retryable)
    ├── StoreError            the object store refused or failed a request
    │   ├── NotFoundError     missing bucket or key
    │   ├── AccessDeniedError wrong credentials or no permission
    │   │   └── CredentialsExpiredError temporary credentials expired (refreshed once, then fatal)
    │   ├── ObjectArchivedError archived (Glacier, Deep Archive) and not restored
    │   ├── UnsupportedError  the store does not implement the request (NotImplemented)
    │   └── TransientError    5xx, timeout, connection reset, truncated body (retryable)
    │       └── ThrottledError  503 SlowDown and its kin: slow down, then retry
    ├── IntegrityError        bytes read back or stored differ from the source
    ├── SourceChangedError    a local file (or a planned source object) changed meanwhile
    ├── LocalIOError          a local file could not be read or written
    └── Cancelled             the job was interrupted before this object finished

:class:`BodyTooLarge` is no error and never leaves the library: a small GET
raises it when the object grew since it was listed, and the caller moves
that object to the lane that does not hold it in memory.

Errors from botocore and obstore are translated into this tree inside
``s3ferry.storage`` only; nothing above that layer sees their types.
"""

from __future__ import annotations


class S3ferryError(Exception):
    """Base of every error s3ferry raises.

    ``str(error)`` is one line: ``<subject>: <what is wrong>``.
    """

    retryable: bool = False

    def __init__(self, subject: str, message: str) -> None:
        super().__init__(f"{subject}: {message}")
        self.subject = subject
        self.message = message


class UsageError(S3ferryError):
    """The request cannot start: a bad option, URL or local path."""


class StoreError(S3ferryError):
    """The object store refused or failed a request."""


class NotFoundError(StoreError):
    """The bucket or key does not exist."""


class AccessDeniedError(StoreError):
    """The credentials are wrong or lack permission."""


class CredentialsExpiredError(AccessDeniedError):
    """The store says the (temporary) credentials have expired: worth one refresh, no more."""


class ObjectArchivedError(StoreError):
    """The object is archived (Glacier, Deep Archive) and must be restored before it is read."""


class UnsupportedError(StoreError):
    """The store does not implement this request (S3's NotImplemented), e.g. UploadPartCopy
    of an encrypted object on some S3-compatible stores."""


class TransientError(StoreError):
    """A failure that may pass: throttling, 5xx, a broken connection."""

    retryable = True


class ThrottledError(TransientError):
    """The store asks us to slow down (503 SlowDown, also inside a 200 to a copy or a
    CompleteMultipartUpload): the request rate of the whole process drops, then it is retried."""


class IntegrityError(S3ferryError):
    """Bytes stored or read back do not match the source's checksum or size."""


class SourceChangedError(S3ferryError):
    """A local file changed (size or mtime) while it was being uploaded, or a source
    object is no longer the version a copy task was planned for (its ETag)."""


class LocalIOError(S3ferryError):
    """A local file or directory could not be read or written."""


class Cancelled(S3ferryError):
    """The job was interrupted (e.g. Ctrl-C) before this object finished."""


class BodyTooLarge(Exception):
    """A GET's answer holds more than the caller could take (the object grew since it
    was listed): none of it was kept, and its connection was closed.

    ``size_bytes`` is the announced length, or how much had arrived when a body
    without one passed the limit.
    """

    def __init__(self, size_bytes: int) -> None:
        super().__init__(f"body of {size_bytes} bytes is larger than allowed")
        self.size_bytes = size_bytes

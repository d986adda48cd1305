"""Errors of botocore, obstore and urllib3 become the s3ferry error whose kind the retry
policy acts on."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, ConnectionClosedError, ResponseStreamingError

from s3ferry.errors import (
    AccessDeniedError,
    CredentialsExpiredError,
    NotFoundError,
    ObjectArchivedError,
    S3ferryError,
    ThrottledError,
    TransientError,
    UnsupportedError,
)
from s3ferry.storage.retry import Kind, classify
from s3ferry.storage.s3 import translated


def _client_error(code: str, operation: str = "GetObject") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "m"}}, operation)


def _obstore_error(text: str) -> Exception:
    generic = type("GenericError", (Exception,), {"__module__": "obstore.exceptions"})
    return generic(text)


def _translated(error: Exception) -> S3ferryError:
    with pytest.raises(S3ferryError) as caught, translated("s3://b/k"):
        raise error
    return caught.value


@pytest.mark.parametrize(
    ("error", "expected", "kind"),
    [
        # botocore raises a SlowDown inside a 200 to CompleteMultipartUpload as this error.
        (_client_error("SlowDown", "CompleteMultipartUpload"), ThrottledError, Kind.THROTTLED),
        (_client_error("503"), ThrottledError, Kind.THROTTLED),
        (_client_error("InternalError"), TransientError, Kind.TRANSIENT),
        (ConnectionClosedError(endpoint_url="http://s3"), TransientError, Kind.TRANSIENT),
        (ResponseStreamingError(error="IncompleteRead"), TransientError, Kind.TRANSIENT),
        (_client_error("ExpiredToken"), CredentialsExpiredError, Kind.EXPIRED),
        (_client_error("InvalidAccessKeyId"), AccessDeniedError, Kind.PERMANENT),
        (_client_error("NoSuchBucket"), NotFoundError, Kind.PERMANENT),
        (_client_error("InvalidObjectState"), ObjectArchivedError, Kind.PERMANENT),
        (_client_error("MethodNotAllowed", "RestoreObject"), UnsupportedError, Kind.PERMANENT),
        (_client_error("UnsupportedAlgorithm"), AccessDeniedError, Kind.PERMANENT),
        (
            _obstore_error("Server returned non-2xx status code: 503 Service Unavailable"),
            ThrottledError,
            Kind.THROTTLED,
        ),
        (
            _obstore_error("HTTP error: request or response body error\n\nDebug source: ..."),
            TransientError,
            Kind.TRANSIENT,
        ),
        (_obstore_error("HTTP error: error sending request"), TransientError, Kind.TRANSIENT),
        (
            _obstore_error("status code: 400 <Code>ExpiredToken</Code>"),
            CredentialsExpiredError,
            Kind.EXPIRED,
        ),
    ],
)
def test_store_errors_are_translated_into_the_kind_the_policy_retries(
    error: Exception, expected: type[S3ferryError], kind: Kind
) -> None:
    got = _translated(error)
    assert type(got) is expected
    assert classify(got) is kind
    assert "Debug source" not in got.message

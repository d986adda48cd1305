"""Per-side clients: botocore for the control plane, obstore for bulk PUT/GET.

Credentials, profiles, regions and endpoints are resolved by botocore exactly
as the AWS CLI does (environment, ``~/.aws/config``, ``~/.aws/credentials``,
``AWS_ENDPOINT_URL``, instance roles); obstore receives them through a
refreshing credential provider, so both clients sign as the same identity.

One shortcut keeps scripted runs fast: when the environment already holds
static keys and a region (and no profile is named), nothing needs botocore's
resolution, and its ~0.5 s of import and model loading is paid only if a
control-plane call (multipart, HEAD, listing) is actually made.
"""

from __future__ import annotations

import base64
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from s3ferry.config import StoreConfig
from s3ferry.errors import AccessDeniedError, UsageError

if TYPE_CHECKING:
    import botocore.credentials
    from obstore.store import ClientConfig, S3Credential

# Frozen credentials are asked for again after this long; botocore refreshes
# temporary credentials well before they expire.
CREDENTIAL_TTL = timedelta(minutes=10)
DEFAULT_REGION = "us-east-1"


@dataclass(frozen=True, slots=True)
class Side:
    """Where one side's endpoint is and who it signs as (``keys`` None: unsigned)."""

    region: str
    endpoint_url: str | None
    keys: Callable[[], S3Credential] | None
    client: Any = None  # the botocore client, when botocore had to resolve this side
    config: StoreConfig = StoreConfig()  # what was asked for (TLS verification, encryption)


class _BotocoreCredentials:
    """obstore credential callback backed by botocore's (refreshing) credentials."""

    def __init__(self, credentials: botocore.credentials.Credentials) -> None:
        self._credentials = credentials

    def __call__(self) -> S3Credential:
        frozen = self._credentials.get_frozen_credentials()
        return {
            "access_key_id": str(frozen.access_key),
            "secret_access_key": str(frozen.secret_key),
            "token": frozen.token,
            "expires_at": datetime.now(UTC) + CREDENTIAL_TTL,
        }


class _StaticCredentials:
    def __init__(self, access_key_id: str, secret_access_key: str, token: str | None) -> None:
        self._value: S3Credential = {
            "access_key_id": access_key_id,
            "secret_access_key": secret_access_key,
            "token": token,
            "expires_at": None,
        }

    def __call__(self) -> S3Credential:
        return self._value


# AWS's names (us-east-1) and other stores' (RegionOne, default, my_zone): what a SigV4
# credential scope can carry.
_REGION_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def resolve_side(config: StoreConfig, max_connections: int) -> Side:
    """Resolve region, endpoint and credentials as the AWS CLI would.

    Raises:
        UsageError: the profile does not exist; the region or endpoint is malformed.
        AccessDeniedError: no credentials could be found (and unsigned was not asked for).
    """
    env = os.environ
    named = [
        ("--region", config.region),
        ("AWS_REGION", env.get("AWS_REGION")),
        ("AWS_DEFAULT_REGION", env.get("AWS_DEFAULT_REGION")),
    ]
    where, region = next(((name, value) for name, value in named if value), ("", None))
    if region is not None and not _REGION_RE.fullmatch(region):
        raise UsageError(f"{where} {region}", "not a region name (like us-east-1)")
    endpoint = config.endpoint_url or env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    if endpoint is not None:
        _check_endpoint(endpoint, "--endpoint-url" if config.endpoint_url else "AWS_ENDPOINT_URL")
    keys = env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")
    profile_named = config.profile or env.get("AWS_PROFILE")
    if config.no_sign_request and region:
        return Side(region, endpoint, None, config=config)
    if keys[0] and keys[1] and region and not profile_named:
        token = env.get("AWS_SESSION_TOKEN")
        return Side(region, endpoint, _StaticCredentials(keys[0], keys[1], token), config=config)
    return _resolve_with_botocore(config, max_connections)


def _check_endpoint(endpoint: str, where: str) -> None:
    """Raise UsageError unless ``endpoint`` is an http(s) URL with a host."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(endpoint)
        # .port raises ValueError for a port that is not a number from 0 to 65535.
        valid = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != -1
    except ValueError:
        valid = False
    if not valid:
        raise UsageError(f"{where} {endpoint}", "not an http:// or https:// URL with a host")


def _resolve_with_botocore(config: StoreConfig, max_connections: int) -> Side:
    """Let botocore resolve everything (profiles, config files, instance roles, endpoints)."""
    import botocore.exceptions
    import botocore.session

    try:
        session = botocore.session.Session(profile=config.profile)
        region = config.region or session.get_config_variable("region") or DEFAULT_REGION
        credentials = None if config.no_sign_request else session.get_credentials()
    except botocore.exceptions.ProfileNotFound as e:
        raise UsageError(f"--profile {config.profile}", "no such profile") from e
    if credentials is None and not config.no_sign_request:
        raise AccessDeniedError(
            "credentials",
            "no AWS credentials found (environment, profile or config files); "
            "use --no-sign-request for public data",
        )
    keys = _BotocoreCredentials(credentials) if credentials is not None else None
    client = session.create_client(
        "s3",
        region_name=region,
        endpoint_url=config.endpoint_url,
        config=_botocore_config(max_connections, keys is None),
        verify=config.verify_ssl,
    )
    endpoint = client.meta.endpoint_url
    # botocore always names an endpoint; obstore derives AWS's own from the region.
    custom = endpoint if "amazonaws.com" not in endpoint else None
    return Side(region, custom, keys, client, config)


class LazyBotocore:
    """The botocore S3 client of one side, built on first use (thread-safe)."""

    def __init__(self, side: Side, max_connections: int) -> None:
        self._side = side
        self._max_connections = max_connections
        self._client: Any = None
        self._lock = threading.Lock()

    def get(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = self._side.client or _botocore_client(
                    self._side, self._max_connections
                )
            return self._client


def _botocore_config(max_connections: int, unsigned: bool) -> Any:
    from botocore import UNSIGNED
    from botocore.config import Config

    return Config(
        max_pool_connections=max_connections,
        # We send our own CRC32C on every PUT/UploadPart; botocore's extra
        # checksums and payload hashing would only burn CPU.
        s3={"payload_signing_enabled": False},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        # One attempt: storage.retry retries every request, once (counts must not multiply).
        retries={"mode": "standard", "total_max_attempts": 1},
        signature_version=UNSIGNED if unsigned else None,
    )


def _botocore_client(side: Side, max_connections: int) -> Any:
    """A client for a side resolved without botocore (static keys from the environment)."""
    import botocore.session

    kwargs: dict[str, Any] = {}
    if side.keys is not None:
        keys = side.keys()
        kwargs = {
            "aws_access_key_id": keys["access_key_id"],
            "aws_secret_access_key": keys["secret_access_key"],
            "aws_session_token": keys.get("token"),
        }
    return botocore.session.Session().create_client(
        "s3",
        region_name=side.region,
        endpoint_url=side.endpoint_url,
        config=_botocore_config(max_connections, side.keys is None),
        verify=side.config.verify_ssl,
        **kwargs,
    )


def obstore_encryption(config: StoreConfig) -> dict[str, str]:
    """obstore's S3 settings for the server-side encryption ``config`` asks for."""
    if config.sse_c_key is not None:
        key = base64.b64encode(config.sse_c_key).decode()
        return {"server_side_encryption": "sse-c", "sse_customer_key_base64": key}
    if config.sse is None:
        return {}
    kms = {"sse_kms_key_id": config.sse_kms_key_id} if config.sse_kms_key_id else {}
    return {"server_side_encryption": config.sse, **kms}


def make_obstore(bucket: str, side: Side, max_connections: int) -> Any:
    """The obstore client for ``bucket``: path-style on custom endpoints, SHA-256 checksums,
    no retries of its own (storage.retry retries every request)."""
    from obstore.store import S3Store

    endpoint = side.endpoint_url
    options: ClientConfig = {
        "allow_http": bool(endpoint and endpoint.startswith("http://")),
        "pool_max_idle_per_host": str(max_connections),
        "allow_invalid_certificates": not side.config.verify_ssl,
    }
    kwargs: dict[str, Any] = {
        "region": side.region,
        "checksum_algorithm": "sha256",
        "retry_config": {"max_retries": 0},
        **obstore_encryption(side.config),
    }
    if endpoint:
        kwargs.update(endpoint=endpoint, virtual_hosted_style_request=False)
    if side.keys is None:
        return S3Store(bucket, client_options=options, skip_signature=True, **kwargs)
    return S3Store(bucket, client_options=options, credential_provider=side.keys, **kwargs)

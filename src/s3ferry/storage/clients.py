"""Per-side clients: botocore for the control plane, obstore for bulk PUT/GET/LIST.

Credentials, profiles, regions and endpoints are resolved by botocore exactly
as the AWS CLI does (environment, ``~/.aws/config``, ``~/.aws/credentials``,
``AWS_ENDPOINT_URL``, instance roles); obstore receives them through a
refreshing credential provider, so both clients always sign as the same
identity.
"""

from __future__ import annotations

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
class Clients:
    """The two clients of one side, bound to one bucket for obstore."""

    botocore: Any
    obstore: Any
    endpoint_url: str


class _CredentialProvider:
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


def make_clients(bucket: str, config: StoreConfig, max_connections: int) -> Clients:
    """Build both clients for ``bucket``.

    Raises:
        UsageError: the profile does not exist.
        AccessDeniedError: no credentials could be found (and unsigned was not asked for).
    """
    import botocore.exceptions
    import botocore.session
    from botocore import UNSIGNED
    from botocore.config import Config

    try:
        session = botocore.session.Session(profile=config.profile)
        region = config.region or session.get_config_variable("region") or DEFAULT_REGION
        credentials = None if config.no_sign_request else session.get_credentials()
    except botocore.exceptions.ProfileNotFound as e:
        raise UsageError(f"--profile {config.profile}", "no such profile") from e
    if credentials is None and not config.no_sign_request:
        raise AccessDeniedError(
            "credentials",
            "no AWS credentials found (environment, "
            "profile or config files); use --no-sign-request for public data",
        )
    boto_config = Config(
        max_pool_connections=max_connections,
        # We send our own CRC32C on every PUT/UploadPart; botocore's extra
        # checksums and payload hashing would only burn CPU.
        s3={"payload_signing_enabled": False},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        retries={"mode": "standard", "max_attempts": 5},
        signature_version=UNSIGNED if config.no_sign_request else None,
    )
    client = session.create_client(
        "s3", region_name=region, endpoint_url=config.endpoint_url, config=boto_config
    )
    endpoint = client.meta.endpoint_url
    store = _obstore(bucket, endpoint, region, credentials, max_connections)
    return Clients(botocore=client, obstore=store, endpoint_url=endpoint)


def _obstore(
    bucket: str,
    endpoint: str,
    region: str,
    credentials: botocore.credentials.Credentials | None,
    max_connections: int,
) -> Any:
    from obstore.store import S3Store

    custom = "amazonaws.com" not in endpoint
    options: ClientConfig = {
        "allow_http": endpoint.startswith("http://"),
        "pool_max_idle_per_host": str(max_connections),
    }
    kwargs: dict[str, Any] = {"region": region, "checksum_algorithm": "sha256"}
    if custom:
        kwargs.update(endpoint=endpoint, virtual_hosted_style_request=False)
    if credentials is None:
        kwargs["skip_signature"] = True
        return S3Store(bucket, client_options=options, **kwargs)
    return S3Store(
        bucket,
        client_options=options,
        credential_provider=_CredentialProvider(credentials),
        **kwargs,
    )

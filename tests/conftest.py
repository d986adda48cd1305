"""Session fixtures: one real SeaweedFS on 127.0.0.1 for the whole run, a fresh bucket per test."""

from __future__ import annotations

import itertools
import os
import signal
from collections.abc import Iterator
from typing import Any

import pytest
from support.partitions import Partitions, write_profiles

from s3ferry.config import StoreConfig
from s3ferry.localserver import LocalS3, LocalS3Info

_bucket_numbers = itertools.count()

# A test run started in the background of a non-interactive shell inherits SIGINT ignored,
# and so would every s3ferry it starts: the Ctrl-C tests would then see uploads finish
# (exit 0) instead of stopping. Children get the default back from a handler here.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def s3server() -> Iterator[LocalS3Info]:
    with LocalS3() as info:
        yield info


@pytest.fixture(scope="session")
def s3server2() -> Iterator[LocalS3Info]:
    """A second server with other keys: the far side of a copy between "partitions"."""
    with LocalS3(access_key_id="s3ferryother") as info:
        yield info


@pytest.fixture(scope="session")
def s3client(s3server: LocalS3Info) -> Any:
    return client_of(s3server)


@pytest.fixture(scope="session")
def s3client2(s3server2: LocalS3Info) -> Any:
    return client_of(s3server2)


def client_of(server: LocalS3Info) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=server.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=server.access_key_id,
        aws_secret_access_key=server.secret_access_key,
    )


@pytest.fixture
def bucket(s3client: Any) -> Iterator[str]:
    """A new, empty bucket for this test, emptied and deleted afterwards.

    SeaweedFS gives every bucket volumes of its own; deleting the bucket
    gives them back, so a long session never runs out.
    """
    name = f"t{os.getpid()}-{next(_bucket_numbers)}"
    s3client.create_bucket(Bucket=name)
    yield name
    drop_bucket(s3client, name)


@pytest.fixture
def bucket2(s3client2: Any) -> Iterator[str]:
    """A new, empty bucket on the second server."""
    name = f"u{os.getpid()}-{next(_bucket_numbers)}"
    s3client2.create_bucket(Bucket=name)
    yield name
    drop_bucket(s3client2, name)


@pytest.fixture
def partitions(
    s3server: LocalS3Info,
    s3server2: LocalS3Info,
    s3client: Any,
    s3client2: Any,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> Partitions:
    """Source on the first server, destination on the second, each by its own profile."""
    env = write_profiles(tmp_path_factory.mktemp("aws"), s3server, s3server2)
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Partitions(
        StoreConfig(endpoint_url=s3server.endpoint_url, profile="src"),
        StoreConfig(endpoint_url=s3server2.endpoint_url, profile="dst"),
        env,
        s3client,
        s3client2,
    )


def drop_bucket(client: Any, name: str) -> None:
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
        keys = [o["Key"] for o in page.get("Contents", ())]
        # DeleteObjects takes XML, which cannot carry control characters.
        batch = [{"Key": k} for k in keys if k.isprintable()]
        if batch:
            client.delete_objects(Bucket=name, Delete={"Objects": batch, "Quiet": True})
        for key in (k for k in keys if not k.isprintable()):
            client.delete_object(Bucket=name, Key=key)
    for u in client.list_multipart_uploads(Bucket=name).get("Uploads", ()):
        client.abort_multipart_upload(Bucket=name, Key=u["Key"], UploadId=u["UploadId"])
    client.delete_bucket(Bucket=name)


@pytest.fixture
def store_config(s3server: LocalS3Info, monkeypatch: pytest.MonkeyPatch) -> StoreConfig:
    """Credentials in the environment (as a user would set them) and the endpoint."""
    for name, value in s3server.env().items():
        monkeypatch.setenv(name, value)
    return StoreConfig(endpoint_url=s3server.endpoint_url)


@pytest.fixture
def cli_env(s3server: LocalS3Info, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment for running the ``s3ferry`` command against the test server; job
    journals go to a cache directory of this test's own, not the user's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(s3server.env())
    env["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache"))
    return env

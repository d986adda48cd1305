"""The main jobs against a second real S3 server of another make: ``rclone serve s3``.

SeaweedFS is the server of most tests; rclone's departs from S3 in other places
(see :mod:`support.rclone`), and s3ferry must neither fail on them nor damage data.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.rclone import rclone_s3_server
from support.trees import read_tree, write_tree

import s3ferry
from s3ferry import StoreConfig, TransferConfig, UnsupportedError
from s3ferry.cli.main import main
from s3ferry.jobs.migrate import cleanup, migrate
from s3ferry.jobs.worker import WorkerConfig
from s3ferry.storage.s3 import S3Store

MiB = 1024 * 1024
# Small enough to send a file of a few MiB in parts and fetch it in ranges.
LARGE_LANE = TransferConfig(multipart_threshold_bytes=5 * MiB, part_size_bytes=5 * MiB)
_numbers = itertools.count()


@pytest.fixture(scope="module")
def rclone_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    with rclone_s3_server(tmp_path_factory.mktemp("rclone-s3")) as env:
        yield env


@pytest.fixture
def rclone_store(rclone_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> StoreConfig:
    for name, value in rclone_env.items():
        monkeypatch.setenv(name, value)
    return StoreConfig(endpoint_url=rclone_env["AWS_ENDPOINT_URL"])


@pytest.fixture
def rclone_client(rclone_env: dict[str, str]) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=rclone_env["AWS_ENDPOINT_URL"],
        region_name=rclone_env["AWS_REGION"],
        aws_access_key_id=rclone_env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=rclone_env["AWS_SECRET_ACCESS_KEY"],
    )


@pytest.fixture
def rclone_bucket(rclone_client: Any) -> str:
    name = f"rc{next(_numbers)}"
    rclone_client.create_bucket(Bucket=name)
    return name


def _tree() -> dict[str, bytes]:
    return {
        "a b/ü/f +%#?&=;.txt": b"hi\n",
        "-dash": b"data",
        "empty": b"",
        "deep/x/y/z/big.bin": bytes(range(256)) * (12 * MiB // 256 + 7),
        "mid.bin": b"m" * (7 * MiB),
    }


def test_a_tree_with_a_file_in_parts_round_trips_unchanged(
    tmp_path: Path, rclone_store: StoreConfig, rclone_bucket: str, rclone_client: Any
) -> None:
    files = _tree()
    write_tree(tmp_path / "src", files)

    up = s3ferry.upload(
        tmp_path / "src", f"s3://{rclone_bucket}/p/", transfer=LARGE_LANE, store=rclone_store
    )
    down = s3ferry.download(
        f"s3://{rclone_bucket}/p/", tmp_path / "out", transfer=LARGE_LANE, store=rclone_store
    )

    assert (up.ok, up.objects_done) == (True, len(files)), up.failures
    assert (down.ok, down.objects_done) == (True, len(files)), down.failures
    assert read_tree(tmp_path / "out") == files
    # The store took a tagging request for a PutObject: none was sent to a real object,
    # and the probe that found out left nothing behind.
    listed = rclone_client.list_objects_v2(Bucket=rclone_bucket)["Contents"]
    assert sorted(o["Key"] for o in listed) == sorted(f"p/{k}" for k in files)
    big = rclone_client.head_object(Bucket=rclone_bucket, Key="p/deep/x/y/z/big.bin")
    assert big["ContentLength"] == len(files["deep/x/y/z/big.bin"])


def test_a_store_that_takes_tagging_for_a_put_keeps_the_object(
    rclone_store: StoreConfig, rclone_bucket: str, rclone_client: Any
) -> None:
    body = b"x" * MiB
    rclone_client.put_object(Bucket=rclone_bucket, Key="k", Body=body)
    store = S3Store(rclone_bucket, rclone_store)

    with pytest.raises(UnsupportedError):
        store.put_tags("k", {"a": "b"})
    with pytest.raises(UnsupportedError):
        store.get_tags("k")  # the store answers with the object's body

    assert rclone_client.get_object(Bucket=rclone_bucket, Key="k")["Body"].read() == body
    listed = rclone_client.list_objects_v2(Bucket=rclone_bucket)["Contents"]
    assert [o["Key"] for o in listed] == ["k"]


def test_migrate_copies_split_objects_on_a_store_without_part_copies(
    rclone_store: StoreConfig, rclone_client: Any, tmp_path: Path
) -> None:
    source, dest = f"rc{next(_numbers)}", f"rc{next(_numbers)}"
    for name in (source, dest):
        rclone_client.create_bucket(Bucket=name)
    bodies = {f"f{i}.bin": bytes([i]) * 6_000_000 for i in range(3)}
    for key, body in bodies.items():
        rclone_client.put_object(Bucket=source, Key=f"in/{key}", Body=body)
    worker = WorkerConfig(source_store=rclone_store, dest_store=rclone_store, wait_seconds=0.5)

    report = migrate(
        f"s3://{source}/in/", f"s3://{dest}/out/", workers=1, state_dir=tmp_path, worker=worker
    )

    # rclone's server takes UploadPartCopy for an UploadPart with no body; asked on an
    # upload of its own, it spoils none of the planned uploads, whose parts are streamed.
    assert (report.ok, report.dead, report.plan.part_tasks) == (True, 0, 6)
    for key, body in bodies.items():
        got = rclone_client.get_object(Bucket=dest, Key=f"out/{key}")["Body"].read()
        assert got == body, key
    assert not rclone_client.list_multipart_uploads(Bucket=dest).get("Uploads")


def test_cleanup_of_a_bucket_that_never_had_an_upload_finds_none(
    rclone_store: StoreConfig, rclone_bucket: str
) -> None:
    # rclone's server answers NoSuchUpload to the listing of such a bucket.
    assert list(cleanup(f"s3://{rclone_bucket}/", store=rclone_store)) == []


def test_a_store_without_lifecycle_configuration_says_so(
    rclone_store: StoreConfig, rclone_bucket: str
) -> None:
    # rclone's server answers GET ?lifecycle with a listing of the bucket.
    with pytest.raises(UnsupportedError, match="lifecycle"):
        S3Store(rclone_bucket, rclone_store).get_lifecycle()


def test_nothing_is_written_to_a_store_that_ignores_sse_c_keys(
    tmp_path: Path, rclone_store: StoreConfig, rclone_bucket: str, rclone_client: Any
) -> None:
    write_tree(tmp_path / "src", {"secret.txt": b"secret", "big.bin": b"b" * (6 * MiB)})
    encrypted = dataclasses.replace(rclone_store, sse_c_key=b"0123456789abcdef0123456789abcdef")

    report = s3ferry.upload(
        tmp_path / "src", f"s3://{rclone_bucket}/p/", transfer=LARGE_LANE, store=encrypted
    )

    # rclone's server would keep the bytes in the clear (and the key as metadata).
    assert (report.objects_done, report.objects_failed) == (0, 2)
    assert all("ignores SSE-C keys" in f.message for f in report.failures), report.failures
    assert "Contents" not in rclone_client.list_objects_v2(Bucket=rclone_bucket)


def test_an_unsigned_request_the_store_refuses_is_named_as_such(
    rclone_store: StoreConfig, rclone_bucket: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # rclone refuses a request without credentials as "Encountered an unsupported algorithm".
    code = main(["--json", "--no-sign-request", "ls", f"s3://{rclone_bucket}/"])

    out, err = capsys.readouterr()
    why = "access denied (UnsupportedAlgorithm); --no-sign-request sent no credentials"
    assert code == 2
    assert err == f"error: s3://{rclone_bucket}: {why}\n"
    assert json.loads(out) == {
        "type": "error",
        "subject": f"s3://{rclone_bucket}",
        "reason": "AccessDeniedError",
        "message": why,
        "exit_code": 2,
    }


def test_restore_where_the_store_refuses_restore_requests_fails_that_object_by_name(
    tmp_path: Path, rclone_store: StoreConfig, rclone_bucket: str, rclone_client: Any
) -> None:
    # rclone keeps the GLACIER class it was sent and answers RestoreObject with 405.
    rclone_client.put_object(Bucket=rclone_bucket, Key="c/cold", Body=b"x", StorageClass="GLACIER")
    rclone_client.put_object(Bucket=rclone_bucket, Key="c/warm", Body=b"y")

    report = s3ferry.restore(f"s3://{rclone_bucket}/c/", into=tmp_path / "out", store=rclone_store)

    assert report.transfer.objects_done == 1 and report.requested == 0
    [failure] = report.transfer.failures
    assert failure.message == (
        f"s3://{rclone_bucket}/c/cold: the store does not implement this (MethodNotAllowed)"
    )
    assert read_tree(tmp_path / "out") == {"warm": b"y"}

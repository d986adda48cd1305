"""``restore`` against moto's server, the only local server that emulates Glacier and
Deep Archive (GET refused until restored) and RestoreObject; SeaweedFS has neither.

moto finishes restores at once unless ``restore_delay`` holds them in progress
for a few HEADs; ``sleep`` is injected, so no test waits for real.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import Stubber
from botocore.utils import calculate_tree_hash
from support.moto import ACCESS, REGION, client, moto_server, restore_delay

from s3ferry.config import StoreConfig, TransferConfig
from s3ferry.errors import NotFoundError, UsageError
from s3ferry.events import Event, ObjectDone, RestoreRequested, RestoresPending
from s3ferry.jobs.backup import backup
from s3ferry.jobs.restore import RestoreReport, restore
from s3ferry.storage.s3 import S3Store

MiB = 1024 * 1024
MTIME_NS = 1_500_000_000_123_456_789
_numbers = itertools.count()


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with moto_server() as url:
        yield url


@dataclass
class Cold:
    """A fresh bucket on the moto server, and how to reach it."""

    endpoint: str
    client: Any
    bucket: str
    store: StoreConfig

    def put(self, key: str, body: bytes, storage_class: str = "STANDARD", **meta: str) -> None:
        metadata = {k.replace("_", "-"): v for k, v in meta.items()}
        self.client.put_object(
            Bucket=self.bucket, Key=key, Body=body, StorageClass=storage_class, Metadata=metadata
        )

    def put_in_parts(self, key: str, body: bytes, part_size: int, tree_hash: str) -> None:
        """A GLACIER object uploaded in parts as s3ferry records one: part size in
        metadata, tree hash in a tag."""
        upload_id = self.client.create_multipart_upload(
            Bucket=self.bucket,
            Key=key,
            StorageClass="GLACIER",
            Metadata={"s3ferry-part-size": str(part_size)},
        )["UploadId"]
        parts = []
        for number, start in enumerate(range(0, len(body), part_size), start=1):
            chunk = body[start : start + part_size]
            etag = self.client.upload_part(
                Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=chunk
            )["ETag"]
            parts.append({"PartNumber": number, "ETag": etag})
        self.client.complete_multipart_upload(
            Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
        )
        tag_set = [{"Key": "s3ferry-sha256-tree", "Value": tree_hash}]
        self.client.put_object_tagging(Bucket=self.bucket, Key=key, Tagging={"TagSet": tag_set})

    def restore_header(self, key: str) -> str | None:
        value: str | None = self.client.head_object(Bucket=self.bucket, Key=key).get("Restore")
        return value


@pytest.fixture
def cold(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Cold:
    for name, value in {**ACCESS, "AWS_REGION": REGION}.items():
        monkeypatch.setenv(name, value)
    s3 = client(endpoint)
    bucket = f"cold-{os.getpid()}-{next(_numbers)}"
    s3.create_bucket(Bucket=bucket)
    return Cold(endpoint, s3, bucket, StoreConfig(endpoint_url=endpoint))


@dataclass
class Run:
    report: RestoreReport
    events: list[Event]
    sleeps: list[float]


def run(cold: Cold, dest: Path | None, **options: Any) -> Run:
    events: list[Event] = []
    sleeps: list[float] = []
    report = restore(
        f"s3://{cold.bucket}/data",
        dest,
        store=cold.store,
        sink=events.append,
        sleep=sleeps.append,
        jitter=lambda: 0.5,  # no jitter: delays are exact
        poll_interval_s=0.5,
        **options,
    )
    return Run(report, events, sleeps)


def reference(data: bytes) -> str:
    """The tree hash by botocore's implementation of Glacier's definition."""
    return str(calculate_tree_hash(io.BytesIO(data)))


def states(**counts: int) -> dict[str, int]:
    names = ("archived", "restoring", "ready", "done", "exists", "failed")
    return {s: counts.get(s, 0) for s in names}


@pytest.fixture
def mixed(cold: Cold) -> dict[str, bytes]:
    """STANDARD, GLACIER and DEEP_ARCHIVE objects under data/, one GLACIER object outside."""
    files = {
        "small.txt": b"small",
        "cold/a.bin": os.urandom(3000),
        "cold/deep.bin": os.urandom(1000),
    }
    cold.put("data/small.txt", files["small.txt"], s3ferry_mtime_ns=str(MTIME_NS))
    cold.put("data/cold/a.bin", files["cold/a.bin"], "GLACIER", s3ferry_mtime_ns=str(MTIME_NS))
    cold.put("data/cold/deep.bin", files["cold/deep.bin"], "DEEP_ARCHIVE")
    cold.put("other/x", b"x", "GLACIER")
    return files


def tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_mixed_prefix_restores_waits_and_downloads(
    cold: Cold, mixed: dict[str, bytes], tmp_path: Path
) -> None:
    with restore_delay(cold.endpoint, looks=2):
        done = run(cold, tmp_path, tier="Standard", days=2)

    assert tree(tmp_path / "glacierrestore") == mixed
    assert done.report.states == states(archived=2, ready=1)
    assert (done.report.requested, done.report.pending, done.report.ok) == (2, 0, True)
    assert done.report.transfer.objects_done == 3
    requests = [e for e in done.events if isinstance(e, RestoreRequested)]
    assert sorted((e.key, e.tier, e.days, e.outcome) for e in requests) == [
        ("data/cold/a.bin", "Standard", 2, "started"),
        ("data/cold/deep.bin", "Standard", 2, "started"),
    ]
    assert done.sleeps and done.sleeps[0] == 0.5
    assert [e.objects for e in done.events if isinstance(e, RestoresPending)][0] == 2
    assert cold.restore_header("other/x") is None
    assert (tmp_path / "glacierrestore/small.txt").stat().st_mtime_ns == MTIME_NS


def test_no_wait_asks_reports_and_a_later_run_finishes(
    cold: Cold, mixed: dict[str, bytes], tmp_path: Path
) -> None:
    with restore_delay(cold.endpoint, looks=1):
        asked = run(cold, tmp_path, wait=False)
        again = run(cold, tmp_path, wait=False)
        nothing_yet = tree(tmp_path / "glacierrestore")
        finished = run(cold, tmp_path)
    repeated = run(cold, tmp_path)

    assert (asked.report.states, asked.report.requested) == (states(archived=2, ready=1), 2)
    assert (asked.report.pending, asked.sleeps, nothing_yet) == (2, [], {})
    assert (again.report.states, again.report.requested) == (states(restoring=2, ready=1), 0)
    assert finished.report.requested == 0 and finished.report.transfer.objects_done == 3
    assert tree(tmp_path / "glacierrestore") == mixed
    assert repeated.report.states == states(done=3)
    assert (repeated.report.requested, repeated.report.transfer.objects_done) == (0, 0)
    assert repeated.report.transfer.skipped_by_reason == {"already restored": 3}


def test_interrupted_wait_resumes_without_asking_again(
    cold: Cold, mixed: dict[str, bytes], tmp_path: Path
) -> None:
    def interrupted(seconds: float) -> None:
        raise KeyboardInterrupt

    with restore_delay(cold.endpoint, looks=3):
        with pytest.raises(KeyboardInterrupt):
            restore(f"s3://{cold.bucket}/data", tmp_path, store=cold.store, sleep=interrupted)
        assert tree(tmp_path / "glacierrestore") == {"small.txt": b"small"}
        resumed = run(cold, tmp_path)

    assert resumed.report.states == states(restoring=2, done=1)
    assert resumed.report.requested == 0
    assert tree(tmp_path / "glacierrestore") == mixed
    assert len(resumed.sleeps) >= 2


def test_existing_files_are_kept_unless_overwrite(cold: Cold, tmp_path: Path) -> None:
    cold.put("data/a.txt", b"remote", s3ferry_mtime_ns=str(MTIME_NS))
    cold.put("data/b.bin", b"archived", "GLACIER", s3ferry_mtime_ns=str(MTIME_NS))
    target = tmp_path / "glacierrestore"
    target.mkdir()
    (target / "a.txt").write_bytes(b"mine")
    (target / "b.bin").write_bytes(b"mine too")

    kept = run(cold, tmp_path)
    kept_tree = tree(target)
    replaced = run(cold, tmp_path, overwrite=True)
    again = run(cold, tmp_path)

    assert kept_tree == {"a.txt": b"mine", "b.bin": b"mine too"}
    assert (kept.report.states, kept.report.requested) == (states(exists=2), 0)
    assert kept.report.transfer.skipped_by_reason == {"exists (--overwrite replaces it)": 2}
    assert cold.restore_header("data/b.bin") is not None  # asked for by the --overwrite run
    assert replaced.report.states == states(ready=1, archived=1)
    assert tree(target) == {"a.txt": b"remote", "b.bin": b"archived"}
    assert again.report.states == states(done=2)


def test_into_writes_into_that_directory_itself(
    cold: Cold, mixed: dict[str, bytes], tmp_path: Path
) -> None:
    done = run(cold, None, into=tmp_path / "here")

    assert tree(tmp_path / "here") == mixed
    assert done.report.transfer.destination == str(tmp_path / "here")
    assert not (tmp_path / "glacierrestore").exists()


def test_mode_owner_mtime_and_links_are_restored(cold: Cold, tmp_path: Path) -> None:
    big = os.urandom(6 * MiB + 5)
    owner = {"s3ferry_uid": "1234", "s3ferry_gid": "2345"}
    cold.put("data/f.txt", b"f", s3ferry_mode="640", s3ferry_mtime_ns=str(MTIME_NS), **owner)
    cold.put("data/big.bin", big, "GLACIER", s3ferry_mode="600", s3ferry_mtime_ns=str(MTIME_NS))
    cold.put("data/link", b"", s3ferry_symlink="../../outside/t", s3ferry_mtime_ns=str(MTIME_NS))
    cold.put("data/link/evil.txt", b"must not be written through the link")
    small_parts = TransferConfig(multipart_threshold_bytes=5 * MiB, part_size_bytes=5 * MiB)

    done = run(cold, tmp_path, transfer=small_parts)

    root = tmp_path / "glacierrestore"
    f, b, link = (os.lstat(root / name) for name in ("f.txt", "big.bin", "link"))
    assert (stat.S_IMODE(f.st_mode), f.st_mtime_ns) == (0o640, MTIME_NS)
    if os.geteuid() == 0:
        assert (f.st_uid, f.st_gid) == (1234, 2345)
    assert (stat.S_IMODE(b.st_mode), b.st_mtime_ns) == (0o600, MTIME_NS)
    assert (root / "big.bin").read_bytes() == big
    assert stat.S_ISLNK(link.st_mode) and link.st_mtime_ns == MTIME_NS
    assert os.readlink(root / "link") == "../../outside/t"
    assert not (tmp_path / "outside").exists()
    assert done.report.transfer.objects_done == 3
    [failure] = done.report.transfer.failures
    assert (failure.key, failure.reason) == ("data/link/evil.txt", "LocalIOError")
    assert "is a symbolic link; refusing to write through it" in failure.message
    assert run(cold, tmp_path).report.states == states(done=3, ready=1)  # evil.txt again


def test_restored_files_are_checked_against_the_stored_tree_hash(
    cold: Cold, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    files = {"small.txt": b"small", "cold.bin": os.urandom(3000)}
    for name, data in files.items():
        (src / name).write_bytes(data)
    url = f"s3://{cold.bucket}/data/"
    # s3ferry's single PUTs record the tree hash in metadata.
    backed = backup(src, url, small_file_threshold=100, archive_class="GLACIER", store=cold.store)
    assert backed.ok, backed.transfer.failures
    # A multipart upload records it in a tag. (Made here, not by s3ferry: moto gives
    # multipart objects a CRC32C that is neither the composite nor the whole one.)
    files["big.bin"] = os.urandom(6 * MiB)
    cold.put_in_parts("data/big.bin", files["big.bin"], 5 * MiB, reference(files["big.bin"]))
    wrong = hashlib.sha256(b"not these bytes").hexdigest()
    cold.put("data/bad.bin", b"bytes", "GLACIER", s3ferry_sha256_tree=wrong)

    done = run(cold, tmp_path / "out", transfer=TransferConfig(multipart_threshold_bytes=5 * MiB))

    verified = {e.key: e.verified_by for e in done.events if isinstance(e, ObjectDone)}
    assert verified == {f"data/{name}": "sha256-tree" for name in files}
    [failure] = done.report.transfer.failures
    assert (failure.key, failure.reason) == ("data/bad.bin", "IntegrityError")
    assert f"!= stored {wrong}" in failure.message
    assert tree(tmp_path / "out/glacierrestore") == files  # bad.bin was not left there


def test_restore_request_outcomes(cold: Cold) -> None:
    cold.put("k", b"k", "GLACIER")
    store = S3Store(cold.bucket, cold.store)

    first = store.restore_object("k", 1, "Bulk")
    with Stubber(store._boto) as stub:
        stub.add_client_error(
            "restore_object", service_error_code="RestoreAlreadyInProgress", http_status_code=409
        )
        running = store.restore_object("k", 1, "Bulk")
    second = store.restore_object("k", 1, "Bulk")

    assert (first, running, second) == ("started", "in-progress", "restored")


def test_bad_input(cold: Cold, tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    url = f"s3://{cold.bucket}/data"
    for options, error in [
        ({"tier": "bulk"}, "--tier bulk: must be one of Bulk, Standard, Expedited"),
        ({"days": 0}, "--days 0: must be 1 or more"),
        ({"poll_interval_s": 0}, "--poll-interval 0: must be more than 0 seconds"),
        ({"into": tmp_path / "file"}, "exists and is not a directory"),
    ]:
        with pytest.raises(UsageError, match=error):
            restore(url, tmp_path, store=cold.store, **options)
    with pytest.raises(UsageError, match="needs a destination directory"):
        restore(url, store=cold.store)
    for ends in ({"destination": "s3://b/x/"}, {"into": "s3://b/x/"}):
        with pytest.raises(UsageError, match="writes to a local directory, not to a bucket"):
            restore(url, store=cold.store, **ends)
    assert not Path("s3:").exists()
    with pytest.raises(NotFoundError, match="bucket does not exist"):
        restore("s3://no-such-bucket-here/data", tmp_path, store=cold.store)

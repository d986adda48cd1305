"""What must never pass silently: changed sources, corrupt objects, memory growth, bad secrets."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support.faultproxy import FaultProxy, Faults
from support.trees import bucket_contents, md5s, write_tree

import s3ferry
from s3ferry import StoreConfig, TransferConfig
from s3ferry.events import Event, ObjectDone, ObjectQueued
from s3ferry.localserver import LocalS3Info

KiB = 1024
MiB = 1024 * KiB
LARGE_LANE = TransferConfig(multipart_threshold_bytes=5 * MiB, part_size_bytes=5 * MiB)


def _grow(path: Path) -> None:
    with path.open("ab") as f:
        f.write(b"one more byte")


def _shrink(path: Path) -> None:
    os.truncate(path, path.stat().st_size * 2 // 3)


def _touch(path: Path) -> None:
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def _delete(path: Path) -> None:
    path.unlink()


CHANGES: dict[str, tuple[Callable[[Path], None], str]] = {
    "grow": (_grow, "SourceChangedError"),
    "shrink": (_shrink, "SourceChangedError"),
    "touch": (_touch, "SourceChangedError"),
    "delete": (_delete, "LocalIOError"),
}


def _temps(root: Path) -> list[Path]:
    return list(root.rglob(".*.s3ferry-*"))


@pytest.mark.parametrize("size", [3 * KiB, 12 * MiB], ids=["small-lane", "large-lane"])
def test_files_changed_before_their_upload_are_reported(
    tmp_path: Path, bucket: str, store_config: StoreConfig, s3client: Any, size: int
) -> None:
    src = tmp_path / "src"
    stable = {"a-stable.txt": b"stays the same", "z-stable.bin": os.urandom(2 * KiB)}
    write_tree(src, {**stable, **{f"m/{name}.bin": os.urandom(size) for name in CHANGES}})

    def sink(event: Event) -> None:
        # Queued events come from the lister, before the file's upload starts.
        if isinstance(event, ObjectQueued) and event.key.startswith("p/m/"):
            name = event.key.removeprefix("p/m/").removesuffix(".bin")
            CHANGES[name][0](src / "m" / f"{name}.bin")

    report = s3ferry.upload(
        src, f"s3://{bucket}/p/", transfer=LARGE_LANE, store=store_config, sink=sink
    )

    assert {f.key: f.reason for f in report.failures} == {
        f"p/m/{name}.bin": reason for name, (_, reason) in CHANGES.items()
    }
    assert {f.path for f in report.failures} == {str(src / "m" / f"{n}.bin") for n in CHANGES}
    assert report.objects_failed == len(CHANGES)
    assert report.failures_by_reason == {"SourceChangedError": 3, "LocalIOError": 1}
    assert report.objects_done == 2
    assert not report.ok
    assert bucket_contents(s3client, bucket, "p/") == md5s(stable)
    assert "Uploads" not in s3client.list_multipart_uploads(Bucket=bucket)


def _corrupt(client: Any, bucket: str, key: str, new_size: int | None = None) -> bytes:
    """Replace the object's bytes behind s3ferry's back, keeping the metadata it recorded."""
    head = client.head_object(Bucket=bucket, Key=key)
    size = head["ContentLength"] if new_size is None else new_size
    body = os.urandom(size)
    client.put_object(Bucket=bucket, Key=key, Body=body, Metadata=head["Metadata"])
    assert client.head_object(Bucket=bucket, Key=key)["Metadata"] == head["Metadata"]
    return body


@pytest.mark.parametrize(
    ("size", "new_size"),
    [(3 * KiB, None), (12 * MiB, 11 * MiB)],
    ids=["small-lane-same-size", "large-lane-other-size"],
)
def test_corrupt_object_is_not_written(
    tmp_path: Path,
    bucket: str,
    store_config: StoreConfig,
    s3client: Any,
    size: int,
    new_size: int | None,
) -> None:
    src = tmp_path / "src"
    write_tree(src, {"ok.txt": b"fine", "bad.bin": os.urandom(size)})
    up = s3ferry.upload(src, f"s3://{bucket}/p/", transfer=LARGE_LANE, store=store_config)
    assert up.ok and up.objects_done == 2
    _corrupt(s3client, bucket, "p/bad.bin", new_size)

    out = tmp_path / "out"
    tree = s3ferry.download(f"s3://{bucket}/p/", out, transfer=LARGE_LANE, store=store_config)

    assert tree.objects_done == 1
    assert [(f.key, f.reason) for f in tree.failures] == [("p/bad.bin", "IntegrityError")]
    if new_size is not None:
        assert "bytes when s3ferry uploaded it" in tree.failures[0].message
    assert (out / "ok.txt").read_bytes() == b"fine"
    assert not (out / "bad.bin").exists()
    assert _temps(out) == []

    existing = tmp_path / "existing.bin"
    existing.write_bytes(b"keep me")
    one = s3ferry.download(
        f"s3://{bucket}/p/bad.bin", existing, transfer=LARGE_LANE, store=store_config
    )

    assert (one.objects_done, one.objects_failed) == (0, 1)
    assert one.failures[0].reason == "IntegrityError"
    assert existing.read_bytes() == b"keep me"
    assert _temps(tmp_path) == []


@pytest.mark.parametrize("key", ["k", "a//b"])  # sent by the event loop, or by botocore
def test_a_small_put_whose_body_does_not_match_its_crc32c_is_refused(
    key: str, bucket: str, store_config: StoreConfig, s3client: Any
) -> None:
    """The store, not s3ferry, checks the CRC32C a small PUT sends; metadata that only an
    encoding library may send (non-ASCII) takes another path, with the same result."""
    import asyncio

    from s3ferry.errors import IntegrityError
    from s3ferry.storage.s3 import S3Store
    from s3ferry.transfer.checksums import crc32c

    store = S3Store(bucket, store_config)
    body = b"the bytes read"
    right, wrong = crc32c(body), crc32c(b"other bytes")

    with pytest.raises(IntegrityError, match="store rejected the checksum"):
        asyncio.run(store.put_small(key, body, {"s3ferry-x": "1"}, wrong))
    meta = {"s3ferry-x": "1", "Content-Type": "a/b"}
    etag = asyncio.run(store.put_small(key, body, meta, right))
    asyncio.run(store.put_small("ü", body, {"s3ferry-link": "zielé"}, right))

    head = s3client.head_object(Bucket=bucket, Key=key)
    assert (etag, head["Metadata"], head["ContentType"]) == (
        hashlib.md5(body).hexdigest(),
        {"s3ferry-x": "1"},
        "a/b",
    )
    assert s3client.get_object(Bucket=bucket, Key="ü")["Body"].read() == body


@pytest.mark.parametrize(
    ("key", "meta"),
    [
        ("k", {"s3ferry-x": "1"}),  # the event loop's request: Content-MD5, checked by the store
        ("a//b", {"s3ferry-x": "1"}),  # botocore's request: the same
        ("k2", {"s3ferry-link": "zielé"}),  # obstore's, which cannot carry it: checked here
    ],
)
def test_a_small_put_whose_body_does_not_have_the_md5_given_is_refused(
    key: str, meta: dict[str, str], bucket: str, store_config: StoreConfig, s3client: Any
) -> None:
    """A streamed copy hands the source's MD5 to the PUT instead of hashing the bytes."""
    import asyncio

    from s3ferry.errors import IntegrityError
    from s3ferry.storage.s3 import S3Store
    from s3ferry.transfer.checksums import crc32c

    store = S3Store(bucket, store_config)
    body = b"the bytes read"
    wrong = hashlib.md5(b"the bytes at the source").digest()

    with pytest.raises(IntegrityError):
        asyncio.run(store.put_small(key, body, meta, crc32c(body), wrong))
    with pytest.raises(s3client.exceptions.ClientError):
        s3client.head_object(Bucket=bucket, Key=key)
    etag = asyncio.run(store.put_small(key, body, meta, crc32c(body), hashlib.md5(body).digest()))
    assert etag == hashlib.md5(body).hexdigest()


def test_whole_object_checksums_hold_across_parallel_ranges(
    tmp_path: Path, bucket: str, store_config: StoreConfig, s3client: Any
) -> None:
    """A single-PUT object fetched in ranges: its plain MD5 ETag is hashed in order, its
    whole-object CRC32C combined from the ranges' CRCs; neither re-reads the file after."""
    from s3ferry.transfer.checksums import META_CRC32C, crc32c

    bodies = {name: os.urandom(13 * MiB + 7) for name in ("md5.bin", "crc.bin", "bad.bin")}
    s3client.put_object(Bucket=bucket, Key="r/md5.bin", Body=bodies["md5.bin"])
    for name, crc_of in (("crc.bin", bodies["crc.bin"]), ("bad.bin", bodies["md5.bin"])):
        s3client.put_object(
            Bucket=bucket,
            Key=f"r/{name}",
            Body=bodies[name],
            Metadata={META_CRC32C: str(crc32c(crc_of))},
        )
    events: list[Event] = []

    report = s3ferry.download(
        f"s3://{bucket}/r/", tmp_path, transfer=LARGE_LANE, store=store_config, sink=events.append
    )

    verified = {e.key: e.verified_by for e in events if isinstance(e, ObjectDone)}
    assert verified == {"r/md5.bin": "md5", "r/crc.bin": "crc32c"}
    assert [(f.key, f.reason) for f in report.failures] == [("r/bad.bin", "IntegrityError")]
    assert "CRC32C" in report.failures[0].message
    for name in ("md5.bin", "crc.bin"):
        assert (tmp_path / name).read_bytes() == bodies[name]
    assert not (tmp_path / "bad.bin").exists()
    assert _temps(tmp_path) == []


@pytest.mark.parametrize("checksum", ["crc32c", "md5"])
def test_a_composite_checksum_is_checked_part_by_part_in_ranges_of_several_parts(
    checksum: str,
    tmp_path: Path,
    bucket: str,
    s3server: LocalS3Info,
    store_config: StoreConfig,
    s3client: Any,
) -> None:
    """A multipart object whose checksum is per part (composite CRC32C, or a multipart
    MD5 ETag) is fetched in ranges of as many whole parts as fit the range size."""
    body = os.urandom(23 * MiB + 5)  # parts of 5 MiB: 4 whole and 3 MiB + 5 bytes
    if checksum == "crc32c":  # s3ferry's upload: parts with CRC32C checksums
        (tmp_path / "src").mkdir()
        (tmp_path / "src" / "c.bin").write_bytes(body)
        assert s3ferry.upload(
            tmp_path / "src" / "c.bin", f"s3://{bucket}/c.bin", transfer=LARGE_LANE
        ).ok
        assert s3client.head_object(Bucket=bucket, Key="c.bin", ChecksumMode="ENABLED")[
            "ChecksumCRC32C"
        ].endswith("-5")
    else:  # parts without checksums: a multipart MD5 ETag is all there is
        upload = s3client.create_multipart_upload(Bucket=bucket, Key="c.bin")["UploadId"]
        parts = []
        for n, start in enumerate(range(0, len(body), 5 * MiB), start=1):
            r = s3client.upload_part(
                Bucket=bucket,
                Key="c.bin",
                UploadId=upload,
                PartNumber=n,
                Body=body[start : start + 5 * MiB],
            )
            parts.append({"PartNumber": n, "ETag": r["ETag"]})
        s3client.complete_multipart_upload(
            Bucket=bucket, Key="c.bin", UploadId=upload, MultipartUpload={"Parts": parts}
        )
    events: list[Event] = []
    proxy = FaultProxy(s3server.endpoint_url, Faults()).start()
    try:
        report = s3ferry.download(
            f"s3://{bucket}/c.bin",
            tmp_path / "c.bin",
            transfer=TransferConfig(multipart_threshold_bytes=5 * MiB, part_size_bytes=16 * MiB),
            store=StoreConfig(endpoint_url=proxy.endpoint_url),
            sink=events.append,
        )
    finally:
        proxy.stop()

    assert report.ok
    assert [e.verified_by for e in events if isinstance(e, ObjectDone)] == [checksum]
    assert (tmp_path / "c.bin").read_bytes() == body
    ranges = sorted(r for line, r in proxy.requests if line.startswith("GET") and r)
    assert ranges == [f"bytes=0-{15 * MiB - 1}", f"bytes={15 * MiB}-{len(body) - 1}"]


def test_part_hashers_split_a_range_at_its_parts() -> None:
    """Chunks that straddle part boundaries: each part's CRC32C and MD5 are its own bytes'."""
    from s3ferry.transfer.checksums import crc32c
    from s3ferry.transfer.download import _PartHashers, combined_crc

    data = os.urandom(10_000)
    start, part = 3_000, 1_000  # the range is bytes 3,000-12,999 of its object: 10 parts
    hashers = _PartHashers(start, start + len(data), part, want_md5=True)
    for lo, hi in [(0, 1), (1, 2_500), (2_500, 2_500), (2_500, 7_001), (7_001, 10_000)]:
        hashers.update(memoryview(data)[lo:hi], start + lo)

    pieces = [data[i : i + part] for i in range(0, len(data), part)]
    assert [h.crc for h in hashers.parts] == [crc32c(p) for p in pieces]
    assert [h.md5.digest() for h in hashers.parts if h.md5] == [
        hashlib.md5(p).digest() for p in pieces
    ]
    assert [h.size for h in hashers.parts] == [part] * 10
    assert hashers.crc == combined_crc(hashers.parts) == crc32c(data)


@pytest.mark.parametrize("job", ["download", "streamed-copy"])
def test_an_object_that_grew_after_it_was_listed_goes_through_the_ranged_lane(
    job: str, tmp_path: Path, bucket: str, store_config: StoreConfig, s3client: Any
) -> None:
    """The small lane holds whole objects in memory, budgeted by their listed size. One
    that grew after it was listed (here: as it is queued) is not held whole: it goes
    through the ranged lane, and arrives whole and verified."""
    s3client.put_object(Bucket=bucket, Key="g/grew.bin", Body=b"x" * KiB)
    s3client.put_object(Bucket=bucket, Key="g/same.bin", Body=b"same")
    grown = os.urandom(3 * MiB + 1)
    events: list[Event] = []

    def grow_when_queued(event: Event) -> None:
        events.append(event)
        if isinstance(event, ObjectQueued) and event.key == "g/grew.bin":
            s3client.put_object(Bucket=bucket, Key="g/grew.bin", Body=grown)

    if job == "download":
        report = s3ferry.download(
            f"s3://{bucket}/g/", tmp_path, store=store_config, sink=grow_when_queued
        )
        got = (tmp_path / "grew.bin").read_bytes()
    else:
        report = s3ferry.copy(
            f"s3://{bucket}/g/",
            f"s3://{bucket}/h/",
            source_store=store_config,
            path="streamed",
            sink=grow_when_queued,
        )
        got = s3client.get_object(Bucket=bucket, Key="h/grew.bin")["Body"].read()

    assert report.failures == ()
    assert got == grown
    in_parts = {e.key: e.in_parts for e in events if isinstance(e, ObjectDone)}
    assert in_parts == {"g/grew.bin": True, "g/same.bin": False}
    assert _temps(tmp_path) == []


def test_corrupt_object_to_stream_is_reported(
    tmp_path: Path, bucket: str, store_config: StoreConfig, s3client: Any
) -> None:
    f = tmp_path / "f.bin"
    f.write_bytes(os.urandom(5 * KiB))
    assert s3ferry.upload(f, f"s3://{bucket}/k", store=store_config).ok
    _corrupt(s3client, bucket, "k")

    report = s3ferry.download_to_stream(f"s3://{bucket}/k", io.BytesIO(), store=store_config)

    assert (report.objects_done, report.objects_failed) == (0, 1)
    assert report.failures[0].reason == "IntegrityError"
    assert not report.ok


_MEASURE = textwrap.dedent(
    """
    import resource, subprocess, sys
    code = subprocess.run([sys.executable, "-c", *sys.argv[1:]]).returncode
    print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    sys.exit(code)
    """
)

_JOB = textwrap.dedent(
    """
    import os, sys
    import s3ferry
    MiB = 1024 * 1024
    cfg = s3ferry.TransferConfig(
        part_size_bytes=8 * MiB,
        large_file_buffers=4,
        large_file_workers=2,
        multipart_threshold_bytes=8 * MiB,
    )
    job = s3ferry.upload if sys.argv[1] == "upload" else s3ferry.download
    report = job(sys.argv[2], sys.argv[3], transfer=cfg)
    print(report.objects_done, report.bytes_done, report.failures, file=sys.stderr)
    sys.stderr.flush()
    os._exit(0 if report.ok and report.objects_done == 1 else 3)
    """
)


def _peak_rss_bytes(env: dict[str, str], *args: str) -> int:
    """Peak RSS of one job run in a process of its own (the wrapper's only child)."""
    run = subprocess.run(
        [sys.executable, "-c", _MEASURE, _JOB, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert run.returncode == 0, run.stderr
    return int(run.stdout.split()[-1]) * KiB  # Linux reports ru_maxrss in KiB


def _md5_of(path: Path) -> str:
    h = hashlib.md5()
    with path.open("rb") as f:
        while chunk := f.read(MiB):
            h.update(chunk)
    return h.hexdigest()


def test_memory_stays_bounded_for_a_200MiB_file(
    tmp_path: Path, bucket: str, cli_env: dict[str, str]
) -> None:
    big = tmp_path / "big.bin"
    block = os.urandom(MiB)
    with big.open("wb") as f:
        for i in range(200):
            f.write(i.to_bytes(8, "big") + block[8:])
    bound = 4 * 8 * MiB + 150 * MiB

    up_peak = _peak_rss_bytes(cli_env, "upload", str(big), f"s3://{bucket}/big.bin")
    out = tmp_path / "back.bin"
    down_peak = _peak_rss_bytes(cli_env, "download", f"s3://{bucket}/big.bin", str(out))

    assert _md5_of(out) == _md5_of(big)
    print(f"peak RSS: upload {up_peak / MiB:.0f} MiB, download {down_peak / MiB:.0f} MiB")
    assert up_peak < bound, f"upload peak RSS {up_peak / MiB:.0f} MiB"
    assert down_peak < bound, f"download peak RSS {down_peak / MiB:.0f} MiB"


def test_wrong_secret_key_is_refused(
    tmp_path: Path,
    bucket: str,
    store_config: StoreConfig,
    s3client: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    f = tmp_path / "f.txt"
    f.write_bytes(b"secret")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret-key")

    with pytest.raises(s3ferry.AccessDeniedError):
        s3ferry.upload(f, f"s3://{bucket}/f.txt", store=store_config)
    with pytest.raises(s3ferry.AccessDeniedError):
        s3ferry.download(f"s3://{bucket}/f.txt", tmp_path / "out.txt", store=store_config)

    assert "Contents" not in s3client.list_objects_v2(Bucket=bucket)
    assert not (tmp_path / "out.txt").exists()

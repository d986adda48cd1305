"""Byte-identical round trips through the library API against a real S3 server (SeaweedFS)."""

from __future__ import annotations

import io
import os
import random
import threading
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from support.trees import bucket_contents, md5s, random_files, read_tree, write_tree

import s3ferry
from s3ferry import StoreConfig, TransferConfig
from s3ferry.events import Event, ObjectDone

KiB = 1024
MiB = 1024 * KiB
# Small enough to exercise the multipart / ranged lanes with files of a few MiB.
LARGE_LANE = TransferConfig(multipart_threshold_bytes=5 * MiB, part_size_bytes=5 * MiB)
OLD_MTIME_NS = 1_600_000_000_123_456_789


def _temps(root: Path) -> list[Path]:
    """Temporary files a download leaves beside its targets if it does not clean up."""
    return list(root.rglob(".*.s3ferry-*"))


def _keys(client: Any, bucket: str) -> set[str]:
    keys: set[str] = set()
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys.update(o["Key"] for o in page.get("Contents", ()))
    return keys


def _round_trip(
    tmp_path: Path,
    files: dict[str, bytes],
    bucket: str,
    store: StoreConfig,
    transfer: TransferConfig | None = None,
) -> tuple[s3ferry.JobReport, s3ferry.JobReport, Path]:
    src, out = tmp_path / "src", tmp_path / "out"
    write_tree(src, files)
    up = s3ferry.upload(src, f"s3://{bucket}/p/", transfer=transfer, store=store)
    down = s3ferry.download(f"s3://{bucket}/p/", out, transfer=transfer, store=store)
    return up, down, out


def test_small_file_tree_round_trip(
    tmp_path: Path, bucket: str, store_config: StoreConfig, s3client: Any
) -> None:
    files = random_files(200, (0, 1, 100, 4 * KiB, 17 * KiB, 64 * KiB))
    up, down, out = _round_trip(tmp_path, files, bucket, store_config)

    assert (up.objects_done, up.objects_failed, up.ok) == (200, 0, True), up.failures
    assert up.bytes_done == sum(len(v) for v in files.values())
    assert bucket_contents(s3client, bucket, "p/") == md5s(files)
    assert (down.objects_done, down.objects_failed, down.ok) == (200, 0, True), down.failures
    assert down.bytes_done == up.bytes_done
    assert read_tree(out) == files
    assert _temps(out) == []


def test_mixed_tree_with_multipart_files_round_trip(
    tmp_path: Path, bucket: str, store_config: StoreConfig, s3client: Any
) -> None:
    files = random_files(30, (0, 10, 3 * KiB, 64 * KiB), seed=2)
    rng = random.Random(3)
    files.update(
        {
            "big/six.bin": rng.randbytes(6 * MiB),
            "big/twelve.bin": rng.randbytes(12 * MiB + 7),
            "big/exactly-5MiB.bin": rng.randbytes(5 * MiB),
            "big/exactly-10MiB.bin": rng.randbytes(10 * MiB),
            "just-below.bin": rng.randbytes(5 * MiB - 1),
        }
    )
    up, down, out = _round_trip(tmp_path, files, bucket, store_config, LARGE_LANE)

    assert (up.objects_done, up.objects_failed) == (len(files), 0), up.failures
    assert bucket_contents(s3client, bucket, "p/") == md5s(files)
    ten = s3client.head_object(Bucket=bucket, Key="p/big/exactly-10MiB.bin", PartNumber=1)
    assert ten["PartsCount"] == 2
    assert ten["ContentLength"] == 5 * MiB
    assert (down.objects_done, down.objects_failed) == (len(files), 0), down.failures
    assert down.bytes_done == sum(len(v) for v in files.values())
    assert read_tree(out) == files
    assert _temps(out) == []


def test_awkward_names_round_trip_and_keys_are_prefix_plus_path(
    tmp_path: Path, bucket: str, store_config: StoreConfig, s3client: Any
) -> None:
    nfc = unicodedata.normalize("NFC", "café")
    nfd = unicodedata.normalize("NFD", "café")
    assert nfc != nfd
    deep = "/".join(f"l{i}" for i in range(30)) + "/bottom.txt"
    files = {
        "with space/a file.txt": b"spaces",
        f"uni/{nfc}.txt": b"composed",
        f"uni/{nfd}.txt": b"decomposed",
        "uni/日本語/ファイル.txt": "日本".encode(),
        "plus+sign.txt": b"+",
        "per%cent.txt": b"%",
        "per%20cent-encoded.txt": b"%20",
        "hash#mark.txt": b"#",
        "question?mark.txt": b"?",
        "amp&ersand.txt": b"&",
        "equals=sign.txt": b"=",
        "semi;colon.txt": b";",
        "-leading-dash.txt": b"-",
        "--double-dash": b"--",
        "dir-/-x": b"dash dir",
        deep: b"deep",
        "empty.bin": b"",
        "zero/also-empty": b"",
        # Large lane: multipart upload, ranged GETs of a key that needs escaping.
        "big %20 #?&=;+ é.bin": os.urandom(6 * MiB),
    }
    up, down, out = _round_trip(tmp_path, files, bucket, store_config, LARGE_LANE)

    assert up.failures == ()
    assert up.objects_done == len(files)
    assert _keys(s3client, bucket) == {"p/" + rel for rel in files}
    assert bucket_contents(s3client, bucket, "p/") == md5s(files)
    assert down.failures == ()
    assert down.objects_done == len(files)
    assert read_tree(out) == files
    assert (out / "uni" / f"{nfc}.txt").read_bytes() == b"composed"
    assert (out / "uni" / f"{nfd}.txt").read_bytes() == b"decomposed"


def test_empty_directories_are_reported_as_skipped(
    tmp_path: Path, bucket: str, store_config: StoreConfig, s3client: Any
) -> None:
    src = tmp_path / "src"
    write_tree(src, {"a.txt": b"a"})
    (src / "empty").mkdir()
    (src / "nested" / "empty-too").mkdir(parents=True)

    report = s3ferry.upload(src, f"s3://{bucket}/p/", store=store_config)

    assert report.ok
    assert report.objects_done == 1
    assert report.objects_skipped == 2
    assert report.skipped_by_reason == {"empty directory": 2}
    assert _keys(s3client, bucket) == {"p/a.txt"}


@pytest.mark.parametrize("size", [3 * KiB, 6 * MiB], ids=["small-lane", "large-lane"])
def test_upload_records_mtime_and_size_and_download_restores_mtime(
    tmp_path: Path, bucket: str, store_config: StoreConfig, s3client: Any, size: int
) -> None:
    src = tmp_path / "src"
    write_tree(src, {"f.bin": os.urandom(size)})
    os.utime(src / "f.bin", ns=(OLD_MTIME_NS, OLD_MTIME_NS))
    st = (src / "f.bin").stat()
    assert st.st_mtime_ns == OLD_MTIME_NS

    up = s3ferry.upload(src, f"s3://{bucket}/p/", transfer=LARGE_LANE, store=store_config)
    assert up.ok and up.objects_done == 1

    meta = s3client.head_object(Bucket=bucket, Key="p/f.bin")["Metadata"]
    assert meta["s3ferry-mtime-ns"] == str(st.st_mtime_ns)
    assert meta["s3ferry-size"] == str(size)

    out = tmp_path / "out"
    down = s3ferry.download(f"s3://{bucket}/p/", out, transfer=LARGE_LANE, store=store_config)
    assert down.ok and down.objects_done == 1
    assert (out / "f.bin").stat().st_mtime_ns == OLD_MTIME_NS
    assert (out / "f.bin").read_bytes() == (src / "f.bin").read_bytes()


def test_single_file_forms(
    tmp_path: Path, bucket: str, store_config: StoreConfig, s3client: Any
) -> None:
    f = tmp_path / "one.txt"
    f.write_bytes(b"single file")

    r1 = s3ferry.upload(f, f"s3://{bucket}/exact/key.dat", store=store_config)
    r2 = s3ferry.upload(f, f"s3://{bucket}/pre/", store=store_config)
    assert r1.ok and r2.ok and r1.objects_done == r2.objects_done == 1
    assert _keys(s3client, bucket) == {"exact/key.dat", "pre/one.txt"}

    existing = tmp_path / "existing-dir"
    existing.mkdir()
    d1 = s3ferry.download(f"s3://{bucket}/exact/key.dat", existing, store=store_config)
    assert d1.ok and d1.objects_done == 1
    assert [p.name for p in existing.iterdir()] == ["key.dat"]
    assert (existing / "key.dat").read_bytes() == b"single file"

    newfile = tmp_path / "newfile"
    d2 = s3ferry.download(f"s3://{bucket}/pre/one.txt", newfile, store=store_config)
    assert d2.ok and d2.objects_done == 1
    assert newfile.is_file()
    assert newfile.read_bytes() == b"single file"
    assert _temps(tmp_path) == []


def test_downloading_the_same_prefix_twice_overwrites_cleanly(
    tmp_path: Path, bucket: str, store_config: StoreConfig
) -> None:
    files = random_files(20, (0, 50, 2 * KiB), seed=5)
    files["big.bin"] = os.urandom(6 * MiB)
    src, out = tmp_path / "src", tmp_path / "out"
    write_tree(src, files)
    assert s3ferry.upload(src, f"s3://{bucket}/p/", transfer=LARGE_LANE, store=store_config).ok

    first = s3ferry.download(f"s3://{bucket}/p/", out, transfer=LARGE_LANE, store=store_config)
    # Scribble over the local copies: the second download must replace them all.
    for path in out.rglob("*"):
        if path.is_file():
            path.write_bytes(b"stale")
    second = s3ferry.download(f"s3://{bucket}/p/", out, transfer=LARGE_LANE, store=store_config)

    assert first.ok and second.ok
    assert first.objects_done == second.objects_done == len(files)
    assert read_tree(out) == files
    assert _temps(out) == []


@pytest.mark.parametrize(
    "size", [0, KiB, 5 * MiB, 12 * MiB], ids=["empty", "1KiB", "5MiB", "12MiB"]
)
def test_stream_round_trip(bucket: str, store_config: StoreConfig, size: int) -> None:
    data = os.urandom(size)
    url = f"s3://{bucket}/stream/k"

    up = s3ferry.upload_from_stream(io.BytesIO(data), url, transfer=LARGE_LANE, store=store_config)
    assert up.failures == ()
    assert (up.objects_done, up.bytes_done) == (1, size)

    sink = io.BytesIO()
    down = s3ferry.download_to_stream(url, sink, transfer=LARGE_LANE, store=store_config)
    assert down.failures == ()
    assert (down.objects_done, down.bytes_done) == (1, size)
    assert sink.getvalue() == data


def test_sink_receives_exactly_one_object_done_per_object(
    tmp_path: Path, bucket: str, store_config: StoreConfig
) -> None:
    files = random_files(40, (0, 10, 1 * KiB), seed=9)
    files["big.bin"] = os.urandom(11 * MiB)
    src = tmp_path / "src"
    write_tree(src, files)
    events: list[Event] = []
    lock = threading.Lock()

    def sink(event: Event) -> None:
        with lock:
            events.append(event)

    up = s3ferry.upload(
        src, f"s3://{bucket}/p/", transfer=LARGE_LANE, store=store_config, sink=sink
    )
    done_up = [e.key for e in events if isinstance(e, ObjectDone)]
    events.clear()
    down = s3ferry.download(
        f"s3://{bucket}/p/", tmp_path / "out", transfer=LARGE_LANE, store=store_config, sink=sink
    )
    done_down = [e.key for e in events if isinstance(e, ObjectDone)]

    assert up.ok and down.ok
    expected = sorted("p/" + rel for rel in files)
    assert sorted(done_up) == expected
    assert sorted(done_down) == expected

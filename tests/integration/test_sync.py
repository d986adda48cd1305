"""sync and compare against SeaweedFS: what is copied, skipped and deleted, and why."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from s3ferry.config import StoreConfig
from s3ferry.errors import UsageError
from s3ferry.events import Compared, Event, Planned
from s3ferry.jobs.sync import compare, sync
from s3ferry.planning.policy import Filters, Rule


def write(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def remote(s3client: Any, bucket: str, prefix: str = "p/") -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for page in s3client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for o in page.get("Contents", ()):
            body = s3client.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
            out[o["Key"][len(prefix) :]] = body
    return out


class Plans:
    def __init__(self) -> None:
        self.events: list[Planned] = []

    def __call__(self, event: Event) -> None:
        if isinstance(event, Planned):
            self.events.append(event)

    def actions(self) -> dict[str, str]:
        return {e.key.removeprefix("p/"): e.action for e in self.events}


TREE = {"a/one.txt": b"one", "a/b/two.txt": b"two!", "a-b.txt": b"dash", "top.bin": b"\0" * 100}


def test_sync_up_copies_then_skips_everything(
    tmp_path: Path, bucket: str, s3client: Any, store_config: StoreConfig
) -> None:
    write(tmp_path, TREE)
    first = sync(tmp_path, f"s3://{bucket}/p/", store=store_config)
    assert first.ok and first.planned["copy"] == 4
    assert remote(s3client, bucket) == TREE

    plans = Plans()
    again = sync(tmp_path, f"s3://{bucket}/p/", store=store_config, sink=plans)

    assert again.planned == {"copy": 0, "skip": 4, "delete": 0}
    assert set(plans.actions().values()) == {"skip"}


def test_changed_size_and_mtime_are_copied_and_same_size_same_mtime_needs_checksum(
    tmp_path: Path, bucket: str, s3client: Any, store_config: StoreConfig
) -> None:
    write(tmp_path, TREE)
    sync(tmp_path, f"s3://{bucket}/p/", store=store_config)
    one = tmp_path / "a/one.txt"
    stat = one.stat()
    write(tmp_path, {"a/b/two.txt": b"longer now", "a/one.txt": b"ONE"})
    os.utime(one, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same size, mtime forced back
    future = stat.st_mtime_ns + 10**10
    os.utime(tmp_path / "top.bin", ns=(future, future))  # mtime-only change
    past = stat.st_mtime_ns - 10**11
    (tmp_path / "a-b.txt").write_bytes(b"DASH")  # rewritten, same size, an mtime from before
    os.utime(tmp_path / "a-b.txt", ns=(past, past))  # the upload (as cp -p or tar x leave it)

    plans = Plans()
    sync(tmp_path, f"s3://{bucket}/p/", dry_run=True, store=store_config, sink=plans)
    assert plans.actions() == {
        "a-b.txt": "copy",  # its ctime says it was touched after the upload
        "a/b/two.txt": "copy",
        "a/one.txt": "skip",  # size+mtime cannot see this change: that is what --checksum is for
        "top.bin": "copy",
    }
    reasons = {e.key: e.reason for e in plans.events}
    assert "mtime differs" in reasons["p/top.bin"]

    checked = Plans()
    sync(tmp_path, f"s3://{bucket}/p/", rule=Rule.CHECKSUM, store=store_config, sink=checked)
    assert checked.actions()["a/one.txt"] == "copy"
    assert checked.actions()["top.bin"] == "skip"  # same content
    assert remote(s3client, bucket)["a/one.txt"] == b"ONE"


def test_checksum_compares_multipart_objects_by_tree_hash_else_crc32c(
    tmp_path: Path, bucket: str, s3client: Any, store_config: StoreConfig
) -> None:
    from s3ferry.config import TransferConfig

    big = os.urandom(11 * 1024 * 1024)
    write(tmp_path, {"big.bin": big})
    small_parts = TransferConfig(multipart_threshold_bytes=5 << 20, part_size_bytes=5 << 20)
    sync(tmp_path, f"s3://{bucket}/p/", transfer=small_parts, store=store_config)
    url = f"s3://{bucket}/p/"
    assert checked(tmp_path, url, store_config) == ("identical", "same SHA-256 tree hash")

    flipped = bytearray(big)
    flipped[7 << 20] ^= 1
    stat = (tmp_path / "big.bin").stat()
    (tmp_path / "big.bin").write_bytes(bytes(flipped))
    os.utime(tmp_path / "big.bin", ns=(stat.st_atime_ns, stat.st_mtime_ns))

    assert compare(tmp_path, url, store=store_config).same
    assert checked(tmp_path, url, store_config) == ("different", "SHA-256 tree hash differs")
    # An object uploaded before s3ferry recorded tree hashes: its CRC32C still decides.
    s3client.delete_object_tagging(Bucket=bucket, Key="p/big.bin")
    assert checked(tmp_path, url, store_config) == ("different", "CRC32C differs")


def checked(local: Path, url: str, store: StoreConfig) -> tuple[str, str]:
    """``compare --checksum`` of a tree of one file: its status and the reason."""
    events: list[Event] = []
    compare(local, url, rule=Rule.CHECKSUM, store=store, sink=events.append)
    [result] = [e for e in events if isinstance(e, Compared)]
    return result.status, result.reason


def test_delete_removes_extras_but_never_excluded_paths(
    tmp_path: Path, bucket: str, s3client: Any, store_config: StoreConfig
) -> None:
    write(tmp_path, TREE)
    sync(tmp_path, f"s3://{bucket}/p/", store=store_config)
    (tmp_path / "a/one.txt").unlink()
    (tmp_path / "top.bin").unlink()

    report = sync(
        tmp_path,
        f"s3://{bucket}/p/",
        delete=True,
        filters=Filters(exclude=("*.bin",)),
        store=store_config,
    )

    assert report.deleted == 1
    assert sorted(remote(s3client, bucket)) == ["a-b.txt", "a/b/two.txt", "top.bin"]


def test_delete_reaches_keys_that_xml_cannot_carry(
    tmp_path: Path, bucket: str, s3client: Any, store_config: StoreConfig
) -> None:
    write(tmp_path, {"keep.txt": b"k"})
    for key in ("p/ctrl\x01key", "p/plain-extra"):
        s3client.put_object(Bucket=bucket, Key=key, Body=b"x")

    report = sync(tmp_path, f"s3://{bucket}/p/", delete=True, store=store_config)

    assert report.ok and report.deleted == 2
    assert sorted(remote(s3client, bucket)) == ["keep.txt"]


def test_file_replaced_by_a_directory_of_the_same_name(
    tmp_path: Path, bucket: str, s3client: Any, store_config: StoreConfig
) -> None:
    write(tmp_path, {"x": b"file", "keep.txt": b"k"})
    sync(tmp_path, f"s3://{bucket}/p/", store=store_config)
    (tmp_path / "x").unlink()
    write(tmp_path, {"x/inside.txt": b"now a dir"})

    report = sync(tmp_path, f"s3://{bucket}/p/", delete=True, store=store_config)

    assert report.ok and report.deleted == 1
    assert remote(s3client, bucket) == {"keep.txt": b"k", "x/inside.txt": b"now a dir"}


def test_max_delete_and_empty_source_refuse_to_delete(
    tmp_path: Path, bucket: str, s3client: Any, store_config: StoreConfig
) -> None:
    write(tmp_path / "src", TREE)
    sync(tmp_path / "src", f"s3://{bucket}/p/", store=store_config)
    for rel in ("a/one.txt", "a/b/two.txt"):
        (tmp_path / "src" / rel).unlink()

    capped = sync(
        tmp_path / "src", f"s3://{bucket}/p/", delete=True, max_delete=1, store=store_config
    )

    assert capped.deleted == 0 and not capped.ok
    assert "exceed --max-delete 1" in capped.transfer.failures[0].message
    assert len(remote(s3client, bucket)) == 4
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="source is empty"):
        sync(tmp_path / "empty", f"s3://{bucket}/p/", delete=True, store=store_config)


def test_sync_down_and_compare_both_ways(
    tmp_path: Path, bucket: str, store_config: StoreConfig
) -> None:
    write(tmp_path / "src", TREE)
    sync(tmp_path / "src", f"s3://{bucket}/p/", store=store_config)

    down = sync(f"s3://{bucket}/p/", tmp_path / "dst", store=store_config)
    assert down.ok and down.planned["copy"] == 4
    assert (tmp_path / "dst/a/b/two.txt").read_bytes() == b"two!"
    write(tmp_path / "dst", {"extra.txt": b"local only"})
    again = sync(f"s3://{bucket}/p/", tmp_path / "dst", delete=True, store=store_config)
    assert again.planned == {"copy": 0, "skip": 4, "delete": 1} and again.deleted == 1
    assert not (tmp_path / "dst/extra.txt").exists()

    (tmp_path / "src/a-b.txt").write_bytes(b"DASH + more")
    result = compare(tmp_path / "src", f"s3://{bucket}/p/", store=store_config)
    assert (result.identical, result.different, result.only_source, result.only_target) == (
        3,
        1,
        0,
        0,
    )


def test_objects_s3ferry_did_not_upload_are_synced_down_once(
    tmp_path: Path, bucket: str, s3client: Any, store_config: StoreConfig
) -> None:
    for key, body in {"p/a.txt": b"alpha", "p/d/b.txt": b"beta"}.items():
        s3client.put_object(Bucket=bucket, Key=key, Body=body)  # no s3ferry mtime recorded

    first = sync(f"s3://{bucket}/p/", tmp_path, store=store_config)
    again = sync(f"s3://{bucket}/p/", tmp_path, store=store_config)

    assert first.planned["copy"] == 2 and again.planned == {"copy": 0, "skip": 2, "delete": 0}
    modified = s3client.head_object(Bucket=bucket, Key="p/a.txt")["LastModified"]
    assert (tmp_path / "a.txt").stat().st_mtime == int(modified.timestamp())
    assert compare(f"s3://{bucket}/p/", tmp_path, store=store_config).same
    # A local change of the same size, made later, is still found.
    (tmp_path / "a.txt").write_bytes(b"ALPHA")
    later = int(modified.timestamp()) + 5
    os.utime(tmp_path / "a.txt", (later, later))
    assert sync(f"s3://{bucket}/p/", tmp_path, store=store_config).planned["copy"] == 1
    assert (tmp_path / "a.txt").read_bytes() == b"alpha"

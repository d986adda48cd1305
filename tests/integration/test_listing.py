"""Parallel listing against SeaweedFS: any key space, in key order, each key exactly once."""

from __future__ import annotations

import gzip
import itertools
import json
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.keys import put_keys
from support.moto import ACCESS, REGION, client, moto_server

from s3ferry.config import StoreConfig
from s3ferry.errors import AccessDeniedError, NotFoundError, UsageError
from s3ferry.jobs import inventory as inventory_job
from s3ferry.jobs.listing import Folder, disk_usage, iter_objects, list_bucket
from s3ferry.listing.bucket import _Lister, list_objects
from s3ferry.storage.s3 import S3Store

_examples = itertools.count()

# SeaweedFS stores "a//b" as "a/b" and a folder marker "p/" and an object "p"
# as one entry: such keys are listed from moto's S3 below.
AWKWARD_KEYS = [
    "plain.txt",
    "with space/a+b.txt",
    "naïve/日本語/ファイル.bin",
    "emoji/\U0001f600.dat",
    "a/b",
    "a-b",
    "folder/",
    "100%/x&y<z>.txt",
    "ctrl\x01char",
    # 1,024 bytes; SeaweedFS refuses long path segments, so in six of them.
    "/".join(["k" * 200] * 5) + "/" + "k" * 19,
]


def test_awkward_keys_come_back_exactly_in_s3_order(
    s3client: Any, bucket: str, store_config: StoreConfig
) -> None:
    put_keys(s3client, bucket, AWKWARD_KEYS)
    store = S3Store(bucket, store_config)
    serial = [e.key for e in list_objects(store, workers=1)]
    for workers, page_keys in ((4, 1000), (4, 1), (3, 2)):
        listed = [e.key for e in list_objects(store, workers=workers, page_keys=page_keys)]
        assert listed == serial
    # SeaweedFS walks directories, so its order is not S3's byte order ("a/b"
    # before "a-b"); s3ferry returns what a serial listing of the server returns.
    assert sorted(serial) == sorted(AWKWARD_KEYS)
    entry = next(iter_objects(f"s3://{bucket}/plain", store=store_config))
    assert (entry.key, entry.size_bytes, entry.storage_class) == ("plain.txt", 1, "STANDARD")
    assert len(entry.etag) == 32 and entry.last_modified.startswith("20")


def test_keys_seaweedfs_folds_are_listed_exactly_from_a_store_that_keeps_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Empty segments, a leading "/", and an object beside its folder marker: SeaweedFS
    folds these keys together, moto's S3 keeps each as given."""
    keys = ["a//b", "a/b", "a//", "a/", "a///c", "p", "p/", "p//q", "/lead", "//", "trail//"]
    for name, value in {**ACCESS, "AWS_REGION": REGION}.items():
        monkeypatch.setenv(name, value)
    with moto_server() as endpoint:
        s3 = client(endpoint)
        s3.create_bucket(Bucket="odd")
        for key in keys:
            s3.put_object(Bucket="odd", Key=key, Body=key.encode())
        config = StoreConfig(endpoint_url=endpoint)
        store = S3Store("odd", config)
        for workers, page_keys in ((1, 1000), (4, 1), (3, 2)):
            listed = [e.key for e in list_objects(store, workers=workers, page_keys=page_keys)]
            assert listed == sorted(keys, key=str.encode)
        for prefix in ("", "a/", "p/"):
            answer = s3.list_objects_v2(Bucket="odd", Prefix=prefix, Delimiter="/")
            expected = sorted(
                [o["Key"] for o in answer.get("Contents", ())]
                + [p["Prefix"] for p in answer.get("CommonPrefixes", ())]
            )
            level = list_bucket(f"s3://odd/{prefix}", store=config)
            assert [e.prefix if isinstance(e, Folder) else e.key for e in level] == expected


def test_workers_whose_split_found_nothing_split_again_later(
    s3client: Any, bucket: str, store_config: StoreConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first three splits find nothing (as early splits of flat keys with a long
    shared prefix can). The workers that tried must not give up: that once left one
    worker listing a 1,000,000-key bucket alone."""
    keys = [f"k{i:05d}" for i in range(400)]
    put_keys(s3client, bucket, keys)
    split, failed = _Lister._split, itertools.count()

    def nothing_at_first(self: _Lister, victim: Any) -> Any:
        return None if next(failed) < 3 else split(self, victim)

    monkeypatch.setattr(_Lister, "_split", nothing_at_first)
    store = S3Store(bucket, store_config)
    listers: set[str] = set()
    page = store.list_page

    def counted(prefix: str, **kw: Any) -> Any:
        if kw["max_keys"] == 10:
            listers.add(threading.current_thread().name)
        return page(prefix, **kw)

    monkeypatch.setattr(store, "list_page", counted)
    assert [e.key for e in list_objects(store, workers=4, page_keys=10)] == keys
    assert len(listers - {"MainThread"}) >= 2


def test_one_level_listing_merges_folders_and_objects(
    s3client: Any, bucket: str, store_config: StoreConfig
) -> None:
    put_keys(s3client, bucket, ["a-b", "a/b", "a/c/d", "b", "c/"])
    top = list(list_bucket(f"s3://{bucket}", store=store_config))
    assert [e.prefix if isinstance(e, Folder) else e.key for e in top] == ["a-b", "a/", "b", "c/"]
    inner = list(list_bucket(f"s3://{bucket}/a/", store=store_config))
    assert [e.prefix if isinstance(e, Folder) else e.key for e in inner] == ["a/b", "a/c/"]


def test_empty_bucket_and_unmatched_prefix_list_nothing(
    s3client: Any, bucket: str, store_config: StoreConfig
) -> None:
    assert list(iter_objects(f"s3://{bucket}", store=store_config)) == []
    put_keys(s3client, bucket, ["a"])
    assert list(iter_objects(f"s3://{bucket}/zzz", store=store_config)) == []
    assert list(list_bucket(f"s3://{bucket}/zzz", store=store_config)) == []


def test_start_after_resumes_past_a_key(
    s3client: Any, bucket: str, store_config: StoreConfig
) -> None:
    keys = [f"k{i:03d}" for i in range(50)]
    put_keys(s3client, bucket, keys)
    listed = iter_objects(f"s3://{bucket}", store=store_config, start_after="k024", workers=3)
    assert [e.key for e in listed] == keys[25:]


def test_disk_usage_counts_objects_and_bytes(
    s3client: Any, bucket: str, store_config: StoreConfig
) -> None:
    for i in range(7):
        s3client.put_object(Bucket=bucket, Key=f"d/{i}", Body=b"x" * i)
    usage = disk_usage(f"s3://{bucket}/d/", store=store_config)
    assert (usage.objects, usage.size_bytes) == (7, 21)
    assert usage.by_storage_class["STANDARD"].objects == 7


def test_missing_bucket_and_wrong_credentials_are_one_line_errors(
    store_config: StoreConfig, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(NotFoundError, match="bucket does not exist"):
        list(iter_objects("s3://no-such-bucket-here", store=store_config))
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    with pytest.raises(AccessDeniedError):
        list(list_bucket(f"s3://{bucket}", store=store_config))


nested_keys = st.lists(
    st.lists(st.sampled_from(["a", "b", "ü", "z9", "日", "x y"]), min_size=1, max_size=4).map(
        "/".join
    ),
    min_size=0,
    max_size=120,
)
flat_keys = st.lists(
    # Flat: no "/" at all. SeaweedFS stores a backslash as "/", so none of those either,
    # and it refuses the keys "." and ".." (InvalidRequest).
    st.text(
        st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"], exclude_characters="/\\"),
        min_size=1,
        max_size=12,
    ).filter(lambda k: k not in (".", "..")),
    min_size=0,
    max_size=120,
)


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    keys=st.one_of(nested_keys, flat_keys),
    workers=st.integers(1, 6),
    page_keys=st.integers(1, 7),
)
def test_shards_never_overlap_or_drop_a_key(
    s3client: Any,
    bucket: str,
    store_config: StoreConfig,
    keys: list[str],
    workers: int,
    page_keys: int,
) -> None:
    """Small pages force many splits (structural and by bisection); the result must be
    exactly what a serial listing returns."""
    # SeaweedFS is a file system underneath: a key that is also another key's
    # directory ("a" and "a/b") may lose one of them, so such sets are not made.
    keys = [k for k in set(keys) if not any(o.startswith(k + "/") for o in keys)]
    prefix = f"ex{next(_examples)}/"
    put_keys(s3client, bucket, [prefix + k for k in keys])
    store = S3Store(bucket, store_config)
    parallel = [e.key for e in list_objects(store, prefix, workers=workers, page_keys=page_keys)]
    serial = [e.key for e in list_objects(store, prefix, workers=1)]
    assert parallel == serial
    assert sorted(serial) == sorted(prefix + k for k in keys)


def test_an_inventory_whose_shards_end_on_a_write_batch_has_no_empty_line(
    s3client: Any,
    bucket: str,
    store_config: StoreConfig,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Entries go to the gzip stream in batches; a shard of a whole number of batches
    # once ended with an empty line, which every JSON-lines reader (ours too) refuses.
    monkeypatch.setattr(inventory_job, "_WRITE_BATCH", 2)
    keys = [f"k{i}" for i in range(8)]
    put_keys(s3client, bucket, keys)

    inventory_job.inventory(f"s3://{bucket}", tmp_path, shard_size=4, store=store_config)

    for shard in sorted(tmp_path.glob("part-*.jsonl.gz")):
        with gzip.open(shard, "rt", encoding="utf-8") as f:
            assert [json.loads(line)["key"] for line in f] != []
    _, entries = inventory_job.read_inventory(tmp_path)
    assert [e.key for e in entries] == keys


@pytest.mark.parametrize(
    "shards", ["x", [{"file": "part-00000.jsonl.gz", "objects": 1}], [None], 3]
)
def test_resuming_from_a_manifest_with_malformed_shards_is_refused(
    shards: object, bucket: str, store_config: StoreConfig, tmp_path: Path
) -> None:
    inventory_job.inventory(f"s3://{bucket}", tmp_path, store=store_config)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest |= {"shards": shards, "complete": False}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))

    with pytest.raises(UsageError, match="is not an s3ferry inventory manifest"):
        inventory_job.inventory(f"s3://{bucket}", tmp_path, store=store_config)


@pytest.mark.parametrize("record", [None, {"file": "../../etc/passwd"}])
def test_reading_a_complete_inventory_with_a_malformed_shard_record_is_refused(
    record: dict[str, str] | None,
    s3client: Any,
    bucket: str,
    store_config: StoreConfig,
    tmp_path: Path,
) -> None:
    put_keys(s3client, bucket, ["k"])
    inventory_job.inventory(f"s3://{bucket}", tmp_path, store=store_config)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    if record is not None:  # a path out of the inventory's directory
        record = manifest["shards"][0] | record
    manifest["shards"].append(record)
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))

    with pytest.raises(UsageError, match="is not an s3ferry inventory manifest"):
        inventory_job.read_inventory(tmp_path)


def test_an_inventory_into_a_directory_of_other_files_is_refused_and_touches_nothing(
    bucket: str, store_config: StoreConfig, tmp_path: Path
) -> None:
    (tmp_path / "notes.tmp").write_text("mine")
    (tmp_path / "part-1.tmp").write_text("mine too")

    with pytest.raises(UsageError, match="is not empty and holds no inventory"):
        inventory_job.inventory(f"s3://{bucket}", tmp_path, store=store_config)

    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.tmp", "part-1.tmp"]

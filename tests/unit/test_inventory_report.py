"""Reading S3 Inventory reports from local folders: both layouts, both formats, bad input."""

from __future__ import annotations

import gzip
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support.inventory import CONFIG_ID, SOURCE_BUCKET, Row, write_report

import s3ferry
from s3ferry.errors import IntegrityError, UsageError
from s3ferry.listing.inventory_report import data_file_candidates, read_inventory_report
from s3ferry.storage.listing import Entry

FORMATS = ["CSV", "Parquet"]
ODD_KEYS = [
    "plain.txt",
    "with space/and  two.txt",
    "plus+sign+.bin",
    "percent%20literal%2F",
    "ünïcødé/日本語/ファイル.txt",
    "a//b/",
    "tab\tand~tilde&amp",
]


def _entries(rows: list[Row]) -> list[Entry]:
    return [
        Entry(
            r.key,
            r.size or 0,
            r.etag,
            r.last_modified,
            r.storage_class,
            r.checksum_algorithm or None,
        )
        for r in rows
        if r.is_latest and not r.is_delete_marker
    ]


@pytest.mark.parametrize("file_format", FORMATS)
def test_aws_layout_yields_every_row_in_file_order(tmp_path: Path, file_format: str) -> None:
    first = [Row("z/last-first", 10, storage_class="GLACIER"), Row("a/b", 0)]
    second = [Row("m", 5, checksum_algorithm="CRC32C", last_modified="2023-01-02T03:04:05.006Z")]
    manifest = write_report(tmp_path, [first, second], file_format=file_format)

    got = list(read_inventory_report(str(manifest)))

    assert got == _entries(first + second)


@pytest.mark.parametrize("file_format", FORMATS)
def test_flat_copy_reads_data_folder_beside_the_manifest(tmp_path: Path, file_format: str) -> None:
    rows = [Row("k1", 1), Row("k2", 2)]
    write_report(tmp_path, [rows], file_format=file_format, layout="flat")

    assert list(read_inventory_report(str(tmp_path))) == _entries(rows)


def test_source_may_be_the_folder_holding_the_manifest(tmp_path: Path) -> None:
    rows = [Row("k", 3)]
    manifest = write_report(tmp_path, [rows])

    assert list(read_inventory_report(manifest.parent)) == _entries(rows)


@pytest.mark.parametrize("file_format", FORMATS)
def test_keys_come_out_exactly_as_stored(tmp_path: Path, file_format: str) -> None:
    """CSV keys are URL-encoded (``+`` for space) and decoded; Parquet keys are stored raw."""
    rows = [Row(k) for k in ODD_KEYS]
    manifest = write_report(tmp_path, [rows], file_format=file_format)

    assert [e.key for e in read_inventory_report(str(manifest))] == ODD_KEYS


def test_csv_keys_are_url_encoded_in_the_file(tmp_path: Path) -> None:
    """Guards the fixture: a reader that skipped decoding would fail the test above."""
    manifest = write_report(tmp_path, [[Row("with space+plus")]], layout="flat")
    (data,) = (manifest.parent / "data").iterdir()

    assert '"with+space%2Bplus"' in gzip.decompress(data.read_bytes()).decode()


@pytest.mark.parametrize("file_format", FORMATS)
def test_prefix_keeps_only_keys_under_it(tmp_path: Path, file_format: str) -> None:
    rows = [Row("logs/a"), Row("logs-2/b"), Row("logs/c d"), Row("data/logs/e"), Row("log")]
    manifest = write_report(tmp_path, [rows[:2], rows[2:]], file_format=file_format)

    got = [e.key for e in read_inventory_report(str(manifest), prefix="logs/")]

    assert got == ["logs/a", "logs/c d"]


@pytest.mark.parametrize("file_format", FORMATS)
def test_old_versions_and_delete_markers_are_left_out(tmp_path: Path, file_format: str) -> None:
    rows = [
        Row("kept", 1),
        Row("kept", 2, is_latest=False),
        Row("gone", 0, is_delete_marker=True),
        Row("also-kept", 3),
    ]
    manifest = write_report(tmp_path, [rows], file_format=file_format)

    assert [(e.key, e.size_bytes) for e in read_inventory_report(str(manifest))] == [
        ("kept", 1),
        ("also-kept", 3),
    ]


@pytest.mark.parametrize("file_format", FORMATS)
def test_missing_size_counts_as_zero(tmp_path: Path, file_format: str) -> None:
    manifest = write_report(tmp_path, [[Row("no-size", None)]], file_format=file_format)

    assert [e.size_bytes for e in read_inventory_report(str(manifest))] == [0]


@pytest.mark.parametrize("file_format", FORMATS)
def test_md5_mismatch_names_the_file_before_any_of_its_rows(
    tmp_path: Path, file_format: str
) -> None:
    manifest = write_report(tmp_path, [[Row("a")], [Row("b")]], file_format=file_format)
    doc = json.loads(manifest.read_text())
    doc["files"][0]["MD5checksum"] = "0" * 32
    manifest.write_text(json.dumps(doc))
    entries = read_inventory_report(str(manifest))

    with pytest.raises(IntegrityError, match=r"0000-5f1b3c2e.*MD5") as e:
        next(entries)
    assert e.value.subject.endswith(doc["files"][0]["key"])


def test_size_differing_from_the_manifest_is_refused(tmp_path: Path) -> None:
    manifest = write_report(tmp_path, [[Row("a")]])
    doc = json.loads(manifest.read_text())
    doc["files"][0]["size"] += 1
    manifest.write_text(json.dumps(doc))

    with pytest.raises(IntegrityError, match="bytes, the manifest says"):
        list(read_inventory_report(str(manifest)))


def test_corrupt_gzip_without_md5_is_an_integrity_error(tmp_path: Path) -> None:
    manifest = write_report(tmp_path, [[Row("a")]], layout="flat", checks=False)
    (data,) = (tmp_path / "data").iterdir()
    data.write_bytes(data.read_bytes()[:-12] + b"\0" * 12)

    with pytest.raises(IntegrityError, match="not a readable gzip-compressed CSV") as e:
        list(read_inventory_report(str(manifest)))
    assert e.value.subject == str(data)


def test_corrupt_parquet_is_an_integrity_error(tmp_path: Path) -> None:
    manifest = write_report(
        tmp_path, [[Row("a")]], file_format="Parquet", layout="flat", checks=False
    )
    (data,) = (tmp_path / "data").iterdir()
    data.write_bytes(data.read_bytes()[:-20])

    with pytest.raises(IntegrityError, match="not a readable Parquet file"):
        list(read_inventory_report(str(manifest)))


def test_row_with_wrong_field_count_names_file_and_line(tmp_path: Path) -> None:
    manifest = write_report(tmp_path, [[Row("a")]], layout="flat", checks=False)
    (data,) = (tmp_path / "data").iterdir()
    data.write_bytes(gzip.compress(b'"a","b"\n' * 2))

    with pytest.raises(UsageError, match=r"line 1 has 2 fields, .* names 10") as e:
        list(read_inventory_report(str(manifest)))
    assert e.value.subject == str(data)


def test_size_that_is_not_a_number_names_file_and_line(tmp_path: Path) -> None:
    manifest = write_report(tmp_path, [[Row("a")]], layout="flat", checks=False)
    (data,) = (tmp_path / "data").iterdir()
    row = '"b","k","","true","false","12kB","2024-01-01T00:00:00.000Z","e","STANDARD",""\n'
    data.write_bytes(gzip.compress(row.encode()))

    with pytest.raises(UsageError, match=r"line 1: size '12kB' is not a number"):
        list(read_inventory_report(str(manifest)))


def test_parquet_file_without_key_column_is_refused(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    manifest = write_report(tmp_path, [[Row("a")]], file_format="Parquet", checks=False)
    (data,) = (manifest.parent.parent / "data").iterdir()
    pq.write_table(pa.table({"bucket": ["b"], "size": [1]}), data)

    with pytest.raises(UsageError, match="has no key column") as e:
        list(read_inventory_report(str(manifest)))
    assert e.value.subject == str(data)


def test_orc_reports_are_refused(tmp_path: Path) -> None:
    manifest = write_report(tmp_path, [[Row("a")]])
    doc = json.loads(manifest.read_text())
    doc["fileFormat"] = "ORC"
    manifest.write_text(json.dumps(doc))

    with pytest.raises(UsageError, match="ORC inventory reports are not supported; use CSV"):
        read_inventory_report(str(manifest))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: "{not json", "not valid JSON"),
        (lambda d: "[1, 2]", "expected a JSON object"),
        (lambda d: json.dumps({**d, "fileFormat": "XLS"}), "unknown fileFormat 'XLS'"),
        (lambda d: json.dumps({k: v for k, v in d.items() if k != "files"}), "'files'"),
        (lambda d: json.dumps({k: v for k, v in d.items() if k != "fileSchema"}), "'fileSchema'"),
        (lambda d: json.dumps({**d, "sourceBucket": 7}), "'sourceBucket'"),
        (lambda d: json.dumps({**d, "destinationBucket": ""}), "'destinationBucket'"),
        (lambda d: json.dumps({**d, "files": [{"size": 1}]}), r"files\[0\] has no 'key'"),
        (lambda d: json.dumps({**d, "files": [{"key": "a", "size": "1"}]}), "not a byte count"),
        (lambda d: json.dumps({**d, "files": [{"key": "../../etc/x"}]}), "'..' segment"),
        (lambda d: json.dumps({**d, "fileSchema": "Bucket, Size"}), "no Key column"),
    ],
)
def test_malformed_manifest_is_one_usage_error_naming_it(
    tmp_path: Path, change: Callable[[dict[str, Any]], str], message: str
) -> None:
    manifest = write_report(tmp_path, [[Row("a")]])
    manifest.write_text(change(json.loads(manifest.read_text())))

    with pytest.raises(UsageError, match=message) as e:
        list(read_inventory_report(str(manifest)))
    assert e.value.subject == str(manifest)
    assert "\n" not in str(e.value)


def test_missing_manifest_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such file") as e:
        read_inventory_report(str(tmp_path))
    assert e.value.subject == str(tmp_path / "manifest.json")


def test_missing_data_file_names_its_key_and_where_it_was_looked_for(tmp_path: Path) -> None:
    manifest = write_report(tmp_path, [[Row("a")], [Row("b")]])
    data = sorted((manifest.parent.parent / "data").iterdir())
    data[1].unlink()
    entries = read_inventory_report(str(manifest))

    assert next(entries).key == "a"
    with pytest.raises(
        UsageError, match=rf"{re.escape(data[1].name)} is not at {re.escape(str(data[1]))} or"
    ):
        next(entries)


def test_parquet_without_pyarrow_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = write_report(tmp_path, [[Row("a")]], file_format="Parquet")
    monkeypatch.setitem(sys.modules, "pyarrow", None)

    with pytest.raises(UsageError, match=r"pip install 's3ferry\[inventory\]'"):
        read_inventory_report(str(manifest))


def test_candidates_follow_the_aws_layout_then_a_flat_copy() -> None:
    folder = ("/", "r", "inv", SOURCE_BUCKET, CONFIG_ID, "2024-05-01T01-00Z")
    key = f"inv/{SOURCE_BUCKET}/{CONFIG_ID}/data/x.csv.gz"

    assert data_file_candidates(folder, key, SOURCE_BUCKET) == [
        ("/", "r", "inv", SOURCE_BUCKET, CONFIG_ID, "data", "x.csv.gz"),
        (*folder, "data", "x.csv.gz"),
    ]


def test_candidates_when_the_prefix_repeats_the_bucket_name() -> None:
    folder = ("inv", "b", "b", "cfg", "2024-05-01T01-00Z")

    assert data_file_candidates(folder, "inv/b/b/cfg/data/x", "b")[0] == (
        "inv",
        "b",
        "b",
        "cfg",
        "data",
        "x",
    )


def test_read_inventory_report_is_public() -> None:
    assert s3ferry.read_inventory_report is read_inventory_report

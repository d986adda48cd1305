"""The archive rule s3ferry writes, and how it merges into a bucket's rules (no server)."""

from __future__ import annotations

from typing import Any

import pytest

from s3ferry.errors import UsageError
from s3ferry.jobs.lifecycle import ArchiveRule, RuleChange, merge_rule

EXPIRE_TMP: dict[str, Any] = {
    "ID": "expire-tmp",
    "Filter": {"Prefix": "tmp/"},
    "Status": "Enabled",
    "Expiration": {"Days": 7},
}


def test_default_rule_moves_objects_over_128_kib_to_glacier_at_once() -> None:
    assert ArchiveRule().as_s3() == {
        "ID": "s3ferry-archive-over-128KiB-to-GLACIER",
        "Filter": {"ObjectSizeGreaterThan": 131072},
        "Status": "Enabled",
        "Transitions": [{"Days": 0, "StorageClass": "GLACIER"}],
    }


def test_prefix_and_size_are_combined_with_and() -> None:
    rule = ArchiveRule(1024**3, "DEEP_ARCHIVE", days=3, prefix="logs/").as_s3()

    assert rule["ID"] == "s3ferry-archive-over-1GiB-to-DEEP_ARCHIVE-under-logs/"
    assert rule["Filter"] == {"And": {"Prefix": "logs/", "ObjectSizeGreaterThan": 1024**3}}
    assert rule["Transitions"] == [{"Days": 3, "StorageClass": "DEEP_ARCHIVE"}]


@pytest.mark.parametrize(
    ("threshold", "label"),
    [(0, "0B"), (1000, "1000B"), (1536, "1536B"), (2048, "2KiB"), (5 * 1024**4, "5TiB")],
)
def test_rule_id_names_the_threshold_exactly(threshold: int, label: str) -> None:
    assert ArchiveRule(threshold).rule_id == f"s3ferry-archive-over-{label}-to-GLACIER"


def test_rule_id_ignores_days_so_new_days_replace_the_rule() -> None:
    assert ArchiveRule(days=5).rule_id == ArchiveRule(days=90).rule_id


def test_a_long_prefix_is_hashed_to_keep_the_id_within_255_characters() -> None:
    a, b = ArchiveRule(prefix="p" * 300).rule_id, ArchiveRule(prefix="p" * 299 + "q").rule_id

    assert len(a) <= 255 and a != b
    assert a.startswith("s3ferry-archive-over-128KiB-to-GLACIER-under-sha256:")


def test_standard_ia_defaults_to_the_30_days_s3_requires() -> None:
    assert ArchiveRule(storage_class="STANDARD_IA").as_s3()["Transitions"] == [
        {"Days": 30, "StorageClass": "STANDARD_IA"}
    ]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"storage_class": "GLACIER_DEEP"}, "GLACIER_DEEP: lifecycle rules cannot move"),
        ({"storage_class": "STANDARD"}, "cannot move objects to this class"),
        ({"threshold_bytes": -1}, "threshold -1: must be 0 bytes or more"),
        ({"storage_class": "STANDARD_IA", "days": 29}, "after 30 days at the earliest, not 29"),
    ],
)
def test_bad_rules_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        ArchiveRule(**options)


def test_merge_appends_a_new_rule_and_keeps_the_others() -> None:
    rule = ArchiveRule().as_s3()

    assert merge_rule([EXPIRE_TMP], rule) == ([EXPIRE_TMP, rule], RuleChange.ADDED)


def test_merge_replaces_the_rule_with_the_same_id_in_place() -> None:
    old, new = ArchiveRule(days=0).as_s3(), ArchiveRule(days=30).as_s3()
    other = {**EXPIRE_TMP, "ID": "other"}

    assert merge_rule([EXPIRE_TMP, old, other], new) == (
        [EXPIRE_TMP, new, other],
        RuleChange.REPLACED,
    )


def test_merging_an_installed_rule_changes_nothing() -> None:
    rule = ArchiveRule().as_s3()

    assert merge_rule([rule, EXPIRE_TMP], dict(rule)) == ([rule, EXPIRE_TMP], RuleChange.UNCHANGED)

"""``lifecycle show`` and ``lifecycle apply``: a bucket rule that archives large objects.

The rule moves objects *larger than* a threshold to an archive storage class
after some days. It selects them with an ``ObjectSizeGreaterThan`` filter, so
small and large files keep one key layout (no ``largefile/`` prefix): this is
the rule ``backup --archive-class lifecycle`` leaves large files to.

Installing merges: the bucket's other rules are written back as they were
read, a rule with the same ID is replaced (never duplicated), and a rule that
is already installed as wanted is not written again. S3 has no conditional
write for lifecycle configurations, so a change someone else makes between
our read and our write (one round trip) is overwritten.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

from s3ferry.config import StoreConfig
from s3ferry.errors import UsageError
from s3ferry.locations import parse_s3_url

if TYPE_CHECKING:
    from s3ferry.storage.s3 import S3Store

# The classes a lifecycle transition can move objects to that s3ferry offers.
ARCHIVE_CLASSES = ("GLACIER", "DEEP_ARCHIVE", "GLACIER_IR", "STANDARD_IA", "INTELLIGENT_TIERING")
DEFAULT_STORAGE_CLASS = "GLACIER"
# Matches backup's --small-file-threshold: what backup keeps in STANDARD, the rule leaves alone.
DEFAULT_THRESHOLD_BYTES = 128 * 1024
# S3 refuses transitions to STANDARD_IA sooner than 30 days after creation.
_MIN_DAYS = {"STANDARD_IA": 30}
MAX_RULE_ID_CHARS = 255  # S3's limit
_BINARY_UNITS = (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024))


class RuleChange(Enum):
    """What merging s3ferry's rule did to the bucket's configuration."""

    ADDED = "added"
    REPLACED = "replaced"  # a rule with the same ID differed and was replaced
    UNCHANGED = "unchanged"  # the same rule is already installed


@dataclass(frozen=True, slots=True)
class ArchiveRule:
    """Move objects larger than ``threshold_bytes`` (strictly) whose keys start with
    ``prefix`` to ``storage_class``, ``days`` days after they were written.

    ``days`` None is the earliest S3 allows for the class: 0, or 30 for STANDARD_IA.

    Raises:
        UsageError: a class not in :data:`ARCHIVE_CLASSES`, a negative threshold or
            number of days, or fewer days than S3 allows for the class.
    """

    threshold_bytes: int = DEFAULT_THRESHOLD_BYTES
    storage_class: str = DEFAULT_STORAGE_CLASS
    days: int | None = None
    prefix: str = ""

    def __post_init__(self) -> None:
        if self.storage_class not in ARCHIVE_CLASSES:
            raise UsageError(
                self.storage_class,
                f"lifecycle rules cannot move objects to this class "
                f"(one of {', '.join(ARCHIVE_CLASSES)})",
            )
        if self.threshold_bytes < 0:
            raise UsageError(f"threshold {self.threshold_bytes}", "must be 0 bytes or more")
        earliest = _MIN_DAYS.get(self.storage_class, 0)
        if self.days is not None and self.days < earliest:
            raise UsageError(
                self.storage_class,
                f"S3 moves objects to this class after {earliest} days at the earliest, "
                f"not {self.days}",
            )

    @property
    def transition_days(self) -> int:
        return _MIN_DAYS.get(self.storage_class, 0) if self.days is None else self.days

    @property
    def rule_id(self) -> str:
        """Stable for the same threshold, class and prefix; the number of days is not part of it,
        so applying again with other days updates the rule.

        >>> ArchiveRule(128 * 1024, "DEEP_ARCHIVE", prefix="logs/").rule_id
        's3ferry-archive-over-128KiB-to-DEEP_ARCHIVE-under-logs/'
        """
        base = f"s3ferry-archive-over-{_size_label(self.threshold_bytes)}-to-{self.storage_class}"
        if not self.prefix:
            return base
        readable = f"{base}-under-{self.prefix}"
        if len(readable) <= MAX_RULE_ID_CHARS:
            return readable
        return f"{base}-under-sha256:{hashlib.sha256(self.prefix.encode()).hexdigest()[:16]}"

    def as_s3(self) -> dict[str, Any]:
        """The rule in S3's JSON form, as PutBucketLifecycleConfiguration takes it."""
        size = {"ObjectSizeGreaterThan": self.threshold_bytes}
        selection = {"And": {"Prefix": self.prefix, **size}} if self.prefix else size
        return {
            "ID": self.rule_id,
            "Filter": selection,
            "Status": "Enabled",
            "Transitions": [{"Days": self.transition_days, "StorageClass": self.storage_class}],
        }


@dataclass(frozen=True, slots=True)
class LifecyclePlan:
    """A bucket's lifecycle configuration, as it is or with s3ferry's rule merged in.

    ``configuration`` is S3's JSON form (``{"Rules": [...]}``, as ``aws s3api
    get-bucket-lifecycle-configuration`` prints it). ``rule_id`` and ``change``
    name the rule merged in and what merging did; both are None when the
    bucket's own rules are shown as they are. ``written``: this call stored
    ``configuration`` in the bucket.
    """

    bucket: str
    configuration: dict[str, Any]
    rule_id: str | None = None
    change: RuleChange | None = None
    written: bool = False


def merge_rule(
    rules: Sequence[Mapping[str, Any]], rule: Mapping[str, Any]
) -> tuple[list[dict[str, Any]], RuleChange]:
    """``rules`` with ``rule`` in place of the rule with its ID, or appended; others untouched."""
    same = [i for i, r in enumerate(rules) if r.get("ID") == rule["ID"]]
    if not same:
        return [*map(dict, rules), dict(rule)], RuleChange.ADDED
    i = same[0]
    change = RuleChange.UNCHANGED if rules[i] == rule else RuleChange.REPLACED
    return [*map(dict, rules[:i]), dict(rule), *map(dict, rules[i + 1 :])], change


def lifecycle_show(
    bucket_url: str, rule: ArchiveRule | None = None, *, store: StoreConfig | None = None
) -> LifecyclePlan:
    """The configuration of ``s3://bucket`` with ``rule`` merged in; nothing is written.

    Without ``rule``, a bucket that has rules gives them as they are, and one
    that has none gives the default :class:`ArchiveRule` (objects over 128 KiB to
    GLACIER at once).

    Raises:
        UsageError: not ``s3://bucket``.
        NotFoundError / AccessDeniedError: the bucket is missing or refuses us.
    """
    name, s3 = _open_bucket(bucket_url, store)
    current = s3.get_lifecycle()
    if rule is None and current["Rules"]:
        return LifecyclePlan(name, current)
    return _merged(name, current, rule or ArchiveRule())


def lifecycle_apply(
    bucket_url: str,
    rule: ArchiveRule | None = None,
    *,
    dry_run: bool = False,
    store: StoreConfig | None = None,
) -> LifecyclePlan:
    """Install ``rule`` (default: :class:`ArchiveRule`) in ``s3://bucket``, keeping its other rules.

    Nothing is written for a dry run or when the rule is installed already
    (``change`` is UNCHANGED); ``written`` says whether it was.

    Raises:
        UsageError: not ``s3://bucket``.
        StoreError: the bucket is missing, refuses us, or the store rejects the rules.
    """
    name, s3 = _open_bucket(bucket_url, store)
    plan = _merged(name, s3.get_lifecycle(), rule or ArchiveRule())
    if dry_run or plan.change is RuleChange.UNCHANGED:
        return plan
    s3.put_lifecycle(plan.configuration)
    return dataclasses.replace(plan, written=True)


def _merged(bucket: str, current: Mapping[str, Any], rule: ArchiveRule) -> LifecyclePlan:
    rules, change = merge_rule(current["Rules"], rule.as_s3())
    return LifecyclePlan(bucket, {**current, "Rules": rules}, rule.rule_id, change)


def _open_bucket(bucket_url: str, store: StoreConfig | None) -> tuple[str, S3Store]:
    # Imported here: the command line reads ARCHIVE_CLASSES while it builds its parser.
    from s3ferry.storage.s3 import S3Store

    url = parse_s3_url(bucket_url)
    if url.key:
        raise UsageError(
            bucket_url,
            "a lifecycle configuration belongs to the whole bucket: give s3://bucket "
            "and the key prefix as the rule's prefix (--prefix)",
        )
    return url.bucket, S3Store(url.bucket, store or StoreConfig(), max_connections=2)


def _size_label(size_bytes: int) -> str:
    """``131072`` -> ``"128KiB"``; sizes that are no whole binary unit stay bytes (``"1000B"``)."""
    for unit, factor in _BINARY_UNITS:
        if size_bytes and size_bytes % factor == 0:
            return f"{size_bytes // factor}{unit}"
    return f"{size_bytes}B"

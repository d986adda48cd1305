"""``s3ferry lifecycle show|apply``: the rule that archives large objects, as S3's JSON.

stdout carries the configuration only (the same JSON ``aws s3api
get-bucket-lifecycle-configuration`` prints); one line on stderr says what it
is or what was done, unless ``-q``.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime

from s3ferry.cli.exit_codes import ExitCode
from s3ferry.cli.main import _Parser, add_security_options, parse_size
from s3ferry.jobs.lifecycle import (
    ARCHIVE_CLASSES,
    DEFAULT_STORAGE_CLASS,
    DEFAULT_THRESHOLD_BYTES,
    ArchiveRule,
    LifecyclePlan,
    RuleChange,
)


def add_lifecycle_parser(sub: argparse._SubParsersAction[_Parser]) -> None:
    lifecycle = sub.add_parser(
        "lifecycle",
        help="show or install a bucket rule that archives objects over a size",
        description="A lifecycle rule that moves objects larger than a threshold to an archive "
        "class (ObjectSizeGreaterThan: keys stay where they are). The bucket's other rules are "
        "always kept.",
    )
    actions = lifecycle.add_subparsers(
        dest="action", metavar="{show,apply}", required=True, parser_class=_Parser
    )
    show = actions.add_parser(
        "show",
        help="print the bucket's rules, or with rule options what apply would install",
        description="Without rule options, print the bucket's lifecycle configuration; with "
        "them (or on a bucket without rules), print the configuration apply would install.",
    )
    apply = actions.add_parser(
        "apply",
        help="install the rule, keeping the bucket's other rules",
        description="Merge the rule into the bucket's lifecycle configuration (a rule with the "
        "same ID is replaced, other rules are kept) and print what was installed.",
    )
    apply.add_argument("--dry-run", action="store_true", help="print it, change nothing")
    for p in (show, apply):
        _add_options(p)


def _add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bucket", metavar="s3://bucket")
    r = parser.add_argument_group("the rule")
    r.add_argument(
        "--threshold",
        type=_size_or_zero,
        metavar="SIZE",
        help=f"objects larger than this move (default {DEFAULT_THRESHOLD_BYTES // 1024}KiB)",
    )
    r.add_argument(
        "--class",
        dest="storage_class",
        type=str.upper,
        choices=ARCHIVE_CLASSES,
        help=f"where they move (default {DEFAULT_STORAGE_CLASS})",
    )
    r.add_argument(
        "--days",
        type=_non_negative,
        metavar="N",
        help="days after upload (default 0; 30 for STANDARD_IA, S3's earliest)",
    )
    r.add_argument("--prefix", metavar="P", help="only keys starting with P (default: all)")
    g = parser.add_argument_group("global options")
    g.add_argument("--endpoint-url", default=argparse.SUPPRESS, help="S3 endpoint")
    g.add_argument("--profile", default=argparse.SUPPRESS, help="AWS profile name")
    g.add_argument("--region", default=argparse.SUPPRESS, help="AWS region")
    g.add_argument(
        "-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="JSON only"
    )
    add_security_options(g, reads=False, writes=False)


def run_lifecycle(args: argparse.Namespace) -> int:
    from s3ferry.cli.commands import _store_config
    from s3ferry.jobs.lifecycle import lifecycle_apply, lifecycle_show

    rule = _rule(args)
    store = _store_config(args)
    if args.action == "show":
        plan = lifecycle_show(args.bucket, rule, store=store)
    else:
        plan = lifecycle_apply(args.bucket, rule, dry_run=args.dry_run, store=store)
    if getattr(args, "json", False):
        record = {
            "type": "lifecycle",
            "bucket": plan.bucket,
            "configuration": plan.configuration,
            "rule_id": plan.rule_id,
            "change": plan.change.value if plan.change else None,
            "written": plan.written,
        }
        print(json.dumps(record, default=_json_value))
        return ExitCode.OK
    print(json.dumps(plan.configuration, indent=2, ensure_ascii=False, default=_json_value))
    if not getattr(args, "quiet", False):
        print(_summary(plan, args.action, getattr(args, "dry_run", False)), file=sys.stderr)
    return ExitCode.OK


def _rule(args: argparse.Namespace) -> ArchiveRule | None:
    """The rule the options describe; None when none was given."""
    options = (args.threshold, args.storage_class, args.days, args.prefix)
    if all(o is None for o in options):
        return None
    return ArchiveRule(
        threshold_bytes=DEFAULT_THRESHOLD_BYTES if args.threshold is None else args.threshold,
        storage_class=args.storage_class or DEFAULT_STORAGE_CLASS,
        days=args.days,
        prefix=args.prefix or "",
    )


def _summary(plan: LifecyclePlan, action: str, dry_run: bool) -> str:
    where = f"s3://{plan.bucket}"
    count = len(plan.configuration["Rules"])
    installed = f"{count} lifecycle rule{'' if count == 1 else 's'} installed"
    if plan.change is None:
        return f"{where}: {installed}"
    rule = f"rule {plan.rule_id}"
    if plan.change is RuleChange.UNCHANGED:
        return f"{where}: {rule} is installed as shown; nothing to change"
    verb = "added" if plan.change is RuleChange.ADDED else "replaced"
    if plan.written:
        return f"{where}: {rule} {verb}; {installed}"
    how = "dry run" if dry_run else "not installed"
    hint = "" if action == "apply" else "; 's3ferry lifecycle apply' would install it"
    return f"{where}: {rule} would be {verb} ({how}){hint}"


def _json_value(value: object) -> str:
    """Dates in rules (Expiration, Transition) as ISO 8601."""
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def _size_or_zero(text: str) -> int:
    return 0 if text.strip() == "0" else parse_size(text)


def _non_negative(text: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise argparse.ArgumentTypeError(f"not a number from 0 up: {text!r}")
    return int(text)

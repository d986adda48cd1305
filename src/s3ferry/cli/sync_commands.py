"""``sync`` and ``compare``: a plan line per key (dry run, compare) or the transfer progress."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict

from s3ferry.cli.commands import (
    _renderer,
    _store_config,
    _transfer_config,
    exit_code_for,
    state_dir,
)
from s3ferry.cli.exit_codes import ExitCode
from s3ferry.errors import UsageError
from s3ferry.events import Compared, Event, Planned
from s3ferry.jobs.sync import compare, sync
from s3ferry.locations import is_s3_url
from s3ferry.planning.policy import Filters, Rule


def _rule(args: argparse.Namespace) -> Rule:
    if args.size_only and args.checksum:
        raise UsageError("--size-only --checksum", "choose one comparison rule")
    if args.checksum:
        return Rule.CHECKSUM
    return Rule.SIZE_ONLY if args.size_only else Rule.SIZE_AND_MTIME


def _filters(args: argparse.Namespace) -> Filters:
    return Filters(include=tuple(args.include or ()), exclude=tuple(args.exclude or ()))


def run_sync(args: argparse.Namespace) -> int:
    transfer = _transfer_config(args)
    renderer = _renderer(args, stdout_is_data=False)

    def sink(event: Event) -> None:
        if isinstance(event, Planned):  # the renderers draw nothing from these
            if not (args.dry_run or args.verbose):
                return
            if args.json:
                print(json.dumps({"type": "planned", **asdict(event)}), flush=True)
            elif event.action == "delete" and not args.delete:
                print(f"{'extra':<7} {event.path or event.key}  (not in the source; kept)")
            elif event.action != "skip" or args.verbose:
                print(f"{event.action:<7} {event.path or event.key}  ({event.reason})")
        else:
            renderer(event)

    if args.max_delete is not None and not args.delete:
        raise UsageError("--max-delete", "limits --delete; give both or neither")
    renderer.start()
    options = {
        "rule": _rule(args),
        "delete": args.delete,
        "max_delete": args.max_delete,
        "dry_run": args.dry_run,
        "filters": _filters(args),
        "transfer": transfer,
        "store": _store_config(args, "source" if is_s3_url(args.source) else "dest"),
        "sink": sink,
        "state_dir": state_dir(args),
    }
    if args.command == "backup":
        from s3ferry.jobs.backup import backup

        report = backup(
            args.source,
            args.destination,
            small_file_threshold=args.small_file_threshold,
            archive_class=args.archive_class,
            **options,
        )
    else:
        report = sync(
            args.source,
            args.destination,
            dest_store=_store_config(args, "dest"),
            follow_symlinks=args.follow_symlinks,
            **options,
        )
    renderer.finish(report.transfer)
    if not args.quiet and not args.json:
        counts = dict(report.planned)
        extra = 0 if args.delete else counts.pop("delete", 0)
        planned = ", ".join(f"{n} to {a}" for a, n in counts.items())
        if extra:
            planned += f", {extra} not in the source (kept: no --delete)"
        if report.dry_run:
            print(f"{args.command} (dry run, nothing changed): {planned}", file=sys.stderr)
        else:
            print(f"{args.command}: planned {planned}; {report.deleted} deleted", file=sys.stderr)
    return exit_code_for(report.transfer)


def run_compare(args: argparse.Namespace) -> int:
    def sink(event: Event) -> None:
        if not isinstance(event, Compared):
            return
        if args.json:
            print(json.dumps({"type": "compared", **asdict(event)}, ensure_ascii=False))
        elif event.status != "identical" or args.verbose:
            reason = f"  ({event.reason})" if event.status == "different" else ""
            print(f"{event.status:<12} {event.key}{reason}")

    result = compare(
        args.source,
        args.target,
        rule=_rule(args),
        filters=_filters(args),
        store=_store_config(args, "source" if is_s3_url(args.source) else "dest"),
        dest_store=_store_config(args, "dest"),
        sink=sink,
    )
    summary = (
        f"{result.identical} identical, {result.different} different, "
        f"{result.only_source} only in {args.source}, {result.only_target} only in {args.target}"
    )
    if args.json:
        print(json.dumps({"type": "summary", "same": result.same, **asdict(result)}))
    elif not args.quiet:
        print(f"compare: {summary}", file=sys.stderr)
    return ExitCode.OK if result.same else ExitCode.PARTIAL_FAILURE

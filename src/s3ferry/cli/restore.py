"""``s3ferry restore``: restore archived objects, wait, download and verify (resumable).

Progress and the summary go to stderr as for ``cp``; with ``--no-wait`` the
status table (objects per state) goes to stdout, or one JSON line with
``--json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from s3ferry.cli.main import _add_globals, _add_transfer, _Parser, positive_int
from s3ferry.errors import UsageError
from s3ferry.events import Event, RestoresPending, RestoreStatus

if TYPE_CHECKING:
    from s3ferry.jobs.restore import RestoreReport


def add_restore_parser(sub: argparse._SubParsersAction[_Parser]) -> None:
    p = sub.add_parser(
        "restore",
        help="restore archived (Glacier) objects, wait, download and verify; resumable",
        description="Download every object under s3://bucket/prefix into DIR/glacierrestore/ "
        "(or --into DIR2). Archived objects (GLACIER, DEEP_ARCHIVE) are restored first and "
        "downloaded once readable. Run again to resume: restores in flight are picked up and "
        "files already restored are skipped.",
    )
    p.add_argument("source", metavar="s3://bucket/prefix")
    p.add_argument("dir", metavar="DIR", nargs="?", help="files go to DIR/glacierrestore/")
    p.add_argument("--into", metavar="DIR2", help="files go to DIR2/ itself instead")
    p.add_argument(
        "--tier",
        type=str.capitalize,
        help="Bulk (default, the cheapest), Standard or Expedited (not for Deep Archive)",
    )
    p.add_argument(
        "--days", type=positive_int, metavar="N", help="days the restored copy is kept (default 3)"
    )
    p.add_argument(
        "--no-wait",
        action="store_true",
        help="ask for the restores, print a status table and exit; download nothing",
    )
    p.add_argument(
        "--overwrite", action="store_true", help="replace files that differ from the objects"
    )
    p.add_argument(
        "--poll-interval",
        type=_seconds,
        metavar="SECONDS",
        help="first wait between looks at restores in flight; doubles up to 30 min (default 60)",
    )
    _add_globals(p, top=False)
    _add_transfer(p)


def run_restore(args: argparse.Namespace) -> int:
    from s3ferry.cli.commands import (
        _renderer,
        _store_config,
        _transfer_config,
        exit_code_for,
        state_dir,
    )
    from s3ferry.jobs.restore import restore

    if args.dir is None and args.into is None:
        raise UsageError("restore", "needs DIR or --into DIR2")
    transfer = _transfer_config(args)
    renderer = _renderer(args, stdout_is_data=False)

    def sink(event: Event) -> None:
        if isinstance(event, RestoreStatus):
            if args.verbose and not args.json:
                print(f"{event.state:<9} {event.path or event.key}", file=sys.stderr)
        elif isinstance(event, RestoresPending):
            if not args.quiet and not args.json:
                print(
                    f"waiting: {event.objects:,} restores in flight; "
                    f"next look in {event.next_check_s:.0f} s",
                    file=sys.stderr,
                )
        else:
            renderer(event)

    # Options not given are left to the library's defaults.
    given: dict[str, Any] = {
        name: value
        for name, value in (
            ("tier", args.tier),
            ("days", args.days),
            ("poll_interval_s", args.poll_interval),
        )
        if value is not None
    }
    if not args.no_wait:
        renderer.start()
    report = restore(
        args.source,
        args.dir,
        wait=not args.no_wait,
        into=args.into,
        overwrite=args.overwrite,
        transfer=transfer,
        store=_store_config(args),
        sink=sink,
        state_dir=state_dir(args),
        **given,
    )
    if args.no_wait:
        _print_table(report, args.json)
    else:
        renderer.finish(report.transfer)
        if not args.quiet and not args.json:
            print(f"restore: {report.requested:,} restores requested", file=sys.stderr)
    return exit_code_for(report.transfer)


def _print_table(report: RestoreReport, as_json: bool) -> None:
    if as_json:
        record = {"type": "restore-status", **report.states, "requested": report.requested}
        print(json.dumps(record))
        return
    print(f"{'state':<10} {'objects':>10}")
    for state, count in report.states.items():
        print(f"{state:<10} {count:>10,}")
    print(f"{report.requested:,} restores requested; {report.pending:,} in flight")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"not a number of seconds above 0: {text!r}")
    return value

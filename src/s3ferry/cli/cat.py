"""``s3ferry cat``: an object, a byte range of it, or fixed-length records of it, to stdout.

The command maps its options onto the library's calls: no range or record
option reads the whole object (verified, as ``cp s3://b/k -``); ``--range``
and ``--offset/--length`` call ``write_range``; ``--record*`` options call
``write_records``. stderr carries only warnings and errors.
"""

from __future__ import annotations

import argparse
import sys

from s3ferry.cli.exit_codes import ExitCode
from s3ferry.cli.main import (
    _add_transfer,
    _Parser,
    add_security_options,
    parse_size,
    positive_int,
)
from s3ferry.errors import UsageError
from s3ferry.events import Event, EventSink, PartialRecordFound
from s3ferry.ranges import (
    DEFAULT_GAP_BYTES,
    DEFAULT_MAX_REQUEST_BYTES,
    RangeSpec,
    parse_range,
    parse_records,
)

_RANGE_OPTIONS = ("range", "offset", "length")
_RECORD_OPTIONS = ("record_size", "record", "count", "records", "strict", "gap", "max_request")


def add_cat_parser(sub: argparse._SubParsersAction[_Parser]) -> None:
    cat = sub.add_parser(
        "cat",
        help="write an object, a byte range or records of it to stdout",
        description="Write one object to stdout, whole or a part of it. Ranges are inclusive, "
        "as in HTTP: record 99 of 80 bytes is --range 7920-7999.",
    )
    cat.add_argument("source", metavar="s3://bucket/key")
    r = cat.add_argument_group("a byte range (bytes numbered from 0)")
    r.add_argument(
        "--range",
        type=_byte_range,
        metavar="START-END",
        help="bytes START to END, both included; START- to the end; -N the last N bytes",
    )
    r.add_argument("--offset", type=_non_negative, metavar="N", help="first byte (default 0)")
    r.add_argument("--length", type=positive_int, metavar="M", help="bytes from --offset")
    rec = cat.add_argument_group("fixed-length records (numbered from 0)")
    rec.add_argument("--record-size", type=positive_int, metavar="W", help="bytes per record")
    rec.add_argument("--record", type=_non_negative, metavar="N", help="first record to write")
    rec.add_argument("--count", type=positive_int, metavar="K", help="records from --record (1)")
    rec.add_argument(
        "--records",
        type=_record_list,
        metavar="LIST",
        help="records in the order given, e.g. 5,17,99-120 (ranges inclusive, repeats allowed)",
    )
    rec.add_argument(
        "--strict",
        action="store_true",
        default=None,
        help="refuse an object whose size is not a multiple of W (default: warn)",
    )
    rec.add_argument(
        "--gap",
        type=_size_or_zero,
        metavar="SIZE",
        help="records at most this far apart share one request (default 1MiB)",
    )
    rec.add_argument(
        "--max-request", type=parse_size, metavar="SIZE", help="largest request (default 8MiB)"
    )
    g = cat.add_argument_group("global options")
    g.add_argument("--endpoint-url", default=argparse.SUPPRESS, help="S3 endpoint")
    g.add_argument("--profile", default=argparse.SUPPRESS, help="AWS profile name")
    g.add_argument("--region", default=argparse.SUPPRESS, help="AWS region")
    g.add_argument(
        "-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="no warnings"
    )
    add_security_options(g, writes=False)
    _add_transfer(cat)


def run_cat(args: argparse.Namespace) -> int:
    from s3ferry.cli.commands import _store_config, _transfer_config
    from s3ferry.cli.render import TextRenderer
    from s3ferry.jobs.download import download_to_stream
    from s3ferry.jobs.read import write_range, write_records

    asked = _check_combination(args)
    transfer = _transfer_config(args)
    store, out = _store_config(args), sys.stdout.buffer
    sink = _warnings(args.source, quiet=getattr(args, "quiet", False))
    if asked == "records":
        records = args.records or [range(args.record, args.record + (args.count or 1))]
        write_records(
            args.source,
            out,
            args.record_size,
            records,
            strict=bool(args.strict),
            gap_bytes=DEFAULT_GAP_BYTES if args.gap is None else args.gap,
            max_request_bytes=args.max_request or DEFAULT_MAX_REQUEST_BYTES,
            transfer=transfer,
            store=store,
            sink=sink,
        )
    elif asked == "range":
        start, end, length = _range_arguments(args)
        write_range(
            args.source, out, start, end, length=length, transfer=transfer, store=store, sink=sink
        )
    else:
        renderer = TextRenderer(sys.stderr, quiet=True)
        report = download_to_stream(args.source, out, transfer=transfer, store=store, sink=renderer)
        renderer.finish(report)
        return ExitCode.OK if report.ok else ExitCode.PARTIAL_FAILURE
    return ExitCode.OK


def _check_combination(args: argparse.Namespace) -> str:
    """``"range"``, ``"records"`` or ``"object"``; UsageError for options that clash."""
    given = {n for n in (*_RANGE_OPTIONS, *_RECORD_OPTIONS) if getattr(args, n) is not None}
    ranges, records = given & set(_RANGE_OPTIONS), given & set(_RECORD_OPTIONS)
    if ranges and records:
        raise UsageError(_flags(ranges | records), "a byte range and records do not go together")
    if "range" in ranges and len(ranges) > 1:
        raise UsageError(_flags(ranges), "give --range or --offset/--length, not both")
    if not records:
        return "range" if ranges else "object"
    if "record_size" not in records:
        raise UsageError(_flags(records), "needs --record-size W")
    if ("record" in records) == ("records" in records):
        raise UsageError("--record-size", "needs either --record N or --records LIST")
    if "count" in records and "records" in records:
        raise UsageError("--count", "goes with --record N, not --records")
    return "records"


def _range_arguments(args: argparse.Namespace) -> tuple[int, int | None, int | None]:
    """``(start, end, length)`` for write_range; a negative start is a suffix."""
    if args.range is None:
        return args.offset or 0, None, args.length
    if args.range.suffix_bytes is not None:
        return -args.range.suffix_bytes, None, None
    return args.range.start, args.range.end, None


def _warnings(url: str, quiet: bool) -> EventSink:
    def sink(event: Event) -> None:
        if isinstance(event, PartialRecordFound) and not quiet:
            print(
                f"warning: {url}: {event.size_bytes} bytes is not a whole number of "
                f"{event.record_bytes}-byte records; the last (record {event.last_record}) "
                f"is {event.last_record_bytes} bytes",
                file=sys.stderr,
            )

    return sink


def _flags(names: set[str]) -> str:
    return " ".join(sorted("--" + n.replace("_", "-") for n in names))


def _byte_range(text: str) -> RangeSpec:
    try:
        return parse_range(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _record_list(text: str) -> str:
    """The text, once every item in it parsed (lazily: nothing is expanded)."""
    try:
        for _ in parse_records(text):
            pass
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def _non_negative(text: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise argparse.ArgumentTypeError(f"not a number from 0 up: {text!r}")
    return int(text)


def _size_or_zero(text: str) -> int:
    return 0 if text.strip() == "0" else parse_size(text)

"""``s3ferry`` entry point. Heavy modules are imported inside the commands so that
``--help`` and argument errors start fast."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from s3ferry.cli.exit_codes import ExitCode
from s3ferry.errors import S3ferryError

_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "kib": 1024,
    "m": 1000**2,
    "mb": 1000**2,
    "mib": 1024**2,
    "g": 1000**3,
    "gb": 1000**3,
    "gib": 1024**3,
}


def parse_size(text: str) -> int:
    """``"16MiB"`` -> 16777216; ``"8MB"`` -> 8000000; plain digits are bytes."""
    number = text.rstrip("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
    unit = text[len(number) :].strip().lower()
    try:
        value = int(float(number) * _SIZE_UNITS[unit])
    except (ValueError, KeyError, OverflowError):
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 16MiB)") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 16MiB)")
    return value


def positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"not a positive integer: {text!r}")
    return int(text)


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line and exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(ExitCode.CANNOT_START, f"error: {self.prog}: {message}\n")


def _add_globals(parser: argparse.ArgumentParser, top: bool) -> None:
    default = None if top else argparse.SUPPRESS
    g = parser.add_argument_group("global options")
    g.add_argument("--endpoint-url", default=default, help="S3 endpoint (else AWS_ENDPOINT_URL)")
    g.add_argument("--profile", default=default, help="AWS profile name")
    g.add_argument("--region", default=default, help="AWS region")
    g.add_argument(
        "--json",
        action="store_true",
        default=False if top else argparse.SUPPRESS,
        help="one JSON object per line: per-object results and a summary",
    )
    g.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=False if top else argparse.SUPPRESS,
        help="print errors only",
    )
    g.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=False if top else argparse.SUPPRESS,
        help="print every object",
    )


def _add_transfer(parser: argparse.ArgumentParser) -> None:
    t = parser.add_argument_group("transfer tuning (all chosen automatically by default)")
    t.add_argument(
        "--multipart-threshold",
        type=parse_size,
        metavar="SIZE",
        help="files at least this big use the large-file lane (default 16MiB)",
    )
    t.add_argument(
        "--part-size",
        type=parse_size,
        metavar="SIZE",
        help="part / range size; grows so no file needs > 10,000 parts (default 16MiB)",
    )
    t.add_argument(
        "--large-file-buffers",
        type=positive_int,
        metavar="N",
        help="buffers in the pool; memory = N x part size (default workers + 2)",
    )
    t.add_argument(
        "--large-file-workers",
        type=positive_int,
        metavar="N",
        help="parts in flight at once (default 4 per CPU, 8..32)",
    )
    t.add_argument(
        "--small-file-workers",
        type=positive_int,
        metavar="N",
        help="small objects in flight at once (default 64)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="s3ferry",
        description="Move data into, out of and between S3 buckets, fast and verified.",
    )
    _add_globals(parser, top=True)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    cp = sub.add_parser(
        "cp",
        help="copy a file, tree or stream to or from S3",
        description="Upload (LOCAL -> s3://), download (s3:// -> LOCAL); '-' is stdin or stdout.",
    )
    cp.add_argument("source")
    cp.add_argument("destination")
    _add_globals(cp, top=False)
    _add_transfer(cp)
    local = sub.add_parser("local-s3", help="run an embedded S3 server (SeaweedFS) on loopback")
    local.add_argument("action", choices=["start", "stop", "env"])
    local.add_argument("--data-dir", help="keep the server's data here (default: a temp dir)")
    demo = sub.add_parser(
        "demo", help="start an embedded S3, upload a sample tree, download it back and verify"
    )
    demo.add_argument("--files", type=positive_int, default=2000, help="small files (default 2000)")
    _add_globals(demo, top=False)
    from s3ferry.cli.cat import add_cat_parser

    add_cat_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "cp":
            from s3ferry.cli.commands import run_cp

            return run_cp(args)
        if args.command == "local-s3":
            from s3ferry.cli.commands import run_local_s3

            return run_local_s3(args)
        if args.command == "cat":
            from s3ferry.cli.cat import run_cat

            return run_cat(args)
        from s3ferry.cli.commands import run_demo

        return run_demo(args)
    except S3ferryError as e:
        print(f"error: {e}", file=sys.stderr)
        return ExitCode.CANNOT_START
    except KeyboardInterrupt:
        print("error: interrupted; run the same command again to finish", file=sys.stderr)
        return ExitCode.INTERRUPTED


def entry() -> None:
    """Console-script entry point.

    Exits with ``os._exit`` after flushing: the work is finished and reported,
    and skipping interpreter teardown avoids native runtimes (obstore's tokio)
    aborting during finalization, which would turn a success into SIGABRT.
    """
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        code = code or ExitCode.PARTIAL_FAILURE
    os._exit(code)

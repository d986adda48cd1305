"""``s3ferry`` entry point. Heavy modules are imported inside the commands so that
``--help`` and argument errors start fast."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from s3ferry.cli.exit_codes import ExitCode
from s3ferry.errors import AccessDeniedError, S3ferryError, UsageError

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
    """argparse, but usage errors are one line and exit 2, and options are never abbreviated
    (``--dest`` of one command must not be read as a prefix of ``--dest-profile``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(ExitCode.CANNOT_START, f"error: {self.prog}: {message}\n")


def _add_globals(parser: argparse.ArgumentParser, top: bool) -> None:
    default = None if top else argparse.SUPPRESS
    g = parser.add_argument_group("global options")
    g.add_argument("--endpoint-url", default=default, help="S3 endpoint (else AWS_ENDPOINT_URL)")
    g.add_argument("--profile", default=default, help="AWS profile name")
    g.add_argument("--region", default=default, help="AWS region")
    add_security_options(g, top)
    g.add_argument(
        "--no-sign-request",
        action="store_true",
        default=False if top else argparse.SUPPRESS,
        help="send unsigned requests (public buckets)",
    )
    g.add_argument(
        "--state-dir",
        default=default,
        metavar="DIR",
        help="job journals, so an interrupted cp/sync/backup/restore resumes when run again "
        "(default $XDG_CACHE_HOME/s3ferry/jobs)",
    )
    sides = parser.add_argument_group(
        "per-side options (override the global ones for the bucket read or written)"
    )
    for side in ("source", "dest"):
        sides.add_argument(f"--{side}-endpoint-url", default=default, metavar="URL")
        sides.add_argument(f"--{side}-profile", default=default, metavar="NAME")
        sides.add_argument(f"--{side}-region", default=default, metavar="REGION")
        sides.add_argument(
            f"--{side}-no-sign-request",
            action="store_true",
            default=False if top else argparse.SUPPRESS,
        )
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


def _add_follow(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--follow-symlinks",
        action="store_true",
        help="upload what symbolic links point to, even outside the source tree "
        "(default: skip links; loops are never followed)",
    )


def add_security_options(
    g: argparse._ArgumentGroup, top: bool = False, reads: bool = True, writes: bool = True
) -> None:
    """``--no-verify-ssl``; with ``reads`` the SSE-C key; with ``writes`` how to encrypt."""
    default = None if top else argparse.SUPPRESS
    g.add_argument(
        "--no-verify-ssl",
        action="store_true",
        default=False if top else argparse.SUPPRESS,
        help="do not verify TLS certificates (self-signed test servers only)",
    )
    if writes:
        g.add_argument(
            "--sse",
            choices=["AES256", "aws:kms"],
            default=default,
            help="encrypt what is written: AES256 (SSE-S3) or aws:kms (SSE-KMS)",
        )
        g.add_argument(
            "--sse-kms-key-id", default=default, metavar="ID", help="KMS key for --sse aws:kms"
        )
    if not reads:
        return
    g.add_argument(
        "--sse-c-key",
        default=default,
        metavar="KEY",
        help="SSE-C: your 32-byte AES-256 key, as text or fileb://PATH (as the AWS CLI); "
        "needed again to read those objects",
    )


def _add_transfer(parser: argparse.ArgumentParser) -> None:
    t = parser.add_argument_group("transfer tuning (all chosen automatically by default)")
    t.add_argument(
        "--multipart-threshold",
        type=parse_size,
        metavar="SIZE",
        help="files at least this big use the large-file lane (default 16MiB for uploads, "
        "4MiB for downloads)",
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


def _add_listing(sub: argparse._SubParsersAction[_Parser]) -> None:
    ls = sub.add_parser(
        "ls",
        help="list objects (one level, or every object below with -r)",
        description="One line per object: date, time, size, key. -r lists every object below "
        "the prefix, in key order, with no header or footer; --json gives one object per line.",
    )
    ls.add_argument(
        "source", metavar="s3://bucket[/prefix]", nargs="?", help="omitted: list the buckets"
    )
    ls.add_argument("-r", "--recursive", action="store_true", help="every object below the prefix")
    du = sub.add_parser(
        "du",
        help="count objects and bytes below a prefix, by storage class",
        description="Objects and bytes below s3://bucket[/prefix], per storage class and in total.",
    )
    du.add_argument("source", metavar="s3://bucket[/prefix]")
    inv = sub.add_parser(
        "inventory",
        help="write the listing to compressed shard files and a manifest (resumable)",
        description="Stream the listing of s3://bucket[/prefix] into DIR as gzip shards "
        "(part-NNNNN.jsonl.gz or .csv.gz) and manifest.json. Interrupted, the same command "
        "resumes after the last finished shard.",
    )
    inv.add_argument("source", metavar="s3://bucket[/prefix]")
    inv.add_argument("--output", "-o", required=True, metavar="DIR", help="where shards go")
    inv.add_argument("--format", choices=["jsonl", "csv"], default="jsonl", dest="fmt")
    inv.add_argument(
        "--shard-size",
        type=positive_int,
        default=1_000_000,
        metavar="N",
        help="objects per shard file (default 1,000,000)",
    )
    for p in (ls, du, inv):
        p.add_argument(
            "--list-workers",
            type=positive_int,
            metavar="N",
            help="listing requests in flight (default 2 per CPU, 4..16)",
        )
        _add_globals(p, top=False)


def _add_sync(sub: argparse._SubParsersAction[_Parser]) -> None:
    sync = sub.add_parser(
        "sync",
        help="copy what is new or changed (local dir <-> s3://prefix); --delete removes extras",
        description="Make DESTINATION like SOURCE: copy new and changed files (size + mtime by "
        "default), optionally delete what SOURCE does not have. One side is a local directory, "
        "the other s3://bucket/prefix.",
    )
    backup = sub.add_parser(
        "backup",
        help="sync a directory to s3:// with storage classes by size and POSIX attributes",
        description="A sync that keeps files up to --small-file-threshold in STANDARD and puts "
        "larger ones in --archive-class (or leaves them for a lifecycle rule), and records mode, "
        "owner and symbolic links for restore.",
    )
    backup.add_argument(
        "--small-file-threshold",
        type=parse_size,
        default=128 * 1024,
        metavar="SIZE",
        help="files up to this size stay in STANDARD (default 128KiB)",
    )
    backup.add_argument(
        "--archive-class",
        choices=["lifecycle", "GLACIER", "DEEP_ARCHIVE", "GLACIER_IR"],
        default="lifecycle",
        help="class of larger files; lifecycle (default): STANDARD, moved by a lifecycle rule",
    )
    for p in (sync, backup):
        p.add_argument("source")
        p.add_argument("destination")
        p.add_argument("--delete", action="store_true", help="delete what the source lacks")
        p.add_argument(
            "--max-delete", type=int, metavar="N", help="delete nothing if more than N would go"
        )
        p.add_argument(
            "--dry-run",
            action="store_true",
            help="print what would be done and why; change nothing",
        )
        _add_transfer(p)
    _add_follow(sync)
    compare = sub.add_parser(
        "compare",
        help="how a local tree and a prefix differ (exit 0 same, 1 different, 2 error)",
        description="Identical, different (with the reason), only-source and only-target keys.",
    )
    compare.add_argument("source")
    compare.add_argument("target")
    for p in (sync, backup, compare):
        p.add_argument("--size-only", action="store_true", help="compare sizes only")
        p.add_argument(
            "--checksum",
            action="store_true",
            help="compare content: MD5 against plain ETags, else the stored SHA-256 tree "
            "hash, else the stored CRC32C",
        )
        p.add_argument("--exclude", action="append", metavar="GLOB", help="skip matching paths")
        p.add_argument("--include", action="append", metavar="GLOB", help="only matching paths")
        _add_globals(p, top=False)


# Every command's name. The parsers of cat, lifecycle, restore and the queue commands are
# in modules that import their jobs: they are built only when one of their names is on
# the command line, or when no command's name is (help, or a usage error listing all).
COMMANDS = frozenset(
    {"cp", "local-s3", "ls", "du", "inventory", "sync", "backup", "compare", "demo"}
    | {"cat", "lifecycle", "restore", "plan", "worker", "migrate", "status", "cleanup"}
)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The command line's parser; given ``argv``, only what parsing ``argv`` needs."""
    words = set(argv or ())
    everything = argv is None or not words & COMMANDS

    def wanted(*names: str) -> bool:
        return everything or bool(words.intersection(names))

    parser = _Parser(
        prog="s3ferry",
        description="Move data into, out of and between S3 buckets, fast and verified.",
    )
    _add_globals(parser, top=True)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    cp = sub.add_parser(
        "cp",
        help="copy a file, tree or stream to or from S3",
        description="Upload (LOCAL -> s3://), download (s3:// -> LOCAL), copy between buckets "
        "(s3:// -> s3://, server-side when the destination can read the source); "
        "'-' is stdin or stdout.",
    )
    cp.add_argument("source")
    cp.add_argument("destination")
    cp.add_argument(
        "--copy-path",
        choices=["auto", "server-side", "streamed"],
        help="bucket to bucket: server-side copy, streamed through this machine, "
        "or auto, the default (server-side whenever the destination's credentials can read "
        "the source)",
    )
    _add_follow(cp)
    _add_globals(cp, top=False)
    _add_transfer(cp)
    local = sub.add_parser("local-s3", help="run an embedded S3 server (SeaweedFS) on loopback")
    local.add_argument("action", choices=["start", "stop", "env"])
    local.add_argument("--data-dir", help="keep the server's data here (default: a temp dir)")
    _add_listing(sub)
    _add_sync(sub)
    demo = sub.add_parser(
        "demo", help="start an embedded S3, upload a sample tree, download it back and verify"
    )
    demo.add_argument("--files", type=positive_int, default=2000, help="small files (default 2000)")
    _add_globals(demo, top=False)
    if wanted("cat"):
        from s3ferry.cli.cat import add_cat_parser

        add_cat_parser(sub)
    if wanted("lifecycle"):
        from s3ferry.cli.lifecycle import add_lifecycle_parser

        add_lifecycle_parser(sub)
    if wanted("restore"):
        from s3ferry.cli.restore import add_restore_parser

        add_restore_parser(sub)
    if wanted("plan", "worker", "migrate", "status", "cleanup"):
        from s3ferry.cli.migrate_commands import add_parsers

        add_parsers(sub, _add_globals, _add_transfer, parse_size, positive_int)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args: argparse.Namespace | None = None
    try:
        # Ctrl-C while the parser imports the commands' modules is an interruption too.
        args = build_parser(sys.argv[1:] if argv is None else argv).parse_args(argv)
        if getattr(args, "quiet", False) and getattr(args, "verbose", False):
            raise UsageError("-q/--quiet -v/--verbose", "choose one")
        if args.command == "cp":
            from s3ferry.cli.commands import run_cp

            return run_cp(args)
        if args.command in ("ls", "du", "inventory"):
            from s3ferry.cli import listing_commands

            return listing_commands.COMMANDS[args.command](args)
        if args.command in ("sync", "backup", "compare"):
            from s3ferry.cli import sync_commands

            run = sync_commands.run_compare if args.command == "compare" else sync_commands.run_sync
            return run(args)
        if args.command == "local-s3":
            from s3ferry.cli.commands import run_local_s3

            return run_local_s3(args)
        if args.command == "cat":
            from s3ferry.cli.cat import run_cat

            return run_cat(args)
        if args.command == "lifecycle":
            from s3ferry.cli.lifecycle import run_lifecycle

            return run_lifecycle(args)
        if args.command == "restore":
            from s3ferry.cli.restore import run_restore

            return run_restore(args)
        if args.command in ("plan", "worker", "migrate", "status", "cleanup"):
            from s3ferry.cli import migrate_commands

            return migrate_commands.run(args)
        from s3ferry.cli.commands import run_demo

        return run_demo(args)
    except S3ferryError as e:
        _report_fatal(args, e)
        return ExitCode.CANNOT_START
    except BrokenPipeError:
        # The reader went away (``| head``): what it wanted was written; stop quietly.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return ExitCode.OK
    except KeyboardInterrupt:
        hint = _resume_hint(args)
        print(f"error: interrupted; {hint}", file=sys.stderr)
        _json_error(args, "interrupted", "Interrupted", hint, ExitCode.INTERRUPTED)
        return ExitCode.INTERRUPTED


def _report_fatal(args: argparse.Namespace | None, e: S3ferryError) -> None:
    """The one-line error of a job that could not start; with ``--json`` also a record.

    A refusal of unsigned requests says so: stores answer them in their own words
    (rclone's is "Encountered an unsupported algorithm").
    """
    message = e.message
    unsigned = args is not None and any(
        getattr(args, f"{side}no_sign_request", False) for side in ("", "source_", "dest_")
    )
    if unsigned and isinstance(e, AccessDeniedError):
        message += "; --no-sign-request sent no credentials"
    print(f"error: {e.subject}: {message}", file=sys.stderr)
    _json_error(args, e.subject, type(e).__name__, message, ExitCode.CANNOT_START)


def _json_error(
    args: argparse.Namespace | None, subject: str, reason: str, message: str, code: int
) -> None:
    """With ``--json``, the record of an error that ended the job (stdout stays JSON lines)."""
    if args is not None and getattr(args, "json", False):
        import json

        record = {"type": "error", "subject": subject, "reason": reason, "message": message}
        print(json.dumps({**record, "exit_code": int(code)}), flush=True)


def _resume_hint(args: argparse.Namespace | None) -> str:
    # args is None when interrupted while the parser was loading.
    if (
        args is not None
        and args.command in ("cp", "sync", "backup", "restore")
        and "-" not in (getattr(args, "source", None), getattr(args, "destination", None))
    ):
        from s3ferry.cli.commands import state_dir

        return f"state saved in {state_dir(args)}; run the same command again to resume"
    return "run the same command again to finish"


# glibc gives a freed block of 128 KiB or more back to the kernel at once (and its
# heap above 128 KiB free), so the next object's buffer is fresh pages, each a page
# fault: on a VM several µs apiece. Kept, they are reused; peak memory is unchanged.
# Mixed 1 GiB download, 6 alternating runs: 33-51k page faults -> 12-13k, wall -4%.
MALLOC_MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024
MALLOC_TRIM_THRESHOLD_BYTES = 128 * 1024 * 1024
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt's parameters, from malloc.h


def keep_freed_memory() -> None:
    """Have glibc's malloc keep freed buffers for reuse (no-op elsewhere)."""
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, MALLOC_MMAP_THRESHOLD_BYTES)
        libc.mallopt(_M_TRIM_THRESHOLD, MALLOC_TRIM_THRESHOLD_BYTES)
    except (OSError, AttributeError):
        return  # not glibc: its allocator keeps its own policy


def entry() -> None:
    """Console-script entry point.

    Exits with ``os._exit`` after flushing: the work is finished and reported,
    and skipping interpreter teardown avoids native runtimes (obstore's tokio)
    aborting during finalization, which would turn a success into SIGABRT.
    """
    keep_freed_memory()
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        code = code or ExitCode.PARTIAL_FAILURE
    os._exit(code)

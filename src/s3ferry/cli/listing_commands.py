"""``ls``, ``du`` and ``inventory``: listing results as lines (or JSON lines)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable, Iterable
from typing import BinaryIO

from s3ferry.cli.commands import _store_config
from s3ferry.cli.exit_codes import ExitCode
from s3ferry.cli.render import human_bytes
from s3ferry.jobs.inventory import inventory
from s3ferry.jobs.listing import Folder, disk_usage, list_bucket, list_buckets
from s3ferry.storage.listing import Entry

# Lines are written in batches: one write per line would cost more than the listing.
_BATCH = 2000


def run_ls(args: argparse.Namespace) -> int:
    if args.source in ("s3://", "s3:", None):
        names = [
            json.dumps({"bucket": b.name, "created": b.created})
            if args.json
            else f"{b.created[:10]} {b.created[11:19]} {b.name}"
            for b in list_buckets(store=_store_config(args))
        ]
        _write((n + "\n" for n in names), sys.stdout.buffer)
        return ExitCode.OK
    listing = list_bucket(
        args.source,
        recursive=args.recursive,
        store=_store_config(args),
        workers=args.list_workers,
    )
    prefix = args.source[5:].partition("/")[2]
    level = prefix[: prefix.rfind("/") + 1]
    shown = _json_lines(listing) if args.json else _text_lines(listing, args.recursive, level)
    _write(shown, sys.stdout.buffer)
    return ExitCode.OK


def _text_lines(listing: Iterable[Entry | Folder], recursive: bool, level: str) -> Iterable[str]:
    """``aws s3 ls`` layout: full keys with -r, names relative to the level without."""
    cut = 0 if recursive else len(level)
    for e in listing:
        if isinstance(e, Folder):
            yield f"{'PRE':>30} {e.prefix[cut:]}\n"
        else:
            when = e.last_modified
            yield f"{when[:10]} {when[11:19]} {e.size_bytes:>10} {e.key[cut:]}\n"


def _json_lines(listing: Iterable[Entry | Folder]) -> Iterable[str]:
    for e in listing:
        if isinstance(e, Folder):
            yield json.dumps({"prefix": e.prefix}, ensure_ascii=False) + "\n"
        else:
            record = {
                "key": e.key,
                "size": e.size_bytes,
                "etag": e.etag,
                "last_modified": e.last_modified,
                "storage_class": e.storage_class,
            }
            if e.checksum_algorithm:
                record["checksum_algorithm"] = e.checksum_algorithm
            yield json.dumps(record, ensure_ascii=False) + "\n"


def _write(lines: Iterable[str], out: BinaryIO) -> None:
    """Write ``lines`` in batches (a reader that goes away ends the command in ``main``)."""
    batch: list[str] = []
    for line in lines:
        batch.append(line)
        if len(batch) >= _BATCH:
            out.write("".join(batch).encode("utf-8", "surrogateescape"))
            batch.clear()
    out.write("".join(batch).encode("utf-8", "surrogateescape"))
    out.flush()


def run_du(args: argparse.Namespace) -> int:
    usage = disk_usage(args.source, store=_store_config(args), workers=args.list_workers)
    if args.json:
        record = {
            "type": "du",
            "source": usage.source,
            "objects": usage.objects,
            "bytes": usage.size_bytes,
            "by_storage_class": {
                k: {"objects": c.objects, "bytes": c.size_bytes}
                for k, c in usage.by_storage_class.items()
            },
        }
        print(json.dumps(record, ensure_ascii=False))
        return ExitCode.OK
    for name, c in usage.by_storage_class.items():
        print(f"{name:<20} {c.objects:>12} objects {human_bytes(c.size_bytes):>12}")
    total = human_bytes(usage.size_bytes)
    print(f"{'total':<20} {usage.objects:>12} objects {total:>12}  {usage.source}")
    return ExitCode.OK


def run_inventory(args: argparse.Namespace) -> int:
    report = inventory(
        args.source,
        args.output,
        fmt=args.fmt,
        shard_size=args.shard_size,
        store=_store_config(args),
        workers=args.list_workers,
    )
    if args.json:
        print(json.dumps({"type": "inventory", **dataclasses.asdict(report)}, ensure_ascii=False))
    elif not args.quiet:
        resumed = f", resumed after {report.resumed_after!r}" if report.resumed_after else ""
        resumed = ", already complete" if report.already_complete else resumed
        print(
            f"inventory: {report.objects} objects, {human_bytes(report.size_bytes)} in "
            f"{report.shards} shards -> {report.output}{resumed} ({report.seconds:.1f} s)",
            file=sys.stderr,
        )
    return ExitCode.OK


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "ls": run_ls,
    "du": run_du,
    "inventory": run_inventory,
}

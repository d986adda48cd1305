"""``plan``, ``worker``, ``migrate``, ``status`` and ``cleanup``: copies through a task queue."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from dataclasses import asdict
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from s3ferry.cli.commands import _store_config, _transfer_config
from s3ferry.cli.exit_codes import ExitCode
from s3ferry.cli.render import human_bytes
from s3ferry.events import Event, QueueProgress
from s3ferry.planning.tasks import PlanLimits

if TYPE_CHECKING:
    from s3ferry.jobs.migrate import QueueStatus

TEXT_PROGRESS_SECONDS = 5.0
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION_MAX_DAYS = 36_500  # a century; far more than any multipart upload is kept


def parse_duration(text: str) -> timedelta:
    """``"90s"``, ``"30m"``, ``"12h"``, ``"1d"`` -> a timedelta; a bare ``"0"`` is none."""
    if text == "0":
        return timedelta(0)
    number, unit = text[:-1], text[-1:].lower()
    if unit not in _DURATION_UNITS or not number.replace(".", "", 1).isdigit():
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 1d, 12h, 30m)")
    seconds = float(number) * _DURATION_UNITS[unit]
    if seconds > _DURATION_MAX_DAYS * _DURATION_UNITS["d"]:
        raise argparse.ArgumentTypeError(f"{text!r} is more than {_DURATION_MAX_DAYS} days")
    return timedelta(seconds=seconds)


MAX_WORKER_PROCESSES = 256


def worker_processes(text: str) -> int:
    """A count of worker processes: 1 to :data:`MAX_WORKER_PROCESSES` (each is a Python
    process of its own; more on one machine only compete for it)."""
    if not text.isdigit() or not 1 <= int(text) <= MAX_WORKER_PROCESSES:
        raise argparse.ArgumentTypeError(
            f"not a number of processes from 1 to {MAX_WORKER_PROCESSES}: {text!r}"
        )
    return int(text)


def dead_letter_line(body: str) -> str:
    """The error line of a task given up on, naming its object(s)."""
    from s3ferry.errors import UsageError
    from s3ferry.planning.tasks import PartTask, decode

    try:
        task = decode(body)
    except UsageError:
        return f"error: task {body[:200]}: given up after its last attempt"
    if isinstance(task, PartTask):
        what = f"{task.source}{task.object.key} (part {task.part} of {task.parts})"
    else:
        keys = [o.key for o in task.objects]
        more = f" and {len(keys) - 1} more objects" if len(keys) > 1 else ""
        what = f"{task.source}{keys[0]}{more}"
    return f"error: {what}: copy given up after its last attempt; status --queue counts them"


def add_parsers(
    sub: argparse._SubParsersAction[Any],
    globals_: Any,
    transfer: Any,
    parse_size: Any,
    positive_int: Any,
) -> None:
    """Add the queue commands to ``sub`` (the option helpers come from ``main``)."""

    def queue_options(p: argparse.ArgumentParser, required: bool, shaping: bool) -> None:
        q = p.add_argument_group("queue")
        q.add_argument(
            "--queue",
            required=required,
            metavar="URL",
            help="sqlite:///path/queue.db, sqs://name or an SQS queue URL",
        )
        q.add_argument("--queue-endpoint-url", metavar="URL", help="SQS-compatible server")
        q.add_argument("--queue-profile", metavar="NAME", help="AWS profile for SQS")
        q.add_argument("--queue-region", metavar="REGION", help="region of an sqs://name queue")
        if shaping:
            q.add_argument(
                "--visibility-timeout",
                type=positive_int,
                default=300,
                metavar="SECONDS",
                help="a task nobody heartbeats reappears after this long (default 300)",
            )
            q.add_argument(
                "--max-attempts",
                type=positive_int,
                default=5,
                metavar="N",
                help="deliveries before a task goes to the dead letters (set when the queue "
                "is created; default 5)",
            )

    def inventory_report(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--inventory-report",
            metavar="MANIFEST",
            help="plan from this AWS S3 Inventory report of the source (manifest.json or its "
            "folder, local or s3://) instead of listing the source",
        )

    def limits(p: argparse.ArgumentParser) -> None:
        d = PlanLimits()
        p.add_argument("--max-objects", type=positive_int, default=d.max_objects, metavar="N")
        p.add_argument("--max-bytes", type=parse_size, default=d.max_bytes, metavar="SIZE")
        p.add_argument(
            "--split-threshold", type=parse_size, default=d.split_threshold, metavar="SIZE"
        )
        p.add_argument(
            "--chunk-size",
            type=parse_size,
            default=d.chunk_size,
            metavar="SIZE",
            help="part size of split objects (at least 5MiB)",
        )

    def worker_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--copy-path", choices=["auto", "server-side", "streamed"], default="auto")
        p.add_argument(
            "--tasks-at-once", type=positive_int, default=4, metavar="N", help="per process"
        )
        p.add_argument(
            "--stop-timeout",
            type=positive_int,
            default=30,
            metavar="SECONDS",
            help="on SIGTERM, how long running tasks may take before they are given back",
        )

    plan = sub.add_parser(
        "plan",
        help="put the tasks of a bucket-to-bucket copy on a queue",
        description="Stream a listing (or an s3ferry inventory directory) of the source, "
        "leave out what the destination already holds, and queue tasks: small objects "
        "packed together, large ones split into parts.",
    )
    plan.add_argument("--inventory", required=True, metavar="DIR|s3://src/prefix")
    plan.add_argument("--dest", required=True, metavar="s3://dst/prefix")
    inventory_report(plan)
    queue_options(plan, required=True, shaping=True)
    limits(plan)
    globals_(plan, top=False)

    worker = sub.add_parser(
        "worker",
        help="carry out the tasks of a queue (until SIGTERM, or until it is empty)",
        description="Take tasks from the queue and copy what they name. Stateless and "
        "idempotent: kill it, start more. SIGTERM stops it cleanly (exit 0).",
    )
    queue_options(worker, required=True, shaping=True)
    worker.add_argument("--processes", type=worker_processes, default=1, metavar="N")
    worker.add_argument("--exit-when-empty", action="store_true", help="stop once no task is left")
    worker_options(worker)
    globals_(worker, top=False)
    transfer(worker)

    migrate = sub.add_parser(
        "migrate",
        help="copy a bucket prefix to another through a queue and local workers (resumable)",
        description="Plan and run the copy with worker processes on this machine. Run it "
        "again after a crash: only what is missing is copied.",
    )
    migrate.add_argument("source", metavar="s3://src/prefix")
    migrate.add_argument("destination", metavar="s3://dst/prefix")
    migrate.add_argument("--workers", type=worker_processes, default=4, metavar="N")
    inventory_report(migrate)
    queue_options(migrate, required=False, shaping=True)
    limits(migrate)
    worker_options(migrate)
    globals_(migrate, top=False)
    transfer(migrate)

    status = sub.add_parser("status", help="tasks of a queue by state")
    queue_options(status, required=True, shaping=False)
    globals_(status, top=False)

    cleanup = sub.add_parser("cleanup", help="abort stale multipart uploads under a prefix")
    cleanup.add_argument("target", metavar="s3://bucket[/prefix]")
    cleanup.add_argument(
        "--older-than", type=parse_duration, default=timedelta(days=1), metavar="AGE"
    )
    cleanup.add_argument("--dry-run", action="store_true", help="list them, abort nothing")
    globals_(cleanup, top=False)


def _access(args: argparse.Namespace) -> Any:
    from s3ferry.queueing import QueueAccess

    return QueueAccess(
        args.queue,
        args.queue_endpoint_url,
        args.queue_profile,
        args.queue_region,
        getattr(args, "visibility_timeout", 300),
        getattr(args, "max_attempts", 5),
    )


def _limits(args: argparse.Namespace) -> PlanLimits:
    return PlanLimits(args.max_objects, args.max_bytes, args.split_threshold, args.chunk_size)


def _worker_config(args: argparse.Namespace) -> Any:
    from s3ferry.jobs.worker import WorkerConfig

    path = {"auto": None, "server-side": True, "streamed": False}[args.copy_path]
    return WorkerConfig(
        source_store=_store_config(args, "source"),
        dest_store=_store_config(args, "dest"),
        transfer=_transfer_config(args),
        server_side=path,
        tasks_at_once=args.tasks_at_once,
        stop_seconds=args.stop_timeout,
        visibility_seconds=args.visibility_timeout,
    )


def _emit(args: argparse.Namespace, record: dict[str, Any], text: str) -> None:
    if args.json:
        print(json.dumps(record, ensure_ascii=False), flush=True)
    elif not args.quiet:
        print(text, file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    return {
        "plan": _plan,
        "worker": _worker,
        "migrate": _migrate,
        "status": _status,
        "cleanup": _cleanup,
    }[args.command](args)


def _plan(args: argparse.Namespace) -> int:
    from s3ferry.jobs.migrate import plan

    report = plan(
        args.inventory,
        args.dest,
        _access(args),
        limits=_limits(args),
        source_store=_store_config(args, "source"),
        dest_store=_store_config(args, "dest"),
        inventory_report=args.inventory_report,
    )
    _emit(
        args,
        {"type": "summary", **asdict(report)},
        f"plan: {report.tasks:,} tasks ({report.part_tasks:,} parts of "
        f"{report.uploads_started:,} split objects) for {report.objects:,} objects, "
        f"{human_bytes(report.size_bytes)}; {report.objects_present:,} already there",
    )
    return ExitCode.OK


def _stop_on_sigterm() -> threading.Event:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    return stop


def _worker(args: argparse.Namespace) -> int:
    from s3ferry.jobs.worker import serve

    config = _worker_config(args)
    access = _access(args)
    access.open().close()  # a missing queue is an error now, not in every process
    report = serve(
        access,
        config,
        processes=args.processes,
        exit_when_empty=args.exit_when_empty,
        stop=_stop_on_sigterm(),
    )
    dead: list[str] = []
    if args.exit_when_empty:
        from itertools import islice

        from s3ferry.jobs.migrate import MAX_DEAD_REPORTED

        queue = access.open()
        try:
            dead = list(islice(queue.dead_letters(), MAX_DEAD_REPORTED))
        finally:
            queue.close()
    _emit(
        args,
        {"type": "summary", **asdict(report), "dead": len(dead)},
        f"worker: {report.tasks_done:,} tasks, {report.objects_copied:,} objects, "
        f"{human_bytes(report.bytes_copied)} in {report.seconds:.1f} s"
        + (f"; {len(dead):,} tasks dead" if dead else ""),
    )
    for body in dead:
        print(dead_letter_line(body), file=sys.stderr)
    return ExitCode.PARTIAL_FAILURE if dead else ExitCode.OK


def _migrate(args: argparse.Namespace) -> int:
    from s3ferry.jobs.migrate import migrate

    last = [0.0]

    def sink(event: Event) -> None:
        # JSON gets every progress record; text a line every few seconds.
        if isinstance(event, QueueProgress) and (
            args.json or time.monotonic() - last[0] >= TEXT_PROGRESS_SECONDS
        ):
            last[0] = time.monotonic()
            done = "-" if event.done is None else f"{event.done:,}"
            _emit(
                args,
                {"type": "progress", **asdict(event)},
                f"migrate: planned {event.tasks_planned:,} tasks"
                f"{'' if event.planning_done else ' so far'}; queued {event.queued:,}, "
                f"running {event.in_flight:,}, done {done}, dead {event.dead:,}; "
                f"{event.objects_copied:,} objects, {human_bytes(event.bytes_copied)} copied",
            )

    report = migrate(
        args.source,
        args.destination,
        workers=args.workers,
        queue=_access(args) if args.queue else None,
        state_dir=args.state_dir,
        limits=_limits(args),
        worker=_worker_config(args),
        sink=sink,
        inventory_report=args.inventory_report,
    )
    record = asdict(report)
    _emit(
        args,
        {"type": "summary", "ok": report.ok, **record},
        f"migrate: {report.objects_copied:,} objects, {human_bytes(report.bytes_copied)} "
        f"copied in {report.seconds:.1f} s; {report.plan.objects_present:,} were there; "
        f"{report.dead} tasks dead; {report.uploads_aborted} stale uploads aborted; "
        f"queue {report.queue}",
    )
    for body in report.dead_tasks:
        print(dead_letter_line(body), file=sys.stderr)
    return ExitCode.OK if report.ok else ExitCode.PARTIAL_FAILURE


def _status(args: argparse.Namespace) -> int:
    from s3ferry.jobs.migrate import status

    s = status(_access(args))
    if s.stats.done is None or s.done_objects is None or s.done_bytes is None:
        done = "- (not kept by SQS)"
    else:
        done = f"{s.stats.done:,} ({s.done_objects:,} objects, {human_bytes(s.done_bytes)})"
    line = (
        f"queued {s.stats.queued:,}  running {s.stats.in_flight:,}  done {done}  "
        f"dead {s.stats.dead:,} ({s.dead_objects:,} objects, {human_bytes(s.dead_bytes)})"
    )
    if args.json:
        print(json.dumps({"type": "status", **asdict(s.stats), **_tallies(s)}))
    else:
        print(line)
    return ExitCode.OK


def _tallies(s: QueueStatus) -> dict[str, int | None]:
    return {
        "done_objects": s.done_objects,
        "done_bytes": s.done_bytes,
        "dead_objects": s.dead_objects,
        "dead_bytes": s.dead_bytes,
    }


def _cleanup(args: argparse.Namespace) -> int:
    from s3ferry.jobs.migrate import cleanup

    found = failed = 0
    for u in cleanup(
        args.target,
        older_than=args.older_than,
        dry_run=args.dry_run,
        store=_store_config(args, "dest"),
    ):
        found += 1
        failed += bool(u.error)
        what = "aborted" if u.aborted else ("would abort" if not u.error else "FAILED")
        if args.json:
            print(json.dumps({"type": "upload", **asdict(u), "initiated": str(u.initiated)}))
        else:
            print(f"{what:<11} {u.initiated:%Y-%m-%d %H:%M} {u.key} ({u.upload_id})")
        if u.error:
            print(f"error: {u.key}: {u.error}", file=sys.stderr)
    done = 0 if args.dry_run else found - failed
    if args.json:
        print(json.dumps({"type": "summary", "found": found, "aborted": done, "failed": failed}))
    elif not args.quiet:
        outcome = "to abort (dry run)" if args.dry_run else f"{done} aborted, {failed} failed"
        print(f"cleanup: {found} stale uploads under {args.target}; {outcome}", file=sys.stderr)
    return ExitCode.PARTIAL_FAILURE if failed else ExitCode.OK

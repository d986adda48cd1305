"""The arithmetic behind docs/scale.md: tasks, queue messages, listing time, worker-hours and
request cost of a bucket-to-bucket migration through s3ferry's planner and queue.

Run ``python docs/scale_model.py``; it prints the markdown tables docs/scale.md quotes. Every
input is a named constant below: the measured rates come from ``bench/run.py --ops copy,queue``
(see docs/scale.md for the run), prices and workload shapes are assumptions stated there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

KB, MB, GB, TB, PB = 10**3, 10**6, 10**9, 10**12, 10**15
KIB, MIB, TIB = 2**10, 2**20, 2**40

# --- planner defaults (s3ferry plan) --------------------------------------------------------
MAX_OBJECTS = 10
MAX_BYTES = 20 * MB
SPLIT_THRESHOLD = 5 * MB
CHUNK = 5 * MIB
MAX_PARTS = 10_000
LIST_PAGE = 1_000  # keys per ListObjectsV2 page
LIST_PARTS_PAGE = 1_000  # parts per ListParts page
SEND_BATCH = 10  # SendMessageBatch entries
VISIBILITY_S = 300  # worker --visibility-timeout default; a heartbeat every third of it

# --- measured on the 2-core bench machine (bench/run.py, see docs/scale.md) -----------------
# One worker process, 10,000 x 4 KiB, SQLite queue, client and server on the same 2 cores.
SMALL_OBJ_S_SERVER_SIDE = 577.0  # worker --processes 1, --copy-path auto (server-side)
SMALL_OBJ_S_STREAMED = 479.0  # worker --processes 1 --copy-path streamed
SMALL_CPU_MS_SERVER_SIDE = 0.89  # client CPU per object of the same runs
SMALL_CPU_MS_STREAMED = 1.39
# One worker process on part tasks: 4 x 512 MiB planned into 412 tasks of 5 MiB, MB/s.
LARGE_MB_S_SERVER_SIDE = 103.9  # 2,147.5 MB in 20.67 s (UploadPartCopy + ListParts per part)
LARGE_MB_S_STREAMED = 69.4  # 2,147.5 MB in 30.94 s (ranged GET + UploadPart + ListParts)
LARGE_CPU_S_PER_GB_SERVER_SIDE = 4.37  # client CPU per GB: 9.38 s / 2.1475 GB
LARGE_CPU_S_PER_GB_STREAMED = 7.05  # 15.14 s / 2.1475 GB
# One s3ferry ls -r process lists the 100,000 keys of the nested tree in 5.75 s here (median
# of 3, bench --ops list; the flat key space takes 2.13 s).
LISTER_KEYS_S_LOCAL = 100_000 / 5.75
# On S3 a ListObjectsV2 page of 1,000 keys takes longer than on a loopback server: assumed.
S3_LIST_PAGE_S = 0.08
LISTER_KEYS_S_S3 = LIST_PAGE / S3_LIST_PAGE_S
# s3ferry plan (list the source, list the empty destination, queue 1,000 tasks in SQLite):
# 10,000 objects in 0.60-0.85 s, median of the six plan runs ~0.66 s.
PLANNER_OBJ_S_LOCAL = 10_000 / 0.66

# --- prices, us-east-1 (assumed; check the current price pages) -----------------------------
PUT_CLASS_PER_1K = 0.005  # PUT, COPY, POST, LIST; UploadPart(Copy), Create/Complete, ListParts
GET_CLASS_PER_1K = 0.0004  # GET, HEAD and all other requests
SQS_PER_MILLION = 0.40  # standard queue, per request (each 64 KiB of payload is one)
PROCESS_HOUR = 0.0725 / 2  # one worker process = 1 vCPU of a 2-vCPU instance at $0.0725/h
EGRESS_PER_GB = 0.05  # us-east-1 to the internet, >150 TB/month tier (cross-partition)

# --- the seed's slow link (MISSION section 3: tasks sized for ~10 KB/s) ----------------------
SLOW_LINK_B_S = 10 * KB
SLOW_LINK_DAYS = 30
NEXRAD_OBJECT_TASK_BYTES = 17 * MB  # mean bytes of a NEXRAD object task (see plan() output)

# --- S3 request-rate limits per partitioned prefix -------------------------------------------
PREFIX_WRITES_S = 3_500  # PUT/COPY/POST/DELETE
PREFIX_READS_S = 5_500  # GET/HEAD

# --- the peer's published figure (DTH cost page, ../shared/research/peer-tools.md) ----------
PEER_FILES_PER_TIB = TIB // (10 * KIB)  # 1 TiB of 10 KiB files: 107.4 million
PEER_COST = 1_113.87  # S3 requests $622, DynamoDB $268, SQS $86, EC2 and the rest
PEER_INSTANCE_HOURS = 3_000  # ~10 files/s per t4g.micro instance


@dataclass(frozen=True, slots=True)
class Bin:
    """``count`` objects of about ``size`` bytes each."""

    label: str
    count: int
    size: int


@dataclass(frozen=True, slots=True)
class Workload:
    name: str
    bins: tuple[Bin, ...]
    server_side: bool  # can the destination's credentials read the source?

    @property
    def objects(self) -> int:
        return sum(b.count for b in self.bins)

    @property
    def bytes(self) -> int:
        return sum(b.count * b.size for b in self.bins)


@dataclass(frozen=True, slots=True)
class Plan:
    object_tasks: int
    part_tasks: int
    split_objects: int
    small_objects: int
    small_bytes: int
    split_bytes: int

    @property
    def tasks(self) -> int:
        return self.object_tasks + self.part_tasks


def parts_of(size: int) -> tuple[int, int]:
    """(part size, parts) as the planner computes them: CHUNK grown to 10,000 parts at most."""
    part = max(CHUNK, -(-size // MAX_PARTS))
    return part, max(1, -(-size // part))


def plan(w: Workload) -> Plan:
    """Tasks of a workload. Objects of one bin are assumed to be listed together, so a task
    holds min(10, 20 MB // size) of them (keys mixing bins pack a little worse)."""
    object_tasks = part_tasks = split = small = small_bytes = split_bytes = 0
    for b in w.bins:
        if b.size > SPLIT_THRESHOLD:
            split += b.count
            split_bytes += b.count * b.size
            part_tasks += b.count * parts_of(b.size)[1]
        else:
            per_task = max(1, min(MAX_OBJECTS, MAX_BYTES // b.size))
            object_tasks += math.ceil(b.count / per_task)
            small += b.count
            small_bytes += b.count * b.size
    return Plan(object_tasks, part_tasks, split, small, small_bytes, split_bytes)


@dataclass(frozen=True, slots=True)
class Requests:
    list_: int  # ListObjectsV2 (source)
    head: int
    get: int  # whole-object and ranged GETs
    put: int  # PutObject, CopyObject, UploadPart, UploadPartCopy
    mpu: int  # CreateMultipartUpload + CompleteMultipartUpload
    list_parts: int

    @property
    def put_class(self) -> int:
        return self.list_ + self.put + self.mpu + self.list_parts

    @property
    def get_class(self) -> int:
        return self.head + self.get

    @property
    def cost(self) -> float:
        return self.put_class / 1000 * PUT_CLASS_PER_1K + self.get_class / 1000 * GET_CLASS_PER_1K


def requests(w: Workload, p: Plan) -> Requests:
    """S3 requests of one run with no failures, destination empty (one LIST finds that).

    Small objects: CopyObject, or GET + PUT. Split objects: at plan time HEAD (source) and
    CreateMultipartUpload; per part UploadPartCopy (or ranged GET + UploadPart) and a ListParts
    (the worker that sees every part there completes: one CompleteMultipartUpload and a HEAD).
    """
    list_parts = 0
    for b in w.bins:
        if b.size > SPLIT_THRESHOLD:
            parts = parts_of(b.size)[1]
            list_parts += b.count * parts * math.ceil(parts / LIST_PARTS_PAGE)
    small_get = 0 if w.server_side else p.small_objects
    part_get = 0 if w.server_side else p.part_tasks
    return Requests(
        list_=math.ceil(w.objects / LIST_PAGE) + 1,
        head=2 * p.split_objects,
        get=small_get + part_get,
        put=p.small_objects + p.part_tasks,
        mpu=2 * p.split_objects,
        list_parts=list_parts,
    )


def sqs_requests(p: Plan, part_seconds: float, object_task_seconds: float = 0.0) -> float:
    """SendMessageBatch (1 per 10 tasks), one ReceiveMessage and one DeleteMessage per task,
    a ChangeMessageVisibility per VISIBILITY_S / 3 a task runs (none for short tasks)."""
    beat = VISIBILITY_S / 3
    beats = int(part_seconds // beat) * p.part_tasks
    beats += int(object_task_seconds // beat) * p.object_tasks
    return p.tasks / SEND_BATCH + 2 * p.tasks + beats


def process_hours(w: Workload, p: Plan) -> float:
    """Worker-process hours at the measured one-process rates: an object of a packed task
    costs 1 / (objects/s) plus its bytes at the part rate (so a 3 MB object is not counted
    as cheap as a 4 KiB one); split objects cost their bytes at the part rate."""
    obj_s = SMALL_OBJ_S_SERVER_SIDE if w.server_side else SMALL_OBJ_S_STREAMED
    mb_s = LARGE_MB_S_SERVER_SIDE if w.server_side else LARGE_MB_S_STREAMED
    return (p.small_objects / obj_s + (p.small_bytes + p.split_bytes) / MB / mb_s) / 3600


def cpu_hours(w: Workload, p: Plan) -> float:
    """Client CPU hours at the measured CPU per object / per GB: the fleet's floor when each
    process has a core and the store answers fast enough (not the case on the bench box)."""
    ms = SMALL_CPU_MS_SERVER_SIDE if w.server_side else SMALL_CPU_MS_STREAMED
    per_gb = LARGE_CPU_S_PER_GB_SERVER_SIDE if w.server_side else LARGE_CPU_S_PER_GB_STREAMED
    return (p.small_objects * ms / 1000 + (p.small_bytes + p.split_bytes) / GB * per_gb) / 3600


def part_seconds(w: Workload) -> float:
    mb_s = LARGE_MB_S_SERVER_SIDE if w.server_side else LARGE_MB_S_STREAMED
    return CHUNK / MB / mb_s


def fmt(n: float) -> str:
    if n >= 100:
        return f"{n:,.0f}"
    return f"{n:,.1f}" if n >= 10 else f"{n:,.2f}"


def table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|---" + "|---:" * (len(header) - 1) + "|"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


PB_MIX = Workload(
    "10^9 objects / 1 PB",
    (
        Bin("small, ~16 KB", 700_000_000, 16 * KB),
        Bin("medium, ~500 KB", 250_000_000, 500 * KB),
        Bin("below split, ~3 MB", 40_000_000, 3 * MB),
        Bin("large, ~74 MB", 10_000_000, 74_380_000),
    ),
    server_side=True,
)
PB_MIX_STREAMED = Workload(PB_MIX.name + " (streamed)", PB_MIX.bins, server_side=False)
NEXRAD = Workload(
    "NEXRAD Level II to cn-north-1 (estimate)",
    (
        Bin("1991-2008 volumes, ~1 MB", 100_000_000, 1 * MB),
        Bin("recent volumes <= 5 MB, ~4 MB", 120_000_000, 4 * MB),
        Bin("recent volumes > 5 MB, ~8 MB", 80_000_000, 8 * MB),
    ),
    server_side=False,  # the China partition cannot read us-east-1: streamed
)
PEER_CASE = Workload(
    "1 TiB of 10 KiB files", (Bin("10 KiB", PEER_FILES_PER_TIB, 10 * KIB),), server_side=False
)
WORKLOADS = (PB_MIX, PB_MIX_STREAMED, NEXRAD, PEER_CASE)


def main() -> None:
    print("## Inputs (measured)\n")
    print(
        table(
            ("rate, one process", "value"),
            [
                ("small objects/s, server-side", fmt(SMALL_OBJ_S_SERVER_SIDE)),
                ("small objects/s, streamed", fmt(SMALL_OBJ_S_STREAMED)),
                ("client CPU ms per small object, server-side", fmt(SMALL_CPU_MS_SERVER_SIDE)),
                ("client CPU ms per small object, streamed", fmt(SMALL_CPU_MS_STREAMED)),
                ("large MB/s, server-side", fmt(LARGE_MB_S_SERVER_SIDE)),
                ("large MB/s, streamed", fmt(LARGE_MB_S_STREAMED)),
                ("keys/s per lister, local (measured)", fmt(LISTER_KEYS_S_LOCAL)),
                ("objects/s per planner (list + queue), local", fmt(PLANNER_OBJ_S_LOCAL)),
                (
                    f"keys/s per lister, S3 ({S3_LIST_PAGE_S * 1000:.0f} ms a page)",
                    fmt(LISTER_KEYS_S_S3),
                ),
            ],
        )
    )
    print("\n## Workloads\n")
    rows = []
    for w in WORKLOADS:
        for b in w.bins:
            rows.append((w.name, b.label, f"{b.count:,}", f"{b.count * b.size / TB:,.1f}"))
        rows.append((w.name, "**total**", f"{w.objects:,}", f"{w.bytes / TB:,.1f}"))
    print(table(("workload", "bin", "objects", "TB"), rows))

    print("\n## Tasks and queue messages\n")
    rows = []
    for w in WORKLOADS:
        p = plan(w)
        sqs = sqs_requests(p, part_seconds(w))
        rows.append(
            (
                w.name,
                f"{p.object_tasks:,}",
                f"{p.split_objects:,}",
                f"{p.part_tasks:,}",
                f"{p.tasks:,}",
                f"{w.objects / p.tasks:.2f}",
                f"{sqs / 1e6:,.1f} M",
                f"${sqs / 1e6 * SQS_PER_MILLION:,.0f}",
                f"{w.objects:,}",
                f"${w.objects * 2.1 / 1e6 * SQS_PER_MILLION:,.0f}",
            )
        )
    print(
        table(
            (
                "workload",
                "object tasks",
                "split objects",
                "part tasks",
                "messages",
                "objects/message",
                "SQS requests",
                "SQS cost",
                "1 object/message: messages",
                "its SQS cost",
            ),
            rows,
        )
    )

    print("\n## Listing time (source, one pass)\n")
    listers = (1, 16, 64, 256, 1_400)
    rows = []
    for w in (PB_MIX, NEXRAD):
        for label, rate in (
            ("ls, S3 (assumed)", LISTER_KEYS_S_S3),
            ("ls, local", LISTER_KEYS_S_LOCAL),
            ("plan, local", PLANNER_OBJ_S_LOCAL),
        ):
            rows.append((w.name, label, *(_duration(w.objects / (n * rate)) for n in listers)))
    print(table(("workload", "rate", *(f"{n:,} listers" for n in listers)), rows))

    print("\n## S3 requests and cost\n")
    rows = []
    for w in WORKLOADS:
        p = plan(w)
        r = requests(w, p)
        rows.append(
            (
                w.name,
                f"{r.list_ / 1e6:,.2f} M",
                f"{r.get / 1e6:,.1f} M",
                f"{r.head / 1e6:,.2f} M",
                f"{r.put / 1e6:,.1f} M",
                f"{r.mpu / 1e6:,.2f} M",
                f"{r.list_parts / 1e6:,.1f} M",
                f"${r.cost:,.0f}",
            )
        )
    print(
        table(
            (
                "workload",
                "LIST",
                "GET",
                "HEAD",
                "PUT/COPY/part",
                "MPU create+complete",
                "ListParts",
                "request cost",
            ),  # fmt: skip
            rows,
        )
    )

    print("\n## Worker-hours and totals\n")
    rows = []
    for w in WORKLOADS:
        p = plan(w)
        r = requests(w, p)
        hours = process_hours(w, p)
        cpu = cpu_hours(w, p)
        sqs = sqs_requests(p, part_seconds(w)) / 1e6 * SQS_PER_MILLION
        compute = hours * PROCESS_HOUR
        egress = 0.0 if w.server_side else w.bytes / GB * EGRESS_PER_GB
        total = r.cost + sqs + compute
        rows.append(
            (
                w.name,
                f"{hours:,.0f}",
                f"{cpu:,.0f}",
                f"{hours / 2:,.0f}",
                f"{_duration(hours * 3600 / 1000)}",
                f"${compute:,.0f}",
                f"${r.cost:,.0f}",
                f"${sqs:,.0f}",
                f"${total:,.0f}",
                f"${egress:,.0f}" if egress else "-",
            )
        )
    print(
        table(
            (
                "workload",
                "process-hours",
                "client CPU-hours",
                "2-vCPU instance-hours",
                "wall with 1,000 processes",
                "compute",
                "S3 requests",
                "SQS",
                "total w/o transfer",
                "+ data transfer",
            ),  # fmt: skip
            rows,
        )
    )
    p = plan(PEER_CASE)
    r = requests(PEER_CASE, p)
    hours = process_hours(PEER_CASE, p)
    sqs = sqs_requests(p, 0) / 1e6 * SQS_PER_MILLION
    print(
        f"\nPeer (DTH) for {PEER_FILES_PER_TIB:,} files of 10 KiB: ${PEER_COST:,.2f} and "
        f"~{PEER_INSTANCE_HOURS:,} instance-hours. s3ferry, same files streamed: "
        f"${r.cost + sqs + hours * PROCESS_HOUR:,.0f} (S3 requests ${r.cost:,.0f}, "
        f"SQS ${sqs:,.2f}, compute ${hours * PROCESS_HOUR:,.2f}) and {hours:,.0f} process-hours "
        f"({hours / 2:,.0f} 2-vCPU instance-hours)."
    )

    p = plan(NEXRAD)
    task_s = NEXRAD_OBJECT_TASK_BYTES / SLOW_LINK_B_S
    slow = sqs_requests(p, CHUNK / SLOW_LINK_B_S, task_s)
    streams = NEXRAD.bytes / SLOW_LINK_B_S / (SLOW_LINK_DAYS * 86400)
    print(
        f"\nNEXRAD over a link of {SLOW_LINK_B_S / KB:.0f} KB/s per stream (MISSION section 3): "
        f"an object task (~{NEXRAD_OBJECT_TASK_BYTES / MB:.0f} MB) runs {task_s / 60:,.0f} min "
        f"and a 5 MiB part {CHUNK / SLOW_LINK_B_S / 60:,.1f} min, so heartbeats add up: "
        f"{slow / 1e6:,.0f} M SQS requests (${slow / 1e6 * SQS_PER_MILLION:,.0f}); finishing "
        f"in {SLOW_LINK_DAYS} days takes {streams:,.0f} streams at once."
    )

    print("\n## Per-prefix request limits\n")
    rows = []
    for w in (PB_MIX, NEXRAD):
        p = plan(w)
        writes = p.small_objects + p.part_tasks
        rows.append(
            (
                w.name,
                f"{writes:,}",
                _duration(writes / PREFIX_WRITES_S),
                f"{PREFIX_WRITES_S / (SMALL_OBJ_S_SERVER_SIDE if w.server_side else SMALL_OBJ_S_STREAMED):,.0f}",  # noqa: E501
            )
        )
    print(
        table(
            (
                "workload",
                "write requests",
                "at 3,500/s (one hot prefix)",
                "worker processes that saturate one prefix",
            ),  # fmt: skip
            rows,
        )
    )


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:,.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:,.0f} min"
    if seconds < 3 * 86400:
        return f"{seconds / 3600:,.1f} h"
    return f"{seconds / 86400:,.1f} d"


if __name__ == "__main__":
    main()

"""Migration through a queue: plan -> queue -> worker processes, on real servers.

SQS is played by moto's server (no other local SQS server is installable
here); S3 by SeaweedFS: one server for same-server (server-side) copies, two
with different keys for copies between "partitions" that no credential spans.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.inventory import Row, write_report
from support.moto import MOTO_KEYS, moto_server
from support.partitions import Partitions
from support.trees import bucket_contents

from s3ferry.config import StoreConfig
from s3ferry.errors import SourceChangedError, TransientError
from s3ferry.jobs.inventory import inventory
from s3ferry.jobs.migrate import migrate, plan, status
from s3ferry.jobs.worker import TaskRunner, WorkerConfig
from s3ferry.planning.tasks import PartTask, PlanLimits, decode
from s3ferry.queueing import QueueAccess, open_queue
from s3ferry.queueing.sqlite import SqliteQueue

MiB = 1024 * 1024
S3FERRY = str(Path(sys.executable).parent / "s3ferry")


def _fill(client: Any, bucket: str, count: int, big: int, seed: int = 7) -> dict[str, str]:
    """``count`` small objects (0-40 KB) and ``big`` objects of 11-13 MiB (split into parts)."""
    rng = random.Random(seed)
    objects = {
        f"data/d{i % 13}/o{i:05d}": rng.randbytes(rng.choice((0, 10, 4000, 40_000)))
        for i in range(count)
    }
    objects |= {
        f"data/big/b{i}": rng.randbytes(11 * MiB + rng.randrange(2 * MiB)) for i in range(big)
    }
    for key, body in objects.items():
        client.put_object(Bucket=bucket, Key=key, Body=body)
    return {k[len("data/") :]: hashlib.md5(v).hexdigest() for k, v in objects.items()}


def _open_uploads(client: Any, bucket: str) -> list[Any]:
    return list(client.list_multipart_uploads(Bucket=bucket).get("Uploads", ()))


def test_migrate_on_one_server_then_again(
    s3client: Any, bucket: str, store_config: StoreConfig, tmp_path: Path
) -> None:
    expected = _fill(s3client, bucket, 150, 1)
    tags = {"TagSet": [{"Key": "team", "Value": "α ops"}]}
    for key in ("data/big/b0", "data/d0/o00000"):  # a split object and a small one
        s3client.put_object_tagging(Bucket=bucket, Key=key, Tagging=tags)
    worker = WorkerConfig(source_store=store_config, dest_store=store_config, wait_seconds=0.5)
    report = migrate(
        f"s3://{bucket}/data/",
        f"s3://{bucket}/copy/",
        workers=2,
        state_dir=tmp_path,
        worker=worker,
    )
    assert report.ok and report.dead == 0
    assert report.plan.objects == len(expected) and report.plan.part_tasks == 3
    assert report.bytes_copied == report.plan.size_bytes
    assert bucket_contents(s3client, bucket, "copy/") == expected
    done = status(report.queue)
    assert (done.done_objects, done.done_bytes) == (len(expected), report.plan.size_bytes)
    assert done.stats.done == report.tasks_done and (done.dead_objects, done.dead_bytes) == (0, 0)
    assert not _open_uploads(s3client, bucket)
    for key in ("copy/big/b0", "copy/d0/o00000"):
        assert s3client.get_object_tagging(Bucket=bucket, Key=key)["TagSet"] == tags["TagSet"]
    again = migrate(
        f"s3://{bucket}/data/", f"s3://{bucket}/copy/", workers=1, state_dir=tmp_path, worker=worker
    )
    assert again.plan.objects == 0 and again.plan.objects_present == len(expected)


def test_migrate_from_an_inventory_report_in_file_order(
    s3client: Any, bucket: str, store_config: StoreConfig, tmp_path: Path
) -> None:
    expected = _fill(s3client, bucket, 60, 1, seed=3)
    listed = s3client.list_objects_v2(Bucket=bucket, Prefix="data/")["Contents"]
    rows = [Row(o["Key"], o["Size"], o["ETag"].strip('"')) for o in listed]
    rows.append(Row("elsewhere/not-planned", 5))
    random.Random(1).shuffle(rows)
    manifest = write_report(tmp_path / "report", [rows[:30], rows[30:]], source_bucket=bucket)
    present = sorted(expected)[::7]
    for key in present:
        s3client.copy_object(Bucket=bucket, Key=f"copy/{key}", CopySource=f"{bucket}/data/{key}")
    worker = WorkerConfig(source_store=store_config, dest_store=store_config, wait_seconds=0.5)

    report = migrate(
        f"s3://{bucket}/data/",
        f"s3://{bucket}/copy/",
        workers=1,
        state_dir=tmp_path / "state",
        worker=worker,
        inventory_report=str(manifest),
    )

    assert report.ok and report.plan.objects_present == len(present)
    assert report.plan.objects == len(expected) - len(present)
    assert bucket_contents(s3client, bucket, "copy/") == expected


def test_a_part_task_done_twice_is_not_an_error(
    s3client: Any, bucket: str, store_config: StoreConfig, tmp_path: Path
) -> None:
    """Whoever sends the last part completes the upload; a redelivered part task then
    finds the object complete."""
    _fill(s3client, bucket, 0, 1)
    url = f"sqlite:///{tmp_path}/q.db"
    plan(
        f"s3://{bucket}/data/",
        f"s3://{bucket}/copy/",
        url,
        source_store=store_config,
        dest_store=store_config,
    )
    q = open_queue(url)
    tasks = [decode(m.body) for m in q.receive(10)]
    assert all(isinstance(t, PartTask) for t in tasks) and len(tasks) == 3
    runner = TaskRunner(WorkerConfig(source_store=store_config, dest_store=store_config))
    results = [runner.run(t, again=False) for t in tasks]
    assert [r[0] for r in results] == [0, 0, 1]
    assert runner.run(tasks[-1], again=True)[0] == 0
    assert not _open_uploads(s3client, bucket)


def _run_queued(url: str, store_config: StoreConfig) -> None:
    """Carry out every task on the queue ``url``, as a worker would."""
    q = open_queue(url)
    runner = TaskRunner(WorkerConfig(source_store=store_config, dest_store=store_config))
    while messages := q.receive(10):
        for m in messages:
            runner.run(decode(m.body), again=False)
            q.ack(m)


def test_a_plan_cut_short_by_a_broken_inventory_shard_leaves_no_upload_behind(
    s3client: Any, bucket: str, store_config: StoreConfig, cli_env: dict[str, str], tmp_path: Path
) -> None:
    """The split object (first in key order) is in the first shard, the second shard is
    broken: the object's part tasks reach the queue, so workers complete its upload."""
    expected = _fill(s3client, bucket, 30, 1)
    inventory(f"s3://{bucket}/data/", tmp_path / "inv", shard_size=10, store=store_config)
    shard = tmp_path / "inv" / "part-00001.jsonl.gz"
    shard.write_bytes(shard.read_bytes()[:40])
    url = f"sqlite:///{tmp_path}/q.db"

    failed = subprocess.run(
        [S3FERRY, "plan", "--inventory", str(tmp_path / "inv")]
        + ["--dest", f"s3://{bucket}/copy/", "--queue", url],
        env=cli_env,
        capture_output=True,
        timeout=120,
    )

    assert failed.returncode == 2
    [line] = failed.stderr.decode().splitlines()
    assert line.startswith(f"error: {shard}: cannot read inventory shard")
    _run_queued(url, store_config)
    assert not _open_uploads(s3client, bucket)
    assert bucket_contents(s3client, bucket, "copy/") == {"big/b0": expected["big/b0"]}


def test_a_plan_whose_queue_fails_aborts_the_upload_it_could_not_queue(
    s3client: Any,
    bucket: str,
    store_config: StoreConfig,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    expected = _fill(s3client, bucket, 0, 2)
    sent: list[int] = []

    def send_once(queue: SqliteQueue, bodies: list[str]) -> None:
        if sent:
            raise TransientError(queue.url, "queue database busy for over 30 s")
        sent.append(len(bodies))
        real_send(queue, bodies)

    real_send = SqliteQueue.send
    monkeypatch.setattr(SqliteQueue, "send", send_once)
    url = f"sqlite:///{tmp_path}/q.db"

    with pytest.raises(TransientError):
        plan(f"s3://{bucket}/data/", f"s3://{bucket}/copy/", url, source_store=store_config)

    assert sent == [3]  # the parts of big/b0; those of big/b1 failed
    monkeypatch.setattr(SqliteQueue, "send", real_send)
    _run_queued(url, store_config)
    assert not _open_uploads(s3client, bucket)
    assert bucket_contents(s3client, bucket, "copy/") == {"big/b0": expected["big/b0"]}


@pytest.mark.parametrize("backend", ["sqlite", "sqs"])
def test_plan_refuses_a_queue_that_holds_unfinished_tasks(
    backend: str,
    s3client: Any,
    bucket: str,
    store_config: StoreConfig,
    cli_env: dict[str, str],
    sqs: str,
    tmp_path: Path,
) -> None:
    """Planning twice into one queue would queue every task twice and start a second
    upload of each split object; once the workers are done, it plans what is missing."""
    expected = _fill(s3client, bucket, 20, 1)
    access = QueueAccess(f"sqlite:///{tmp_path}/q.db")
    if backend == "sqs":
        access = QueueAccess(f"sqs://plan-twice-{os.getpid()}", endpoint_url=sqs)
    args = [S3FERRY, "plan", "--inventory", f"s3://{bucket}/data/", "--dest"]
    args += [f"s3://{bucket}/copy/", "--queue", access.url, "--json"]
    args += ["--queue-endpoint-url", sqs] if backend == "sqs" else []

    def run() -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(args, env=cli_env, capture_output=True, timeout=120)

    first = run()
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["tasks"] == 5  # 3 parts and 2 bundles
    again = run()
    assert again.returncode == 2
    assert again.stderr.decode() == (
        f"error: {access.url}: already holds 5 unfinished tasks;"
        " plan into an empty queue or let workers finish\n"
    )
    assert len(_open_uploads(s3client, bucket)) == 1
    q = access.open()
    messages = q.receive(10)
    assert len(messages) == 5
    runner = TaskRunner(WorkerConfig(source_store=store_config, dest_store=store_config))
    for m in messages[:4]:
        runner.run(decode(m.body), again=False)
        q.ack(m)
    in_flight = run()
    assert in_flight.returncode == 2
    assert "already holds 1 unfinished task;" in in_flight.stderr.decode()
    runner.run(decode(messages[4].body), again=False)
    q.ack(messages[4])
    done = run()
    assert done.returncode == 0, done.stderr
    assert (json.loads(done.stdout)["tasks"], json.loads(done.stdout)["objects_present"]) == (
        0,
        len(expected),
    )
    assert bucket_contents(s3client, bucket, "copy/") == expected


@pytest.mark.parametrize("server_side", [True, False])
def test_part_tasks_of_a_source_changed_since_planning_fail_and_copy_nothing(
    server_side: bool, s3client: Any, bucket: str, store_config: StoreConfig, tmp_path: Path
) -> None:
    """Same size, other bytes: without the ETag condition the parts would mix versions."""
    _fill(s3client, bucket, 0, 1)
    url = f"sqlite:///{tmp_path}/q.db"
    plan(f"s3://{bucket}/data/", f"s3://{bucket}/copy/", url, source_store=store_config)
    [key] = [o["Key"] for o in s3client.list_objects_v2(Bucket=bucket)["Contents"]]
    size = s3client.head_object(Bucket=bucket, Key=key)["ContentLength"]
    s3client.put_object(Bucket=bucket, Key=key, Body=b"n" * size)
    tasks = [decode(m.body) for m in open_queue(url).receive(10)]
    runner = TaskRunner(
        WorkerConfig(source_store=store_config, dest_store=store_config, server_side=server_side)
    )

    for task in tasks:
        with pytest.raises(SourceChangedError, match="its ETag is not the one planned"):
            runner.run(task, again=False)

    assert "Contents" not in s3client.list_objects_v2(Bucket=bucket, Prefix="copy/")


@pytest.fixture(scope="module")
def sqs() -> Iterator[str]:
    with moto_server() as url:
        yield url


def _worker_pids(parent: int) -> list[int]:
    """The worker processes (multiprocessing spawns) below ``parent``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == parent and b"spawn_main" in cmdline:
            found.append(int(entry.name))
    return found


def _migration_through_sqs(
    partitions: Partitions, bucket: str, bucket2: str, sqs: str, tmp_path: Path, count: int
) -> None:
    """Plan into SQS, delete one planned source object (a poison task), then run 4 worker
    processes and SIGKILL two of them at random moments."""
    expected = _fill(partitions.source_client, bucket, count, 3)
    credentials = Path(partitions.env["AWS_SHARED_CREDENTIALS_FILE"])
    credentials.write_text(
        credentials.read_text()
        + f"[default]\naws_access_key_id = {MOTO_KEYS['AWS_ACCESS_KEY_ID']}\n"
        f"aws_secret_access_key = {MOTO_KEYS['AWS_SECRET_ACCESS_KEY']}\n"
    )
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("AWS_")}, **partitions.env}
    env["AWS_REGION"] = "us-east-1"
    sides = partitions.cli_args()
    queue = ["--queue", f"sqs://migrate-{os.getpid()}-{count}", "--queue-endpoint-url", sqs]
    planned = subprocess.run(
        [
            S3FERRY,
            "plan",
            "--inventory",
            f"s3://{bucket}/data/",
            "--dest",
            f"s3://{bucket2}/copy/",
            *queue,
            *sides,
            "--json",
        ],
        env=env,
        capture_output=True,
        timeout=300,
    )
    assert planned.returncode == 0, planned.stderr
    summary = json.loads(planned.stdout)
    assert summary["objects"] == len(expected) and summary["uploads_started"] == 3
    poison = "d5/o00005"
    partitions.source_client.delete_object(Bucket=bucket, Key=f"data/{poison}")
    worker = subprocess.Popen(
        [
            S3FERRY,
            "worker",
            *queue,
            *sides,
            "--processes",
            "4",
            "--exit-when-empty",
            "--visibility-timeout",
            "5",
            "--json",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    rng = random.Random(count)
    killed = 0
    deadline = time.monotonic() + 120
    while killed < 2 and worker.poll() is None and time.monotonic() < deadline:
        time.sleep(rng.uniform(0.5, 2.0))
        pids = _worker_pids(worker.pid)
        if pids:
            os.kill(rng.choice(pids), signal.SIGKILL)
            killed += 1
    out, err = worker.communicate(timeout=600)
    assert worker.returncode == 1, err  # the poison task is dead
    assert json.loads(out.splitlines()[-1])["dead"] == 1
    [line] = [line for line in err.decode().splitlines() if line.startswith("error: ")]
    assert line.endswith("copy given up after its last attempt; status --queue counts them")
    assert killed == 2
    copied = bucket_contents(partitions.dest_client, bucket2, "copy/")
    del expected[poison]
    assert copied == expected
    assert not _open_uploads(partitions.dest_client, bucket2)
    result = status(QueueAccess(f"sqs://migrate-{os.getpid()}-{count}", endpoint_url=sqs))
    assert result.stats.dead == 1 and result.stats.queued == 0
    assert (result.done_objects, result.done_bytes) == (None, None)
    dead = list(open_queue(f"sqs://migrate-{os.getpid()}-{count}", endpoint_url=sqs).dead_letters())
    assert len(dead) == 1 and poison in dead[0]


def test_workers_killed_mid_run_lose_nothing(
    partitions: Partitions, bucket: str, bucket2: str, sqs: str, tmp_path: Path
) -> None:
    _migration_through_sqs(partitions, bucket, bucket2, sqs, tmp_path, 400)


@pytest.mark.slow
def test_five_thousand_objects_with_workers_killed(
    partitions: Partitions, bucket: str, bucket2: str, sqs: str, tmp_path: Path
) -> None:
    _migration_through_sqs(partitions, bucket, bucket2, sqs, tmp_path, 5000)


def test_migrate_killed_then_run_again_finishes(
    s3client: Any, bucket: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    expected = _fill(s3client, bucket, 300, 2)
    args = [
        S3FERRY,
        "migrate",
        f"s3://{bucket}/data/",
        f"s3://{bucket}/copy/",
        "--workers",
        "2",
        "--state-dir",
        str(tmp_path),
        "--visibility-timeout",
        "5",
        "--json",
    ]
    first = subprocess.Popen(args, env=cli_env, stdout=subprocess.PIPE, start_new_session=True)
    assert first.stdout is not None
    for line in first.stdout:
        record = json.loads(line)
        if record["type"] == "progress" and record["objects_copied"] > 0:
            break
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    first.stdout.close()
    second = subprocess.run(args, env=cli_env, capture_output=True, timeout=300)
    assert second.returncode == 0, second.stderr
    assert bucket_contents(s3client, bucket, "copy/") == expected
    assert not _open_uploads(s3client, bucket)


def test_worker_exits_zero_on_sigterm_and_gives_back_its_tasks(
    s3client: Any, bucket: str, store_config: StoreConfig, cli_env: dict[str, str], tmp_path: Path
) -> None:
    _fill(s3client, bucket, 300, 0)
    url = f"sqlite:///{tmp_path}/q.db"
    plan(
        f"s3://{bucket}/data/",
        f"s3://{bucket}/copy/",
        url,
        limits=PlanLimits(max_objects=1),
        source_store=store_config,
        dest_store=store_config,
    )
    worker = subprocess.Popen(
        [S3FERRY, "worker", "--queue", url, "--processes", "2"],
        env=cli_env,
        stderr=subprocess.PIPE,
    )
    q = open_queue(url)
    while (q.stats().done or 0) == 0:
        time.sleep(0.1)
    worker.send_signal(signal.SIGTERM)
    _, err = worker.communicate(timeout=120)
    assert worker.returncode == 0, err
    after = q.stats()
    assert after.in_flight == 0 and after.dead == 0
    assert (after.done or 0) + after.queued == 300

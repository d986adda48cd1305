"""The bucket-to-bucket commands as a user types them: cp s3:// s3://, per-side options,
status, cleanup, and their errors."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import Cli
from support.inventory import Row, write_report
from support.partitions import Partitions

from s3ferry.jobs.migrate import plan


def test_cp_between_buckets_says_how_it_copied(cli: Cli, s3client: Any, bucket: str) -> None:
    for i in range(5):
        s3client.put_object(Bucket=bucket, Key=f"src/{i}", Body=b"x" * i)
    done = cli.run("cp", f"s3://{bucket}/src/", f"s3://{bucket}/dst/")
    assert done.returncode == 0, done.stderr
    assert b"5 copied server-side, 0 B through this machine" in done.stderr
    streamed = cli.run(
        "cp", "--copy-path", "streamed", f"s3://{bucket}/src/", f"s3://{bucket}/s/", "--json"
    )
    summary = json.loads(streamed.stdout.splitlines()[-1])
    assert summary["ok"] and summary["bytes_through_client"] == 10


def test_cp_between_partitions_with_per_side_profiles(
    partitions: Partitions, bucket: str, bucket2: str, cli_env: dict[str, str]
) -> None:
    partitions.source_client.put_object(Bucket=bucket, Key="k", Body=b"data")
    env = {k: v for k, v in cli_env.items() if not k.startswith("AWS_")} | partitions.env
    cli = Cli(env)
    done = cli.run("cp", f"s3://{bucket}/k", f"s3://{bucket2}/copied", *partitions.cli_args())
    assert done.returncode == 0, done.stderr
    body = partitions.dest_client.get_object(Bucket=bucket2, Key="copied")["Body"].read()
    assert body == b"data"
    forced = cli.run(
        "cp",
        "--copy-path",
        "server-side",
        f"s3://{bucket}/k",
        f"s3://{bucket2}/x",
        *partitions.cli_args(),
    )
    assert forced.returncode == 2
    assert "different endpoints" in Cli.error_line(forced)


def test_cleanup_lists_then_aborts_stale_uploads(cli: Cli, s3client: Any, bucket: str) -> None:
    s3client.create_multipart_upload(Bucket=bucket, Key="p/stale")
    s3client.create_multipart_upload(Bucket=bucket, Key="other/kept")
    listed = cli.run("cleanup", f"s3://{bucket}/p/", "--older-than", "0s", "--dry-run")
    assert (
        listed.returncode == 0 and b"would abort" in listed.stdout and b"p/stale" in listed.stdout
    )
    assert len(s3client.list_multipart_uploads(Bucket=bucket)["Uploads"]) == 2
    young = cli.run("cleanup", f"s3://{bucket}/p/", "--older-than", "1d")
    assert young.returncode == 0 and young.stdout == b""
    assert (
        young.stderr.decode()
        == f"cleanup: 0 stale uploads under s3://{bucket}/p/; 0 aborted, 0 failed\n"
    )
    done = cli.run("cleanup", f"s3://{bucket}/p/", "--older-than", "0", "--json")
    assert done.returncode == 0 and b'"aborted": true' in done.stdout
    assert json.loads(done.stdout.splitlines()[-1]) == {
        "type": "summary",
        "found": 1,
        "aborted": 1,
        "failed": 0,
    }
    left = [u["Key"] for u in s3client.list_multipart_uploads(Bucket=bucket)["Uploads"]]
    assert left == ["other/kept"]
    bad = cli.run("cleanup", f"s3://{bucket}/", "--older-than", "soon")
    assert bad.returncode == 2 and "not a duration" in Cli.error_line(bad)
    huge = cli.run("cleanup", f"s3://{bucket}/", "--older-than", "99999999999d")
    assert huge.returncode == 2 and "more than 36500 days" in Cli.error_line(huge)


def test_status_of_a_planned_queue(
    cli: Cli, s3client: Any, bucket: str, tmp_path: Path, store_config: Any
) -> None:
    for i in range(25):
        s3client.put_object(Bucket=bucket, Key=f"src/{i:02d}", Body=b"x")
    url = f"sqlite:///{tmp_path}/q.db"
    plan(f"s3://{bucket}/src/", f"s3://{bucket}/dst/", url, source_store=store_config)
    shown = cli.run("status", "--queue", url, "--json")
    assert shown.returncode == 0, shown.stderr
    record = json.loads(shown.stdout)
    assert (record["queued"], record["in_flight"], record["dead"]) == (3, 0, 0)
    assert (record["done"], record["done_objects"], record["done_bytes"]) == (0, 0, 0)
    text = cli.run("status", "--queue", url)
    assert text.stdout.decode().startswith("queued 3  running 0  done 0 (0 objects, 0 B)  dead 0")
    missing = cli.run("status", "--queue", f"sqlite:///{tmp_path}/none.db")
    assert missing.returncode == 2 and "none.db" in Cli.error_line(missing)
    bad = cli.run("worker", "--queue", "ftp://nowhere")
    assert bad.returncode == 2 and "ftp://nowhere" in Cli.error_line(bad)
    many = cli.run("worker", "--queue", f"sqlite:///{tmp_path}/q.db", "--processes", "100000")
    assert many.returncode == 2
    assert "not a number of processes from 1 to 256: '100000'" in Cli.error_line(many)


def test_plan_from_an_inventory_report(
    cli: Cli, s3client: Any, bucket: str, tmp_path: Path
) -> None:
    for i in range(12):
        s3client.put_object(Bucket=bucket, Key=f"src/{i:02d}", Body=b"xy")
    rows = [Row(f"src/{i:02d}", 2, hashlib.md5(b"xy").hexdigest()) for i in (5, 1, 9, 0)]
    manifest = write_report(tmp_path / "r", [rows], source_bucket=bucket)
    url = f"sqlite:///{tmp_path}/q.db"
    args = ("--dest", f"s3://{bucket}/dst/", "--queue", url, "--json")

    planned = cli.run(
        "plan", "--inventory", f"s3://{bucket}/src/", "--inventory-report", str(manifest), *args
    )

    assert planned.returncode == 0, planned.stderr
    assert json.loads(planned.stdout)["objects"] == 4
    other = write_report(tmp_path / "o", [rows])
    wrong = cli.run(
        "plan", "--inventory", f"s3://{bucket}/src/", "--inventory-report", str(other), *args
    )
    assert wrong.returncode == 2 and "report of bucket 'src-bucket'" in Cli.error_line(wrong)
    local = cli.run("plan", "--inventory", str(tmp_path), "--inventory-report", str(other), *args)
    assert local.returncode == 2 and "goes with an s3:// source" in Cli.error_line(local)


@pytest.mark.parametrize("missing", ["source", "dest"])
def test_migrate_with_a_missing_bucket_fails_before_starting_workers(
    missing: str, cli: Cli, bucket: str, tmp_path: Path
) -> None:
    absent = "s3://no-such-bucket-s3ferry"
    ends = [f"{absent}/p/", f"s3://{bucket}/q/"]
    if missing == "dest":
        ends = [f"s3://{bucket}/p/", f"{absent}/q/"]

    run = cli.run("migrate", *ends, "--state-dir", tmp_path / "state")

    assert run.returncode == 2
    # One line: no warning of semaphores left behind by worker processes either.
    assert run.stderr == f"error: {absent}: bucket does not exist\n".encode()
    assert not list((tmp_path / "state").glob("*.db"))


@pytest.mark.parametrize(
    ("command", "source", "dest"),
    [
        ("sync", "d/", "d/sub/"),
        ("sync", "d/sub/", "d/"),
        ("cp", "d/", "d/x/"),
        ("cp", "d", "d/"),
        ("migrate", "", "z/"),
    ],
)
def test_a_destination_overlapping_its_source_is_refused_and_nothing_changes(
    command: str, source: str, dest: str, cli: Cli, s3client: Any, bucket: str, tmp_path: Path
) -> None:
    for key in ("d/a.txt", "d/sub/b.txt"):
        s3client.put_object(Bucket=bucket, Key=key, Body=b"x")
    extra = ["--delete"] if command == "sync" else []
    if command == "migrate":
        extra = ["--state-dir", str(tmp_path)]

    run = cli.run(command, f"s3://{bucket}/{source}", f"s3://{bucket}/{dest}", *extra)

    assert run.returncode == 2
    assert Cli.error_line(run) == (
        f"error: s3://{bucket}/{source} -> s3://{bucket}/{dest}: "
        "the destination overlaps the source"
    )
    listed = s3client.list_objects_v2(Bucket=bucket)["Contents"]
    assert sorted(o["Key"] for o in listed) == ["d/a.txt", "d/sub/b.txt"]


def test_copies_beside_the_source_on_one_bucket_are_allowed(
    cli: Cli, s3client: Any, bucket: str
) -> None:
    s3client.put_object(Bucket=bucket, Key="d/a.txt", Body=b"x")

    one = cli.run("cp", f"s3://{bucket}/d/a.txt", f"s3://{bucket}/d/a2.txt")
    sibling = cli.run("cp", f"s3://{bucket}/d", f"s3://{bucket}/d2/")

    assert one.returncode == 0 and sibling.returncode == 0, sibling.stderr
    listed = s3client.list_objects_v2(Bucket=bucket)["Contents"]
    assert sorted(o["Key"] for o in listed) == ["d/a.txt", "d/a2.txt", "d2/a.txt", "d2/a2.txt"]

"""``s3ferry ls``, ``du`` and ``inventory`` as a user types them."""

from __future__ import annotations

import gzip
import json
import signal
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from support.keys import put_keys

if TYPE_CHECKING:
    from conftest import Cli

CANNOT_START = 2


def test_ls_recursive_prints_exactly_one_line_per_object(
    cli: Cli, s3client: Any, bucket: str
) -> None:
    keys = ["a/b/c.txt", "a/d.txt", "top.bin", "sp ace/ü.txt"]
    put_keys(s3client, bucket, keys)

    run = cli.run("ls", "-r", f"s3://{bucket}")

    assert run.returncode == 0, run.stderr
    assert run.stderr == b""
    lines = run.stdout.decode().splitlines()
    # "YYYY-MM-DD HH:MM:SS" + size right-aligned in 10 columns + the key
    assert sorted(line[31:] for line in lines) == sorted(keys)
    date, clock, size = lines[0][:30].split()
    assert len(date) == 10 and len(clock) == 8 and size == "1"


def test_ls_one_level_shows_folders_and_relative_names(
    cli: Cli, s3client: Any, bucket: str
) -> None:
    put_keys(s3client, bucket, ["a/b/c.txt", "a/d.txt", "top.bin"])

    top = cli.run("ls", f"s3://{bucket}").stdout.decode().splitlines()
    inner = cli.run("ls", f"s3://{bucket}/a/").stdout.decode().splitlines()

    assert [line.split()[-1] for line in top] == ["a/", "top.bin"]
    assert top[0].split() == ["PRE", "a/"]
    assert [line.split()[-1] for line in inner] == ["b/", "d.txt"]


def test_ls_json_gives_one_object_per_line(cli: Cli, s3client: Any, bucket: str) -> None:
    put_keys(s3client, bucket, ["x/1", "x/2"])

    run = cli.run("ls", "-r", "--json", f"s3://{bucket}/x/")

    records = [json.loads(line) for line in run.stdout.splitlines()]
    assert [r["key"] for r in records] == ["x/1", "x/2"]
    assert {"size", "etag", "last_modified", "storage_class"} <= set(records[0])


def test_du_counts_by_storage_class(cli: Cli, s3client: Any, bucket: str) -> None:
    for i in range(5):
        s3client.put_object(Bucket=bucket, Key=f"k{i}", Body=b"z" * 100)

    text = cli.run("du", f"s3://{bucket}").stdout.decode()
    record = json.loads(cli.run("du", "--json", f"s3://{bucket}").stdout)

    assert "STANDARD" in text and "total" in text
    assert (record["type"], record["objects"], record["bytes"]) == ("du", 5, 500)
    assert record["by_storage_class"] == {"STANDARD": {"objects": 5, "bytes": 500}}


def test_listing_a_missing_bucket_or_with_a_bad_url_is_one_line_exit_2(
    cli: Cli, bucket: str
) -> None:
    for args in (
        ("ls", "s3://no-such-bucket-here"),
        ("ls", "-r", "s3://no-such-bucket-here/p"),
        ("du", "s3://no-such-bucket-here"),
        ("ls", "not-a-url"),
    ):
        run = cli.run(*args)
        assert run.returncode == CANNOT_START, args
        assert run.stdout == b""
        line = cli.error_line(run)
        assert "no-such-bucket-here" in line or "not-a-url" in line

    denied = cli.run("ls", f"s3://{bucket}", env=cli.with_env(AWS_SECRET_ACCESS_KEY="wrong"))
    assert denied.returncode == CANNOT_START
    assert "wrong credentials" in cli.error_line(denied)


def _inventory_keys(out: Path) -> list[str]:
    manifest = json.loads((out / "manifest.json").read_text())
    keys: list[str] = []
    for shard in manifest["shards"]:
        with gzip.open(out / shard["file"], "rt", encoding="utf-8") as f:
            shard_keys = [json.loads(line)["key"] for line in f]
        assert len(shard_keys) == shard["objects"]
        assert (shard_keys[0], shard_keys[-1]) == (shard["first_key"], shard["last_key"])
        keys += shard_keys
    return keys


def test_inventory_writes_shards_and_a_manifest(
    cli: Cli, s3client: Any, bucket: str, tmp_path: Path
) -> None:
    keys = [f"d{i % 3}/k{i:04d}" for i in range(250)]
    put_keys(s3client, bucket, keys)
    out = tmp_path / "inv"

    run = cli.run("inventory", f"s3://{bucket}", "-o", out, "--shard-size", "100")

    assert run.returncode == 0, run.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] is True
    assert [s["objects"] for s in manifest["shards"]] == [100, 100, 50]
    assert sorted(_inventory_keys(out)) == sorted(keys)
    csv_out = tmp_path / "csv"
    assert (
        cli.run("inventory", f"s3://{bucket}/d1/", "-o", csv_out, "--format", "csv").returncode == 0
    )
    with gzip.open(csv_out / "part-00000.csv.gz", "rt") as f:
        rows = f.read().splitlines()
    assert len(rows) == sum(k.startswith("d1/") for k in keys)
    assert rows[0].startswith(f"{bucket},d1/")

    other = cli.run("inventory", f"s3://{bucket}", "-o", out, "--shard-size", "7")
    assert other.returncode == CANNOT_START
    assert "holds an inventory" in cli.error_line(other)


def test_inventory_killed_mid_way_resumes_with_every_key_exactly_once(
    cli: Cli, s3client: Any, bucket: str, tmp_path: Path
) -> None:
    keys = [f"k{i:05d}" for i in range(4000)]
    put_keys(s3client, bucket, keys)
    out = tmp_path / "inv"
    args = ("inventory", f"s3://{bucket}", "-o", out, "--shard-size", "10", "--list-workers", "1")

    proc = subprocess.Popen([cli.executable, *map(str, args)], env=cli.env)
    manifest = out / "manifest.json"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if (
            manifest.exists()
            and len(json.loads(manifest.read_text() or "{}").get("shards", [])) >= 5
        ):
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = json.loads(manifest.read_text())
    assert killed_at["complete"] is False, "the inventory finished before it could be killed"
    done_before = len(killed_at["shards"])

    run = cli.run(*args)

    assert run.returncode == 0, run.stderr
    assert "resumed after" in run.stderr.decode()
    final = json.loads(manifest.read_text())
    assert final["complete"] is True
    assert final["shards"][:done_before] == killed_at["shards"]
    assert _inventory_keys(out) == keys
    assert not list(out.glob("*.tmp"))


@pytest.mark.parametrize("killed", [True, False])
def test_an_inventory_missing_a_recorded_shard_is_refused_by_inventory_and_plan(
    killed: bool, cli: Cli, s3client: Any, bucket: str, tmp_path: Path
) -> None:
    put_keys(s3client, bucket, [f"src/k{i:02d}" for i in range(30)])
    out = tmp_path / "inv"
    args = ("inventory", f"s3://{bucket}/src/", "-o", out, "--shard-size", "10")
    assert cli.run(*args).returncode == 0
    manifest = json.loads((out / "manifest.json").read_text())
    if killed:  # before its last shard was recorded
        manifest["shards"].pop()
        manifest["complete"] = False
        (out / "part-00002.jsonl.gz").unlink()
        (out / "manifest.json").write_text(json.dumps(manifest))
    (out / "part-00001.jsonl.gz").unlink()
    refused = (
        f"error: {out / 'part-00001.jsonl.gz'}: recorded in manifest.json but missing;"
        " run the inventory again into an empty --output directory"
    )

    run = cli.run(*args)

    assert run.returncode == CANNOT_START
    assert cli.error_line(run) == refused
    assert json.loads((out / "manifest.json").read_text()) == manifest
    kept = [s["file"] for s in manifest["shards"] if s["file"] != "part-00001.jsonl.gz"]
    assert sorted(p.name for p in out.glob("part-*")) == kept
    if not killed:
        queue = f"sqlite:///{tmp_path}/q.db"
        plan = cli.run(
            "plan", "--inventory", out, "--dest", f"s3://{bucket}/copy/", "--queue", queue
        )
        assert plan.returncode == CANNOT_START
        assert cli.error_line(plan) == refused


def test_ls_without_a_bucket_lists_buckets(cli: Cli, bucket: str) -> None:
    run = cli.run("ls")

    assert run.returncode == 0, run.stderr
    assert bucket in [line.split()[-1] for line in run.stdout.decode().splitlines()]


def test_ls_into_a_pipe_closed_early_ends_quietly(cli: Cli, s3client: Any, bucket: str) -> None:
    put_keys(s3client, bucket, [f"k{i:05d}" for i in range(3000)])

    shell = f"{cli.executable} ls -r s3://{bucket} | head -1"
    run = subprocess.run(["bash", "-o", "pipefail", "-c", shell], capture_output=True, env=cli.env)

    assert run.returncode == 0, run.stderr
    assert run.stdout.decode().endswith("k00000\n")
    assert run.stderr == b""

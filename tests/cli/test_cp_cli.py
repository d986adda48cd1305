"""``s3ferry cp`` end to end, as separate processes against the test server."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from support.trees import random_files, read_tree, write_tree

if TYPE_CHECKING:
    from conftest import Cli

KiB = 1024
MiB = 1024 * KiB


def _json_lines(stdout: bytes) -> list[dict[str, Any]]:
    text = stdout.decode("ascii")  # --json escapes every non-ASCII character
    lines = text.splitlines()
    assert lines, "no JSON output"
    return [json.loads(line) for line in lines]


def test_upload_then_download_tree(tmp_path: Path, bucket: str, cli: Cli) -> None:
    files = random_files(25, (0, 100, 3 * KiB), seed=4)
    files["big/eleven.bin"] = os.urandom(11 * MiB)
    write_tree(tmp_path / "src", files)

    up = cli.run("cp", tmp_path / "src", f"s3://{bucket}/p/", *cli.small_parts)
    assert up.returncode == 0, up.stderr
    assert up.stdout == b""
    down = cli.run("cp", f"s3://{bucket}/p/", tmp_path / "out", *cli.small_parts)
    assert down.returncode == 0, down.stderr

    assert read_tree(tmp_path / "out") == files


def test_json_lines(tmp_path: Path, bucket: str, cli: Cli) -> None:
    files = random_files(12, (0, 10, 2 * KiB), seed=6)
    write_tree(tmp_path / "src", files)

    run = cli.run("cp", "--json", tmp_path / "src", f"s3://{bucket}/p/")

    assert run.returncode == 0, run.stderr
    records = _json_lines(run.stdout)
    done = [r for r in records if r["type"] == "done"]
    assert sorted(r["key"] for r in done) == sorted("p/" + rel for rel in files)
    assert records[-1]["type"] == "summary"
    assert records[-1]["ok"] is True
    assert records[-1]["objects_done"] == len(files)
    assert [r["type"] for r in records].count("summary") == 1


def test_json_stays_valid_for_a_non_utf8_file_name(
    tmp_path: Path, bucket: str, cli: Cli, keys: Callable[[], list[str]]
) -> None:
    src = tmp_path / "src"
    write_tree(src, {"good.txt": b"good", "also/fine.txt": b"fine"})
    bad = os.path.join(os.fsencode(src), b"bad-\xff.txt")
    with open(bad, "wb") as f:
        f.write(b"bad name")

    run = cli.run("cp", "--json", src, f"s3://{bucket}/p/")

    assert run.returncode == 1, run.stderr
    records = _json_lines(run.stdout)
    failed = [r for r in records if r["type"] == "failed"]
    assert len(failed) == 1
    assert "bad-" in failed[0]["key"]
    assert failed[0]["reason"] == "UsageError"
    assert sorted(r["key"] for r in records if r["type"] == "done") == [
        "p/also/fine.txt",
        "p/good.txt",
    ]
    assert records[-1]["type"] == "summary"
    assert records[-1]["ok"] is False
    assert records[-1]["objects_failed"] == 1
    assert keys() == ["p/also/fine.txt", "p/good.txt"]


@pytest.mark.parametrize("size", [0, 3 * KiB, 12 * MiB], ids=["empty", "3KiB", "12MiB"])
def test_stdin_to_object_and_object_to_stdout(
    bucket: str, cli: Cli, s3client: Any, size: int
) -> None:
    data = os.urandom(size)

    up = cli.run("cp", *cli.small_parts, "-", f"s3://{bucket}/streamed", stdin=data)
    assert up.returncode == 0, up.stderr
    assert up.stdout == b""
    assert s3client.get_object(Bucket=bucket, Key="streamed")["Body"].read() == data

    down = cli.run("cp", *cli.small_parts, f"s3://{bucket}/streamed", "-")
    assert down.returncode == 0, down.stderr
    assert down.stdout == data


def test_quiet_prints_nothing_on_success(tmp_path: Path, bucket: str, cli: Cli) -> None:
    write_tree(tmp_path / "src", {"a.txt": b"a", "b/c.txt": b"c"})

    up = cli.run("cp", "--quiet", tmp_path / "src", f"s3://{bucket}/p/")
    down = cli.run("cp", "-q", f"s3://{bucket}/p/", tmp_path / "out")

    assert (up.returncode, up.stdout, up.stderr) == (0, b"", b"")
    assert (down.returncode, down.stdout, down.stderr) == (0, b"", b"")
    assert read_tree(tmp_path / "out") == {"a.txt": b"a", "b/c.txt": b"c"}


def test_quiet_still_reports_a_failed_object(
    tmp_path: Path, bucket: str, cli: Cli, s3client: Any
) -> None:
    write_tree(tmp_path / "src", {"good.txt": b"good", "bad.txt": b"original bytes"})
    assert cli.run("cp", "-q", tmp_path / "src", f"s3://{bucket}/p/").returncode == 0
    head = s3client.head_object(Bucket=bucket, Key="p/bad.txt")
    s3client.put_object(
        Bucket=bucket, Key="p/bad.txt", Body=b"CORRUPT bytes!", Metadata=head["Metadata"]
    )

    run = cli.run("cp", "--quiet", f"s3://{bucket}/p/", tmp_path / "out")

    assert run.returncode == 1
    assert run.stdout == b""
    err = run.stderr.decode()
    assert "Traceback" not in err
    failed = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(failed) == 1 and "bad.txt" in failed[0], err
    assert "FAILED" in err and "IntegrityError" in err, err
    assert read_tree(tmp_path / "out") == {"good.txt": b"good"}


@pytest.mark.parametrize("args", [["--help"], ["cp", "--help"]], ids=["top", "cp"])
def test_help(cli: Cli, args: list[str]) -> None:
    run = cli.run(*args)

    assert run.returncode == 0, run.stderr
    assert run.stderr == b""
    assert b"usage: s3ferry" in run.stdout
    if args[0] == "cp":
        assert b"--part-size" in run.stdout
    else:
        assert b"cp" in run.stdout

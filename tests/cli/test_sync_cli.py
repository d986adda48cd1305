"""``s3ferry sync`` and ``compare`` as a user types them: plans, exit codes, unreadable input."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from support.trees import write_tree

if TYPE_CHECKING:
    from conftest import Cli

PARTIAL_FAILURE = 1
CANNOT_START = 2
TREE = {"a.txt": b"a", "d/b.txt": b"bb", "d/e/c.txt": b"ccc"}


def test_dry_run_prints_the_plan_and_changes_nothing(
    tmp_path: Path, bucket: str, cli: Cli, keys: Callable[[], list[str]]
) -> None:
    write_tree(tmp_path, TREE)

    run = cli.run("sync", tmp_path, f"s3://{bucket}/p/", "--dry-run")

    assert run.returncode == 0, run.stderr
    lines = run.stdout.decode().splitlines()
    assert [line.split()[0] for line in lines] == ["copy"] * 3
    assert all(line.endswith("(new)") for line in lines)
    assert keys() == []


def test_sync_then_compare_exit_codes(
    tmp_path: Path, bucket: str, cli: Cli, keys: Callable[[], list[str]]
) -> None:
    write_tree(tmp_path, TREE)
    assert cli.run("sync", tmp_path, f"s3://{bucket}/p/").returncode == 0
    assert keys() == ["p/a.txt", "p/d/b.txt", "p/d/e/c.txt"]
    same = cli.run("compare", tmp_path, f"s3://{bucket}/p/")
    assert same.returncode == 0 and same.stdout == b""

    (tmp_path / "a.txt").write_bytes(b"changed")
    (tmp_path / "d/e/c.txt").unlink()
    differ = cli.run("compare", tmp_path, f"s3://{bucket}/p/")

    assert differ.returncode == PARTIAL_FAILURE
    assert differ.stdout.decode().splitlines() == [
        "different    p/a.txt  (size differs (7 != 1))",
        "only-target  p/d/e/c.txt",
    ]


def test_without_delete_extra_objects_are_reported_as_kept(
    tmp_path: Path, bucket: str, cli: Cli, s3client: Any
) -> None:
    write_tree(tmp_path / "src", {"a.txt": b"a"})
    s3client.put_object(Bucket=bucket, Key="p/a.txt", Body=b"a")
    s3client.put_object(Bucket=bucket, Key="p/extra.txt", Body=b"e")

    run = cli.run("sync", tmp_path / "src", f"s3://{bucket}/p/", "--dry-run")
    capped = cli.run("sync", tmp_path / "src", f"s3://{bucket}/p/", "--max-delete", "5")

    assert run.returncode == 0, run.stderr
    assert "extra   p/extra.txt  (not in the source; kept)" in run.stdout.decode().splitlines()
    assert run.stderr.decode().splitlines()[-1].endswith("1 not in the source (kept: no --delete)")
    assert capped.returncode == CANNOT_START
    assert cli.error_line(capped) == "error: --max-delete: limits --delete; give both or neither"


@pytest.mark.parametrize("command", [("compare",), ("sync", "--dry-run")])
def test_compare_and_dry_run_into_a_missing_directory_create_nothing(
    command: tuple[str, ...], tmp_path: Path, bucket: str, cli: Cli, s3client: Any
) -> None:
    s3client.put_object(Bucket=bucket, Key="p/a.txt", Body=b"a")
    target = tmp_path / "not" / "there"

    run = cli.run(command[0], f"s3://{bucket}/p/", target, *command[1:])

    assert run.returncode == (PARTIAL_FAILURE if command == ("compare",) else 0), run.stderr
    assert not (tmp_path / "not").exists()


@pytest.mark.parametrize(
    ("args", "subject"),
    [
        (("sync", "{tmp}", "{tmp}"), "sync needs at least one s3:// side"),
        (("sync", "{tmp}/missing", "s3://{bucket}/p/"), "no such directory"),
        (("sync", "{tmp}/file", "s3://{bucket}/p/"), "is not a directory (sync takes"),
        (("sync", "{tmp}", "s3://{bucket}/p/", "--size-only", "--checksum"), "choose one"),
        (("compare", "{tmp}", "s3://no-such-bucket-here/p/"), "bucket does not exist"),
        (("sync", "{tmp}/empty", "s3://{bucket}/p/", "--delete"), "refusing to --delete"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, bucket: str, cli: Cli, args: tuple[str, ...], subject: str
) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "file").write_bytes(b"f")
    run = cli.run(*(a.format(tmp=tmp_path, bucket=bucket) for a in args))

    assert run.returncode == CANNOT_START
    assert subject in cli.error_line(run)


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv (util-linux)")
@pytest.mark.parametrize("locked", ["locked.txt", "locked-dir"])
def test_unreadable_input_is_reported_and_the_run_goes_on(
    tmp_path: Path, bucket: str, cli: Cli, keys: Callable[[], list[str]], locked: str
) -> None:
    """An unreadable file fails alone; an unreadable directory also stops --delete, since
    what it holds cannot be known."""
    src = tmp_path / "src"
    write_tree(src, TREE)
    assert cli.run("sync", src, f"s3://{bucket}/p/").returncode == 0
    (src / "a.txt").unlink()
    write_tree(src, {"new.txt": b"new", "locked.txt": b"secret", "locked-dir/x": b"x"})
    (src / locked).chmod(0)
    # Root reads any file; without these capabilities file modes apply again.
    drop = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"]
    if os.geteuid() != 0:
        drop = []

    run = cli.run("sync", src, f"s3://{bucket}/p/", "--delete", wrapper=drop)
    (src / locked).chmod(0o755)

    assert run.returncode == PARTIAL_FAILURE, run.stderr
    err = run.stderr.decode()
    assert "Traceback" not in err
    assert str(src / locked) in err
    synced = ["p/d/b.txt", "p/d/e/c.txt", "p/new.txt"]
    if locked == "locked-dir":
        assert "nothing deleted" in err
        assert keys() == sorted(["p/a.txt", *synced, "p/locked.txt"])
    else:
        assert keys() == ["p/d/b.txt", "p/d/e/c.txt", "p/locked-dir/x", "p/new.txt"]

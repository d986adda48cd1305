"""`s3ferry cp` failures: the right exit code, one `error:` line, no traceback, nothing written."""

from __future__ import annotations

import json
import os
import shutil
import stat
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from support.trees import read_tree, write_tree

if TYPE_CHECKING:
    from conftest import Cli

CANNOT_START = 2
PARTIAL_FAILURE = 1


@pytest.fixture
def src(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    write_tree(root, {"a.txt": b"a", "d/b.txt": b"b"})
    return root


@pytest.fixture
def uploaded(s3client: Any, bucket: str) -> str:
    """``s3://bucket/p/`` holding two small objects."""
    s3client.put_object(Bucket=bucket, Key="p/a.txt", Body=b"a")
    s3client.put_object(Bucket=bucket, Key="p/d/b.txt", Body=b"b")
    return f"s3://{bucket}/p/"


def test_nonexistent_source_directory(
    tmp_path: Path, bucket: str, cli: Cli, keys: Callable[[], list[str]]
) -> None:
    run = cli.run("cp", tmp_path / "no-such-dir", f"s3://{bucket}/p/")

    assert run.returncode == CANNOT_START
    assert "no-such-dir" in cli.error_line(run)
    assert keys() == []


@pytest.mark.parametrize("url", ["s3:/b", "s3://", "s3://B_ad/x", "http://x/y"])
def test_malformed_destination_url(
    src: Path, cli: Cli, keys: Callable[[], list[str]], url: str
) -> None:
    run = cli.run("cp", src, url)

    assert run.returncode == CANNOT_START
    assert url in cli.error_line(run)
    assert run.stdout == b""
    assert keys() == []


def test_bucket_that_does_not_exist(tmp_path: Path, src: Path, cli: Cli) -> None:
    up = cli.run("cp", src, "s3://no-such-bucket-s3ferry/p/")
    down = cli.run("cp", "s3://no-such-bucket-s3ferry/p/", tmp_path / "out")

    for run in (up, down):
        assert run.returncode == CANNOT_START
        line = cli.error_line(run)
        assert "no-such-bucket-s3ferry" in line
        assert "bucket" in line.removeprefix("error: s3://no-such-bucket-s3ferry")
    assert not (tmp_path / "out").exists()


def test_json_reports_an_error_that_stops_the_job_as_a_record_too(tmp_path: Path, cli: Cli) -> None:
    run = cli.run("--json", "cp", "s3://no-such-bucket-s3ferry/p/", tmp_path / "out")

    assert run.returncode == CANNOT_START
    assert cli.error_line(run) == "error: s3://no-such-bucket-s3ferry: bucket does not exist"
    assert json.loads(run.stdout) == {
        "type": "error",
        "subject": "s3://no-such-bucket-s3ferry",
        "reason": "NotFoundError",
        "message": "bucket does not exist",
        "exit_code": CANNOT_START,
    }


def test_wrong_credentials(
    tmp_path: Path, src: Path, bucket: str, cli: Cli, keys: Callable[[], list[str]]
) -> None:
    env = cli.with_env(AWS_SECRET_ACCESS_KEY="not-the-secret-key")

    up = cli.run("cp", src, f"s3://{bucket}/p/", env=env)
    down = cli.run("cp", f"s3://{bucket}/p/", tmp_path / "out", env=env)

    for run in (up, down):
        assert run.returncode == CANNOT_START
        assert bucket in cli.error_line(run)
    assert keys() == []
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--part-size", "1MiB"),
        ("--part-size", "abc"),
        ("--part-size", "1e999"),
        ("--large-file-workers", "0"),
    ],
)
def test_bad_option_value(
    src: Path, bucket: str, cli: Cli, keys: Callable[[], list[str]], option: str, value: str
) -> None:
    run = cli.run("cp", option, value, src, f"s3://{bucket}/p/")

    assert run.returncode == CANNOT_START
    line = cli.error_line(run)
    assert value in line or option in line, line
    assert keys() == []


def test_missing_key_to_stdout(bucket: str, cli: Cli) -> None:
    run = cli.run("cp", f"s3://{bucket}/no/such/key", "-")

    assert run.returncode == CANNOT_START
    assert "no/such/key" in cli.error_line(run)
    assert run.stdout == b""


def test_download_prefix_onto_a_regular_file(tmp_path: Path, uploaded: str, cli: Cli) -> None:
    target = tmp_path / "a-file"
    target.write_bytes(b"untouched")

    run = cli.run("cp", uploaded, target)

    assert run.returncode == CANNOT_START
    assert str(target) in cli.error_line(run)
    assert target.read_bytes() == b"untouched"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_a_download_never_replaces_a_fifo(tmp_path: Path, uploaded: str, cli: Cli) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    tree = tmp_path / "tree"
    tree.mkdir()
    os.mkfifo(tree / "a.txt")

    single = cli.run("cp", uploaded + "a.txt", fifo)
    into_tree = cli.run("cp", uploaded, tree)

    assert single.returncode == CANNOT_START
    assert cli.error_line(single) == f"error: {fifo}: is a device, FIFO or socket; not replaced"
    assert into_tree.returncode == PARTIAL_FAILURE
    assert f"error: {tree / 'a.txt'}: is a device, FIFO or socket; not replaced" in (
        into_tree.stderr.decode().splitlines()
    )
    assert stat.S_ISFIFO(fifo.lstat().st_mode) and stat.S_ISFIFO((tree / "a.txt").lstat().st_mode)
    assert read_tree(tree / "d") == {"b.txt": b"b"}
    assert sorted(p.name for p in tree.iterdir()) == ["a.txt", "d"]


@pytest.mark.parametrize("command", ["cp", "sync"])
def test_a_download_never_writes_through_a_linked_directory(
    command: str, tmp_path: Path, uploaded: str, cli: Cli
) -> None:
    real, elsewhere = tmp_path / "real", tmp_path / "elsewhere"
    real.mkdir()
    elsewhere.mkdir()
    (real / "d").symlink_to(elsewhere)
    named = tmp_path / "named"  # the destination itself may be a link: the user named it
    named.symlink_to(real)

    run = cli.run(command, uploaded, named)

    assert run.returncode == PARTIAL_FAILURE
    err = run.stderr.decode()
    assert "Traceback" not in err
    assert [line for line in err.splitlines() if line.startswith("error: ")] == [
        f"error: {named / 'd' / 'b.txt'}: {named / 'd'}: "
        "is a symbolic link; refusing to write through it"
    ]
    assert os.listdir(elsewhere) == []
    assert (real / "a.txt").read_bytes() == b"a"
    assert sorted(p.name for p in real.iterdir()) == ["a.txt", "d"]


@pytest.fixture
def unreadable(src: Path) -> Iterator[tuple[Path, Path]]:
    """A file and a directory in ``src`` that only privileged processes can read."""
    locked_file = src / "locked.txt"
    locked_file.write_bytes(b"secret")
    locked_dir = src / "locked-dir"
    write_tree(locked_dir, {"inside.txt": b"inside"})
    locked_file.chmod(0)
    locked_dir.chmod(0)
    yield locked_file, locked_dir
    locked_dir.chmod(0o755)
    locked_file.chmod(0o644)


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv (util-linux)")
def test_unreadable_file_and_directory(
    src: Path,
    unreadable: tuple[Path, Path],
    bucket: str,
    cli: Cli,
    keys: Callable[[], list[str]],
) -> None:
    # Root reads any file; without these capabilities file modes apply again.
    drop = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"]
    if os.geteuid() != 0:
        drop = []

    run = cli.run("cp", src, f"s3://{bucket}/p/", wrapper=drop)

    assert run.returncode == PARTIAL_FAILURE, run.stderr
    err = run.stderr.decode()
    assert "Traceback" not in err
    for path in unreadable:
        assert str(path) in err, err
    assert keys() == ["p/a.txt", "p/d/b.txt"]


_ESCAPING_KEYS = ("p/../escape.txt", "p/sub/../../escape2.txt", "p//s3ferry-absolute-escape.txt")

# The server refuses or normalises such keys, so the listing is doctored instead.
_WITH_ESCAPING_KEYS = textwrap.dedent(
    f"""
    import os, sys
    import s3ferry.jobs.download as job
    from s3ferry.storage.listing import Entry

    real_list = job.list_key_or_prefix

    def doctored(store, url, **options):
        yield from real_list(store, url, **options)
        for key in {_ESCAPING_KEYS!r}:
            yield Entry(key, 5, "0" * 32, "")

    job.list_key_or_prefix = doctored
    from s3ferry.cli.main import main

    code = main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
    """
)


def test_keys_that_would_escape_the_target_are_refused(
    tmp_path: Path, uploaded: str, cli: Cli
) -> None:
    out = tmp_path / "one" / "two" / "out"

    run = cli.run_python(_WITH_ESCAPING_KEYS, "cp", uploaded, out)

    err = run.stderr.decode()
    assert run.returncode == PARTIAL_FAILURE, err
    assert "Traceback" not in err
    for key in _ESCAPING_KEYS:
        assert key in err, err
    assert read_tree(out) == {"a.txt": b"a", "d/b.txt": b"b"}
    assert [p for p in tmp_path.rglob("*escape*")] == []
    assert not Path("/s3ferry-absolute-escape.txt").exists()

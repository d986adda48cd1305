"""Bad input across every command: one ``error: <subject>: <what>`` line per failure, the
right exit code, no traceback, nothing half-written and nothing else lost.

``test_errors_cli.py`` covers ``cp`` upload in depth; this corpus runs the same kinds
of mistakes through the other commands and adds the file-system faults.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from support.trees import read_tree, write_tree

if TYPE_CHECKING:
    from conftest import Cli

PARTIAL_FAILURE = 1
CANNOT_START = 2

# Each command, its S3 side given as ``URL`` and its local side as ``LOCAL``.
COMMANDS = {
    "ls": ["ls", "URL"],
    "du": ["du", "URL"],
    "inventory": ["inventory", "URL", "-o", "LOCAL"],
    "cp-down": ["cp", "URL", "LOCAL"],
    "sync-up": ["sync", "SRC", "URL"],
    "sync-down": ["sync", "URL", "LOCAL"],
    "backup": ["backup", "SRC", "URL"],
    "compare": ["compare", "SRC", "URL"],
    "cat": ["cat", "URL"],
    "lifecycle": ["lifecycle", "show", "URL"],
    "restore": ["restore", "URL", "LOCAL"],
}


def _args(command: str, url: str, src: Path, local: Path) -> list[str]:
    names = {"URL": url, "SRC": str(src), "LOCAL": str(local)}
    return [names.get(a, a) for a in COMMANDS[command]]


def _url_for(command: str, bucket: str) -> str:
    """A well-formed URL for ``command``: a key for cat, the bucket for lifecycle."""
    return {"cat": f"s3://{bucket}/p/k", "lifecycle": f"s3://{bucket}"}.get(
        command, f"s3://{bucket}/p/"
    )


def _errors(run: subprocess.CompletedProcess[bytes]) -> list[str]:
    """The ``error:`` lines of a run that went ahead (checked: no traceback)."""
    err = run.stderr.decode("utf-8", "replace")
    assert "Traceback" not in err, err
    return [line for line in err.splitlines() if line.startswith("error: ")]


@pytest.fixture
def src(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    write_tree(root, {"a.txt": b"a", "d/b.txt": b"b"})
    return root


# Each command gets one malformed form, in turn (cp upload gets all four in
# test_errors_cli.py, parse_s3_url each in the unit tests).
_MALFORMED = ["s3:/b", "s3://", "s3://B_ad/", "http://x/y/"]


@pytest.mark.parametrize(
    ("command", "url"), [(c, _MALFORMED[i % 4]) for i, c in enumerate(COMMANDS)]
)
def test_malformed_url(command: str, url: str, src: Path, tmp_path: Path, cli: Cli) -> None:
    run = cli.run(*_args(command, url, src, tmp_path / "out"))

    assert run.returncode == CANNOT_START
    assert url in cli.error_line(run)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("endpoint", ["ftp://x", "localhost:9000", "http://127.0.0.1:99999"])
def test_an_endpoint_that_is_not_an_http_url_is_named(endpoint: str, bucket: str, cli: Cli) -> None:
    flag = cli.run("--endpoint-url", endpoint, "ls", f"s3://{bucket}/")
    variable = cli.run("ls", f"s3://{bucket}/", env=cli.with_env(AWS_ENDPOINT_URL=endpoint))

    why = "not an http:// or https:// URL with a host"
    assert flag.returncode == variable.returncode == CANNOT_START
    assert cli.error_line(flag) == f"error: --endpoint-url {endpoint}: {why}"
    assert cli.error_line(variable) == f"error: AWS_ENDPOINT_URL {endpoint}: {why}"


def test_a_malformed_region_and_quiet_with_verbose_are_named(bucket: str, cli: Cli) -> None:
    flag = cli.run("--region", "bad region!", "ls", f"s3://{bucket}/")
    variable = cli.run("ls", f"s3://{bucket}/", env=cli.with_env(AWS_REGION="us east"))
    both = cli.run("ls", "-q", "-v", f"s3://{bucket}/")

    assert flag.returncode == variable.returncode == both.returncode == CANNOT_START
    why = "not a region name (like us-east-1)"
    assert cli.error_line(flag) == f"error: --region bad region!: {why}"
    assert cli.error_line(variable) == f"error: AWS_REGION us east: {why}"
    assert cli.error_line(both) == "error: -q/--quiet -v/--verbose: choose one"


@pytest.mark.parametrize("command", COMMANDS)
def test_missing_bucket(command: str, src: Path, tmp_path: Path, cli: Cli) -> None:
    url = _url_for(command, "no-such-bucket-s3ferry")
    run = cli.run(*_args(command, url, src, tmp_path / "out"))

    assert run.returncode == CANNOT_START
    line = cli.error_line(run)
    assert line.startswith("error: s3://no-such-bucket-s3ferry"), line
    assert "bucket does not exist" in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", COMMANDS)
def test_wrong_keys(
    command: str, src: Path, tmp_path: Path, bucket: str, s3client: Any, cli: Cli
) -> None:
    s3client.put_object(Bucket=bucket, Key="p/k", Body=b"k")
    url = _url_for(command, bucket)

    run = cli.run(
        *_args(command, url, src, tmp_path / "out"),
        env=cli.with_env(AWS_SECRET_ACCESS_KEY="not-the-secret-key"),
    )

    assert run.returncode == CANNOT_START
    assert cli.error_line(run).startswith(f"error: s3://{bucket}")
    assert run.stdout == b""
    assert not (tmp_path / "out").exists()
    assert [o["Key"] for o in s3client.list_objects_v2(Bucket=bucket)["Contents"]] == ["p/k"]


@pytest.mark.parametrize("command", ["sync-up", "backup", "compare"])
def test_nonexistent_source(command: str, tmp_path: Path, bucket: str, cli: Cli) -> None:
    missing = tmp_path / "no-such-dir"

    run = cli.run(*_args(command, f"s3://{bucket}/p/", missing, tmp_path / "out"))

    assert run.returncode == CANNOT_START
    assert cli.error_line(run) == f"error: {missing}: no such directory"


@pytest.mark.parametrize("command", ["cp", "sync", "cat", "migrate"])
def test_a_part_size_out_of_range_is_named_by_its_option(
    command: str, src: Path, bucket: str, cli: Cli
) -> None:
    args = {
        "cp": ["cp", src, f"s3://{bucket}/p/"],
        "sync": ["sync", src, f"s3://{bucket}/p/"],
        "cat": ["cat", f"s3://{bucket}/k"],
        "migrate": ["migrate", f"s3://{bucket}/p/", f"s3://{bucket}/q/"],
    }[command]

    run = cli.run(*args, "--part-size", "1MiB")

    assert run.returncode == CANNOT_START
    assert cli.error_line(run) == "error: --part-size: must be between 5 MiB and 5 GiB, got 1048576"


@pytest.mark.parametrize("direction", ["upload", "download", "stdin", "stdout"])
def test_copy_path_is_refused_outside_copies_between_buckets(
    direction: str, src: Path, tmp_path: Path, bucket: str, s3client: Any, cli: Cli
) -> None:
    s3client.put_object(Bucket=bucket, Key="p/k", Body=b"k")
    out = tmp_path / "out"
    ends = {
        "upload": [src, f"s3://{bucket}/up/"],
        "download": [f"s3://{bucket}/p/", out],
        "stdin": ["-", f"s3://{bucket}/up/k"],
        "stdout": [f"s3://{bucket}/p/k", "-"],
    }[direction]

    run = cli.run("cp", *ends, "--copy-path", "streamed", stdin=b"data")

    assert run.returncode == CANNOT_START
    assert cli.error_line(run) == "error: --copy-path streamed: only for copies between buckets"
    assert run.stdout == b""
    assert not out.exists()
    assert [o["Key"] for o in s3client.list_objects_v2(Bucket=bucket)["Contents"]] == ["p/k"]


def test_missing_key_is_not_an_empty_download(bucket: str, tmp_path: Path, cli: Cli) -> None:
    """Neither an object nor a prefix: not "0 objects, done"."""
    run = cli.run("cp", f"s3://{bucket}/no/such/key", tmp_path / "out")

    assert run.returncode == CANNOT_START
    assert cli.error_line(run) == f"error: s3://{bucket}/no/such/key: no such key or prefix"
    assert not (tmp_path / "out").exists()


def test_inventory_of_a_missing_bucket_leaves_no_manifest(tmp_path: Path, cli: Cli) -> None:
    out = tmp_path / "inv"

    run = cli.run("inventory", "s3://no-such-bucket-s3ferry", "-o", out)

    assert run.returncode == CANNOT_START
    assert not out.exists()


# Root reads and writes any file; without these capabilities file modes apply again.
_UNPRIVILEGED = (
    ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"] if os.geteuid() == 0 else []
)
needs_setpriv = pytest.mark.skipif(
    os.geteuid() == 0 and shutil.which("setpriv") is None, reason="needs setpriv (util-linux)"
)


@pytest.fixture
def locked(src: Path) -> Iterator[list[Path]]:
    """A file and a directory in ``src`` that only privileged processes can read."""
    write_tree(src, {"locked.txt": b"locked", "locked-dir/inside.txt": b"inside"})
    paths = [src / "locked.txt", src / "locked-dir"]
    for p in paths:
        p.chmod(0)
    yield paths
    for p in paths:
        p.chmod(0o755)


@needs_setpriv
@pytest.mark.parametrize("command", ["sync", "backup"])
def test_unreadable_file_and_directory(
    command: str, src: Path, locked: list[Path], bucket: str, cli: Cli, keys: Any
) -> None:
    run = cli.run(command, src, f"s3://{bucket}/p/", wrapper=_UNPRIVILEGED)

    assert run.returncode == PARTIAL_FAILURE, run.stderr
    errors = sorted(_errors(run))
    assert len(errors) == 2, errors
    for path, line in zip(sorted(locked), errors, strict=True):
        assert line.startswith(f"error: {path}"), line
        assert "Permission denied" in line
    assert keys() == ["p/a.txt", "p/d/b.txt"]


@needs_setpriv
@pytest.mark.parametrize("command", ["cp", "sync"])
def test_download_into_unwritable_directory(
    command: str, tmp_path: Path, bucket: str, s3client: Any, cli: Cli
) -> None:
    s3client.put_object(Bucket=bucket, Key="p/a.txt", Body=b"a")
    s3client.put_object(Bucket=bucket, Key="p/d/b.txt", Body=b"b")
    out = tmp_path / "out"
    write_tree(out, {"d/keep.txt": b"keep"})
    out.chmod(0o555)
    try:
        run = cli.run(command, f"s3://{bucket}/p/", out, wrapper=_UNPRIVILEGED)
    finally:
        out.chmod(0o755)

    assert run.returncode == PARTIAL_FAILURE, run.stderr
    errors = _errors(run)
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"error: {out / 'a.txt'}: ") and "Permission denied" in errors[0]
    assert read_tree(out) == {"d/b.txt": b"b", "d/keep.txt": b"keep"}


# Runs the command with the walk doctored: once a file has been walked (its size
# and mtime taken), it is deleted or grown before the upload reads it.
_CHANGING_FILES = textwrap.dedent(
    """
    import os, sys
    import s3ferry.jobs.sync as sync_job
    import s3ferry.jobs.upload as upload_job
    from s3ferry.cli.main import main

    def doctored(real):
        def walk(root, *args, **kwargs):
            for entry in real(root, *args, **kwargs):
                name = os.path.basename(entry.path)
                if name.startswith("gone"):
                    os.unlink(entry.path)
                elif name.startswith("grows"):
                    with open(entry.path, "ab") as f:
                        f.write(b"more")
                yield entry
        return walk

    upload_job.walk = doctored(upload_job.walk)
    sync_job.walk = doctored(sync_job.walk)
    code = main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
    """
)


@pytest.mark.parametrize("command", ["cp", "sync"])
def test_file_deleted_or_grown_during_upload(
    command: str, src: Path, bucket: str, s3client: Any, cli: Cli, keys: Any
) -> None:
    big = os.urandom(6 * 1024 * 1024)
    changing = ["gone-big.bin", "gone.txt", "grows-big.bin", "grows.txt"]
    write_tree(src, {name: big if name.endswith(".bin") else b"g" for name in changing})

    run = cli.run_python(_CHANGING_FILES, command, *cli.small_parts, src, f"s3://{bucket}/p/")

    assert run.returncode == PARTIAL_FAILURE, run.stderr
    errors = sorted(_errors(run))
    assert len(errors) == 4, errors
    for line, name in zip(errors, changing, strict=True):
        assert line.startswith(f"error: {src / name}: "), line
    assert keys() == ["p/a.txt", "p/d/b.txt"]
    assert "Uploads" not in s3client.list_multipart_uploads(Bucket=bucket)


@pytest.mark.timeout(60)
def test_backup_keeps_link_loops_as_links(src: Path, bucket: str, cli: Cli, keys: Any) -> None:
    (src / "loop1").symlink_to("loop2")
    (src / "loop2").symlink_to("loop1")
    (src / "d" / "up").symlink_to("..")

    run = cli.run("backup", src, f"s3://{bucket}/p/", timeout=30)

    assert run.returncode == 0, run.stderr
    assert _errors(run) == []
    # Links are recorded as links (empty objects), never followed.
    assert keys() == ["p/a.txt", "p/d/b.txt", "p/d/up", "p/loop1", "p/loop2"]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("command", ["cp", "sync"])
def test_follow_symlinks_leaves_the_tree_only_when_asked_and_never_loops(
    command: str, src: Path, tmp_path: Path, bucket: str, cli: Cli, keys: Any
) -> None:
    write_tree(tmp_path / "outside", {"o.txt": b"o"})
    (src / "ext").symlink_to(tmp_path / "outside")
    (src / "loop1").symlink_to("loop2")
    (src / "loop2").symlink_to("loop1")
    (src / "d" / "up").symlink_to("..")

    plain = cli.run(command, src, f"s3://{bucket}/plain/", timeout=30)
    followed = cli.run(command, "--follow-symlinks", src, f"s3://{bucket}/f/", timeout=30)

    assert plain.returncode == 0, plain.stderr
    assert followed.returncode == PARTIAL_FAILURE, followed.stderr
    errors = _errors(followed)
    assert errors == [
        f"error: {src / name}: cannot stat: Too many levels of symbolic links"
        for name in ("loop1", "loop2")
    ]
    assert keys() == ["f/a.txt", "f/d/b.txt", "f/ext/o.txt", "plain/a.txt", "plain/d/b.txt"]


@pytest.mark.parametrize("command", ["cp", "sync", "backup"])
def test_non_utf8_file_name_is_refused(
    command: str, src: Path, bucket: str, cli: Cli, keys: Any
) -> None:
    bad = src / os.fsdecode(b"bad-\xff.txt")
    bad.write_bytes(b"bad")

    run = cli.run(command, src, f"s3://{bucket}/p/")

    assert run.returncode == PARTIAL_FAILURE, run.stderr
    errors = _errors(run)
    assert len(errors) == 1, errors
    assert errors[0].endswith("bad-\ufffd.txt: file name is not valid UTF-8; S3 keys must be")
    assert keys() == ["p/a.txt", "p/d/b.txt"]


@pytest.mark.parametrize("command", ["cp", "sync", "backup"])
def test_key_over_1024_bytes_is_refused(
    command: str, src: Path, bucket: str, cli: Cli, keys: Any
) -> None:
    long_name = "/".join(["x" * 170] * 6) + "/f.txt"  # 1,031 bytes; 1,035 with "p/y/"
    write_tree(src, {f"y/{long_name}": b"long"})

    run = cli.run(command, src, f"s3://{bucket}/p/")

    assert run.returncode == PARTIAL_FAILURE, run.stderr
    errors = _errors(run)
    assert len(errors) == 1, errors
    assert "key would be 1035 bytes (S3 allows 1024)" in errors[0]
    assert keys() == ["p/a.txt", "p/d/b.txt"]


def test_destination_key_over_1024_bytes(src: Path, bucket: str, cli: Cli, keys: Any) -> None:
    run = cli.run("cp", src / "a.txt", f"s3://{bucket}/{'k' * 1025}")

    assert run.returncode == CANNOT_START
    assert cli.error_line(run).endswith("key is longer than 1024 bytes")
    assert keys() == []


@pytest.fixture(params=["tmpfs", "fsize"])
def small_disk(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Path, list[str]]]:
    """A 2 MiB destination: a tmpfs (ENOSPC) where mounting is allowed, and always a
    file-size limit (EFBIG; Python ignores SIGXFSZ). Yields the directory and a wrapper."""
    where = tmp_path / "disk"
    where.mkdir()
    if request.param == "fsize":
        yield where, ["prlimit", f"--fsize={2 * 1024 * 1024}"]
        return
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(where)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    yield where, []
    subprocess.run(["umount", str(where)], check=True)


@pytest.mark.parametrize("command", ["cp", "sync"])
def test_destination_fills_up_during_download(
    command: str,
    small_disk: tuple[Path, list[str]],
    bucket: str,
    s3client: Any,
    cli: Cli,
) -> None:
    disk, wrapper = small_disk
    big = os.urandom(3 * 1024 * 1024)
    for key, body in [("p/a.txt", b"a"), ("p/big.bin", big), ("p/large.bin", big * 2)]:
        s3client.put_object(Bucket=bucket, Key=key, Body=body)
    out = disk / "out"

    run = cli.run(command, *cli.small_parts, f"s3://{bucket}/p/", out, wrapper=wrapper)

    assert run.returncode == PARTIAL_FAILURE, run.stderr
    errors = _errors(run)
    assert all(("No space left" in e or "File too large" in e) for e in errors), errors
    failed = {e.split(": ")[1].rsplit("/", 1)[-1] for e in errors}
    # A full disk is full for every file: the 1-byte file fails too if it is written
    # while the others fill the tmpfs. A file-size limit spares it.
    spared = set() if not wrapper and "a.txt" in failed else {"a.txt"}
    assert failed == {"a.txt", "big.bin", "large.bin"} - spared, errors
    # Only complete files, and no temporary file left behind.
    assert read_tree(out) == {name: b"a" for name in spared}

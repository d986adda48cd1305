"""The command line's parser is built for the command named, and start-up imports stay lean."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from s3ferry.cli.main import COMMANDS, build_parser


def _commands(parser: argparse.ArgumentParser) -> set[str]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return set(sub.choices)


def test_every_command_is_named_in_commands() -> None:
    assert _commands(build_parser()) == COMMANDS


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_the_parser_for_a_command_line_has_its_command(command: str) -> None:
    assert command in _commands(build_parser(["--quiet", command, "--help"]))


def test_a_command_line_naming_no_command_gets_every_command() -> None:
    assert _commands(build_parser(["--help"])) == COMMANDS
    assert _commands(build_parser(["cpy", "a", "b"])) == COMMANDS


def test_a_download_imports_neither_other_commands_nor_package_metadata() -> None:
    """Each of these cost milliseconds of every run's start-up (``importlib.metadata``
    ~25 ms: the crc32c package's ``__init__`` reads its own version with it)."""
    probe = (
        "import sys\n"
        "from s3ferry.cli.main import build_parser\n"
        "build_parser(['cp', 's3://b/p/', 'd']).parse_args(['cp', 's3://b/p/', 'd'])\n"
        "import s3ferry.jobs.download\n"
        "from s3ferry.transfer.checksums import crc32c\n"
        "assert crc32c(b'123456789') == 0xE3069283\n"
        "print(' '.join(sorted(set(sys.modules) & set(sys.argv[1:]))))\n"
    )
    unwanted = [
        "importlib.metadata",
        "crc32c",
        "s3ferry.cli.cat",
        "s3ferry.cli.lifecycle",
        "s3ferry.cli.restore",
        "s3ferry.cli.migrate_commands",
        "s3ferry.jobs.lifecycle",
        "s3ferry.planning.tasks",
    ]
    run = subprocess.run(
        [sys.executable, "-c", probe, *unwanted], capture_output=True, text=True, check=True
    )
    assert run.stdout.split() == []

"""docs/deploy.md and the Dockerfile stay correct.

The deployment guide is mostly things people paste: JSON for AWS APIs, AWS config files,
user data and ``s3ferry`` command lines. These tests parse all of it: every ``json`` block
with ``json.loads`` (``yaml`` blocks with PyYAML, if the doc ever has any), every ``ini``
block with ``configparser``, every shell block (and the scripts its heredocs write) with
``bash -n``, and every ``s3ferry <command> ...`` line, whether in shell, a systemd unit or a
JSON ``command`` array, with the CLI's own parser. They also check what the guide
promises: stop grace periods longer than the worker's ``--stop-timeout``, tags from the
launch template and no EC2 API calls in user data. For the Dockerfile they check its
instructions: base image, ``pip install .``, a non-root USER, ``ENTRYPOINT ["s3ferry"]``
and ``STOPSIGNAL SIGTERM``. The image itself is not built here (no registry access).
"""

from __future__ import annotations

import argparse
import configparser
import contextlib
import io
import json
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from s3ferry.cli.main import build_parser

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "deploy.md"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

SHELL_LANGS = {"sh", "bash", "shell"}
# The worker gives its processes this long after --stop-timeout before it kills them.
PROCESS_GRACE_S = 5
SPOT_NOTICE_S = 120
ECS_AGENT_DEFAULT_STOP_S = 30

_FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```[ \t]*$", re.M | re.S)
_HEREDOC = re.compile(r"<<-?\s*'?\"?(\w+)'?\"?[^\n]*\n(.*?)^\1$", re.M | re.S)


def _blocks(text: str, langs: set[str]) -> list[str]:
    return [m.group(2) for m in _FENCE.finditer(text) if m.group(1).lower() in langs]


@pytest.fixture(scope="module")
def doc() -> str:
    return DOC.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def parser() -> argparse.ArgumentParser:
    return build_parser()


def _subcommands(parser: argparse.ArgumentParser) -> set[str]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return set(action.choices)
    raise AssertionError("the s3ferry parser has no subcommands")


def _parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """Parse ``argv`` as the CLI would; a usage error fails the test with its message."""
    if "-h" in argv or "--help" in argv:
        assert argv[0] in _subcommands(parser), f"s3ferry {shlex.join(argv)}: no such command"
        return argparse.Namespace(command=argv[0])
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            return parser.parse_args(argv)
    except SystemExit:
        pytest.fail(f"s3ferry {shlex.join(argv)}\n  is refused: {err.getvalue().strip()}")


# -- command lines in the doc ----------------------------------------------------------------

_SHELL_STOP = {"|", "||", "&&", ";", "&", ">", ">>", "2>", "2>&1", "<"}


def _shell_command_lines(script: str, commands: set[str]) -> Iterator[list[str]]:
    """The argument lists of ``s3ferry COMMAND ...`` (also ``/path/s3ferry`` and the image
    ``.../s3ferry:TAG`` in ``docker run``), one per logical line; comments and systemd
    ``Description=`` lines (prose) left out."""
    joined = re.sub(r"\\\n", " ", script)
    start = re.compile(r"(?:^|[\s/=])s3ferry(?::[\w.-]+)?[ \t]+(\S+)(.*)$")
    for line in joined.splitlines():
        if line.lstrip().startswith(("#", "Description=")):
            continue
        m = start.search(line)
        if not m or m.group(1) not in commands:
            continue
        argv = [m.group(1)]
        for token in shlex.split(m.group(2), comments=True):
            if token in _SHELL_STOP:
                break
            argv.append(token)
        yield argv


def _json_command_arrays(value: Any, commands: set[str]) -> Iterator[list[str]]:
    """``"command": ["worker", ...]`` lists anywhere in a JSON document (Batch, ECS)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if (
                key == "command"
                and isinstance(item, list)
                and item
                and all(isinstance(x, str) for x in item)
                and item[0] in commands
            ):
                yield list(item)
            else:
                yield from _json_command_arrays(item, commands)
    elif isinstance(value, list):
        for item in value:
            yield from _json_command_arrays(item, commands)


def _all_command_lines(doc: str, commands: set[str]) -> list[list[str]]:
    lines: list[list[str]] = []
    for block in _blocks(doc, SHELL_LANGS):
        lines.extend(_shell_command_lines(block, commands))
    for block in _blocks(doc, {"json"}):
        lines.extend(_json_command_arrays(json.loads(block), commands))
    return lines


# -- the doc's blocks parse --------------------------------------------------------------------


def test_json_blocks_parse(doc: str) -> None:
    blocks = _blocks(doc, {"json"})
    assert len(blocks) >= 10, "the guide lost its JSON examples"
    for n, block in enumerate(blocks, 1):
        try:
            json.loads(block)
        except json.JSONDecodeError as e:
            pytest.fail(f"json block {n} of docs/deploy.md: {e}\n{block}")


def test_yaml_blocks_parse(doc: str) -> None:
    blocks = _blocks(doc, {"yaml", "yml"})
    if not blocks:
        return
    yaml = pytest.importorskip("yaml")
    for n, block in enumerate(blocks, 1):
        try:
            yaml.safe_load(block)
        except yaml.YAMLError as e:
            pytest.fail(f"yaml block {n} of docs/deploy.md: {e}")


def _check_aws_config(text: str, where: str) -> None:
    config = configparser.ConfigParser(interpolation=None)
    try:
        config.read_string(text)
    except configparser.Error as e:
        pytest.fail(f"{where}: {e}")
    for name in ("profile source", "profile dest"):
        assert config.has_section(name), f"{where}: no [{name}]"
        section = config[name]
        if "credential_source" in section:
            # botocore accepts these three, and only together with role_arn.
            assert section["credential_source"] in {
                "Ec2InstanceMetadata",
                "EcsContainer",
                "Environment",
            }, f"{where}: [{name}] credential_source"
            assert section.get("role_arn", "").startswith("arn:aws"), f"{where}: [{name}] role_arn"


def test_ini_blocks_parse_and_name_both_profiles(doc: str) -> None:
    blocks = _blocks(doc, {"ini"})
    assert blocks, "the guide lost its AWS config example"
    for n, block in enumerate(blocks, 1):
        _check_aws_config(block, f"ini block {n}")


def _heredocs(script: str) -> list[str]:
    return [m.group(2) for m in _HEREDOC.finditer(script)]


def test_shell_blocks_pass_bash_n(doc: str) -> None:
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("no bash")
    blocks = _blocks(doc, SHELL_LANGS)
    assert len(blocks) >= 4, "the guide lost its shell examples"
    scripts = [(f"shell block {n}", b) for n, b in enumerate(blocks, 1)]
    # Scripts the user data writes (the spot watcher) are checked too.
    for n, block in enumerate(blocks, 1):
        for body in _heredocs(block):
            if body.startswith(("#!/bin/bash", "#!/bin/sh")):
                scripts.append((f"a script written by shell block {n}", body))
    for where, script in scripts:
        done = subprocess.run([bash, "-n"], input=script, text=True, capture_output=True)
        assert done.returncode == 0, f"bash -n, {where}:\n{done.stderr}\n{script}"


def test_aws_config_written_by_user_data_parses(doc: str) -> None:
    bodies = [
        body
        for block in _blocks(doc, SHELL_LANGS)
        for body in _heredocs(block)
        if body.lstrip().startswith(("[default]", "[profile "))
    ]
    assert bodies, "the user data no longer writes an AWS config"
    for body in bodies:
        _check_aws_config(body, "the AWS config in the user data")


# -- every s3ferry command line is one the CLI accepts ---------------------------------------


def test_every_s3ferry_command_line_parses(doc: str, parser: argparse.ArgumentParser) -> None:
    lines = _all_command_lines(doc, _subcommands(parser))
    seen = {argv[0] for argv in lines}
    missing = {"inventory", "plan", "worker", "status", "cleanup"} - seen
    assert not missing, f"no command line found for: {sorted(missing)}"
    for argv in lines:
        _parse(parser, argv)


def test_workers_use_one_profile_per_side(doc: str, parser: argparse.ArgumentParser) -> None:
    workers = [
        _parse(parser, argv)
        for argv in _all_command_lines(doc, _subcommands(parser))
        if argv[0] == "worker" and "--help" not in argv
    ]
    assert len(workers) >= 4  # the flow, Batch, ECS, the systemd unit
    for args in workers:
        # SQS (or a placeholder for its URL: ${QUEUE_URL}, Batch's Ref::queue), never SQLite.
        assert not args.queue.startswith("sqlite:"), args.queue
        assert args.source_profile == "source" and args.dest_profile == "dest"
        # AWS_DEFAULT_REGION (set for the queue) would override a profile's region.
        assert args.source_region and args.dest_region


# -- what the guide promises -----------------------------------------------------------------


def _stop_timeout(parser: argparse.ArgumentParser, argv: list[str]) -> int:
    return int(_parse(parser, argv).stop_timeout)


def test_ecs_stop_timeout_outlasts_the_worker(doc: str, parser: argparse.ArgumentParser) -> None:
    commands = _subcommands(parser)
    found = 0
    for block in _blocks(doc, {"json"}):
        for container in json.loads(block).get("containerDefinitions", []):
            (argv,) = _json_command_arrays(container, commands)
            stop = _stop_timeout(parser, argv)
            assert "stopTimeout" in container, "ECS would SIGKILL the worker after 30 s"
            assert stop + PROCESS_GRACE_S < container["stopTimeout"] <= SPOT_NOTICE_S
            found += 1
    assert found, "no ECS task definition in the guide"


def test_batch_stop_timeout_fits_the_agent_default(
    doc: str, parser: argparse.ArgumentParser
) -> None:
    commands = _subcommands(parser)
    found = 0
    for block in _blocks(doc, {"json"}):
        properties = json.loads(block).get("containerProperties")
        if properties is None:
            continue
        (argv,) = _json_command_arrays(properties, commands)
        assert "--exit-when-empty" in argv, "array children would never finish"
        assert _stop_timeout(parser, argv) + PROCESS_GRACE_S <= ECS_AGENT_DEFAULT_STOP_S
        found += 1
    assert found, "no Batch job definition in the guide"
    submits = [json.loads(b) for b in _blocks(doc, {"json"}) if '"arrayProperties"' in b]
    assert submits and all(s["arrayProperties"]["size"] >= 2 for s in submits)


def test_systemd_grace_outlasts_the_worker(doc: str, parser: argparse.ArgumentParser) -> None:
    commands = _subcommands(parser)
    found = 0
    for block in _blocks(doc, SHELL_LANGS):
        timeout = re.search(r"^TimeoutStopSec=(\d+)$", block, re.M)
        if timeout is None:
            continue
        execs = [
            argv
            for line in re.findall(r"^ExecStart=(.*)$", block, re.M)
            for argv in _shell_command_lines(line, commands)
        ]
        assert len(execs) == 1, "one s3ferry worker ExecStart per unit"
        stop = _stop_timeout(parser, execs[0])
        assert stop + PROCESS_GRACE_S < int(timeout.group(1)) < SPOT_NOTICE_S
        assert re.search(r"^KillSignal=SIGTERM$", block, re.M)
        assert "spot/instance-action" in block, "no spot interruption watcher"
        found += 1
    assert found, "no systemd unit in the guide"


def test_tags_come_from_the_launch_template(doc: str) -> None:
    templates = [
        json.loads(b)["LaunchTemplateData"]
        for b in _blocks(doc, {"json"})
        if '"LaunchTemplateData"' in b
    ]
    assert templates, "no launch template in the guide"
    for data in templates:
        tagged = {spec["ResourceType"] for spec in data["TagSpecifications"] if spec["Tags"]}
        assert {"instance", "volume"} <= tagged
    for block in _blocks(doc, SHELL_LANGS):
        code = "\n".join(ln for ln in block.splitlines() if not ln.lstrip().startswith("#"))
        assert not re.search(r"\baws\s+ec2\b|create-tags|CreateTags|describe-instances", code), (
            "user data must not call the EC2 API at boot (MISSION section 4)"
        )


def test_iam_policies_grant_what_each_side_needs(doc: str) -> None:
    actions: set[str] = set()
    for block in _blocks(doc, {"json"}):
        for statement in json.loads(block).get("Statement", []):
            granted = statement["Action"]
            actions.update([granted] if isinstance(granted, str) else granted)
    needed = {
        "s3:GetObject",
        "s3:ListBucket",
        "s3:PutObject",
        "s3:AbortMultipartUpload",
        "s3:ListMultipartUploadParts",
        "s3:ListBucketMultipartUploads",
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibility",
        "sqs:GetQueueAttributes",
        "sqs:GetQueueUrl",
        "sqs:SendMessage",
        "sqs:CreateQueue",
        "sts:AssumeRole",
    }
    assert not needed - actions, f"no policy grants {sorted(needed - actions)}"


# -- the Dockerfile ----------------------------------------------------------------------------


def _dockerfile() -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` in order; comments dropped, continuations joined."""
    text = DOCKERFILE.read_text(encoding="utf-8")
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    out = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _exec_form(arguments: str) -> list[str]:
    value = json.loads(arguments)
    assert isinstance(value, list) and all(isinstance(x, str) for x in value), arguments
    return value


def test_dockerfile_base_and_install() -> None:
    instructions = _dockerfile()
    assert instructions[0][0] == "FROM"
    assert re.fullmatch(r"python:3\.1[1-9](\.\d+)?-slim(-\w+)?", instructions[0][1])
    runs = [args for word, args in instructions if word == "RUN"]
    assert any(re.search(r"\bpip install \.(\s|$)", r) for r in runs), "not pip install ."


def test_dockerfile_runs_as_non_root() -> None:
    instructions = _dockerfile()
    users = [i for i, (word, _) in enumerate(instructions) if word == "USER"]
    assert users, "no USER: the worker would run as root"
    user = instructions[users[-1]][1].split(":")[0]
    assert user not in {"root", "0"}
    last_run = max(i for i, (word, _) in enumerate(instructions) if word == "RUN")
    assert users[-1] > last_run, "USER must come after the last RUN (installing needs root)"


def test_dockerfile_entrypoint_signal_and_cmd(parser: argparse.ArgumentParser) -> None:
    instructions = dict(_dockerfile())  # the last of each counts
    assert _exec_form(instructions["ENTRYPOINT"]) == ["s3ferry"], "exec form, so s3ferry is PID 1"
    assert instructions["STOPSIGNAL"] == "SIGTERM"
    cmd = _exec_form(instructions["CMD"])
    _parse(parser, cmd)
    assert cmd[0] == "worker"


def test_dockerfile_copies_only_what_the_context_keeps() -> None:
    kept = {
        ln[1:].strip().rstrip("/")
        for ln in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if ln.startswith("!")
    }
    for word, args in _dockerfile():
        if word != "COPY":
            continue
        *sources, _dest = args.split()
        for source in sources:
            assert not source.startswith("--"), "COPY --from/--chown not expected"
            assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
            assert source.rstrip("/") in kept, f"COPY {source}: .dockerignore leaves it out"

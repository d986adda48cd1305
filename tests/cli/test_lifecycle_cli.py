"""`s3ferry lifecycle show|apply` as a user types it.

Lifecycle transitions run against moto's S3 server because no real local
server emulates them: SeaweedFS (4.48) stores rules with an
ObjectSizeGreaterThan filter but answers 501 NotImplemented to any rule with
Transitions (checked below). moto (5.2) accepts transitions but drops
ObjectSizeGreaterThan from the filters it stores, so the size filter is
checked in what s3ferry prints it applied (and in tests/unit), and what moto
keeps is checked for everything else: IDs, classes, days, prefixes and the
other rules.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from support.moto import MOTO_KEYS, moto_server

from s3ferry.config import StoreConfig
from s3ferry.jobs.lifecycle import ArchiveRule, RuleChange, lifecycle_apply, lifecycle_show

if TYPE_CHECKING:
    from conftest import Cli

CANNOT_START = 2
DEFAULT_ID = "s3ferry-archive-over-128KiB-to-GLACIER"
DEFAULT_RULE = {
    "ID": DEFAULT_ID,
    "Filter": {"ObjectSizeGreaterThan": 131072},
    "Status": "Enabled",
    "Transitions": [{"Days": 0, "StorageClass": "GLACIER"}],
}
EXPIRE_TMP = {
    "ID": "expire-tmp",
    "Filter": {"Prefix": "tmp/"},
    "Status": "Enabled",
    "Expiration": {"Days": 7},
}
_names = itertools.count()


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def moto(moto_endpoint: str) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def cold(moto: Any) -> str:
    """A new bucket on the moto server, without lifecycle rules."""
    name = f"cold-{next(_names)}"
    moto.create_bucket(Bucket=name)
    return name


@pytest.fixture
def moto_cli(cli: Cli, moto_endpoint: str) -> Cli:
    env = {k: v for k, v in cli.env.items() if not k.startswith("AWS_")}
    return type(cli)({**env, **MOTO_KEYS, "AWS_ENDPOINT_URL": moto_endpoint})


def _rules(client: Any, bucket: str) -> list[dict[str, Any]]:
    return list(client.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"])


def _json(run: Any) -> dict[str, Any]:
    assert run.returncode == 0, run.stderr
    return dict(json.loads(run.stdout))


def _note(run: Any) -> str:
    lines = run.stderr.decode().splitlines()
    assert len(lines) == 1, lines
    return str(lines[0])


def test_show_on_a_bucket_without_rules_prints_what_apply_would_install(
    moto_cli: Cli, moto: Any, cold: str
) -> None:
    run = moto_cli.run("lifecycle", "show", f"s3://{cold}")

    assert _json(run) == {"Rules": [DEFAULT_RULE]}
    assert _note(run) == (
        f"s3://{cold}: rule {DEFAULT_ID} would be added (not installed); "
        "'s3ferry lifecycle apply' would install it"
    )
    with pytest.raises(moto.exceptions.ClientError, match="NoSuchLifecycleConfiguration"):
        moto.get_bucket_lifecycle_configuration(Bucket=cold)


def test_apply_then_show_prints_the_installed_rules(moto_cli: Cli, moto: Any, cold: str) -> None:
    applied = moto_cli.run("lifecycle", "apply", f"s3://{cold}")
    shown = moto_cli.run("lifecycle", "show", f"s3://{cold}")

    assert _json(applied)["Rules"] == [DEFAULT_RULE]
    assert _note(applied) == f"s3://{cold}: rule {DEFAULT_ID} added; 1 lifecycle rule installed"
    [stored] = _rules(moto, cold)
    assert (stored["ID"], stored["Transitions"]) == (DEFAULT_ID, DEFAULT_RULE["Transitions"])
    assert _json(shown)["Rules"] == [stored]
    assert _note(shown) == f"s3://{cold}: 1 lifecycle rule installed"


def test_apply_keeps_an_unrelated_rule(moto_cli: Cli, moto: Any, cold: str) -> None:
    moto.put_bucket_lifecycle_configuration(
        Bucket=cold, LifecycleConfiguration={"Rules": [EXPIRE_TMP]}
    )
    before = _rules(moto, cold)

    run = moto_cli.run(
        "lifecycle", "apply", f"s3://{cold}", "--threshold", "1MiB", "--class", "deep_archive"
    )

    rule = {
        "ID": "s3ferry-archive-over-1MiB-to-DEEP_ARCHIVE",
        "Filter": {"ObjectSizeGreaterThan": 1024**2},
        "Status": "Enabled",
        "Transitions": [{"Days": 0, "StorageClass": "DEEP_ARCHIVE"}],
    }
    assert _json(run)["Rules"] == [*before, rule]
    after = _rules(moto, cold)
    assert after[0] == before[0] == EXPIRE_TMP
    assert [r["ID"] for r in after] == ["expire-tmp", rule["ID"]]


def test_apply_again_replaces_the_rule_with_the_same_id(
    moto_cli: Cli, moto: Any, cold: str
) -> None:
    moto.put_bucket_lifecycle_configuration(
        Bucket=cold, LifecycleConfiguration={"Rules": [EXPIRE_TMP]}
    )
    for days in ("0", "0", "45"):
        _json(moto_cli.run("lifecycle", "apply", f"s3://{cold}", "--days", days))

    after = _rules(moto, cold)
    assert [r["ID"] for r in after] == ["expire-tmp", DEFAULT_ID]
    assert after[1]["Transitions"] == [{"Days": 45, "StorageClass": "GLACIER"}]


def test_prefix_is_combined_with_the_size_and_makes_its_own_rule(
    moto_cli: Cli, moto: Any, cold: str
) -> None:
    _json(moto_cli.run("lifecycle", "apply", f"s3://{cold}"))

    run = moto_cli.run(
        "lifecycle", "apply", f"s3://{cold}", "--prefix", "logs/", "--class", "STANDARD_IA"
    )

    prefixed = _json(run)["Rules"][1]
    assert prefixed == {
        "ID": "s3ferry-archive-over-128KiB-to-STANDARD_IA-under-logs/",
        "Filter": {"And": {"Prefix": "logs/", "ObjectSizeGreaterThan": 131072}},
        "Status": "Enabled",
        "Transitions": [{"Days": 30, "StorageClass": "STANDARD_IA"}],
    }
    stored = _rules(moto, cold)
    assert [r["ID"] for r in stored] == [DEFAULT_ID, prefixed["ID"]]
    assert stored[1]["Filter"]["And"]["Prefix"] == "logs/"


def test_show_with_rule_options_merges_without_writing(moto_cli: Cli, moto: Any, cold: str) -> None:
    moto.put_bucket_lifecycle_configuration(
        Bucket=cold, LifecycleConfiguration={"Rules": [EXPIRE_TMP]}
    )

    run = moto_cli.run("lifecycle", "show", f"s3://{cold}", "--days", "2")

    rule = {**DEFAULT_RULE, "Transitions": [{"Days": 2, "StorageClass": "GLACIER"}]}
    assert _json(run)["Rules"] == [EXPIRE_TMP, rule]
    assert _rules(moto, cold) == [EXPIRE_TMP]


def test_json_is_one_record_per_line(moto_cli: Cli, moto: Any, cold: str) -> None:
    run = moto_cli.run("--json", "lifecycle", "apply", f"s3://{cold}")

    assert run.returncode == 0, run.stderr
    [line] = run.stdout.splitlines()
    assert json.loads(line) == {
        "type": "lifecycle",
        "bucket": cold,
        "configuration": {"Rules": [DEFAULT_RULE]},
        "rule_id": DEFAULT_RULE["ID"],
        "change": "added",
        "written": True,
    }


def test_dry_run_prints_and_writes_nothing(moto_cli: Cli, moto: Any, cold: str) -> None:
    run = moto_cli.run("lifecycle", "apply", f"s3://{cold}", "--dry-run", "-q")

    assert _json(run) == {"Rules": [DEFAULT_RULE]}
    assert run.stderr == b""
    with pytest.raises(moto.exceptions.ClientError, match="NoSuchLifecycleConfiguration"):
        moto.get_bucket_lifecycle_configuration(Bucket=cold)


def test_library_reports_what_it_did(
    moto_endpoint: str, moto: Any, cold: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in MOTO_KEYS.items():
        monkeypatch.setenv(name, value)
    store = StoreConfig(endpoint_url=moto_endpoint)
    rule = ArchiveRule(10 * 1024**2, "GLACIER_IR", days=1)

    dry = lifecycle_apply(f"s3://{cold}", rule, dry_run=True, store=store)
    done = lifecycle_apply(f"s3://{cold}", rule, store=store)
    shown = lifecycle_show(f"s3://{cold}", store=store)

    assert (dry.change, dry.written) == (RuleChange.ADDED, False)
    assert (done.change, done.written, done.rule_id) == (RuleChange.ADDED, True, rule.rule_id)
    assert done.configuration["Rules"] == [rule.as_s3()]
    assert (shown.rule_id, shown.change, shown.written) == (None, None, False)
    assert shown.configuration["Rules"] == _rules(moto, cold)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (("--class", "GLACIER_DEEP"), "argument --class: invalid choice: 'GLACIER_DEEP'"),
        (("--threshold", "lots"), "argument --threshold: not a size: 'lots'"),
        (("--threshold", "-1"), "argument --threshold: not a size: '-1'"),
        (("--days", "-1"), "argument --days: not a number from 0 up: '-1'"),
        (("--class", "STANDARD_IA", "--days", "5"), "STANDARD_IA: S3 moves objects to this"),
    ],
)
@pytest.mark.parametrize("action", ["show", "apply"])
def test_bad_options(
    moto_cli: Cli, cold: str, action: str, options: tuple[str, ...], message: str
) -> None:
    run = moto_cli.run("lifecycle", action, f"s3://{cold}", *options)

    assert (run.returncode, run.stdout) == (CANNOT_START, b"")
    assert message in moto_cli.error_line(run)


@pytest.mark.parametrize("action", ["show", "apply"])
def test_bad_buckets(moto_cli: Cli, cold: str, action: str) -> None:
    for url, message in [
        (
            "s3://no-such-bucket-s3ferry",
            "error: s3://no-such-bucket-s3ferry: bucket does not exist",
        ),
        (f"s3://{cold}/logs/", "belongs to the whole bucket"),
        ("/tmp", "not an S3 URL"),
    ]:
        run = moto_cli.run("lifecycle", action, url)

        assert (run.returncode, run.stdout) == (CANNOT_START, b"")
        assert message in moto_cli.error_line(run)


def test_wrong_credentials_are_one_line(cli: Cli, bucket: str) -> None:
    run = cli.run(
        "lifecycle", "show", f"s3://{bucket}", env=cli.with_env(AWS_SECRET_ACCESS_KEY="x")
    )

    assert (run.returncode, run.stdout) == (CANNOT_START, b"")
    assert f"s3://{bucket}: wrong credentials" in cli.error_line(run)


def test_seaweedfs_keeps_size_filters_but_refuses_transitions(
    cli: Cli, s3client: Any, bucket: str
) -> None:
    expire_big = {
        "ID": "expire-big",
        "Filter": {"And": {"Prefix": "tmp/", "ObjectSizeGreaterThan": 1000}},
        "Status": "Enabled",
        "Expiration": {"Days": 7},
    }
    s3client.put_bucket_lifecycle_configuration(
        Bucket=bucket, LifecycleConfiguration={"Rules": [expire_big]}
    )

    shown = cli.run("lifecycle", "show", f"s3://{bucket}")
    applied = cli.run("lifecycle", "apply", f"s3://{bucket}")

    assert _json(shown)["Rules"] == [expire_big]
    assert (applied.returncode, applied.stdout) == (CANNOT_START, b"")
    assert cli.error_line(applied) == (
        f"error: s3://{bucket}: the store does not implement these lifecycle rules (NotImplemented)"
    )
    assert _rules(s3client, bucket) == [expire_big]

"""Credentials, regions and endpoints resolve as in the AWS CLI: environment or config files."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

import s3ferry
from s3ferry import StoreConfig
from s3ferry.localserver import LocalS3Info


def _clear_aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)


def test_profile_from_config_files_supplies_keys_and_endpoint(
    tmp_path: Path,
    bucket: str,
    s3server: LocalS3Info,
    s3client: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _clear_aws_env(monkeypatch)
    config = tmp_path / "config"
    config.write_text(
        f"[profile ferry]\nregion = us-east-1\nendpoint_url = {s3server.endpoint_url}\n"
    )
    credentials = tmp_path / "credentials"
    credentials.write_text(
        f"[ferry]\naws_access_key_id = {s3server.access_key_id}\n"
        f"aws_secret_access_key = {s3server.secret_access_key}\n"
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_bytes(b"from a profile")

    report = s3ferry.upload(
        tmp_path / "src", f"s3://{bucket}/p/", store=StoreConfig(profile="ferry")
    )

    assert report.ok and report.objects_done == 1
    assert s3client.get_object(Bucket=bucket, Key="p/a.txt")["Body"].read() == b"from a profile"


def test_unknown_profile_and_missing_credentials_are_usage_errors(
    tmp_path: Path, s3server: LocalS3Info, monkeypatch: pytest.MonkeyPatch
) -> None:
    _clear_aws_env(monkeypatch)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    endpoint = StoreConfig(endpoint_url=s3server.endpoint_url)
    with pytest.raises(s3ferry.UsageError, match="no such profile"):
        s3ferry.upload(
            tmp_path,
            "s3://some-bucket/p/",
            store=StoreConfig(endpoint_url=s3server.endpoint_url, profile="nope"),
        )
    with pytest.raises(s3ferry.AccessDeniedError, match="no AWS credentials"):
        s3ferry.upload(tmp_path, "s3://some-bucket/p/", store=endpoint)

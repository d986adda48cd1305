"""Two S3 "partitions": a second SeaweedFS with keys of its own, and AWS profiles naming
each side, so that no single credential reaches both (as between AWS regions or accounts)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from s3ferry.config import StoreConfig
from s3ferry.localserver import LocalS3Info


@dataclass(frozen=True)
class Partitions:
    """``source``/``dest`` configs by profile; ``env`` points the AWS files at them."""

    source: StoreConfig
    dest: StoreConfig
    env: dict[str, str]
    source_client: Any
    dest_client: Any

    def cli_args(self) -> list[str]:
        return [
            "--source-profile",
            "src",
            "--source-endpoint-url",
            str(self.source.endpoint_url),
            "--dest-profile",
            "dst",
            "--dest-endpoint-url",
            str(self.dest.endpoint_url),
        ]


def write_profiles(home: Path, source: LocalS3Info, dest: LocalS3Info) -> dict[str, str]:
    """AWS config and credentials files with profiles ``src`` and ``dst``; their env vars."""
    credentials, config = home / "credentials", home / "config"
    credentials.write_text(
        "".join(
            f"[{name}]\naws_access_key_id = {s.access_key_id}\n"
            f"aws_secret_access_key = {s.secret_access_key}\n"
            for name, s in (("src", source), ("dst", dest))
        )
    )
    config.write_text("[profile src]\nregion = us-east-1\n[profile dst]\nregion = us-east-1\n")
    return {"AWS_SHARED_CREDENTIALS_FILE": str(credentials), "AWS_CONFIG_FILE": str(config)}

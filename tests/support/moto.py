"""A moto S3 server on 127.0.0.1: the only local server that emulates Glacier storage
classes and RestoreObject (SeaweedFS stores the class but never refuses a GET).

moto completes a restore at once by default. :func:`restore_delay` makes it
answer ``ongoing-request="true"`` for a while instead: moto's state manager
("manual" progression) moves a key one step (requested -> in progress ->
restored) each time its status is read after ``looks`` requests touched the key.
"""

from __future__ import annotations

import json
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from support.served import served

ACCESS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
REGION = "us-east-1"
MOTO_KEYS = {**ACCESS, "AWS_REGION": REGION}  # the environment a command needs for moto
_RESTORE_MODEL = "s3::keyrestore"


@contextmanager
def moto_server() -> Iterator[str]:
    """Start ``python -m moto.server`` on a free port; yields its endpoint URL."""
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p"]
    with served(lambda port: [*command, str(port)], "moto server") as port:
        yield f"http://127.0.0.1:{port}"


def client(endpoint: str) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=ACCESS["AWS_SECRET_ACCESS_KEY"],
    )


@contextmanager
def restore_delay(endpoint: str, looks: int) -> Iterator[None]:
    """Within the block, restores stay in progress for about ``looks`` HEADs."""
    transition = {"progression": "manual", "times": looks}
    _post(endpoint, "set-transition", {"model_name": _RESTORE_MODEL, "transition": transition})
    try:
        yield
    finally:
        _post(endpoint, "unset-transition", {"model_name": _RESTORE_MODEL})


def _post(endpoint: str, action: str, body: dict[str, Any]) -> None:
    request = urllib.request.Request(
        f"{endpoint}/moto-api/state-manager/{action}", data=json.dumps(body).encode(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()

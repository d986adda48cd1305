"""Exit codes of the ``s3ferry`` command."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    PARTIAL_FAILURE = 1  # the job ran, some objects failed
    CANNOT_START = 2  # usage, bad input, missing bucket, bad credentials
    INTERRUPTED = 130  # SIGINT

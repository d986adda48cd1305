"""What a failed start of the embedded server reports from its log."""

from __future__ import annotations

from s3ferry.localserver import log_summary

# The end of a real log: the filer's store was locked by another server on the same data dir.
DIED = "\n".join(
    [
        "I1126 09:42:59.630000 master.go:120 current: 127.0.0.1:60083 peers:",
        "E1126 09:42:59.634205 leveldb2_store.go:64 filer store open dir d/00: resource "
        "temporarily unavailable",
        "F1126 09:42:59.654507 configuration.go:26 failed to initialize store for leveldb2: "
        "resource temporarily unavailable",
        "goroutine 1 [running]:",
        "I1126 09:42:59.642246 masterclient.go:271 .filer masterClient failed: Not current leader",
    ]
)


def test_the_fatal_line_is_reported_rather_than_the_last_one() -> None:
    assert log_summary(DIED) == (
        "failed to initialize store for leveldb2: resource temporarily unavailable"
    )


def test_without_a_fatal_line_the_last_line_is_reported() -> None:
    assert log_summary("I1126 first\n  I1126 last   words \n\n") == "I1126 last words"
    assert log_summary("") == "empty log"

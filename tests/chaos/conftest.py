"""Chaos fixtures: a fault-injecting proxy in front of the session's S3 server, and a table
of what the faults did, printed at the end of the run."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from support.faultproxy import FaultProxy, Faults

from s3ferry.localserver import LocalS3Info


@dataclass
class ChaosRow:
    """One chaos test's outcome, for the table printed at the end of the session."""

    test: str
    injected: dict[str, int] = field(default_factory=dict)
    retries: int = 0
    verified: int = 0
    lost_or_corrupted: int = 0
    open_uploads: int = 0
    resumed: int = 0  # objects and parts an interrupted run had done, kept by the rerun
    peak_rss: int = 0  # bytes: the largest s3ferry process of the test

    def measured(self, peak_rss: int) -> None:
        self.peak_rss = max(self.peak_rss, peak_rss)


ROWS: list[ChaosRow] = []


@pytest.fixture
def fault_proxy(s3server: LocalS3Info) -> Iterator[Callable[[Faults], FaultProxy]]:
    """``fault_proxy(faults)``: a proxy to the session's server, on a thread, stopped after
    the test; point a client at its ``endpoint_url``."""
    started: list[FaultProxy] = []

    def start(faults: Faults) -> FaultProxy:
        proxy = FaultProxy(s3server.endpoint_url, faults).start()
        started.append(proxy)
        return proxy

    yield start
    for proxy in started:
        proxy.stop()


@pytest.fixture
def chaos_row(request: pytest.FixtureRequest) -> ChaosRow:
    """This test's row of the session's chaos table (fill it in as the test goes)."""
    row = ChaosRow(request.node.name)
    ROWS.append(row)
    return row


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not ROWS:
        return
    kinds = sorted({k for row in ROWS for k in row.injected})
    header = [
        "test",
        *kinds,
        "retries",
        "resumed",
        "verified",
        "lost/corrupted",
        "open MPUs",
        "peak RSS",
    ]
    lines = [
        [
            row.test,
            *(str(row.injected.get(k, 0)) for k in kinds),
            str(row.retries),
            str(row.resumed),
            str(row.verified),
            str(row.lost_or_corrupted),
            str(row.open_uploads),
            f"{row.peak_rss / 2**20:.0f} MiB" if row.peak_rss else "- (in process)",
        ]
        for row in ROWS
    ]
    widths = [max(len(c) for c in column) for column in zip(header, *lines, strict=True)]
    terminalreporter.section("chaos: faults injected and what they did")
    for cells in [header, *lines]:
        terminalreporter.write_line(
            "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True))
        )

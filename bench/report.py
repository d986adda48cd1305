"""Benchmark results: one record per run, and the markdown table per dataset and operation."""

from __future__ import annotations

from dataclasses import dataclass
from statistics import median
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.measure import Measurement

REFERENCE_TOOL = "s3ferry"
COLUMNS = (
    "tool",
    "runs",
    "wall s (median [min-max])",
    "obj/s",
    "MB/s",
    "client CPU s",
    "CPU ms/obj",
    "peak RSS MiB",
    "server CPU s",
    "ok",
    "ratio",
)


@dataclass(frozen=True, slots=True)
class RunResult:
    dataset: str
    op: str
    tool: str
    run: int
    files: int
    bytes: int
    exit_code: int
    wall_s: float
    user_s: float
    sys_s: float
    max_rss_kib: int
    server_cpu_s: float
    ok: bool
    error: str
    note: str = ""  # e.g. s3ferry's copy path: objects server-side, bytes via the client

    @classmethod
    def measured(
        cls,
        dataset: str,
        op: str,
        tool: str,
        run: int,
        files: int,
        total_bytes: int,
        m: Measurement,
        error: str | None,
        note: str = "",
    ) -> RunResult:
        """One run's record from its measurement; ``error`` None when it passed."""
        return cls(
            dataset,
            op,
            tool,
            run,
            files,
            total_bytes,
            m.exit_code,
            m.wall_s,
            m.user_s,
            m.sys_s,
            m.max_rss_kib,
            m.server_cpu_s,
            ok=error is None,
            error=error or "",
            note=note,
        )

    @property
    def client_cpu_s(self) -> float:
        return self.user_s + self.sys_s


def markdown_table(results: list[RunResult], note_header: str = "note") -> str:
    """The table of all runs of one dataset and operation, then one line per failed run.

    ``ratio`` is the tool's median wall time over s3ferry's: above 1 means s3ferry is faster.
    If any run has a note, a last column (``note_header``) shows the notes of the tool's runs.
    """
    first = results[0]
    by_tool: dict[str, list[RunResult]] = {}
    for result in results:
        by_tool.setdefault(result.tool, []).append(result)
    reference = _median_wall(by_tool.get(REFERENCE_TOOL, []))
    notes = any(r.note for r in results)
    columns = (*COLUMNS, note_header) if notes else COLUMNS
    lines = [
        f"### {first.dataset} / {first.op}: {first.files:,} objects, {first.bytes / 1e6:,.1f} MB",
        "",
        _row(columns),
        _row(("---",) + ("---:",) * (len(COLUMNS) - 1) + (("---",) if notes else ())),
    ]
    for tool, runs in by_tool.items():
        cells = _cells(tool, runs, reference)
        if notes:
            cells += (_note(runs),)
        lines.append(_row(cells))
    failures = [f"- {r.tool} run {r.run}: {r.error}" for r in results if not r.ok]
    return "\n".join(lines + ([""] + failures if failures else []))


def _cells(tool: str, runs: list[RunResult], reference: float | None) -> tuple[str, ...]:
    good = [r for r in runs if r.ok]
    ok = "yes" if len(good) == len(runs) else ("no" if not good else f"{len(good)}/{len(runs)}")
    if not good:
        return (tool, str(len(runs)), *("-",) * (len(COLUMNS) - 4), ok, "-")
    walls = [r.wall_s for r in good]
    wall, cpu, first = median(walls), median(r.client_cpu_s for r in good), good[0]
    return (
        tool,
        str(len(runs)),
        f"{wall:.2f} [{min(walls):.2f}-{max(walls):.2f}]",
        num(first.files / wall),
        num(first.bytes / 1e6 / wall),
        f"{cpu:.2f}",
        num(cpu * 1000 / first.files),
        f"{max(r.max_rss_kib for r in good) / 1024:.0f}",
        f"{median(r.server_cpu_s for r in good):.2f}",
        ok,
        f"{wall / reference:.2f}" if reference else "-",
    )


def _note(runs: list[RunResult]) -> str:
    notes = list(dict.fromkeys(r.note for r in runs if r.note))
    return "; ".join(notes) if notes else "-"


def _median_wall(runs: list[RunResult]) -> float | None:
    walls = [r.wall_s for r in runs if r.ok]
    return median(walls) if walls else None


def num(value: float) -> str:
    """Three significant digits or so: 1,968 / 98.1 / 0.41."""
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def _row(cells: tuple[str, ...]) -> str:
    return "| " + " | ".join(cells) + " |"

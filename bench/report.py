"""Where the benchmarks stand: the latest recorded figure for each goal, judged against it.

Reads ``results.jsonl`` (one line a run, appended by each benchmark's ``--record``) and
prints one Markdown table: a line for each goal in ``goals.py`` with the latest run that
recorded its figure, the run's baseline in absolute terms, when it ran and how loaded the
machine was, and the verdict. ``--plot FILE.png`` draws every goal's figure over time
against its bound (needs the ``bench`` extra: matplotlib).

    python bench/report.py [--results bench/results.jsonl] [--plot FILE.png]
"""

from __future__ import annotations

import argparse
import datetime
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from goals import GOALS, Goal
from record import RESULTS, read

COLUMNS = ("goal", "measures", "bound", "latest", "baseline", "recorded", "verdict")
"""The table's columns."""


@dataclass(frozen=True)
class Line:
    """One line of the table: a goal and the latest run that recorded its figure (if any)."""

    goal: Goal
    run: dict[str, Any] | None

    @property
    def value(self) -> float | None:
        """The latest recorded figure, or None when no run recorded it."""
        return None if self.run is None else float(self.run["figures"][self.goal.figure])

    @property
    def verdict(self) -> str:
        """``meets``, ``misses`` or ``not recorded``."""
        if self.value is None:
            return "not recorded"
        return "meets" if self.goal.met(self.value) else "misses"

    def cells(self) -> tuple[str, ...]:
        """The line's cells, in the order of :data:`COLUMNS`."""
        if self.run is None:
            return (self.goal.label, self.goal.measures, str(self.goal), "", "", "", self.verdict)
        return (
            self.goal.label,
            self.goal.measures,
            str(self.goal),
            f"**{number(self.value or 0.0)}**",
            describe_baseline(self.run.get("baseline")),
            describe_run(self.run),
            self.verdict,
        )


def number(value: float) -> str:
    """A figure with as many decimals as its size deserves."""
    if value == int(value) or abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"


def describe_baseline(baseline: dict[str, Any] | None) -> str:
    """``raw Celery delay().get() p50 2.01 ms``, or a dash when a benchmark has no baseline."""
    if not baseline:
        return "–"
    return f"{baseline['what']} {number(float(baseline['value']))} {baseline['unit']}"


def describe_run(run: dict[str, Any]) -> str:
    """When a run was recorded, at which commit, and the machine's load (1-minute averages)."""
    when = run["date"][:16].replace("T", " ")
    if run.get("commit") is None:
        return f"{when}, {run.get('source', 'unknown source')}"
    commit = run["commit"][:7] + ("+" if run.get("dirty") else "")
    machine = run.get("machine") or {}
    start, end = machine.get("load average at start"), machine.get("load average at end")
    load = f", load {start[0]:g}→{end[0]:g} on {machine.get('cores')} cores" if start and end else ""
    return f"{when}, {commit}{load}"


def latest(runs: Sequence[dict[str, Any]], goal: Goal) -> dict[str, Any] | None:
    """The latest run of the goal's benchmark that recorded its figure (the later line on a tie)."""
    found = None
    for run in runs:
        if run["benchmark"] == goal.benchmark and goal.figure in run["figures"]:
            if found is None or when(run) >= when(found):
                found = run
    return found


def when(run: dict[str, Any]) -> datetime.datetime:
    """When a run was recorded (dates without a zone are UTC)."""
    date = datetime.datetime.fromisoformat(run["date"])
    return date if date.tzinfo else date.replace(tzinfo=datetime.UTC)


def lines(runs: Sequence[dict[str, Any]]) -> list[Line]:
    """The table's lines: one a goal, in the order of :data:`goals.GOALS`."""
    return [Line(goal, latest(runs, goal)) for goal in GOALS]


def table(found: Sequence[Line]) -> str:
    """The lines as a Markdown table."""
    rows = [COLUMNS, tuple("---" for _ in COLUMNS), *(line.cells() for line in found)]
    return "\n".join("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows)


def plot(runs: Sequence[dict[str, Any]], path: Path) -> None:
    """Draws each goal's figure over time against its bound into the PNG at ``path``.

    Lines read from the diary the README used to be are drawn hollow, recorded runs filled.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    columns = 3
    rows = -(-len(GOALS) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(5 * columns, 3.2 * rows), squeeze=False)
    for axis, goal in zip(axes.flat, GOALS, strict=False):
        points = sorted(
            (when(run), float(run["figures"][goal.figure]), run.get("commit") is not None)
            for run in runs
            if run["benchmark"] == goal.benchmark and goal.figure in run["figures"]
        )
        for recorded, style in ((False, {"facecolors": "none"}), (True, {})):
            chosen = [(x, y) for x, y, by_script in points if by_script == recorded]
            if chosen:
                xs, ys = zip(*chosen, strict=True)
                label = "recorded run" if recorded else "from the former diary"
                axis.scatter(xs, ys, s=18, edgecolors="tab:blue", label=label, **style)
        if points:
            axis.plot([x for x, _, _ in points], [y for _, y, _ in points], color="tab:blue", alpha=0.3)
        axis.axhline(goal.bound, color="tab:red", linestyle="--", label=f"goal {goal}")
        axis.set_title(f"{goal.label} (goal {goal})", fontsize=10)
        axis.set_ylabel(goal.figure, fontsize=8)
        axis.xaxis.set_major_formatter(mdates.DateFormatter("%d %b"))
        axis.tick_params(labelsize=8)
        axis.legend(fontsize=7, loc="best")
    for axis in list(axes.flat)[len(GOALS) :]:
        axis.set_visible(False)
    figure.suptitle("inferq benchmarks: each figure over time against its goal (bench/results.jsonl)")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--results", type=Path, default=RESULTS, help="the results file to read")
    parser.add_argument("--plot", type=Path, metavar="FILE.png", help="also draw the history into FILE.png")
    args = parser.parse_args(argv)
    runs = read(args.results)
    print(table(lines(runs)))
    if args.plot:
        plot(runs, args.plot)
        print(f"plotted {len(runs)} runs into {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

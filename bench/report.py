"""Where the benchmarks stand: each one's latest recorded run, judged against its goals.

Reads ``results.jsonl`` (one line a run, appended by each benchmark's ``--record``) and
prints one Markdown table: a line a benchmark with its latest run's figures against the goals
in ``goals.py``, the run's baseline in absolute terms, when it ran, at which commit, how loaded
the machine was, and the verdict. ``--plot FILE.png`` draws every goal's figure over time
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

from goals import BENCHMARKS, GOALS, SHOWN, Goal, goals_of
from record import RESULTS, read

COLUMNS = ("benchmark", "measures", "goal", "latest", "baseline", "recorded", "verdict")
"""The table's columns."""


@dataclass(frozen=True)
class Line:
    """One line of the table: a benchmark, its goals and its latest run (if any)."""

    benchmark: str
    run: dict[str, Any] | None

    @property
    def goals(self) -> tuple[Goal, ...]:
        """The benchmark's goals."""
        return goals_of(self.benchmark)

    def value(self, goal: Goal) -> float | None:
        """The latest run's figure for ``goal``, or None when it has none."""
        figures = {} if self.run is None else self.run["figures"]
        return float(figures[goal.figure]) if goal.figure in figures else None

    @property
    def verdict(self) -> str:
        """``meets`` when every goal is met; else which goals are missed, or not recorded; and
        whether other work shared the machine, which makes any figure doubtful."""
        if self.run is None:
            return "not recorded"
        return self.judgement() + (", on a loaded machine" if loaded(self.run) else "")

    def judgement(self) -> str:
        """The verdict on the figures alone."""
        if not self.goals:
            return "no goal"
        missed = [g for g in self.goals if (value := self.value(g)) is not None and not g.met(value)]
        unknown = [g for g in self.goals if self.value(g) is None]
        parts = []
        for word, found in (("misses", missed), ("not recorded", unknown)):
            if found:
                names = ", ".join(g.name for g in found if g.name)
                parts.append(f"{word} ({names})" if len(self.goals) > 1 else word)
        return "; ".join(parts) or "meets"

    def figures(self) -> str:
        """The latest run's bounded figures: ``p50 **1.35**, p99 **1.30**`` (those of :data:`goals.SHOWN`
        for a benchmark without a goal)."""
        if not self.goals:
            figures = {} if self.run is None else self.run["figures"]
            return ", ".join(
                f"{name} **{number(float(figures[name]))}**"
                for name in SHOWN.get(self.benchmark, ())
                if name in figures
            )
        shown = []
        for goal in self.goals:
            value = self.value(goal)
            shown.append(
                f"{goal.name} " * bool(goal.name) + ("–" if value is None else f"**{number(value)}**")
            )
        return ", ".join(shown)

    def cells(self) -> tuple[str, ...]:
        """The line's cells, in the order of :data:`COLUMNS`."""
        goals = ", ".join(str(g) for g in self.goals)
        if self.run is None:
            return (self.benchmark, BENCHMARKS[self.benchmark], goals, "", "", "", self.verdict)
        return (
            self.benchmark,
            BENCHMARKS[self.benchmark],
            goals,
            self.figures(),
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
    """``raw Celery delay().get() p50 2.01 ms``, or a dash when a run has no baseline."""
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


def loaded(run: dict[str, Any]) -> bool:
    """Whether a run shared the machine: a 1-minute load average above its cores at its start or end."""
    machine = run.get("machine") or {}
    loads = [machine.get(f"load average at {edge}") or [0.0] for edge in ("start", "end")]
    return bool(machine.get("cores")) and max(load[0] for load in loads) > machine["cores"]


def when(run: dict[str, Any]) -> datetime.datetime:
    """When a run was recorded (a date without a zone is UTC)."""
    date = datetime.datetime.fromisoformat(run["date"])
    return date if date.tzinfo else date.replace(tzinfo=datetime.UTC)


def latest(runs: Sequence[dict[str, Any]], benchmark: str) -> dict[str, Any] | None:
    """The latest run of ``benchmark`` (the later line on a tie)."""
    found = None
    for run in runs:
        if run["benchmark"] == benchmark and (found is None or when(run) >= when(found)):
            found = run
    return found


def lines(runs: Sequence[dict[str, Any]]) -> list[Line]:
    """The table's lines: one a benchmark, in the order of :data:`goals.BENCHMARKS`."""
    return [Line(benchmark, latest(runs, benchmark)) for benchmark in BENCHMARKS]


def table(found: Sequence[Line]) -> str:
    """The lines as a Markdown table."""
    rows = [COLUMNS, tuple("---" for _ in COLUMNS), *(line.cells() for line in found)]
    return "\n".join("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows)


KINDS = {
    "recorded": ("tab:blue", "run recorded by the benchmark (--record)"),
    "loaded": ("tab:orange", "recorded on a loaded machine (load average above the cores)"),
    "diary": ("none", "run taken from the former diary in bench/README.md"),
}
"""How the plot fills each kind of run's marker, and says what it is."""


def history(runs: Sequence[dict[str, Any]], goal: Goal) -> list[tuple[datetime.datetime, float, str]]:
    """``(when, figure, kind)`` of each run that recorded the goal's figure, by time (see :data:`KINDS`)."""
    return sorted(
        (
            when(run),
            float(run["figures"][goal.figure]),
            "diary" if run.get("commit") is None else "loaded" if loaded(run) else "recorded",
        )
        for run in runs
        if run["benchmark"] == goal.benchmark and goal.figure in run["figures"]
    )


def draw(axis: Any, goal: Goal, points: list[tuple[datetime.datetime, float, str]]) -> None:
    """One panel: the runs in time order (one step a run, the first of each day labelled), the goal."""
    xs = range(len(points))
    axis.plot(xs, [y for _, y, _ in points], color="tab:blue", alpha=0.3)
    for kind, (face, _) in KINDS.items():
        chosen = [(x, y) for x, (_, y, its_kind) in zip(xs, points, strict=True) if its_kind == kind]
        if chosen:
            axis.scatter(*zip(*chosen, strict=True), s=18, edgecolors="tab:blue", facecolors=face, zorder=3)
    axis.axhline(goal.bound, color="tab:red", linestyle="--")
    days = [x for x in xs if x == 0 or points[x][0].date() != points[x - 1][0].date()]
    labels = [points[x][0].strftime("%d %b") for x in days]
    for i in range(1, len(days), 2):  # every other day a line lower, so neighbouring days stay legible
        labels[i] = "\n" + labels[i]
    axis.set_xticks(days, labels, fontsize=7)
    for x in days[1:]:
        axis.axvline(x - 0.5, color="grey", linewidth=0.5, alpha=0.4)
    if goal.bound == 0 and all(y == 0 for _, y, _ in points):
        axis.set_ylim(-0.5, 1.5)  # a count that must stay zero, and did
    axis.set_title(f"{goal.benchmark}: {goal}", fontsize=10)
    axis.set_ylabel(goal.figure, fontsize=8)
    axis.tick_params(axis="y", labelsize=8)


def plot(runs: Sequence[dict[str, Any]], path: Path) -> None:
    """Draws each goal's figure run after run against its bound into the PNG at ``path``.

    Runs taken from the diary the README used to be are drawn hollow, recorded runs filled.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    columns = 3
    rows = -(-len(GOALS) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(5 * columns, 3.2 * rows + 0.6), squeeze=False)
    for axis, goal in zip(axes.flat, GOALS, strict=False):
        draw(axis, goal, history(runs, goal))
    for axis in list(axes.flat)[len(GOALS) :]:
        axis.set_visible(False)
    marker: dict[str, Any] = {"marker": "o", "linestyle": "none", "markeredgecolor": "tab:blue"}
    figure.legend(
        handles=[
            Line2D([], [], markerfacecolor=face, label=label, **marker) for face, label in KINDS.values()
        ]
        + [Line2D([], [], color="tab:red", linestyle="--", label="goal")],
        loc="upper center",
        ncols=2,
        bbox_to_anchor=(0.5, 0.965),
        fontsize=9,
    )
    figure.suptitle("inferq benchmarks: each goal's figure, run after run, from bench/results.jsonl", y=0.995)
    figure.tight_layout(rect=(0, 0, 1, 0.94))
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

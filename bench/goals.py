"""Every benchmark's goals, in one place: the scripts print verdicts with them, the report
judges recorded runs and plots the history against them.

A goal bounds one figure of a benchmark's recorded run (``results.jsonl``'s ``figures``).
A benchmark may have several goals (overhead at p50 and at p99; cancel latency for each kind
of prediction); each is a line of the report's table and a panel of its plot.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Goal:
    """An upper or lower bound on one recorded figure of one benchmark."""

    benchmark: str
    """The benchmark's name: its script's name without ``.py``."""
    figure: str
    """The key of the bounded figure in a recorded run's ``figures``."""
    label: str
    """The goal's line in the report's table."""
    measures: str
    """What the figure measures, in a few words."""
    bound: float
    """The figure's limit."""
    at_most: bool
    """True when the figure must be at most ``bound``, False when at least."""

    def met(self, value: float) -> bool:
        """Whether ``value`` meets the goal."""
        return value <= self.bound if self.at_most else value >= self.bound

    def __str__(self) -> str:
        return f"{'<=' if self.at_most else '>='} {self.bound:g}"


GOALS = (
    Goal(
        "overhead",
        "p50 ratio",
        "overhead, p50",
        "sync echo over HTTP ÷ raw Celery `delay().get()`",
        1.5,
        True,
    ),
    Goal("overhead", "p99 ratio", "overhead, p99", "the same at p99", 1.5, True),
    Goal(
        "throughput",
        "ratio",
        "throughput",
        "async echo creates completed per second ÷ a raw Celery burst, same worker count",
        0.7,
        False,
    ),
    Goal(
        "cancel_latency", "queued p99 ms", "cancel, queued", "cancel → `cancelled`, queued, p99 ms", 20, True
    ),
    Goal(
        "cancel_latency",
        "cooperative p99 ms",
        "cancel, running cooperative",
        "cancel → `cancelled`, running and cooperative, p99 ms",
        100,
        True,
    ),
    Goal(
        "cancel_latency",
        "deaf p99 beyond grace ms",
        "cancel, running deaf",
        "cancel → `cancelled`, running and deaf, p99 ms beyond the grace",
        1000,
        True,
    ),
    Goal(
        "held_waits",
        "extra Redis connections",
        "held waits, connections",
        "Redis connections added by 500 `Prefer: wait` creates held by one API process",
        50,
        True,
    ),
    Goal("held_waits", "incorrect answers", "held waits, answers", "held waits answered wrongly", 0, True),
    Goal("scaling", "4 / 1", "scaling", "a 100 ms model's throughput, 4 worker processes ÷ 1", 3.6, False),
    Goal(
        "embeddings",
        "ratio",
        "embeddings",
        "MiniLM served to 32 clients ÷ raw `encode(batch_size=32)`, sentences per second",
        0.8,
        False,
    ),
    Goal(
        "soak",
        "lost or duplicated",
        "soak",
        "predictions lost, ended or completed twice, or answered unexpectedly while workers are SIGKILLed",
        0,
        True,
    ),
)
"""Every goal, in the order of the report's table."""


def goal(benchmark: str, figure: str) -> Goal:
    """The goal on ``figure`` of ``benchmark``.

    Raises:
        KeyError: When there is none.
    """
    for candidate in GOALS:
        if (candidate.benchmark, candidate.figure) == (benchmark, figure):
            return candidate
    raise KeyError(f"no goal on {figure!r} of {benchmark!r}")

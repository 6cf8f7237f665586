"""Every benchmark's goals, in one place: the scripts print verdicts with them, the report
judges recorded runs and plots the history against them.

A goal bounds one figure of a benchmark's recorded run (``results.jsonl``'s ``figures``).
A benchmark may have several goals (overhead at p50 and at p99; cancel latency for each kind
of prediction): the report judges them together on the benchmark's line and plots each.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Goal:
    """An upper or lower bound on one recorded figure of one benchmark."""

    benchmark: str
    """The benchmark's name: its script's name without ``.py``, then the measurement's when one
    script makes several (``fairness flood``)."""
    figure: str
    """The key of the bounded figure in a recorded run's ``figures``."""
    name: str
    """The goal's short name among its benchmark's goals (empty when it is the only one)."""
    bound: float
    """The figure's limit."""
    at_most: bool
    """True when the figure must be at most ``bound``, False when at least."""

    def met(self, value: float) -> bool:
        """Whether ``value`` meets the goal."""
        return value <= self.bound if self.at_most else value >= self.bound

    def __str__(self) -> str:
        return f"{self.name + ' ' if self.name else ''}{'<=' if self.at_most else '>='} {self.bound:g}"


BENCHMARKS = {
    "overhead": "a sync echo over HTTP ÷ a raw Celery `delay().get()`",
    "throughput": "async echo creates completed per second ÷ a raw Celery burst, same worker count",
    "cancel_latency": (
        "cancel → `cancelled` at p99, ms, of queued, running cooperative and running deaf predictions"
        " (deaf: beyond the grace)"
    ),
    "held_waits": (
        "500 `Prefer: wait` creates held by one API process: the Redis connections it adds, wrong answers"
    ),
    "scaling": "a 100 ms model's throughput with 4 worker processes ÷ with 1",
    "embeddings": "MiniLM served to 32 clients ÷ raw `encode(batch_size=32)`, sentences per second",
    "soak": "predictions lost or duplicated (or answered unexpectedly) while workers are SIGKILLed",
    "fairness flood": (
        "a 50 ms model's `Prefer: wait` latency for one key while another has 2,000 queued ÷ idle"
    ),
    "fairness shares": (
        "two keys with 1,000 queued each: worst gap between their completed counts and their weights"
    ),
    "images": "`inferq/sketch` edit latency ÷ generation latency, same size (1024x1024), p50",
    "embeddings pinned": (
        "MiniLM served to 32 clients ÷ raw `encode(batch_size=32)`, the worker and the raw model"
        " pinned to core 1, clients, API and Redis to core 0"
    ),
    "batch minilm": (
        "a 5,000-line MiniLM `/v1/embeddings` batch's lines per second ÷ raw `encode(batch_size=32)`;"
        " sync echo p50 while it runs ÷ idle"
    ),
    "batch hash-embed": (
        "a 20,000-line `inferq/hash-embed` batch's lines per second ÷ the same lines as HTTP requests"
        " from 32 clients"
    ),
    "failover ack 1": (
        "the Redis primary SIGKILLed under async creates, `INFERQ_REDIS_REPLICAS_ACK=1`:"
        " accepted predictions lost, run twice"
    ),
    "failover ack 0": (
        "the same failover with `INFERQ_REDIS_REPLICAS_ACK=0`: accepted predictions lost, run twice"
        " (no goal: what a failover costs without acknowledgements)"
    ),
    "failover ack 1 paused": (
        "the primary frozen (`SIGSTOP`) until the Sentinels replace it, then woken, ack 1:"
        " accepted predictions lost, run twice"
    ),
    "failover ack 0 paused": "the same with `INFERQ_REDIS_REPLICAS_ACK=0` (no goal)",
}
"""What each benchmark measures, in the order of the report's table."""

GOALS = (
    Goal("overhead", "p50 ratio", "p50", 1.5, True),
    Goal("overhead", "p99 ratio", "p99", 1.5, True),
    Goal("throughput", "ratio", "", 0.7, False),
    Goal("cancel_latency", "queued p99 ms", "queued", 20, True),
    Goal("cancel_latency", "cooperative p99 ms", "cooperative", 100, True),
    Goal("cancel_latency", "deaf p99 beyond grace ms", "deaf", 1000, True),
    Goal("held_waits", "extra Redis connections", "connections", 50, True),
    Goal("held_waits", "incorrect answers", "wrong", 0, True),
    Goal("scaling", "4 / 1", "", 3.6, False),
    Goal("embeddings", "ratio", "", 0.8, False),
    Goal("soak", "lost or duplicated", "", 0, True),
    Goal("fairness flood", "ratio", "", 3, True),
    Goal("fairness shares", "1:1 worst gap", "1:1", 0.1, True),
    Goal("fairness shares", "3:1 worst gap", "3:1", 0.1, True),
    Goal("images", "ratio", "", 1.3, True),
    Goal("embeddings pinned", "ratio", "", 0.9, False),
    Goal("batch minilm", "lines ratio", "lines", 0.9, False),
    Goal("batch minilm", "echo p50 ratio", "echo", 1.5, True),
    Goal("batch hash-embed", "ratio", "", 5, False),
    Goal("failover ack 1", "lost", "lost", 0, True),
    Goal("failover ack 1", "run twice", "run twice", 0, True),
    Goal("failover ack 1 paused", "lost", "lost", 0, True),
    Goal("failover ack 1 paused", "run twice", "run twice", 0, True),
)
"""Every goal: the report's table has a line a benchmark, its plot a panel a goal."""

SHOWN = {
    "failover ack 0": ("lost", "run twice"),
    "failover ack 0 paused": ("lost", "run twice"),
}
"""The figures the report shows of a benchmark recorded without a goal: what it measures, not a promise."""


def goal(benchmark: str, figure: str) -> Goal:
    """The goal on ``figure`` of ``benchmark``.

    Raises:
        KeyError: When there is none.
    """
    for candidate in GOALS:
        if (candidate.benchmark, candidate.figure) == (benchmark, figure):
            return candidate
    raise KeyError(f"no goal on {figure!r} of {benchmark!r}")


def goals_of(benchmark: str) -> tuple[Goal, ...]:
    """The goals of ``benchmark``, in order."""
    return tuple(candidate for candidate in GOALS if candidate.benchmark == benchmark)

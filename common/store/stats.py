"""Cluster-wide prediction statistics kept in Redis by the store's scripts, read for ``/metrics``.

The terminal write of every prediction counts it by model and status, and
adds how long it waited for a worker and ran on one to two histograms, in
the same atomic step. So any API process reports the whole cluster, and no
worker needs scraping.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import cast

import redis

from common.store import keys

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0)
"""Upper bounds (seconds) of the wait and run histograms; ``+Inf`` follows."""


@dataclass
class Histogram:
    """One model's histogram: cumulative counts per upper bound (``+Inf`` last), and the sum."""

    buckets: list[tuple[str, int]] = field(default_factory=list)
    total: float = 0.0


def finished(client: redis.Redis) -> dict[tuple[str, str], int]:
    """``(model, status)`` to how many predictions ended so."""
    raw = cast(dict[str, str], client.hgetall(keys.finished_counts()))
    return {tuple(k.rsplit(" ", 1)): int(v) for k, v in raw.items()}  # type: ignore[misc]


def batch_lines(client: redis.Redis) -> dict[str, int]:
    """``completed`` and ``failed`` to how many batch lines ended so."""
    raw = cast(dict[str, str], client.hgetall(keys.batch_line_counts()))
    return {status: int(count) for status, count in raw.items()}


def histograms(client: redis.Redis, name: str) -> dict[str, Histogram]:
    """Each model's ``wait`` or ``run`` histogram."""
    raw = cast(dict[str, str], client.hgetall(keys.duration_histogram(name)))
    per_model: dict[str, dict[str, str]] = defaultdict(dict)
    for field_name, value in raw.items():
        model, _, part = field_name.rpartition(" ")
        per_model[model][part] = value
    found = {}
    bounds = [*(repr(float(b)) for b in BUCKETS), "+Inf"]
    for model, parts in per_model.items():
        histogram, running = Histogram(total=float(parts.get("sum", 0))), 0
        for bound in bounds:
            running += int(parts.get(_lua_bound(bound), 0))
            histogram.buckets.append((bound, running))
        found[model] = histogram
    return found


def _lua_bound(bound: str) -> str:
    """How the scripts wrote a bound: Lua's ``tostring`` (``0.005``, ``1``, ``+Inf``)."""
    if bound == "+Inf":
        return bound
    value = float(bound)
    return str(int(value)) if value.is_integer() else repr(value)

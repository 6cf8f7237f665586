"""Throughput: async ``inferq/echo`` creates completed per second versus a raw Celery burst.

Both sides run in this one process, alternating in rounds, on the same private
Redis with the same number of worker processes: one inferq worker
(``--concurrency W``) on ``inferq.echo`` and one raw Celery worker (``-c W``),
both prefork with prefetch 1 and late acks. The API is one gunicorn process
(``--api-workers``; two, ``inferq api``'s default, measured the same here: the
run is CPU-bound, and each API process hears every prediction's news).

- inferq: ``N`` predictions of ``inferq/echo`` created without ``Prefer: wait``
  by ``--clients`` threads, each on its own kept-alive ``http.client``
  connection. A prediction counts as completed when its terminal status is
  published on the updates channel (one subscription, no polling); the rate is
  ``N`` over the time from the first create sent to the last terminal status seen.
- raw Celery: ``N`` × ``noop.delay()`` from one thread, then all ``N`` results
  joined (``ResultSet.get``, the Redis backend's native join); the rate is ``N``
  over the time from the first ``delay()`` to the last result published by
  Celery's Redis result backend (also seen by a subscription: the join itself
  polls in 0.5 s steps, which would understate raw Celery).

Goal: inferq / raw >= 0.7 (the medians over the rounds).

To explain the figure, each side's CPU time per prediction is reported too, by
process (from ``/proc``; Redis's from ``INFO cpu``): on a small machine the
API, the workers, Redis and this client share the same cores, so throughput
follows the CPU each side spends per prediction.

    python bench/throughput.py [--predictions 1000] [--rounds 3] [--workers 2] [--clients 4] [--api-workers 2]
        [--raw-transport stock|inferq] [--record]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from collections import Counter

import redis
from client import creates
from goals import goal
from harness import Stack, add_raw_transport_option, free_port, raw_transport_env, stack
from procfs import cpu_seconds
from record import Run, add_record_option, baseline
from updates import Updates

GOAL = goal("throughput", "ratio").bound
"""The smallest acceptable ratio of inferq's throughput to raw Celery's."""


def inferq_rate(port: int, updates: Updates, count: int, clients: int) -> tuple[float, float, Counter[str]]:
    """Creates ``count`` echo predictions from ``clients`` threads.

    Returns:
        Completed per second, created per second, and how many ended in each status.

    Raises:
        RuntimeError: When a create is refused or the predictions do not all end within a minute.
    """
    started = time.perf_counter()
    answers, errors = creates(
        port, count, clients, lambda api: api.create("inferq/echo", {"prompt": "hello"})
    )
    ids = [answer["id"] for answer in answers]
    created = time.perf_counter()
    if errors:
        raise RuntimeError(f"creates failed: {errors[:3]}")
    if not updates.wait_for(ids, timeout=60 + count / 20):
        missing = [p for p in ids if updates.status(p) is None]
        raise RuntimeError(f"{len(missing)} predictions never ended, e.g. {missing[:3]}")
    statuses = Counter(updates.status(p) or "" for p in ids)
    ended = max(updates.seen[p][updates.status(p) or ""] for p in ids)
    return count / (ended - started), count / (created - started), statuses


class RawResults:
    """Times raw Celery's results as its Redis backend publishes them (on ``celery-task-meta-<id>``).

    The same event-driven detection as inferq's side, so neither side's figure
    includes a client's polling interval (``ResultSet.get`` joins in 0.5 s steps).
    """

    def __init__(self, redis_url: str) -> None:
        self._pubsub = redis.Redis.from_url(redis_url).pubsub(ignore_subscribe_messages=True)
        self._pubsub.psubscribe("celery-task-meta-*")
        self._pubsub.get_message(ignore_subscribe_messages=False, timeout=5)
        self.last = 0.0
        """When the latest result arrived (``perf_counter``)."""
        self._thread = threading.Thread(target=self._listen, daemon=True)
        self._stopping = threading.Event()
        self._thread.start()

    def _listen(self) -> None:
        while not self._stopping.is_set():
            if self._pubsub.get_message(timeout=0.2) is not None:
                self.last = time.perf_counter()

    def rate(self, count: int) -> float:
        """``count`` × ``noop.delay()``, then every result joined; returns tasks per second."""
        from celery.result import ResultSet
        from raw_celery import noop

        started = time.perf_counter()
        results = [noop.delay() for _ in range(count)]
        ResultSet(results).get(timeout=60 + count / 20)
        return count / (self.last - started)

    def close(self) -> None:
        """Stops listening."""
        self._stopping.set()
        self._thread.join(5)
        self._pubsub.close()


def cpu(s: Stack, admin: redis.Redis, processes: dict[str, str]) -> dict[str, float]:
    """CPU seconds used so far by launched processes (with their children), this one and Redis."""
    found = {label: cpu_seconds(s.launcher.processes[name].pid) for label, name in processes.items()}
    found["benchmark client"] = sum(os.times()[:2])
    info = admin.info("cpu")
    found["Redis"] = float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
    return found


def spent(before: dict[str, float], after: dict[str, float], into: dict[str, float]) -> None:
    """Adds the CPU seconds spent between two :func:`cpu` readings to ``into``."""
    for name, seconds in after.items():
        into[name] = into.get(name, 0.0) + seconds - before[name]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--predictions", type=int, default=1000, help="predictions (tasks) per round and side"
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="worker processes on each side")
    parser.add_argument("--clients", type=int, default=4, help="threads creating inferq predictions")
    parser.add_argument("--api-workers", type=int, default=1, help="API processes")
    add_raw_transport_option(parser)
    add_record_option(parser)
    args = parser.parse_args()
    recording = Run(
        "throughput" if args.raw_transport == "stock" else "throughput, raw on inferq transport", args
    )
    with stack(raw_transport_env(args.raw_transport)) as s:
        s.launcher.start(
            "raw-celery",
            [sys.executable, "-m", "celery", "-A", "raw_celery", "worker", "-c", str(args.workers),
             "-P", "prefork", "-O", "fair", "--without-gossip", "--without-mingle", "-l", "WARNING"],
        )  # fmt: skip
        port = free_port()
        s.launcher.start_api("127.0.0.1", port, workers=args.api_workers)
        worker = s.launcher.start_worker(["inferq.echo"], concurrency=args.workers)
        os.environ["INFERQ_REDIS_URL"] = s.env["INFERQ_REDIS_URL"]
        updates = Updates(s.redis.url)
        admin = redis.Redis.from_url(s.redis.url)
        raw_side, served_side = {"workers": "raw-celery"}, {"API": "api", "workers": worker}
        results = RawResults(s.redis.url)
        raw_rates: list[float] = []
        served: list[tuple[float, float]] = []
        outcomes: Counter[str] = Counter()
        raw_cpu: dict[str, float] = {}
        served_cpu: dict[str, float] = {}
        try:
            inferq_rate(port, updates, 100, args.clients)  # warm both paths (and the raw worker's start)
            results.rate(100)
            for _ in range(args.rounds):
                before = cpu(s, admin, raw_side)
                raw_rates.append(results.rate(args.predictions))
                spent(before, cpu(s, admin, raw_side), raw_cpu)
                updates.reset()
                before = cpu(s, admin, served_side)
                rate, create_rate, statuses = inferq_rate(port, updates, args.predictions, args.clients)
                spent(before, cpu(s, admin, served_side), served_cpu)
                served.append((rate, create_rate))
                outcomes += statuses
        finally:
            updates.close()
            results.close()
            admin.close()
    raw_median = statistics.median(raw_rates)
    served_median = statistics.median(rate for rate, _ in served)
    ratio = served_median / raw_median

    def rounds(rates: list[float]) -> str:
        return ", ".join(f"{rate:.0f}" for rate in rates)

    def per_prediction(used: dict[str, float]) -> str:
        total = args.predictions * args.rounds
        parts = [f"{name} {seconds / total * 1000:.2f}" for name, seconds in used.items()]
        return f"{sum(used.values()) / total * 1000:.2f} ms ({', '.join(parts)})"

    print(
        f"raw Celery burst ({args.workers} processes): {raw_median:.1f} tasks/s (rounds: {rounds(raw_rates)})"
    )
    print(
        f"inferq async creates ({args.clients} clients): {served_median:.1f} predictions/s "
        f"(rounds: {rounds([r for r, _ in served])}; creates alone: {rounds([c for _, c in served])}/s; "
        f"statuses: {dict(outcomes)})"
    )
    print(f"CPU per task, raw Celery:    {per_prediction(raw_cpu)}")
    print(f"CPU per prediction, inferq:  {per_prediction(served_cpu)}")
    verdict = "meets" if ratio >= GOAL else "misses"
    print(
        f"throughput: inferq/raw Celery ({args.raw_transport} transport) {ratio:.2f} "
        f"with {args.workers} worker processes each, "
        f"{args.predictions} per round ({verdict} the goal of >= {GOAL})"
    )
    total = args.predictions * args.rounds
    recording.finish(
        {
            "ratio": ratio,
            "inferq per second": served_median,
            "inferq CPU per prediction ms": sum(served_cpu.values()) / total * 1000,
            "raw CPU per task ms": sum(raw_cpu.values()) / total * 1000,
        },
        baseline(f"raw Celery burst, {args.workers} processes", raw_median, "tasks/s"),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

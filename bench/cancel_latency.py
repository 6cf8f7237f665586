"""Cancel latency: from sending ``POST /v1/predictions/<id>/cancel`` to ``cancelled`` being published.

Three kinds of prediction, one at a time (so each sample is a cancel on its own):

- queued: ``bench/idle``, echo on a queue no worker consumes; the cancel ends
  it at once, inside the cancel request. Goal: p99 <= 20 ms.
- running, cooperative: ``inferq/echo`` with ``delay_s: 60``, cancelled once
  its ``started`` status is seen; the worker's supervisor sets
  ``ctx.cancelled`` and the adapter stops. Goal: p99 <= 100 ms.
- running, deaf: ``bench/deaf`` (``tests/fixtures/adapters/deaf.py``, which
  never looks at its context) with ``INFERQ_CANCEL_GRACE`` seconds of grace;
  it is recorded ``cancelled`` and its pool process killed after the grace.
  Goal: p99 <= grace + 1 s.

Latency ends when this process's subscriber to the updates channel receives
``<id> cancelled``. For scale, the same run times a ``GET /v1/predictions/<id>``
round trip (the baseline: the cheapest request of the API, on the same connection).

    python bench/cancel_latency.py [--queued 100] [--running 50] [--deaf 10] [--grace 1] [--record]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

from client import Client
from goals import goal
from harness import describe, free_port, percentile, stack
from record import Run, add_record_option, baseline
from updates import Updates

MODELS = {
    "models": [
        {"owner": "inferq", "name": "echo", "versions": [{"number": 1, "adapter": "echo"}]},
        {
            "owner": "bench",
            "name": "idle",
            "versions": [{"number": 1, "adapter": "echo", "queue": "bench.idle"}],
        },
        {
            "owner": "bench",
            "name": "deaf",
            "versions": [
                {"number": 1, "adapter": "tests.fixtures.adapters.deaf:Deaf", "queue": "bench.deaf"}
            ],
        },
    ]
}
"""The models file of this benchmark (JSON is YAML): echo, echo nobody serves, and a deaf adapter."""


class Bench:
    """One API connection and the updates subscriber, timing cancels.

    Args:
        api: The client to create and cancel with.
        updates: The subscriber to the updates channel.
    """

    def __init__(self, api: Client, updates: Updates) -> None:
        self.api = api
        self.updates = updates

    def create(self, model: str, input: dict[str, object]) -> str:
        """Creates a prediction without waiting; returns its id."""
        code, payload = self.api.create(model, input)
        if code != 201:
            raise RuntimeError(f"create answered {code}: {payload}")
        return str(payload["id"])

    def cancel(self, prediction_id: str, timeout: float) -> float:
        """Cancels and returns the seconds until ``cancelled`` was seen.

        Raises:
            RuntimeError: When the cancel is refused or the prediction ends otherwise (or not in ``timeout``).
        """
        sent = time.perf_counter()
        code = self.api.cancel(prediction_id)
        if code != 200:
            raise RuntimeError(f"cancel of {prediction_id} answered {code}")
        if not self.updates.wait_for([prediction_id], timeout=timeout):
            raise RuntimeError(f"{prediction_id} did not end within {timeout:g} s of its cancel")
        status = self.updates.status(prediction_id)
        if status != "cancelled":
            raise RuntimeError(f"{prediction_id} ended {status}, not cancelled")
        return (self.updates.when(prediction_id, "cancelled") or sent) - sent

    def queued(self) -> float:
        """One queued prediction cancelled."""
        return self.cancel(self.create("bench/idle", {"prompt": "never runs"}), timeout=10)

    def running(self, model: str, input: dict[str, object], timeout: float) -> Callable[[], float]:
        """A sampler: one prediction of ``model`` cancelled as soon as it is seen ``started``."""

        def sample() -> float:
            prediction_id = self.create(model, input)
            if not self.updates.wait_for([prediction_id], {"started"}, timeout=60):
                raise RuntimeError(f"{prediction_id} did not start within 60 s")
            return self.cancel(prediction_id, timeout)

        return sample

    def baseline(self, prediction_id: str) -> float:
        """One ``GET /v1/predictions/<id>`` round trip."""
        started = time.perf_counter()
        code, _ = self.api.request("GET", f"/v1/predictions/{prediction_id}")
        if code != 200:
            raise RuntimeError(f"GET answered {code}")
        return time.perf_counter() - started


def goal_seconds(figure: str) -> float:
    """The bound of this benchmark's goal on ``figure`` (in milliseconds), in seconds."""
    return goal("cancel_latency", figure).bound / 1000


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--queued", type=int, default=100, help="samples of queued predictions")
    parser.add_argument("--running", type=int, default=50, help="samples of running cooperative ones")
    parser.add_argument("--deaf", type=int, default=10, help="samples of running deaf ones")
    parser.add_argument("--grace", type=float, default=1.0, help="INFERQ_CANCEL_GRACE, seconds")
    add_record_option(parser)
    args = parser.parse_args()
    recording = Run("cancel_latency", args)
    with stack({"INFERQ_CANCEL_GRACE": f"{args.grace:g}"}) as s:
        models = Path(s.workdir) / "models.yaml"
        models.write_text(json.dumps(MODELS, indent=1))
        s.env["INFERQ_MODELS"] = str(models)
        port = free_port()
        s.launcher.start_api("127.0.0.1", port, workers=1)
        s.launcher.start_worker(["inferq.echo"], concurrency=1)
        s.launcher.start_worker(["bench.deaf"], concurrency=1)
        updates = Updates(s.redis.url)
        bench = Bench(Client(port), updates)
        try:
            cooperative = bench.running("inferq/echo", {"prompt": "slow", "delay_s": 60}, timeout=10)
            deaf = bench.running("bench/deaf", {"seconds": 60}, timeout=args.grace + 30)
            for _ in range(5):  # warm the paths
                bench.queued()
                cooperative()
            reference = bench.create("bench/idle", {"prompt": "looked at"})
            kinds: dict[str, tuple[Callable[[], float], int, float]] = {
                "queued": (bench.queued, args.queued, goal_seconds("queued p99 ms")),
                "running, cooperative": (cooperative, args.running, goal_seconds("cooperative p99 ms")),
                "running, deaf": (deaf, args.deaf, args.grace + goal_seconds("deaf p99 beyond grace ms")),
            }
            baseline_samples: list[float] = []
            results: dict[str, list[float]] = {}
            for label, (sample, count, _) in kinds.items():
                results[label] = []
                for _ in range(count):
                    results[label].append(sample())
                    baseline_samples.append(bench.baseline(reference))
        finally:
            bench.api.close()
            updates.close()
    print(f"{'baseline: GET prediction':26} {describe(baseline_samples)}")
    verdicts = []
    for label, (_, _, bound) in kinds.items():
        samples = results[label]
        p50, p99 = percentile(samples, 0.5), percentile(samples, 0.99)
        met = "meets" if p99 <= bound else "misses"
        print(
            f"{label:26} {describe(samples)}; p99 {p99 / bound:.2f} × the goal of {bound * 1000:g} ms: {met}"
        )
        verdicts.append(f"{label} p50 {p50 * 1000:.1f}/p99 {p99 * 1000:.1f} ms ({met})")
    print(f"cancel latency (grace {args.grace:g} s): " + "; ".join(verdicts))
    figures = {}
    for label, name in (
        ("queued", "queued"),
        ("running, cooperative", "cooperative"),
        ("running, deaf", "deaf"),
    ):
        figures[f"{name} p50 ms"] = percentile(results[label], 0.5) * 1000
        figures[f"{name} p99 ms"] = percentile(results[label], 0.99) * 1000
    figures["deaf p99 beyond grace ms"] = figures["deaf p99 ms"] - args.grace * 1000
    recording.finish(
        figures, baseline("GET /v1/predictions/<id> p50", percentile(baseline_samples, 0.5) * 1000, "ms")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

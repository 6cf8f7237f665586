"""Overhead: a sync ``inferq/echo`` prediction over HTTP versus a raw Celery ``delay().get()``.

Both run in this one process, interleaved in rounds on the same private Redis,
each with one prefork worker process. The headline ratio uses a lean HTTP
client (the standard library's keep-alive ``http.client``), so it measures what
inferq adds; a second ratio shows the same calls through the official
``wriftai`` client, whose own per-call cost (httpx) is reported with it.
Goal: inferq / raw <= 1.5 at p50 and p99.

    python bench/overhead.py [--requests 300] [--rounds 5] [--replicas-ack 1] [--record]
"""

from __future__ import annotations

import argparse
import http.client
import importlib
import json
import os
import sys
import time
from collections.abc import Callable

import wriftai
from goals import goal
from harness import (
    API_KEY,
    add_raw_transport_option,
    add_replicas_ack_option,
    describe,
    free_port,
    percentile,
    raw_transport_env,
    replicas_ack_env,
    stack,
)
from record import Run, add_record_option, baseline

RAW, LEAN, OFFICIAL = "raw Celery delay().get()", "inferq, http.client", "inferq, wriftai client"
"""The three sides, each timed on the same stack: the baseline, inferq lean, inferq via wriftai."""

GOAL = goal("overhead", "p50 ratio").bound
"""The largest acceptable ratio of inferq's latency to raw Celery's (at p50 and p99)."""


def lean_client(port: int) -> Callable[[], None]:
    """One sync echo prediction per call, over a kept-alive ``http.client`` connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port)
    body = json.dumps({"model": "inferq/echo", "input": {"prompt": "hello"}, "stream": False})
    headers = {"Authorization": f"Bearer {API_KEY}", "Prefer": "wait", "Content-Type": "application/json"}

    def once() -> None:
        connection.request("POST", "/v1/predictions", body=body, headers=headers)
        response = connection.getresponse()
        payload = json.loads(response.read())
        assert response.status == 201 and payload["status"] == "succeeded", payload

    return once


def wriftai_client(base: str) -> Callable[[], None]:
    """One sync echo prediction per call, through the official client."""
    client = wriftai.Client(access_token=API_KEY, api_base_url=f"{base}/v1")

    def once() -> None:
        prediction = client.predictions.create(model="inferq/echo", input={"prompt": "hello"}, wait=True)
        assert prediction["status"] == "succeeded", prediction

    return once


def ratios(served: list[float], raw: list[float]) -> tuple[float, float]:
    """``(p50 ratio, p99 ratio)`` of ``served`` over ``raw``."""
    return (
        percentile(served, 0.5) / percentile(raw, 0.5),
        percentile(served, 0.99) / percentile(raw, 0.99),
    )


def measure(
    requests: int, rounds: int, raw_transport: str = "stock", replicas_ack: int = 0
) -> dict[str, list[float]]:
    """Latency samples (s) of each side, interleaved in ``rounds`` of ``requests`` calls a side, on a
    stack of its own (with one replica when ``replicas_ack``)."""
    with stack({**raw_transport_env(raw_transport), **replicas_ack_env(replicas_ack)}) as s:
        s.launcher.start(
            "raw-celery",
            [sys.executable, "-m", "celery", "-A", "raw_celery", "worker", "-c", "1", "-P", "prefork",
             "-O", "fair", "--without-gossip", "--without-mingle", "-l", "WARNING"],
        )  # fmt: skip
        port = free_port()
        base = s.launcher.start_api("127.0.0.1", port)
        s.launcher.start_worker(["inferq.echo"])
        os.environ["INFERQ_REDIS_URL"] = s.env["INFERQ_REDIS_URL"]
        import raw_celery

        # Built from INFERQ_REDIS_URL at import: again for this stack (a second measure has another).
        noop = importlib.reload(raw_celery).noop

        def raw_once() -> None:
            noop.delay().get(timeout=60)

        sides: dict[str, tuple[Callable[[], None], list[float]]] = {
            RAW: (raw_once, []),
            LEAN: (lean_client(port), []),
            OFFICIAL: (wriftai_client(base), []),
        }
        for once, _ in sides.values():  # warm every path
            for _ in range(30):
                once()
        for _ in range(rounds):
            for once, samples in sides.values():
                for _ in range(requests):
                    started = time.perf_counter()
                    once()
                    samples.append(time.perf_counter() - started)
    return {label: samples for label, (_, samples) in sides.items()}


def ack_cost(requests: int, rounds: int) -> dict[str, float]:
    """What ``INFERQ_REDIS_REPLICAS_ACK=1`` costs a sync echo prediction (for ``bench/failover.py``):
    :func:`measure` on a plain Redis, then on one with a replica and ack 1, each against raw Celery
    on its own stack; prints and returns the p50s and ratios."""
    p50s = {}
    for ack in (0, 1):
        sides = measure(requests, rounds, replicas_ack=ack)
        p50s[ack] = (percentile(sides[LEAN], 0.5) * 1000, percentile(sides[RAW], 0.5) * 1000)
    (plain, plain_raw), (acked, acked_raw) = p50s[0], p50s[1]
    figures = {
        "overhead p50 ratio, ack 0": plain / plain_raw,
        "overhead p50 ratio, ack 1": acked / acked_raw,
        "ack 1 p50 ms": acked,
        "ack 0 p50 ms": plain,
        "ack 1 ÷ ack 0 p50": acked / plain,
    }
    print(
        f"replica acknowledgements: sync echo p50 {acked:.2f} ms with ack 1 against {plain:.2f} ms "
        f"with ack 0 ({acked / plain:.2f}x); overhead ratio over raw Celery p50 "
        f"{acked / acked_raw:.2f} with ack 1, {plain / plain_raw:.2f} with 0"
    )
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=300, help="requests per round and side")
    parser.add_argument("--rounds", type=int, default=5)
    add_raw_transport_option(parser)
    add_replicas_ack_option(parser)
    add_record_option(parser)
    args = parser.parse_args()
    name = "overhead" if args.raw_transport == "stock" else "overhead, raw on inferq transport"
    recording = Run(name + (f", replicas ack {args.replicas_ack}" if args.replicas_ack else ""), args)
    sides = measure(args.requests, args.rounds, args.raw_transport, args.replicas_ack)
    raw = sides[RAW]
    for label, samples in sides.items():
        print(f"{label:26} {describe(samples)}")
    lean = ratios(sides[LEAN], raw)
    official = ratios(sides[OFFICIAL], raw)
    print(f"ratio (http.client) p50 {lean[0]:.2f}, p99 {lean[1]:.2f}")
    print(f"ratio (wriftai)     p50 {official[0]:.2f}, p99 {official[1]:.2f}")
    verdict = "meets" if max(lean) <= GOAL else "misses"
    print(
        f"overhead: inferq/raw Celery ({args.raw_transport} transport) "
        f"p50 {lean[0]:.2f}x, p99 {lean[1]:.2f}x over HTTP "
        f"({verdict} the goal of <= {GOAL}); {official[0]:.2f}x/{official[1]:.2f}x via the wriftai client"
    )
    lean_samples = sides[LEAN]
    recording.finish(
        {
            "p50 ratio": lean[0],
            "p99 ratio": lean[1],
            "wriftai p50 ratio": official[0],
            "wriftai p99 ratio": official[1],
            "inferq p50 ms": percentile(lean_samples, 0.5) * 1000,
            "inferq p99 ms": percentile(lean_samples, 0.99) * 1000,
            "raw p99 ms": percentile(raw, 0.99) * 1000,
        },
        baseline("raw Celery delay().get() p50", percentile(raw, 0.5) * 1000, "ms"),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

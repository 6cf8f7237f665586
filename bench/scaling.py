"""Scaling: throughput of a 100 ms model with 1, 2 and 4 worker processes.

The model is ``inferq/echo`` with ``delay_s: 0.1`` (it waits cooperatively, so
the processes do not compete for this machine's two cores; what is measured is
how well inferq keeps more processes busy). The worker processes are the
prefork pool of one worker, ``inferq worker --concurrency 1|2|4``, restarted
for each count; the API is one gunicorn process.

``--clients`` threads (default 16: four per process at the largest count, so
the queue never runs dry) each create predictions one after another with
``Prefer: wait``, on their own kept-alive connection. Throughput is the
predictions answered ``succeeded`` per second, from the first request sent to
the last answer. The counts run in rounds (1, 2, 4, 1, 2, 4, ...) and each
count's throughput is its total over the rounds. The baseline is the 1-process
throughput of the same run. Goal: 4 processes >= 3.6 × one.

    python bench/scaling.py [--predictions 120] [--rounds 2] [--clients 16] [--record]
"""

from __future__ import annotations

import argparse
import sys
import time

from client import creates
from goals import goal
from harness import free_port, stack
from record import Run, add_record_option, baseline

GOAL = goal("scaling", "4 / 1").bound
"""The smallest acceptable ratio of 4 processes' throughput to one's."""

DELAY = 0.1
"""Seconds the model takes per prediction."""

COUNTS = (1, 2, 4)
"""Worker process counts measured."""


def run(port: int, count: int, clients: int) -> float:
    """Runs ``count`` sync predictions from ``clients`` threads; returns the seconds they took.

    Raises:
        RuntimeError: When any answer is not a ``succeeded`` prediction.
    """
    started = time.perf_counter()
    answers, errors = creates(
        port,
        count,
        clients,
        lambda api: api.create("inferq/echo", {"prompt": "scale", "delay_s": DELAY}, wait=60),
    )
    errors += [f"201 {answer}" for answer in answers if answer.get("status") != "succeeded"]
    if errors:
        raise RuntimeError(f"{len(errors)} predictions failed, e.g. {errors[:2]}")
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--predictions", type=int, default=120, help="per process count and round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients")
    add_record_option(parser)
    args = parser.parse_args()
    recording = Run("scaling", args)
    elapsed = dict.fromkeys(COUNTS, 0.0)
    with stack() as s:
        port = free_port()
        s.launcher.start_api("127.0.0.1", port, workers=1)
        for _ in range(args.rounds):
            for processes in COUNTS:
                worker = s.launcher.start_worker(["inferq.echo"], concurrency=processes)
                run(port, processes * 4, args.clients)  # every pool process has loaded echo
                elapsed[processes] += run(port, args.predictions, args.clients)
                s.launcher.stop(worker)
    rates = {n: args.predictions * args.rounds / elapsed[n] for n in COUNTS}
    for n in COUNTS:
        ideal = n / DELAY
        print(
            f"{n} worker process{'es' if n > 1 else '  '}: {rates[n]:6.2f} predictions/s "
            f"({rates[n] / rates[1]:.2f}x one; {rates[n] / ideal:.0%} of the ideal {ideal:g}/s)"
        )
    ratio = rates[4] / rates[1]
    verdict = "meets" if ratio >= GOAL else "misses"
    print(
        f"scaling: 4 worker processes / 1 = {ratio:.2f}, 2 / 1 = {rates[2] / rates[1]:.2f} "
        f"with a {DELAY * 1000:g} ms model ({verdict} the goal of >= {GOAL})"
    )
    recording.finish(
        {"4 / 1": ratio, "2 / 1": rates[2] / rates[1], "4 processes per second": rates[4]},
        baseline("1 worker process", rates[1], "predictions/s"),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

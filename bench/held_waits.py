"""Held waits: 500 concurrent ``Prefer: wait`` creates held by one API process, then answered together.

The "slow model" is a backlog: ``bench/held`` is the built-in ``hash-embed``
adapter on a queue no worker consumes until every request is held, with
batching options (``max_batch_size: 512``, ``max_batch_wait_ms: 3000``) so
that, once its one worker process starts, it gathers all 500 predictions into
one forward pass and they end within milliseconds of each other: 500 waiting
greenlets are woken by one burst of terminal news. A backlog rather than a
model that sleeps, because it guarantees every request is held at the moment
of the peak measurement (a sleeping model could finish early ones while late
ones are still being created on a loaded machine), and because a waiting
request is handled the same whether its prediction is queued or running.

Each of ``--waits`` client threads opens its own connection and creates one
prediction with a unique text and ``Prefer: wait=30``. Measured: Redis
``connected_clients`` (``INFO clients``) and the API's RSS (gunicorn master
plus worker, from ``/proc``) before (idle, warmed), at the peak (every
prediction queued, so every request is held) and after (every answer in, the
worker stopped). The API runs one gunicorn worker, so the growth is per API
process. An answer is correct when it is ``201``, ``succeeded`` and carries the
input its client sent, with one vector; ids must be unique.
Goal: <= 50 extra Redis connections per API process.

    python bench/held_waits.py [--waits 500] [--record]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import threading
import time
from collections import Counter

import redis
from client import Client
from goals import goal
from harness import free_port, stack
from procfs import rss_kib
from record import Run, add_record_option, baseline

from common.store import keys

GOAL = goal("held_waits", "extra Redis connections").bound
"""The most extra Redis connections one API process may open for held waits."""

QUEUE = "bench.held"
MODELS = {
    "models": [
        {
            "owner": "bench",
            "name": "held",
            "versions": [
                {
                    "number": 1,
                    "adapter": "hash-embed",
                    "queue": QUEUE,
                    "options": {
                        "dimensions": 64,
                        "max_batch_size": 512,
                        "max_batch_wait_ms": 3000,
                        "batch_gap_ms": 3000,
                    },
                }
            ],
        }
    ]
}
"""The models file of this benchmark (JSON is YAML)."""


def raise_file_limit(wanted: int) -> None:
    """Raises this process's open-file limit to ``wanted`` (within the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--waits", type=int, default=500, help="concurrent held requests (at most 511)")
    add_record_option(parser)
    args = parser.parse_args()
    recording = Run("held_waits", args)
    raise_file_limit(args.waits * 2 + 256)
    with stack() as s:
        models = s.workdir / "models.yaml"
        models.write_text(json.dumps(MODELS, indent=1))
        s.env["INFERQ_MODELS"] = str(models)
        port = free_port()
        s.launcher.start_api("127.0.0.1", port, workers=1)
        api_pid = s.launcher.processes["api"].pid
        admin = redis.Redis.from_url(s.redis.url, decode_responses=True)
        warm = Client(port)
        warm.create("bench/held", {"input": ["warm up"]}, wait=0.5)  # opens the API's pools and listener
        warm.close()
        time.sleep(0.5)
        queued_before = int(admin.llen(keys.celery_queue(QUEUE)))
        before = (int(admin.info("clients")["connected_clients"]), rss_kib(api_pid))

        answers: list[tuple[int, object, str]] = []
        lock = threading.Lock()

        def hold(index: int) -> None:
            text = f"held wait number {index}"
            api = Client(port, timeout=90)
            try:
                code, payload = api.create("bench/held", {"input": [text]}, wait=30)
            except OSError as e:
                code, payload = 0, repr(e)
            finally:
                api.close()
            with lock:
                answers.append((code, payload, text))

        threads = [threading.Thread(target=hold, args=(i,)) for i in range(args.waits)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 60
        while int(admin.llen(keys.celery_queue(QUEUE))) < queued_before + args.waits:
            if time.monotonic() > deadline or answers:
                raise RuntimeError(f"not all requests were held: {len(answers)} answered early")
            time.sleep(0.05)
        peak_clients, peak_rss = 0, 0
        for _ in range(10):  # every request is held now: sample for a second
            peak_clients = max(peak_clients, int(admin.info("clients")["connected_clients"]))
            peak_rss = max(peak_rss, rss_kib(api_pid))
            time.sleep(0.1)
        held = args.waits - len(answers)
        started = time.perf_counter()
        worker = s.launcher.start_worker([QUEUE], concurrency=1)
        for thread in threads:
            thread.join(120)
        answered_in = time.perf_counter() - started
        s.launcher.stop(worker)
        time.sleep(0.5)
        after = (int(admin.info("clients")["connected_clients"]), rss_kib(api_pid))
        admin.close()

    verdicts: Counter[str] = Counter()
    ids = set()
    for code, payload, text in answers:
        if code != 201 or not isinstance(payload, dict):
            verdicts[f"error {code}"] += 1
        elif payload.get("status") != "succeeded":
            verdicts[f"not terminal ({payload.get('status')})"] += 1
        elif payload.get("input") != {"input": [text]} or len(payload["output"]["data"]) != 1:
            verdicts["wrong prediction"] += 1
        else:
            verdicts["correct"] += 1
            ids.add(payload["id"])
    extra = peak_clients - before[0]
    print(f"held at the peak: {held} of {args.waits}; answered {len(answers)} in {answered_in:.2f} s")
    print(f"answers: {dict(verdicts)}; distinct ids among correct ones: {len(ids)}")
    print(f"Redis connected_clients: before {before[0]}, peak {peak_clients}, after {after[0]}")
    print(
        f"API RSS (master + 1 worker): before {before[1] / 1024:.1f} MiB, peak {peak_rss / 1024:.1f} MiB, "
        f"after {after[1] / 1024:.1f} MiB ({(peak_rss - before[1]) / max(1, held):.1f} KiB per held wait)"
    )
    verdict = "meets" if extra <= GOAL and verdicts["correct"] == args.waits else "misses"
    print(
        f"held waits: {verdicts['correct']}/{args.waits} answered correctly, {extra} extra Redis connections "
        f"for 1 API process ({verdict} the goal of <= {GOAL}), "
        f"API RSS +{(peak_rss - before[1]) / 1024:.1f} MiB at the peak"
    )
    recording.finish(
        {
            "extra Redis connections": extra,
            "incorrect answers": args.waits - verdicts["correct"],
            "held at the peak": held,
            "API RSS growth MiB": (peak_rss - before[1]) / 1024,
            "answered in s": answered_in,
        },
        baseline("Redis connected_clients before", before[0], "connections"),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Embedding throughput: inferq serving MiniLM to 32 concurrent clients versus raw sentence-transformers.

In one run, alternating: the raw model's ``SentenceTransformer.encode(batch_size=32)``
sentences per second over the same sentences, and inferq's served sentences per
second with 32 concurrent clients each sending one sentence per request to
``/v1/embeddings`` (one prefork worker with ``--worker-processes`` pool
processes, each given its share of the cores; dynamic batching gathers them;
two API processes, as ``inferq api`` runs by default). Prints the ratio (goal:
served / raw >= 0.8). Needs the embeddings extra.

The batch size the clients' rhythm gives (32 clients fall into two groups of
about 16, one gathered while the other's pass runs) is not the baseline's 32,
and whether that costs or gains depends on the processor (its caches). So it
also measures the raw model at the served passes' mean size, in the same
rounds: ``ratio at served batch size`` is inferq's own cost, apart from that.

It also times one client sending one sentence at a time (p50 of ``--lone``
requests) against the raw model encoding one sentence: what a request that
finds no batch to join waits, the batch's gap included.

``--pin`` measures it the way the model is deployed on a host with cores to
spare: the worker on a core of its own (``taskset -c 1``: its CPU affinity,
which its pool processes and torch's threads inherit, so torch runs one
thread), the clients, the API and Redis on the other (``taskset -c 0``),
against the raw model on core 1 alone with one thread. Recorded as
``embeddings pinned`` (goal: >= 0.9). Needs two cores.

    python bench/embeddings.py [--sentences 512] [--rounds 3] [--clients 32] [--api-workers 2]
        [--worker-processes 1] [--pin] [--record]
"""

from __future__ import annotations

import argparse
import http.client
import inspect
import json
import os
import statistics
import sys
import threading
import time

import redis
from goals import goal
from harness import API_KEY, free_port, stack
from record import Run, add_record_option, baseline

from common.store import keys

MODEL = "sentence-transformers/all-minilm-l6-v2"
SERVING_CORE, MODEL_CORE = {0}, {1}
"""With ``--pin``: the clients', the API's and Redis's core, and the model's."""


def sentences(count: int) -> list[str]:
    """Realistic English sentences: first lines of standard-library docstrings."""
    import collections
    import email
    import json as json_module
    import logging
    import os
    import pathlib
    import threading as threading_module

    found: list[str] = []
    for module in (
        collections,
        email,
        json_module,
        logging,
        os,
        pathlib,
        threading_module,
        inspect,
        statistics,
    ):
        for _, member in inspect.getmembers(module):
            doc = inspect.getdoc(member) or ""
            line = doc.strip().split("\n")[0].strip()
            if 30 <= len(line) <= 200 and line not in found:
                found.append(line)
    return [found[i % len(found)] for i in range(count)]


def pin(cores: set[int]) -> None:
    """Pins every thread of this process to ``cores``; threads and processes it starts later
    inherit the affinity (as ``taskset -c`` gives it a command)."""
    for thread in os.listdir("/proc/self/task"):
        try:
            os.sched_setaffinity(int(thread), cores)
        except ProcessLookupError:  # it has ended meanwhile
            pass


def raw_rate(model: object, texts: list[str], size: int = 32) -> float:
    """Sentences per second of ``model.encode(texts, batch_size=size)``."""
    started = time.perf_counter()
    model.encode(texts, batch_size=size, normalize_embeddings=True)  # type: ignore[attr-defined]
    return len(texts) / (time.perf_counter() - started)


def embed_one(
    connection: http.client.HTTPConnection, text: str, model: str = MODEL
) -> tuple[http.client.HTTPResponse, bytes]:
    """Posts one sentence to ``/v1/embeddings`` (base64, as the openai client asks): answer, body."""
    body = json.dumps({"model": model, "input": text, "encoding_format": "base64"})
    headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
    connection.request("POST", "/v1/embeddings", body=body, headers=headers)
    response = connection.getresponse()
    return response, response.read()


def served_rate(
    port: int, texts: list[str], clients: int, ids: list[str] | None = None, model: str = MODEL
) -> float:
    """Sentences per second of ``model`` served to ``clients`` concurrent clients, one sentence
    per request (the predictions' ids are added to ``ids`` when given)."""
    lock = threading.Lock()
    pending = list(enumerate(texts))
    failures: list[str] = []

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while True:
            with lock:
                if not pending:
                    return
                _, text = pending.pop()
            response, payload = embed_one(connection, text, model)
            if ids is not None:
                ids.append(response.getheader("x-prediction-id") or "")
            if response.status != 200:
                failures.append(payload.decode()[:200])

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    assert not failures, failures[:3]
    return len(texts) / elapsed


def raw_latency(model: object, texts: list[str]) -> float:
    """Median milliseconds of ``model.encode([text])``, one sentence at a time."""
    times = []
    for text in texts:
        started = time.perf_counter()
        model.encode([text], normalize_embeddings=True)  # type: ignore[attr-defined]
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def served_latency(port: int, texts: list[str]) -> float:
    """Median milliseconds of a ``/v1/embeddings`` request of one sentence, one at a time."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    times = []
    for text in texts:
        started = time.perf_counter()
        response, payload = embed_one(connection, text)
        times.append(time.perf_counter() - started)
        assert response.status == 200, payload[:200]
    connection.close()
    return statistics.median(times) * 1000


def batches(redis_url: str, ids: list[str]) -> list[int]:
    """The size of each forward pass the served predictions ran in (from their records' metrics)."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    passes: dict[str, int] = {}
    for prediction_id in ids:
        metrics = json.loads(client.hget(keys.prediction(prediction_id), "metrics") or "{}")
        passes[metrics.get("batch_id", prediction_id)] = int(metrics.get("batch_size", 1))
    client.close()
    return list(passes.values())


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sentences", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--api-workers", type=int, default=2, help="API processes (inferq api's default)")
    parser.add_argument(
        "--worker-processes", type=int, default=1, help="the worker's pool processes (its --concurrency)"
    )
    parser.add_argument("--lone", type=int, default=100, help="requests of one sentence, one at a time")
    parser.add_argument(
        "--pin", action="store_true", help="the worker and the raw model on core 1, the rest on core 0"
    )
    add_record_option(parser)
    args = parser.parse_args()
    benchmark = "embeddings pinned" if args.pin else "embeddings"
    recording = Run(benchmark, args, script="bench/embeddings.py --pin" if args.pin else "")
    bound = goal(benchmark, "ratio").bound
    import torch
    from sentence_transformers import SentenceTransformer

    from workers.adapters.minilm_files import model_files

    texts = sentences(args.sentences)
    model = SentenceTransformer(str(model_files().directory), device="cpu")
    if args.pin:
        pin(SERVING_CORE)  # Redis and the API inherit it
        torch.set_num_threads(len(MODEL_CORE))  # as many as the pinned worker's torch starts

    def raw_pass(sample: list[str], size: int = 32) -> float:
        if args.pin:
            pin(MODEL_CORE)
        try:
            return raw_rate(model, sample, size)
        finally:
            if args.pin:
                pin(SERVING_CORE)

    with stack() as s:
        port = free_port()
        s.launcher.start_api("127.0.0.1", port, args.api_workers)
        if args.pin:
            pin(MODEL_CORE)
        s.launcher.start_worker(["sentence-transformers.all-minilm-l6-v2"], concurrency=args.worker_processes)
        if args.pin:
            pin(SERVING_CORE)
        served_rate(port, texts[: args.clients * 2], args.clients)  # warm up both paths
        raw_pass(texts[:64])
        raw, served, ids = [], [], []
        for _ in range(args.rounds):
            raw.append(raw_pass(texts))
            served.append(served_rate(port, texts, args.clients, ids))
        batch_sizes = batches(s.env["INFERQ_REDIS_URL"], ids)
        served_size = max(1, round(statistics.fmean(batch_sizes)))
        raw_served_size = statistics.median(raw_pass(texts, served_size) for _ in range(args.rounds))
        lone = texts[: args.lone]
        if args.pin:
            pin(MODEL_CORE)
        raw_one = raw_latency(model, lone)
        if args.pin:
            pin(SERVING_CORE)
        served_one = served_latency(port, lone)
    raw_median, served_median = statistics.median(raw), statistics.median(served)
    ratio = served_median / raw_median
    own_ratio = served_median / raw_served_size

    def rounds(rates: list[float]) -> str:
        return ", ".join(f"{rate:.0f}" for rate in rates)

    print(f"raw encode(batch_size=32): {raw_median:.1f} sentences/s (rounds: {rounds(raw)})")
    print(
        f"inferq, {args.clients} clients, {args.api_workers} API processes, "
        f"{args.worker_processes} worker processes: "
        f"{served_median:.1f} sentences/s (rounds: {rounds(served)})"
    )
    print(
        f"forward passes: {len(batch_sizes)}, predictions per pass: "
        f"mean {statistics.fmean(batch_sizes):.1f}, median {statistics.median(batch_sizes):g}, "
        f"max {max(batch_sizes)}"
    )
    print(
        f"raw encode(batch_size={served_size}), the served mean: {raw_served_size:.1f} sentences/s; "
        f"inferq ÷ that {own_ratio:.2f} (inferq's own cost, apart from the batch size)"
    )
    print(
        f"one sentence at a time: raw encode p50 {raw_one:.1f} ms, inferq p50 {served_one:.1f} ms "
        f"({served_one - raw_one:.1f} ms more)"
    )
    verdict = "meets" if ratio >= bound else "misses"
    where = ", worker and raw model pinned to core 1, the rest to core 0" if args.pin else ""
    print(f"{benchmark}: inferq/raw throughput {ratio:.2f}{where} ({verdict} the goal of >= {bound:g})")
    recording.finish(
        {
            "ratio": ratio,
            "inferq sentences per second": served_median,
            "batch mean": statistics.fmean(batch_sizes),
            "raw at served batch size sentences per second": raw_served_size,
            "ratio at served batch size": own_ratio,
            "lone inferq p50 ms": served_one,
            "lone raw p50 ms": raw_one,
        },
        baseline("raw encode(batch_size=32)", raw_median, "sentences/s"),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

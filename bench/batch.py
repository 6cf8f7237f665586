"""Batches (issue #23): OpenAI's Batch API against the model's own speed and against HTTP requests.

Both measurements drive the API with the real ``openai`` client
(``files.create``, ``batches.create``, ``batches.retrieve`` every ``--poll``
seconds, ``files.content``) and time a batch from ``batches.create`` to the
first ``retrieve`` that answers ``completed``; the upload before it and the
output file's download after it are reported apart. One API of two processes
(``inferq api``'s default) and the workers as ``docker-compose.yml`` deploys
them: one worker process on the embedding queues (``inferq.hash-embed`` and
MiniLM's), and for ``minilm`` another with ``--echo-processes`` (4) on
``inferq.echo``. The lines are ``embeddings.py``'s sentences, one a line.

- ``minilm``: first the idle p50 of sync ``inferq/echo`` predictions
  (``Prefer: wait``, one at a time, ``--probe-pause`` apart: ``--idle`` of
  them); then, ``--rounds`` times, the raw model's
  ``encode(batch_size=32)`` over the lines' texts, a ``--lines`` (5,000)
  MiniLM batch alone (the lines ratio: the batch gets the machine as the raw
  model did), and the same batch again while the same echo probes run (the
  echo ratio). The raw model gets the
  worker's OpenMP tuning (``common.processes.runtime.share_cores``: idle
  threads spin 10,000 times, not 300,000), without which it collapses on a
  shared machine (``embeddings.py``'s baseline has torch's default). Recorded as ``batch minilm``:
  batch lines per second ÷ raw sentences per second (goal >= 0.9), and the
  echo p50 during the batches ÷ idle (goal <= 1.5); medians over the rounds.
  ``--probe minilm`` probes the batch's own model instead (one sentence, sync):
  what a person waiting on that model meets while a batch runs on it (no goal;
  recorded as ``minilm p50 ratio``).
- ``hash-embed``: ``--rounds`` times, the ``--lines`` (20,000) texts sent as
  ``/v1/embeddings`` requests of one text by ``--clients`` (32) clients
  (``embeddings.served_rate``), then as one batch. Recorded as
  ``batch hash-embed``: batch ÷ HTTP lines per second (goal >= 5).

Each batch's parts (one prediction each, ``api.batch_lines.PART_INPUTS``
inputs at most) are read back from Redis afterwards (their ids are the output
lines' ``request_id``): where the time went between the create call returning,
the parts waiting in the queue, running, and the batch being seen
``completed`` after its last part ended (the finisher's once-a-second look and
the output file's writing).

    python bench/batch.py minilm [--lines 5000] [--rounds 2] [--idle 100] [--record]
    python bench/batch.py hash-embed [--lines 20000] [--rounds 2] [--clients 32] [--record]
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import redis
from client import Client
from embeddings import MODEL as MINILM
from embeddings import raw_rate, sentences, served_rate
from goals import goal
from harness import API_KEY, Stack, free_port, percentile, stack
from record import Run, add_record_option, baseline

from common.processes.runtime import share_cores
from common.store import keys

HASH_EMBED = "inferq/hash-embed"
EMBEDDING_QUEUES = ["inferq.hash-embed", "sentence-transformers.all-minilm-l6-v2"]
"""The queues of ``worker-embeddings`` in ``docker-compose.yml``."""

FINAL = {"completed", "failed", "expired", "cancelled"}
"""A batch's statuses after which nothing changes."""


@dataclass
class Timed:
    """One batch's run: its times in seconds and what its parts' records say."""

    lines: int
    upload: float
    create_call: float
    completed: float
    """From sending ``batches.create`` to the first ``retrieve`` answering ``completed``."""
    content: float
    """From there to the output file's bytes read."""
    parts: list[dict[str, float]] = field(default_factory=list)
    start: float = 0.0
    """``time.time()`` when ``batches.create`` was sent."""

    @property
    def rate(self) -> float:
        return self.lines / self.completed


def jsonl(model: str, texts: list[str]) -> bytes:
    """A batch input file: one ``/v1/embeddings`` request a text."""
    lines = (
        {
            "custom_id": f"line-{i}",
            "method": "POST",
            "url": "/v1/embeddings",
            "body": {"model": model, "input": t},
        }
        for i, t in enumerate(texts)
    )
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


def run_batch(openai: Any, redis_url: str, data: bytes, lines: int, poll: float) -> Timed:
    """Uploads ``data``, runs it as a batch to ``completed`` and reads its output file.

    Raises:
        RuntimeError: When the batch ends otherwise, or its output lacks lines.
    """
    started = time.perf_counter()
    upload = openai.files.create(file=("lines.jsonl", data), purpose="batch")
    uploaded = time.perf_counter()
    wall = time.time()
    batch = openai.batches.create(input_file_id=upload.id, endpoint="/v1/embeddings", completion_window="24h")
    created = time.perf_counter()
    while batch.status not in FINAL:
        time.sleep(poll)
        batch = openai.batches.retrieve(batch.id)
    done = time.perf_counter()
    if batch.status != "completed" or not batch.output_file_id:
        raise RuntimeError(f"batch {batch.id} ended {batch.status}: {batch.errors}")
    output = openai.files.content(batch.output_file_id).content
    read = time.perf_counter()
    answers = [json.loads(line) for line in output.splitlines()]
    if len(answers) != lines or batch.error_file_id:
        raise RuntimeError(
            f"batch {batch.id}: {len(answers)} output lines of {lines}, errors {batch.error_file_id}"
        )
    part_ids = sorted({answer["response"]["request_id"] for answer in answers})
    return Timed(
        lines,
        uploaded - started,
        created - uploaded,
        done - uploaded,
        read - done,
        records(redis_url, part_ids),
        wall,
    )


def records(redis_url: str, prediction_ids: list[str]) -> list[dict[str, float]]:
    """The timestamps and pass sizes of the parts' predictions."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    pipe = client.pipeline(transaction=False)
    for prediction_id in prediction_ids:
        pipe.hmget(
            keys.prediction(prediction_id),
            "created_at",
            "started_at",
            "predict_started_at",
            "completed_at",
            "metrics",
        )
    found = []
    for created, started, predicting, completed, metrics in pipe.execute():
        size = json.loads(metrics or "{}").get("batch_size", 1)
        found.append(
            {
                "created": float(created),
                "started": float(started),
                "predicting": float(predicting),
                "completed": float(completed),
                "pass": float(size),
            }
        )
    client.close()
    return found


def stages(timed: Timed) -> str:
    """Where a batch's time went, from its parts' records (seconds from ``batches.create``)."""
    parts = timed.parts
    first_created = min(p["created"] for p in parts) - timed.start
    last_created = max(p["created"] for p in parts) - timed.start
    first_started = min(p["started"] for p in parts) - timed.start
    last_completed = max(p["completed"] for p in parts) - timed.start
    waits = [p["started"] - p["created"] for p in parts]
    running = sum(p["completed"] - p["predicting"] for p in parts) / statistics.fmean(
        p["pass"] for p in parts
    )
    return (
        f"create call {timed.create_call:.2f} s (parts queued {first_created:.2f}–{last_created:.2f} s); "
        f"first part started {first_started:.2f} s, last ended {last_completed:.2f} s, "
        f"seen completed {timed.completed:.2f} s "
        f"({timed.completed - last_completed:.2f} s after the last part); "
        f"{len(parts)} parts, {statistics.fmean(p['pass'] for p in parts):.1f} per pass, "
        f"passes' run time about {running:.2f} s, queue wait p50 {percentile(waits, 0.5):.2f} s; "
        f"output file read in {timed.content:.2f} s, upload {timed.upload:.2f} s"
    )


class Probes:
    """Sync requests one at a time, ``pause`` apart, from a thread, while open: ``inferq/echo``
    predictions, or (``same_model``) one-sentence MiniLM embeddings, the batch's own model."""

    def __init__(self, port: int, pause: float, same_model: bool = False) -> None:
        self.api = Client(port)
        self.pause = pause
        self.same_model = same_model
        self.samples: list[float] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run)

    def one(self) -> float:
        try:  # the connection may have idled past the API's keep-alive (a long raw round)
            self.api.request("GET", "/v1/models")
        except (ConnectionError, http.client.HTTPException):
            pass  # the client reconnects for the next request
        started = time.perf_counter()
        if self.same_model:
            code, payload = self.api.request("POST", "/v1/embeddings", {"model": MINILM, "input": "a probe"})
            ok = code == 200
        else:
            code, payload = self.api.create("inferq/echo", {"prompt": "probe"}, wait=60)
            ok = code == 201 and payload.get("status") == "succeeded"
        elapsed = time.perf_counter() - started
        if not ok:
            raise RuntimeError(f"the probe answered {code} {payload}")
        return elapsed

    def run(self) -> None:
        while not self.stop.wait(self.pause):
            self.samples.append(self.one())

    @contextmanager
    def running(self) -> Iterator[list[float]]:
        """Probes while the block runs; yields the samples taken (filled as it goes)."""
        self.samples = []
        self.stop.clear()
        self.thread = threading.Thread(target=self.run)
        self.thread.start()
        try:
            yield self.samples
        finally:
            self.stop.set()
            self.thread.join()


@contextmanager
def served(echo_processes: int) -> Iterator[tuple[Stack, int, Any]]:
    """The stack as deployed: an API of two processes, the embedding worker, the echo worker;
    and an ``openai`` client of it."""
    from openai import OpenAI

    with stack() as s:
        port = free_port()
        s.launcher.start_api("127.0.0.1", port, workers=2)
        s.launcher.start_worker(EMBEDDING_QUEUES, concurrency=1)
        if echo_processes:
            s.launcher.start_worker(["inferq.echo"], concurrency=echo_processes)
        client = OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=API_KEY, max_retries=0, timeout=600)
        try:
            yield s, port, client
        finally:
            client.close()


def rounds(rates: list[float]) -> str:
    return ", ".join(f"{rate:.0f}" for rate in rates)


def minilm(args: argparse.Namespace) -> int:
    """The ``minilm`` measurement: batch lines per second ÷ raw encode, and echo while it runs."""
    recording = Run("batch minilm", args, script="bench/batch.py minilm")
    share_cores()  # the worker's OpenMP tuning for the raw model too, before torch loads
    from sentence_transformers import SentenceTransformer

    from workers.adapters.minilm_files import model_files

    texts = sentences(args.lines)
    data = jsonl(MINILM, texts)
    model = SentenceTransformer(str(model_files().directory), device="cpu")
    with served(args.echo_processes) as (s, port, openai):
        probes = Probes(port, args.probe_pause, same_model=args.probe == "minilm")
        for _ in range(10):  # every echo process has loaded the model
            probes.one()
        run_batch(openai, s.redis.url, jsonl(MINILM, texts[:256]), 256, args.poll)  # warm up both paths
        raw_rate(model, texts[:64])
        idle = []
        for _ in range(args.idle):
            time.sleep(args.probe_pause)
            idle.append(probes.one())
        raw, timed, busy, probed = [], [], [], []
        for _ in range(args.rounds):
            raw.append(raw_rate(model, texts))
            timed.append(run_batch(openai, s.redis.url, data, args.lines, args.poll))
            with probes.running() as samples:
                probed.append(run_batch(openai, s.redis.url, data, args.lines, args.poll))
            busy.append(percentile(samples, 0.5) / percentile(idle, 0.5))
            print(
                f"round: raw {raw[-1]:.0f}/s, batch {timed[-1].rate:.0f} lines/s alone and "
                f"{probed[-1].rate:.0f} with the probes, {args.probe} p50 {busy[-1]:.2f}x idle "
                f"({len(samples)} probes)",
                flush=True,
            )
        probes.api.close()
    raw_median = statistics.median(raw)
    rate = statistics.median(t.rate for t in timed)
    ratio, echo = rate / raw_median, statistics.median(busy)
    print(f"raw encode(batch_size=32): {raw_median:.1f} sentences/s (rounds: {rounds(raw)})")
    print(
        f"batch of {args.lines} MiniLM lines: {rate:.1f} lines/s (rounds: {rounds([t.rate for t in timed])})"
    )
    for t in timed:
        print(f"  {stages(t)}")
    print(
        f"sync {args.probe} p50: idle {percentile(idle, 0.5) * 1000:.2f} ms; during the batches "
        + ", ".join(f"{b:.2f}x" for b in busy)
    )
    lines_goal, echo_goal = goal("batch minilm", "lines ratio"), goal("batch minilm", "echo p50 ratio")
    print(
        f"batch minilm: lines/s ÷ raw {ratio:.2f} "
        f"({'meets' if lines_goal.met(ratio) else 'misses'} {lines_goal}), "
        f"{args.probe} p50 during ÷ idle {echo:.2f} "
        f"({'meets' if echo_goal.met(echo) else 'misses'} {echo_goal})"
    )
    recording.finish(
        {
            "lines ratio": ratio,
            ("echo p50 ratio" if args.probe == "echo" else "minilm p50 ratio"): echo,
            "batch lines per second": rate,
            "seconds to output read": statistics.median(t.completed + t.content for t in timed),
            "idle echo p50 ms": percentile(idle, 0.5) * 1000,
        },
        baseline("raw encode(batch_size=32)", raw_median, "sentences/s"),
    )
    return 0


def hash_embed(args: argparse.Namespace) -> int:
    """The ``hash-embed`` measurement: batch lines per second ÷ the same lines as HTTP requests."""
    recording = Run("batch hash-embed", args, script="bench/batch.py hash-embed")
    texts = sentences(args.lines)
    data = jsonl(HASH_EMBED, texts)
    with served(0) as (s, port, openai):
        served_rate(port, texts[: args.clients * 4], args.clients, model=HASH_EMBED)  # warm up both paths
        run_batch(openai, s.redis.url, jsonl(HASH_EMBED, texts[:1000]), 1000, args.poll)
        http, timed = [], []
        for _ in range(args.rounds):
            http.append(served_rate(port, texts, args.clients, model=HASH_EMBED))
            timed.append(run_batch(openai, s.redis.url, data, args.lines, args.poll))
            print(f"round: HTTP {http[-1]:.0f}/s, batch {timed[-1].rate:.0f} lines/s", flush=True)
    http_median = statistics.median(http)
    rate = statistics.median(t.rate for t in timed)
    ratio = rate / http_median
    print(
        f"HTTP, {args.clients} clients, one line a request: {http_median:.1f} lines/s "
        f"(rounds: {rounds(http)})"
    )
    print(f"batch of {args.lines} lines: {rate:.1f} lines/s (rounds: {rounds([t.rate for t in timed])})")
    for t in timed:
        print(f"  {stages(t)}")
    bound = goal("batch hash-embed", "ratio")
    print(
        f"batch hash-embed: batch ÷ HTTP lines/s {ratio:.2f} "
        f"({'meets' if bound.met(ratio) else 'misses'} {bound})"
    )
    recording.finish(
        {
            "ratio": ratio,
            "batch lines per second": rate,
            "seconds to output read": statistics.median(t.completed + t.content for t in timed),
        },
        baseline(f"HTTP /v1/embeddings, {args.clients} clients", http_median, "lines/s"),
    )
    return 0


def parser() -> argparse.ArgumentParser:
    """The options: one subcommand per measurement."""
    top = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = top.add_subparsers(dest="measurement", required=True)
    shared = argparse.ArgumentParser(add_help=False)
    shared.add_argument("--rounds", type=int, default=2)
    shared.add_argument("--poll", type=float, default=0.2, help="seconds between batches.retrieve calls")
    add_record_option(shared)
    one = commands.add_parser(
        "minilm", parents=[shared], help="MiniLM batch ÷ raw encode; echo during ÷ idle"
    )
    one.add_argument("--lines", type=int, default=5000)
    one.add_argument("--idle", type=int, default=100, help="idle echo probes")
    one.add_argument("--probe-pause", type=float, default=0.05, help="seconds between echo probes")
    one.add_argument(
        "--probe",
        choices=["echo", "minilm"],
        default="echo",
        help="what the sync probes ask: inferq/echo (the goal), or one MiniLM sentence (the batch's model)",
    )
    one.add_argument("--echo-processes", type=int, default=4, help="the echo worker's (worker-general's)")
    two = commands.add_parser("hash-embed", parents=[shared], help="hash-embed batch ÷ HTTP requests")
    two.add_argument("--lines", type=int, default=20000)
    two.add_argument("--clients", type=int, default=32)
    return top


MEASUREMENTS: dict[str, Callable[[argparse.Namespace], int]] = {"minilm": minilm, "hash-embed": hash_embed}
"""Each subcommand's measurement."""


def main() -> int:
    args = parser().parse_args()
    return MEASUREMENTS[args.measurement](args)


if __name__ == "__main__":
    sys.exit(main())

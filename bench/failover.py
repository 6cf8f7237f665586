"""Failover (issue #26): the Redis primary SIGKILLed under load, with and without replica acknowledgements.

For each ``--acks`` setting (``INFERQ_REDIS_REPLICAS_ACK``, default ``0 1``),
``--rounds`` times: a primary, two replicas and three Sentinels
(``tests/integration/sentinels.py``, as the failover test runs them: down-after
1 s, failover-timeout 5 s), one API process and two workers of two processes
pointed at the Sentinels, with ``INFERQ_LEASE_TTL`` above the failover's bound
(``BACK_WITHIN``, 11 s: a lease that lapses mid-failover would run a prediction
twice). ``--clients`` threads create ``bench/runs`` predictions
(``tests/fixtures/adapters/records_runs.py``: ``start``/``done <id> <pid>``
lines, ``--model-seconds`` long) without waiting, at ``--rate`` creates per
second in all, recording the id of every ``201``. After ``--before`` seconds the
primary is SIGKILLed; the load goes on until the API has accepted a create sent
after the kill and ``--after`` seconds more, then stops, and every accepted
prediction gets ``--drain`` seconds to end (heard on the updates channel, then
read back from the new master). There is no rate limit (``INFERQ_RATE_LIMIT``
unset): limits' Sentinel storage reads its counters from a replica, so with
``--lag`` the frozen replicas would hold every request, not just the acked ones.

Counted per round and summed per ack: accepted; lost (accepted, then gone from
Redis after the failover, or never ended); ended twice (two different terminal
statuses published); run twice (two ``done`` lines); started again (two
``start`` lines, as a lapsed lease would cause); ``503`` answers (the
failover); any other answer or a request error; and the seconds from the kill
until the first ``201`` to a create sent after it. Recorded as
``failover ack 1`` (goals: lost 0, run twice 0) and ``failover ack 0`` (no
goal: it reports what a failover loses without acknowledgements).

With ack ``0`` a short run usually loses nothing even so: on loopback a replica
is a fraction of a millisecond behind, so the kill has to land inside that lag.
``--lag S`` (below 1 s, the Sentinels' down-after) makes the window visible:
just before the kill the replicas are frozen (``SIGSTOP``) and their links cut on
the primary (``CLIENT KILL TYPE replica``), the load runs on for ``S`` seconds
with the primary alone, then the primary is killed and the replicas resumed
(``SIGCONT``). Whatever the primary accepted in those ``S`` seconds never
reached a replica: with ack ``0`` it is lost (or its ending is, and the
prediction runs again once its lease lapses); with ack ``1`` those creates
wait for a replica and are answered ``503`` instead.

``--fault pause`` freezes the primary (``SIGSTOP``) instead, until the
Sentinels name another, and lets it run on (``SIGCONT``): woken, it calls
itself master until they demote it (seconds later), and takes writes from
whoever is still connected to it. Recorded as ``failover ack N paused`` (no
goal: Sentinel's known gap, see the README). With ack ``0`` and ``--lag``, what
it took while alone is lost, and what it took after waking.

After the failovers, unless ``--overhead-requests 0``, what acknowledgements cost when nothing
fails: ``bench/overhead.py``'s sync echo against raw Celery, on a plain Redis
and on one with a replica and ack 1; the p50s and ratios are printed and added
to the ``failover ack 1`` record.

    python bench/failover.py [--acks 0 1] [--rounds 1] [--rate 30] [--lag 0.5] [--fault pause]
        [--overhead-requests 200] [--keep] [--record]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from client import Client
from goals import goals_of
from harness import API_KEY, ROOT, free_port
from overhead import ack_cost
from record import Run, add_record_option

from common.config import Settings
from common.connections import redis_client
from common.processes.launcher import Launcher
from common.store import keys
from tests.integration.sentinels import BACK_WITHIN, DOWN_AFTER_MS, MASTER, SentinelGroup
from tests.integration.terminals import TERMINAL, Terminals

QUEUE = "bench.runs"
MODELS = {
    "models": [
        {
            "owner": "bench",
            "name": "runs",
            "versions": [
                {"number": 1, "adapter": "tests.fixtures.adapters.records_runs:RecordsRuns", "queue": QUEUE}
            ],
        }
    ]
}
"""The models file of this benchmark (JSON is YAML)."""

REQUEST_TIMEOUT = 20.0
"""Seconds a create may take before it counts as a hang."""


class Load:
    """Async creates at a steady rate from a few threads, and what they were answered."""

    def __init__(self, port: int, record: Path, args: argparse.Namespace) -> None:
        self.port, self.record, self.args = port, record, args
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.accepted: list[tuple[float, float, str]] = []
        """``(sent, answered, id)`` of each ``201`` (``time.monotonic()``)."""
        self.answers: Counter[str] = Counter()
        self.threads = [threading.Thread(target=self.client) for _ in range(args.clients)]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()

    def client(self) -> None:
        """One client: a create every ``clients / rate`` seconds (never in a burst to catch up)."""
        api, interval = Client(self.port, timeout=REQUEST_TIMEOUT), self.args.clients / self.args.rate
        due = time.monotonic()
        body = {"record_to": str(self.record), "seconds": self.args.model_seconds}
        while not self.stop.wait(max(0.0, due - time.monotonic())):
            due = max(due + interval, time.monotonic())
            sent = time.monotonic()
            try:
                code, payload = api.create("bench/runs", body)
            except OSError as e:  # a hang (TimeoutError) or a dropped connection
                api.close()
                api = Client(self.port, timeout=REQUEST_TIMEOUT)
                with self.lock:
                    self.answers[f"create: {type(e).__name__}"] += 1
                continue
            with self.lock:
                self.answers[f"create {code}"] += 1
                if code == 201:
                    self.accepted.append((sent, time.monotonic(), str(payload["id"])))
        api.close()

    def back_after(self, killed_at: float) -> float | None:
        """Seconds from the kill to the first ``201`` to a create sent after it, if any."""
        with self.lock:
            answered = [at for sent, at, _ in self.accepted if sent >= killed_at]
        return min(answered) - killed_at if answered else None


@contextmanager
def group_and_stack(ack: int, args: argparse.Namespace) -> Iterator[tuple[SentinelGroup, int, Path]]:
    """The Sentinel group, an API and the workers pointed at it, in a temporary directory; yields the
    group, the API's port and the directory."""
    if args.keep:
        root = Path(tempfile.mkdtemp(prefix="inferq-failover-"))
        print(f"  keeping {root}")
        with _stack(ack, args, root) as found:
            yield found
        return
    with tempfile.TemporaryDirectory(prefix="inferq-failover-") as tmp, _stack(ack, args, Path(tmp)) as found:
        yield found


@contextmanager
def _stack(ack: int, args: argparse.Namespace, root: Path) -> Iterator[tuple[SentinelGroup, int, Path]]:
    group = SentinelGroup(root / "ha").start()
    models = root / "models.yaml"
    models.write_text(json.dumps(MODELS, indent=1))
    env = {k: v for k, v in os.environ.items() if not k.startswith("INFERQ_")}
    env.update(
        {
            "INFERQ_REDIS_URL": group.url,
            "INFERQ_REDIS_MASTER": MASTER,
            "INFERQ_REDIS_REPLICAS_ACK": str(ack),
            "INFERQ_LEASE_TTL": str(int(BACK_WITHIN)),
            "INFERQ_REDIS_MAX_CONNECTIONS": "64",
            "INFERQ_API_KEYS": f"bench:{API_KEY}",
            "INFERQ_MODELS": str(models),
            "INFERQ_DATA_DIR": str(root / "data"),
            "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "bench")]),
        }
    )
    launcher = Launcher(env, log_dir=root / "logs")
    try:
        port = free_port()
        launcher.start_api("127.0.0.1", port, workers=1)
        for _ in range(args.workers):
            launcher.start_worker([QUEUE], concurrency=args.concurrency)
        yield group, port, root
    finally:
        launcher.stop_all()
        group.stop()


def cut_replication(group: SentinelGroup, primary_port: int) -> list[int]:
    """Freezes every replica (``SIGSTOP``) and cuts its link on the primary, so that what the
    primary accepts from now on reaches none; returns the frozen pids, for :func:`resume`."""
    pids = []
    for server in group.servers:
        if server.port != primary_port:
            pids.append(group.pid(server))
            os.kill(pids[-1], signal.SIGSTOP)
    with group.client(group.server_on(primary_port)) as primary:
        primary.client_kill_filter(_type="replica")
    return pids


def resume(pids: list[int]) -> None:
    """Lets frozen replicas run again."""
    for pid in pids:
        os.kill(pid, signal.SIGCONT)


@dataclass(frozen=True)
class Failover:
    """When the primary was left alone and killed (``time.monotonic()``), and how long the API took to
    accept creates again (None: not within ``BACK_WITHIN`` + 5 s)."""

    alone_at: float
    killed_at: float
    back: float | None


def fail_over(group: SentinelGroup, load: Load, args: argparse.Namespace) -> Failover:
    """Kills the primary under the load, after ``--lag`` seconds without its replicas."""
    old_port = group.master_port()
    if old_port is None:
        raise RuntimeError("the Sentinels name no master")
    frozen = cut_replication(group, old_port) if args.lag else []
    alone_at = time.monotonic()
    try:
        time.sleep(args.lag)
        if args.fault == "pause":  # the replicas resume once it is frozen: they cannot sync again
            killed_at = time.monotonic()
            group.replace_paused_master(paused=lambda: resume(frozen))
        else:
            group.server_on(old_port).stop(kill=True)
            killed_at = time.monotonic()
    finally:
        resume(frozen)
    deadline = killed_at + BACK_WITHIN + 5
    while (back := load.back_after(killed_at)) is None and time.monotonic() < deadline:
        time.sleep(0.1)
    if group.master_port() in (None, old_port):
        print("  the Sentinels did not promote a replica", file=sys.stderr)
    return Failover(alone_at, killed_at, back)


def settle(settings: Settings, ids: list[str], terminals: Terminals, drain: float) -> dict[str, str | None]:
    """Each accepted prediction's status on the new master once every one ended, is gone, or ``drain``
    passed: None for a record that is gone. The news can come from the old master before its
    kill, so Redis is read back, again while some present record has not ended."""
    deadline = time.monotonic() + drain
    terminals.expect(ids)
    terminals.wait(timeout=drain)
    client = redis_client(settings, retries=3)
    try:
        while True:
            pipe = client.pipeline(transaction=False)
            for prediction_id in ids:
                pipe.hget(keys.prediction(prediction_id), "status")
            statuses = dict(zip(ids, pipe.execute(), strict=True))
            running = [p for p, s in statuses.items() if s is not None and s not in TERMINAL]
            if not running or time.monotonic() > deadline:
                return statuses
            time.sleep(0.5)
    finally:
        client.close()


def runs_per_prediction(record: Path) -> tuple[Counter[str], Counter[str]]:
    """How many ``start`` and ``done`` lines each prediction wrote."""
    started: Counter[str] = Counter()
    done: Counter[str] = Counter()
    for line in record.read_text().splitlines() if record.exists() else []:
        kind, prediction_id, _ = line.split()
        (started if kind == "start" else done)[prediction_id] += 1
    return started, done


def one_round(ack: int, args: argparse.Namespace) -> dict[str, float]:
    """One failover under load with ``INFERQ_REDIS_REPLICAS_ACK=ack``; returns its counts."""
    with group_and_stack(ack, args) as (group, port, root):
        settings = Settings.defaults(redis_url=group.url, redis_master=MASTER)
        terminals = Terminals(group.url, MASTER)
        load = Load(port, root / "runs.txt", args)
        try:
            load.start()
            time.sleep(args.before)
            failover = fail_over(group, load, args)
            time.sleep(args.after)
        finally:
            load.finish()
        try:
            ids = [prediction_id for _, _, prediction_id in load.accepted]
            statuses = settle(settings, ids, terminals, args.drain)
            published = dict(terminals.published)
        finally:
            terminals.close()
        started, done = runs_per_prediction(load.record)
    counts: dict[str, float] = {
        "accepted": len(ids),
        "accepted by the primary alone": sum(
            failover.alone_at <= at <= failover.killed_at for _, at, _ in load.accepted
        ),
        "accepted after the kill": sum(sent >= failover.killed_at for sent, _, _ in load.accepted),
        "lost": sum(s not in TERMINAL for s in statuses.values()),
        "lost: gone": sum(s is None for s in statuses.values()),
        "lost: never ended": sum(s is not None and s not in TERMINAL for s in statuses.values()),
        "ended twice": sum(len(set(published.get(p, []))) > 1 for p in ids),
        "run twice": sum(done[p] > 1 for p in ids),
        "started again": sum(started[p] > 1 for p in ids),
        "503s": load.answers["create 503"],
        "other answers": sum(n for a, n in load.answers.items() if a not in ("create 201", "create 503")),
        "not back": 0 if failover.back is not None else 1,
    }
    twice = sorted(p for p in ids if started[p] > 1)
    if twice:
        print(f"  started again: {' '.join(twice)}")
    back = "–" if failover.back is None else f"{failover.back:.2f} s"
    print(
        f"  ack {ack}: back after {back}, answers {dict(load.answers)}, "
        + ", ".join(f"{name} {value:g}" for name, value in counts.items() if name != "not back")
    )
    return counts | ({"back after s": failover.back} if failover.back is not None else {})


def summary(ack: int, rounds: list[dict[str, float]]) -> dict[str, float]:
    """The rounds' counts summed, with the worst and median time until the API accepted again."""
    figures = {name: sum(r.get(name, 0) for r in rounds) for name in rounds[0] if name != "back after s"}
    backs = [r["back after s"] for r in rounds if "back after s" in r]
    if backs:
        figures |= {"back after s": max(backs), "back after s median": statistics.median(backs)}
    return {"rounds": len(rounds), **figures}


def describe(figures: dict[str, float], lag: float) -> str:
    """An ack setting's figures in one line."""
    back = "–" if "back after s" not in figures else f"{figures['back after s']:.2f} s"
    return (
        f"{figures['rounds']:g} round(s), lag {lag:g} s, {figures['accepted']:g} accepted, "
        f"lost {figures['lost']:g} (gone {figures['lost: gone']:g}, never ended "
        f"{figures['lost: never ended']:g}), ended twice {figures['ended twice']:g}, "
        f"run twice {figures['run twice']:g}, started again {figures['started again']:g}, "
        f"{figures['503s']:g} 503s, {figures['other answers']:g} other answers, "
        f"accepting again after {back} at worst (bound {BACK_WITHIN:g} s)"
    )


def verdict(benchmark: str, figures: dict[str, float]) -> str:
    """``goal met (lost <= 0, run twice <= 0)``, which goals are missed, or that there is none."""
    goals = goals_of(benchmark)
    if not goals:
        return "no goal: what a failover loses without replica acknowledgements"
    missed = [str(g) for g in goals if not g.met(figures[g.figure])]
    named = ", ".join(str(g) for g in goals)
    return f"goal missed ({', '.join(missed)})" if missed else f"goal met ({named})"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--acks", type=int, nargs="+", default=[0, 1], choices=[0, 1], help="replicas a write waits for"
    )
    parser.add_argument("--rounds", type=int, default=1, help="failovers per ack setting")
    parser.add_argument("--rate", type=float, default=30, help="creates per second, all clients together")
    parser.add_argument("--clients", type=int, default=4, help="client threads")
    parser.add_argument("--model-seconds", type=float, default=0.05, help="how long each prediction runs")
    parser.add_argument("--workers", type=int, default=2, help="workers")
    parser.add_argument("--concurrency", type=int, default=2, help="pool processes per worker")
    parser.add_argument("--before", type=float, default=3, help="seconds of load before the kill")
    parser.add_argument("--after", type=float, default=3, help="seconds of load once the API accepts again")
    parser.add_argument("--drain", type=float, default=60, help="seconds for accepted predictions to end")
    parser.add_argument(
        "--lag", type=float, default=0, help="seconds the primary runs without its replicas before the kill"
    )
    parser.add_argument(
        "--fault",
        choices=["kill", "pause"],
        default="kill",
        help="SIGKILL the primary, or SIGSTOP it until the Sentinels name another, then SIGCONT it",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep each round's directory (logs, runs.txt) and print where"
    )
    parser.add_argument(
        "--overhead-requests",
        type=int,
        default=200,
        help="sync echo requests per round and side of the overhead measured with ack 0 and 1 (0: skip)",
    )
    parser.add_argument("--overhead-rounds", type=int, default=3)
    add_record_option(parser)
    args = parser.parse_args()
    if not 0 <= args.lag < DOWN_AFTER_MS / 1000:
        parser.error(f"--lag must be below the Sentinels' down-after, {DOWN_AFTER_MS / 1000:g} s")
    failed = False
    finished: list[tuple[Run, dict[str, float]]] = []
    for ack in args.acks:
        options = argparse.Namespace(**{k: v for k, v in vars(args).items() if k != "acks"}, ack=ack)
        benchmark = f"failover ack {ack}" + (" paused" if args.fault == "pause" else "")
        script = "bench/failover.py" + (" --fault pause" if args.fault == "pause" else "") + f" --acks {ack}"
        recording = Run(benchmark, options, script=script)
        figures = summary(ack, [one_round(ack, args) for _ in range(args.rounds)])
        said = verdict(benchmark, figures)
        print(f"{benchmark}: {describe(figures, args.lag)}: {said}")
        failed |= said.startswith("goal missed") or bool(figures["not back"])
        finished.append((recording, figures))
    # After the failovers, never before: one run that measured it first (in this process) saw its
    # first round accept fewer creates and leave 101 never ended, which later runs did not repeat.
    cost = ack_cost(args.overhead_requests, args.overhead_rounds) if args.overhead_requests else {}
    for recording, figures in finished:
        recording.finish(figures | (cost if recording.benchmark == "failover ack 1" else {}), None)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

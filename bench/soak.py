"""Soak: mixed load for a long time while worker processes are SIGKILLed and restarted.

A long-run companion to the fault tests (``tests/integration/test_faults.py``).
For ``--seconds``, ``--clients`` threads create predictions one after another:
most on ``bench/runs`` (``tests/fixtures/adapters/records_runs.py``, which
appends ``start``/``done <id> <pid>`` to a file and runs 0–1.5 s, cooperatively),
some on ``bench/fails`` (``raises.py``); some with ``Prefer: wait``, the rest
followed on the updates channel; a quarter cancelled 0–1 s after the create
(a fifth of those twice) by a canceller thread (a held wait's cancel mostly
comes after it ended: a 409). Every ``--kill-every`` seconds or so a killer
SIGKILLs a random worker with its pool processes (``docker kill``) and starts a
replacement. With ``--redis-blips`` seconds, a blipper also hits Redis about
that often, in turn: it kills every client connection (``CLIENT KILL TYPE
normal``: the workers', the API's), or refuses writes for a second (``CONFIG SET
maxmemory 1``: ``OOM command not allowed``). Then the load stops and the workers
get ``--drain`` seconds to finish what is left.

Reported: predictions accepted (``201``), how many ended in each terminal
status, lost (never terminal after the drain, per Redis), ended twice (two
terminal statuses published), completed twice (two ``done`` lines, unless the
first was the last line of a process SIGKILLed then: the one window no design
closes, reported apart as "completed again after a SIGKILL"), a cancel
answered ``200`` that did not end ``cancelled``, and any unexpected HTTP answer.
All of these but the statuses should be zero; so should "re-runs caused by
blips": predictions started again although no process that had started them
was killed (only a SIGKILL may cost a re-run). The worker count is ``--workers``
workers × ``--concurrency`` processes, on both queues.

    python bench/soak.py [--seconds 600] [--clients 4] [--workers 2] [--kill-every 15] [--drain 90]
                         [--redis-blips 5] [--record]
"""

from __future__ import annotations

import argparse
import heapq
import json
import random
import sys
import threading
import time
from collections import Counter, defaultdict

import redis
from client import Client
from harness import Stack, free_port, stack
from procfs import tree
from record import Run, add_record_option
from updates import TERMINAL, Updates

from common.store import keys

QUEUES = ["bench.runs", "bench.fails"]
MODELS = {
    "models": [
        {
            "owner": "bench",
            "name": "runs",
            "versions": [
                {
                    "number": 1,
                    "adapter": "tests.fixtures.adapters.records_runs:RecordsRuns",
                    "queue": QUEUES[0],
                }
            ],
        },
        {
            "owner": "bench",
            "name": "fails",
            "versions": [
                {"number": 1, "adapter": "tests.fixtures.adapters.raises:Raises", "queue": QUEUES[1]}
            ],
        },
    ]
}
"""The models file of this benchmark (JSON is YAML)."""

MUST_BE_ZERO = (
    "lost",
    "ended twice",
    "completed twice",
    "cancel 200, not cancelled",
    "re-runs caused by blips",
)
"""The counts that mean a broken promise."""


class Soak:
    """The load, the canceller and the killer, and what they saw."""

    def __init__(self, s: Stack, port: int, updates: Updates, args: argparse.Namespace) -> None:
        self.s, self.port, self.updates, self.args = s, port, updates, args
        self.record = s.workdir / "runs.txt"
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.accepted: list[str] = []
        self.answers: Counter[str] = Counter()
        self.cancels: dict[str, list[int]] = defaultdict(list)
        self.plan: list[tuple[float, str]] = []
        self.kills = 0
        self.killed_pids: set[int] = set()
        self.blips: Counter[str] = Counter()
        self.workers = [self.start_worker() for _ in range(args.workers)]

    def start_worker(self) -> str:
        """Starts one worker on both queues."""
        return self.s.launcher.start_worker(QUEUES, concurrency=self.args.concurrency)

    def load(self, seed: int) -> None:
        """One client: creates, sometimes waiting, sometimes planning cancels, until stopped."""
        rng, api = random.Random(seed), Client(self.port, timeout=60)
        while not self.stop.is_set():
            input: dict[str, object]
            if rng.random() < 0.15:
                model, input = "bench/fails", {"message": "refused on purpose"}
            else:
                model, input = "bench/runs", {"record_to": str(self.record), "seconds": rng.uniform(0, 1.5)}
            wait = 10.0 if rng.random() < 0.3 else None
            try:
                code, payload = api.create(model, input, wait)
            except OSError as e:
                with self.lock:
                    self.answers[f"create: {type(e).__name__}"] += 1
                continue
            with self.lock:
                self.answers[f"create {code}"] += 1
                if code != 201:
                    continue
                self.accepted.append(payload["id"])
                if rng.random() < 0.25:
                    for _ in range(2 if rng.random() < 0.2 else 1):
                        heapq.heappush(self.plan, (time.monotonic() + rng.uniform(0, 1), payload["id"]))
            if payload["status"] not in TERMINAL:
                self.updates.wait_for([payload["id"]], timeout=60)
        api.close()

    def canceller(self) -> None:
        """Sends the planned cancels when due, recording each answer."""
        api = Client(self.port)
        while not self.stop.is_set() or self.plan:
            with self.lock:
                due = self.plan and self.plan[0][0] <= time.monotonic()
                prediction_id = heapq.heappop(self.plan)[1] if due else None
            if prediction_id is None:
                time.sleep(0.01)
                continue
            try:
                code = api.cancel(prediction_id)
            except OSError:
                code = 0
            with self.lock:
                self.cancels[prediction_id].append(code)
                self.answers[f"cancel {code}"] += 1
        api.close()

    def killer(self) -> None:
        """SIGKILLs a random worker (with its pool) every ``--kill-every`` seconds or so, and replaces it."""
        rng = random.Random(0)
        while not self.stop.wait(rng.uniform(0.5, 1.5) * self.args.kill_every):
            victim = rng.randrange(len(self.workers))
            with self.lock:
                self.killed_pids.update(tree(self.s.launcher.processes[self.workers[victim]].pid))
            self.s.launcher.kill_group(self.workers[victim])
            self.kills += 1
            self.workers[victim] = self.start_worker()

    def blipper(self) -> None:
        """Every ``--redis-blips`` seconds or so: kill Redis's client connections, or a second of OOM."""
        rng, admin = random.Random(1), redis.Redis.from_url(self.s.redis.url)
        kinds = ["connections killed", "a second of OOM"]
        while not self.stop.wait(rng.uniform(0.5, 1.5) * self.args.redis_blips):
            kind = kinds[sum(self.blips.values()) % 2]
            if kind == "connections killed":
                admin.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
            else:
                admin.config_set("maxmemory", "1")
                time.sleep(1)
                admin.config_set("maxmemory", "0")
            self.blips[kind] += 1
        admin.close()

    def run(self) -> None:
        """Runs the load for ``--seconds``, then stops it (the workers keep running)."""
        threads = [threading.Thread(target=self.load, args=(i,)) for i in range(self.args.clients)]
        threads += [threading.Thread(target=self.canceller), threading.Thread(target=self.killer)]
        if self.args.redis_blips:
            threads.append(threading.Thread(target=self.blipper))
        for thread in threads:
            thread.start()
        self.stop.wait(self.args.seconds)
        self.stop.set()
        for thread in threads:
            thread.join()

    def report(self) -> dict[str, int]:
        """Drains, then prints and returns the counts."""
        self.updates.wait_for(self.accepted, timeout=self.args.drain)
        admin = redis.Redis.from_url(self.s.redis.url, decode_responses=True)
        statuses: Counter[str] = Counter()
        for prediction_id in self.accepted:
            status = self.updates.status(prediction_id) or admin.hget(
                keys.prediction(prediction_id), "status"
            )
            statuses[status if status in TERMINAL else "lost"] += 1
        admin.close()
        runs: dict[str, Counter[str]] = defaultdict(Counter)
        starters: dict[str, list[int]] = defaultdict(list)
        lines = [
            line.split() for line in (self.record.read_text() if self.record.exists() else "").splitlines()
        ]
        last_line = {pid: i for i, (_, _, pid) in enumerate(lines)}
        killed_after_done: dict[str, bool] = {}
        for i, (kind, prediction_id, pid) in enumerate(lines):
            runs[prediction_id][kind] += 1
            if kind == "start":
                starters[prediction_id].append(int(pid))
            elif kind == "done" and runs[prediction_id]["done"] > 1:
                # Excusable only as the window no design closes: the process that completed it
                # before was SIGKILLed right after (its last line), before the ending reached Redis.
                earlier = [j for j, (k, p, _) in enumerate(lines[:i]) if k == "done" and p == prediction_id]
                killed_after_done[prediction_id] = killed_after_done.get(prediction_id, True) and all(
                    last_line[lines[j][2]] == j and int(lines[j][2]) in self.killed_pids for j in earlier
                )
        counts = {
            "accepted": len(self.accepted),
            "lost": statuses.pop("lost", 0),
            "ended twice": sum(len(set(ended)) > 1 for ended in self.updates.terminal.values()),
            "completed twice": sum(not excused for excused in killed_after_done.values()),
            "completed again after a SIGKILL": sum(killed_after_done.values()),
            "started again": sum(run["start"] > 1 for run in runs.values()),
            "re-runs caused by blips": sum(
                any(pid not in self.killed_pids for pid in pids[:-1]) for pids in starters.values()
            ),
            "cancel 200, not cancelled": sum(
                200 in codes and self.updates.status(p) != "cancelled" for p, codes in self.cancels.items()
            ),
            "worker kills": self.kills,
        }
        print(f"answers: {dict(sorted(self.answers.items()))}")
        if self.blips:
            print(f"Redis blips: {dict(self.blips)}")
        print(f"terminal statuses: {dict(statuses)}")
        print(", ".join(f"{name}: {count}" for name, count in counts.items()))
        return counts | {f"status {k}": v for k, v in statuses.items()}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=600, help="how long the load runs")
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients")
    parser.add_argument("--workers", type=int, default=2, help="workers, each on both queues")
    parser.add_argument("--concurrency", type=int, default=2, help="pool processes per worker")
    parser.add_argument("--kill-every", type=float, default=15, help="mean seconds between worker kills")
    parser.add_argument("--drain", type=float, default=90, help="seconds to let the rest finish")
    parser.add_argument(
        "--redis-blips", type=float, default=0, help="mean seconds between Redis blips (0: none)"
    )
    add_record_option(parser)
    args = parser.parse_args()
    recording = Run("soak", args)
    extra = {"INFERQ_LEASE_TTL": "5", "INFERQ_RETENTION": str(int(args.seconds + args.drain + 3600))}
    with stack(extra) as s:
        models = s.workdir / "models.yaml"
        models.write_text(json.dumps(MODELS, indent=1))
        s.env["INFERQ_MODELS"] = str(models)
        port = free_port()
        s.launcher.start_api("127.0.0.1", port, workers=1)
        updates = Updates(s.redis.url)
        try:
            soak = Soak(s, port, updates, args)
            soak.run()
            counts = soak.report()
            exited = [name for name, _ in s.launcher.exited() if name == "api"]
        finally:
            updates.close()
    bad = sum(counts[k] for k in MUST_BE_ZERO)
    expected = {"create 201", "cancel 200", "cancel 409"}
    if args.redis_blips:
        expected |= {"create 503", "cancel 503"}  # refused while Redis refuses writes: nothing accepted
    unexpected = sum(n for a, n in soak.answers.items() if a not in expected)
    statuses = ", ".join(f"{k[7:]} {v}" for k, v in counts.items() if k.startswith("status "))
    print(
        f"soak: {args.seconds:g} s, {counts['accepted']} accepted ({statuses}), lost {counts['lost']}, "
        f"completed twice {counts['completed twice']}, ended twice {counts['ended twice']}, "
        f"re-runs caused by blips {counts['re-runs caused by blips']}, "
        f"{counts['worker kills']} worker kills, {sum(soak.blips.values())} Redis blips, "
        f"{unexpected} unexpected answers"
        + (", the API exited" if exited else "")
        + ("" if bad or unexpected or exited else ": nothing lost or duplicated")
    )
    recording.finish(
        {"lost or duplicated": bad + unexpected + len(exited), "unexpected answers": unexpected}
        | counts
        | {"Redis blips": sum(soak.blips.values())},
        None,
    )
    return 1 if bad or unexpected or exited else 0


if __name__ == "__main__":
    sys.exit(main())

"""Fault suites: workers killed, Redis restarted or refusing writes, broker connections dropped,
the API restarted, a storm of cancels.

Every accepted prediction must end in exactly one terminal status, none lost,
none run to completion twice. Each test is bounded in time and request count.
"""

from __future__ import annotations

import collections
import http.client
import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest
import redis
import wriftai

from common.processes.embedded_redis import EmbeddedRedis, free_port
from common.processes.launcher import Launcher
from common.store import keys
from common.store.heartbeats import HEARTBEAT_TTL
from tests.conftest import KEYS, base_env
from tests.integration.conftest import Stack, pool_children, wait_for_status
from tests.integration.redis_faults import out_of_memory, read_only
from tests.integration.terminals import TERMINAL, Terminals

pytestmark = pytest.mark.slow


def _create_many(base_url: str, owner: str, bodies: list[dict[str, object]], threads: int = 4) -> list[str]:
    """Creates every body (without waiting), from a few keep-alive connections; returns the ids."""
    address = urlparse(base_url)
    ids: list[str] = []
    lock = threading.Lock()
    queue = list(bodies)

    def client() -> None:
        connection = http.client.HTTPConnection(address.hostname or "", address.port, timeout=30)
        headers = {"Authorization": f"Bearer {KEYS[owner]}", "Content-Type": "application/json"}
        while True:
            with lock:
                if not queue:
                    connection.close()
                    return
                body = queue.pop()
            connection.request("POST", "/v1/predictions", body=json.dumps(body), headers=headers)
            response = connection.getresponse()
            payload = json.loads(response.read())
            assert response.status == 201, payload
            with lock:
                ids.append(payload["id"])

    workers = [threading.Thread(target=client) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    return ids


def _runs(path: Path) -> dict[str, collections.Counter[str]]:
    found: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for line in path.read_text().splitlines():
        kind, prediction_id, _ = line.split()
        found[prediction_id][kind] += 1
    return found


def test_killing_workers_loses_nothing_and_runs_nothing_twice(
    stack: Stack, start_worker: Callable[..., str], terminals: Terminals, tmp_path: Path
) -> None:
    launcher: Launcher = start_worker.launcher  # type: ignore[attr-defined]
    workers = [start_worker(["tests.runs"]) for _ in range(3)]
    record = tmp_path / "runs.txt"
    bodies: list[dict[str, object]] = [
        {"model": "tests/runs", "input": {"record_to": str(record), "seconds": 0.05}} for _ in range(500)
    ]
    stop = threading.Event()
    kills = []

    def killer() -> None:
        while not stop.wait(2.5):
            victim = random.choice(workers)
            launcher.kill_group(victim)
            kills.append(victim)
            workers[workers.index(victim)] = start_worker(["tests.runs"])

    thread = threading.Thread(target=killer)
    thread.start()
    try:
        ids = _create_many(stack.base_url, "alice", bodies)
        terminals.expect(ids)
        statuses = terminals.wait(timeout=150)
    finally:
        stop.set()
        thread.join(60)

    assert len(ids) == 500 and kills
    assert collections.Counter(statuses.values()) == {"succeeded": 500}, collections.Counter(
        statuses.values()
    )
    runs = _runs(record)
    assert all(runs[pid]["done"] >= 1 for pid in ids)
    repeated = [pid for pid in ids if runs[pid]["done"] > 1]
    assert len(repeated) <= len(kills)
    for pid in repeated:
        assert _completions_before_the_last_died_at_once(record, pid), pid


def _completions_before_the_last_died_at_once(path: Path, prediction_id: str) -> bool:
    """Whether every completion of the prediction but its last was its process's very last line.

    The one window no design closes: a worker killed after its adapter returned
    but before the terminal write reached Redis. Nothing records that the run
    completed, so the lease lapses and the prediction runs again. Any other
    repeat (a process that went on working after completing it) is a bug.
    """
    lines = [line.split() for line in path.read_text().splitlines()]
    last_line = {process: i for i, (_, _, process) in enumerate(lines)}
    done = [i for i, (kind, pid, _) in enumerate(lines) if kind == "done" and pid == prediction_id]
    return all(last_line[lines[i][2]] == i for i in done[:-1])


def test_a_cancel_storm_ends_every_prediction_by_the_contract(stack: Stack, terminals: Terminals) -> None:
    rng = random.Random(7)
    bodies: list[dict[str, object]] = [
        {"model": "inferq/echo", "input": {"prompt": f"storm {i}", "delay_s": rng.choice([0, 0.2, 1, 3])}}
        for i in range(200)
    ]
    ids = _create_many(stack.base_url, "alice", bodies)
    answers: dict[str, list[int]] = collections.defaultdict(list)
    plan = [(pid, rng.uniform(0, 2.5)) for pid in ids] + [(pid, rng.uniform(0, 3.5)) for pid in ids[::3]]
    plan.sort(key=lambda item: item[1])
    started = time.monotonic()
    with httpx.Client(base_url=stack.base_url, headers={"Authorization": f"Bearer {KEYS['alice']}"}) as http:
        for pid, at in plan:
            time.sleep(max(0.0, at - (time.monotonic() - started)))
            answers[pid].append(http.post(f"/v1/predictions/{pid}/cancel").status_code)
    terminals.expect(ids)
    statuses = terminals.wait(timeout=60)

    for pid in ids:
        codes = answers[pid]
        assert set(codes) <= {200, 409}, (pid, codes)
        if 200 in codes:
            assert statuses[pid] == "cancelled", (pid, codes, statuses[pid])
            assert set(codes) == {200}, (pid, codes)  # once taken, every repeat is taken too
        else:
            assert statuses[pid] == "succeeded", (pid, codes, statuses[pid])
    outcome = collections.Counter(statuses.values())
    assert outcome["cancelled"] and outcome["succeeded"]  # the storm hit both sides


def test_redis_restarting_under_load_gives_503s_then_everything_completes(tmp_path: Path) -> None:
    redis_server = EmbeddedRedis(tmp_path / "redis", appendonly=True).start()
    env = base_env(redis_server.url, tmp_path / "data", INFERQ_REDIS_MAX_CONNECTIONS="64")
    launcher = Launcher(env, log_dir=tmp_path / "logs")
    try:
        base = launcher.start_api("127.0.0.1", free_port())
        launcher.start_worker(["inferq.echo"], concurrency=2)
        terminals = Terminals(redis_server.url)
        accepted, unavailable, load_stop = [], [], threading.Event()

        def load() -> None:
            headers = {"Authorization": f"Bearer {KEYS['alice']}"}
            body = {"model": "inferq/echo", "input": {"prompt": "through the outage", "delay_s": 0.05}}
            with httpx.Client(base_url=base, headers=headers, timeout=10) as http:
                while not load_stop.wait(0.01):  # about as fast as the worker keeps up
                    response = http.post("/v1/predictions", json=body)
                    if response.status_code == 201:
                        accepted.append(response.json()["id"])
                    else:
                        assert response.status_code in (429, 503), response.text  # queue full, or Redis down
                        assert int(response.headers["Retry-After"]) >= 1
                        unavailable.append(response.json()["error"]["code"])

        thread = threading.Thread(target=load)
        thread.start()
        time.sleep(1.5)
        redis_server.stop()  # SIGTERM: Redis writes its append-only file and exits
        time.sleep(2.0)
        redis_server.start()  # the same port and directory: it reloads the file
        time.sleep(2.0)
        load_stop.set()
        thread.join(30)

        assert "service_unavailable" in unavailable and set(unavailable) <= {
            "service_unavailable",
            "queue_full",
        }
        assert accepted
        terminals.expect(accepted)
        statuses = terminals.wait(timeout=90)
        terminals.close()
        assert collections.Counter(statuses.values()) == {"succeeded": len(accepted)}
    finally:
        launcher.stop_all()
        redis_server.stop()


def test_clients_of_a_restarted_api_get_their_results(
    stack: Stack, redis_server: EmbeddedRedis, tmp_path: Path
) -> None:
    launcher = Launcher(base_env(redis_server.url, tmp_path), log_dir=tmp_path / "logs")
    port = free_port()
    base = launcher.start_api("127.0.0.1", port)
    try:
        with httpx.Client() as http:
            client = wriftai.Client(access_token=KEYS["alice"], api_base_url=f"{base}/v1", http_client=http)
            _interrupt_and_resume(launcher, port, client, stack)
    finally:
        launcher.stop_all()


def _interrupt_and_resume(launcher: Launcher, port: int, client: wriftai.Client, stack: Stack) -> None:
    streamed = client.predictions.create(
        model="inferq/echo", input={"prompt": "one two three four", "delay_s": 3}, stream=True
    )
    seen: list[dict[str, object]] = []
    errors: list[str] = []
    flowing = threading.Event()

    def follow() -> None:
        try:
            for event in client.predictions.stream(streamed["id"]):
                seen.append(dict(event))
                if event["event"] == "output":
                    flowing.set()
        except httpx.HTTPError as e:
            errors.append(f"stream: {type(e).__name__}")

    def hold() -> None:
        try:
            client.predictions.create(
                model="inferq/echo", input={"prompt": "held through a restart", "delay_s": 3}, wait=True
            )
        except httpx.HTTPError as e:
            errors.append(f"wait: {type(e).__name__}")

    threads = [threading.Thread(target=follow), threading.Thread(target=hold)]
    for thread in threads:
        thread.start()
    assert flowing.wait(30)  # the stream is delivering, and the wait is held
    launcher.kill_group("api")  # the API dies mid-stream and mid-wait
    launcher.start_api("127.0.0.1", port)  # and comes back on the same port
    for thread in threads:
        thread.join(30)

    assert sorted(error.split(":")[0] for error in errors) == ["stream", "wait"]  # both connections broke
    resumed = list(client.predictions.stream(streamed["id"], after_id=str(seen[-1]["id"])))
    events = seen + [dict(e) for e in resumed]
    assert events[0]["event"] == "init" and events[-1]["event"] == "done"
    assert len({e["id"] for e in events}) == len(events)  # no event twice
    assert "".join(str(e["data"]) for e in events if e["event"] == "output") == "one two three four"
    held = next(p for p in client.predictions.list().items if p["id"] != streamed["id"])
    assert client.predictions.wait(held["id"])["output"] == "held through a restart"


@dataclass
class OwnStack:
    """An API and workers on a Redis of their own, so a fault injected into it touches no other test."""

    server: EmbeddedRedis
    client: redis.Redis
    launcher: Launcher
    base_url: str
    logs: Path

    def create(self, body: dict[str, object]) -> str:
        """Creates a prediction (without waiting); returns its id."""
        headers = {"Authorization": f"Bearer {KEYS['alice']}"}
        response = httpx.post(f"{self.base_url}/v1/predictions", json=body, headers=headers, timeout=30)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def log_size(self, name: str) -> int:
        """How long a process's log is now (to look only at what it writes later)."""
        path = self.logs / f"{name}.log"
        return path.stat().st_size if path.exists() else 0

    def log_since(self, name: str, since: int) -> str:
        """What a process has logged after offset ``since``."""
        with (self.logs / f"{name}.log").open(errors="replace") as f:
            f.seek(since)
            return f.read()

    def wait_for_log(self, name: str, since: int, texts: tuple[str, ...], *, times: int = 1) -> None:
        """Polls a process's log until one of ``texts`` appears ``times`` times after offset ``since``."""
        _wait_until(
            lambda: any(self.log_since(name, since).count(text) >= times for text in texts),
            f"{name} logged one of {texts} {times} time(s)",
        )


@pytest.fixture
def own_stack(tmp_path: Path) -> Iterator[OwnStack]:
    """A private Redis and one API process on it; workers are started by the test. All stopped after."""
    server = EmbeddedRedis(tmp_path / "redis", appendonly=False).start()
    client = redis.Redis.from_url(server.url, decode_responses=True)
    logs = tmp_path / "logs"
    launcher = Launcher(base_env(server.url, tmp_path / "data"), log_dir=logs)
    try:
        base_url = launcher.start_api("127.0.0.1", free_port())
        yield OwnStack(server, client, launcher, base_url, logs)
    finally:
        launcher.stop_all()
        client.close()
        server.stop()


def _runs_of(path: Path, prediction_id: str) -> collections.Counter[str]:
    return _runs(path)[prediction_id] if path.exists() else collections.Counter()


def _wait_until(condition: Callable[[], object], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not {what} within {timeout:g} s")
        time.sleep(0.05)


def _supervisors_that_met_an_error(log: str) -> int:
    """How many supervisor threads met a Redis error in this stretch of a worker's log: those that
    died of it (Python prints the thread's end) and, by process, those that logged it and went on."""
    died = log.count("Exception in thread inferq-supervisor")
    went_on = {
        json.loads(line)["process"]
        for line in log.splitlines()
        if line.startswith("{") and "renewing leases failed" in line
    }
    return died + len(went_on)


@pytest.mark.parametrize("fault", [out_of_memory, read_only], ids=["oom", "readonly"])
def test_redis_refusing_writes_for_a_moment_costs_a_running_prediction_nothing(
    own_stack: OwnStack, fault: Callable[[redis.Redis], AbstractContextManager[str]], tmp_path: Path
) -> None:
    # Two pool processes: one runs the prediction, so its supervisor renews a lease through the
    # fault; the other is free, so the worker's consumer keeps asking Redis for messages meanwhile.
    # Leases of ten seconds (renewed every 3.3): the fault, held until every renewal has met it,
    # is over well before one lapses; the run outlasts one, so it needs renewing after the fault.
    own_stack.launcher.env = {**own_stack.launcher.env, "INFERQ_LEASE_TTL": "10"}
    worker = own_stack.launcher.start_worker(["tests.runs"], concurrency=2)
    record = tmp_path / "runs.txt"
    running = own_stack.create({"model": "tests/runs", "input": {"record_to": str(record), "seconds": 14}})
    _wait_until(lambda: _runs_of(record, running)["start"] == 1, "started")
    pool_process = int(record.read_text().split()[2])
    supervisors = 1 + len(pool_children(pool_process))  # its own, and its warden's
    logged = own_stack.log_size(worker)

    with fault(own_stack.client) as error:
        # Held until every supervisor of the prediction has met the error (whether or not it lives
        # through it), and the worker's housekeeping has too (the API's recovery runs on the same tick).
        _wait_until(
            lambda: _supervisors_that_met_an_error(own_stack.log_since(worker, logged)) >= supervisors,
            "met by every supervisor",
        )
        own_stack.wait_for_log(worker, logged, ("housekeeping job beat failed",))
        own_stack.wait_for_log(worker, logged, (error,))
    restored = time.time()

    ended = wait_for_status(own_stack.server.url, running, set(TERMINAL))
    record_hash = own_stack.client.hgetall(keys.prediction(running))
    assert (ended, record_hash["attempts"]) == ("succeeded", "1")
    assert _runs_of(record, running) == {"start": 1, "done": 1}  # the model ran once
    assert own_stack.launcher.exited() == []

    # The loops went on: the heartbeat is fresh again, and a new prediction runs and is waited for.
    def beat_since_the_fault() -> bool:
        lapses_at = own_stack.client.zscore(keys.worker_heartbeats("tests.runs"), worker) or 0
        return lapses_at - HEARTBEAT_TTL > restored

    _wait_until(beat_since_the_fault, "heart-beating again")
    headers = {"Authorization": f"Bearer {KEYS['alice']}", "Prefer": "wait=20"}
    body = {"model": "tests/runs", "input": {"record_to": str(record)}}
    after = httpx.post(f"{own_stack.base_url}/v1/predictions", json=body, headers=headers, timeout=30)
    assert after.json()["status"] == "succeeded", after.text


def test_a_broker_connection_drop_costs_a_running_prediction_nothing(
    own_stack: OwnStack, tmp_path: Path
) -> None:
    # Two pool processes: the message kombu puts back when its connection drops is taken at once
    # by the idle one, while the first still runs the prediction.
    worker = own_stack.launcher.start_worker(["tests.runs"], concurrency=2)
    record = tmp_path / "runs.txt"
    running = own_stack.create({"model": "tests/runs", "input": {"record_to": str(record), "seconds": 5}})
    _wait_until(lambda: _runs_of(record, running)["start"] == 1, "started")
    logged = own_stack.log_size(worker)

    killed = own_stack.client.client_kill_filter(_type="normal", skipme=True)

    assert killed
    own_stack.wait_for_log(worker, logged, ("Connection to broker lost",))
    own_stack.wait_for_log(worker, logged, (f"prediction {running} not run: busy",))  # the copy did nothing
    ended = wait_for_status(own_stack.server.url, running, set(TERMINAL))
    record_hash = own_stack.client.hgetall(keys.prediction(running))
    assert (ended, record_hash["attempts"]) == ("succeeded", "1")
    assert _runs_of(record, running) == {"start": 1, "done": 1}  # the model ran once
    # Nothing is left to deliver it again: no copy queued, none waiting to be restored.
    _wait_until(lambda: own_stack.client.llen(keys.celery_queue("tests.runs")) == 0, "dequeued")
    _wait_until(lambda: own_stack.client.hlen(keys.celery_unacked()) == 0, "acknowledged")


TERMINAL_WRITE_FAILED = ("recording outcomes failed", "raised unexpected")
"""What a pool process logs when the terminal write of a run fails: its retry, or the task's failure."""


def test_redis_refusing_the_terminal_write_for_a_moment_costs_nothing(
    own_stack: OwnStack, tmp_path: Path
) -> None:
    # A lease of ten seconds: the fault, from mid-run to just after the model returned, outlasts none.
    own_stack.launcher.env = {**own_stack.launcher.env, "INFERQ_LEASE_TTL": "10"}
    worker = own_stack.launcher.start_worker(["tests.runs"])
    record = tmp_path / "runs.txt"
    running = own_stack.create({"model": "tests/runs", "input": {"record_to": str(record), "seconds": 1}})
    _wait_until(lambda: _runs_of(record, running)["start"] == 1, "started")
    logged = own_stack.log_size(worker)

    with out_of_memory(own_stack.client):
        _wait_until(lambda: _runs_of(record, running)["done"] == 1, "done")
        own_stack.wait_for_log(worker, logged, TERMINAL_WRITE_FAILED)

    ended = wait_for_status(own_stack.server.url, running, set(TERMINAL))
    record_hash = own_stack.client.hgetall(keys.prediction(running))
    assert (ended, record_hash["attempts"]) == ("succeeded", "1")
    assert _runs_of(record, running) == {"start": 1, "done": 1}  # the model ran once

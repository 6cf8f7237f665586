"""Redis Sentinel: the primary SIGKILLed under load, the replica promoted, nothing accepted lost.

The API and two workers find Redis through three Sentinels; a steady load of
creates (sync and async), streams and cancels runs through the failover. With
``INFERQ_REDIS_REPLICAS_ACK=1`` every prediction answered ``201`` ends in
exactly one terminal status and runs at most once; during the failover the API
answers ``503`` with ``Retry-After``, never a ``500`` or a hang.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import wriftai

from common.processes.embedded_redis import free_port
from common.processes.launcher import Launcher
from tests.conftest import KEYS, base_env
from tests.integration.sentinels import BACK_WITHIN, MASTER, SentinelGroup
from tests.integration.terminals import Terminals

pytestmark = pytest.mark.slow

REQUEST_TIMEOUT = 20.0
"""Seconds a request may take before the test calls it a hang."""


@dataclass
class Load:
    """What a steady load of requests met, shared by its threads."""

    base_url: str
    record: Path
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    accepted: list[tuple[float, str]] = field(default_factory=list)
    answers: collections.Counter[int] = field(default_factory=collections.Counter)
    problems: list[str] = field(default_factory=list)
    streamed: list[str] = field(default_factory=list)

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {KEYS['alice']}"}

    def answered(self, response: httpx.Response) -> str | None:
        """Records one create's answer; returns the prediction id when it was accepted."""
        with self.lock:
            self.answers[response.status_code] += 1
            if response.status_code in (200, 201):
                prediction_id = str(response.json()["id"])
                self.accepted.append((time.monotonic(), prediction_id))
                return prediction_id
            if response.status_code in (429, 503):
                if int(response.headers.get("Retry-After", "0")) < 1:
                    self.problems.append(f"{response.status_code} without Retry-After")
            else:
                self.problems.append(f"{response.status_code}: {response.text[:200]}")
            return None

    def run(self, body: Callable[[httpx.Client], None]) -> None:
        with httpx.Client(base_url=self.base_url, headers=self.headers(), timeout=REQUEST_TIMEOUT) as http:
            while not self.stop.wait(0.05):
                try:
                    body(http)
                except httpx.TimeoutException as e:
                    with self.lock:
                        self.problems.append(f"hang: {type(e).__name__}")
                except httpx.TransportError:
                    pass

    def create_async(self, http: httpx.Client) -> None:
        body = {"model": "tests/runs", "input": {"record_to": str(self.record), "seconds": 0.1}}
        self.answered(http.post("/v1/predictions", json=body))

    def create_sync(self, http: httpx.Client) -> None:
        body = {"model": "tests/runs", "input": {"record_to": str(self.record), "seconds": 0.05}}
        self.answered(http.post("/v1/predictions", json=body, headers={"Prefer": "wait=5"}))

    def create_and_cancel(self, http: httpx.Client) -> None:
        body = {"model": "tests/runs", "input": {"record_to": str(self.record), "seconds": 1}}
        prediction_id = self.answered(http.post("/v1/predictions", json=body))
        if prediction_id is not None:
            time.sleep(0.2)
            response = http.post(f"/v1/predictions/{prediction_id}/cancel")
            if response.status_code not in (200, 503):
                with self.lock:
                    self.problems.append(f"cancel {response.status_code}: {response.text[:200]}")

    def follow_streams(self, _: httpx.Client) -> None:
        """Creates a streamed echo prediction and follows it to its end, resuming after errors."""
        with httpx.Client(timeout=REQUEST_TIMEOUT) as http:
            client = wriftai.Client(
                access_token=KEYS["alice"], api_base_url=f"{self.base_url}/v1", http_client=http
            )
            try:
                created = client.predictions.create(
                    model="inferq/echo", input={"prompt": "one two three", "delay_s": 0.5}, stream=True
                )
            except httpx.HTTPError:
                return  # refused (a 503): nothing accepted
            prediction_id = str(created["id"])
            with self.lock:
                self.accepted.append((time.monotonic(), prediction_id))
                self.answers[201] += 1
            events: list[dict[str, object]] = []
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                after = str(events[-1]["id"]) if events else None
                try:
                    for event in client.predictions.stream(prediction_id, after_id=after):
                        events.append(dict(event))
                    break
                except httpx.HTTPError:
                    time.sleep(0.5)
            text = "".join(str(e["data"]) for e in events if e["event"] == "output")
            with self.lock:
                self.streamed.append(text if events and events[-1]["event"] == "done" else "unfinished")


@pytest.fixture
def group(tmp_path: Path) -> Iterator[SentinelGroup]:
    found = SentinelGroup(tmp_path / "ha").start()
    try:
        yield found
    finally:
        found.stop()


def test_a_failover_under_load_loses_nothing_and_runs_nothing_twice(
    group: SentinelGroup, tmp_path: Path
) -> None:
    env = base_env(
        group.url,
        tmp_path / "data",
        INFERQ_REDIS_MASTER=MASTER,
        INFERQ_REDIS_REPLICAS_ACK="1",
        # A claim must outlive the failover: a lease that lapses while no master takes renewals
        # is released, and the prediction runs again beside its first worker.
        INFERQ_LEASE_TTL=str(int(BACK_WITHIN)),
        INFERQ_REDIS_MAX_CONNECTIONS="64",
        INFERQ_RATE_LIMIT="100000/minute",
    )
    launcher = Launcher(env, log_dir=tmp_path / "logs")
    try:
        load = Load(launcher.start_api("127.0.0.1", free_port()), tmp_path / "runs.txt")
        for _ in range(2):
            launcher.start_worker(["tests.runs", "inferq.echo"], concurrency=2)
        bodies = [load.create_async, load.create_sync, load.create_and_cancel, load.follow_streams]
        threads = [threading.Thread(target=load.run, args=(body,)) for body in bodies]
        for thread in threads:
            thread.start()
        time.sleep(3)
        old_port = group.master_port()
        assert old_port is not None
        old_primary = group.server_on(old_port)
        old_primary.stop(kill=True)
        killed_at = time.monotonic()
        deadline = killed_at + BACK_WITHIN + 5
        while time.monotonic() < deadline and not any(at > killed_at + 0.5 for at, _ in load.accepted):
            time.sleep(0.1)
        time.sleep(3)  # some load on the new master
        load.stop.set()
        for thread in threads:
            thread.join(90)

        back = [at - killed_at for at, _ in load.accepted if at > killed_at + 0.5]
        assert back and back[0] < BACK_WITHIN, f"first create accepted {back[:1]} s after the kill"
        assert load.problems == [], load.problems
        assert load.answers[503] > 0, load.answers  # the failover was seen
        assert group.master_port() not in (None, old_port)

        ids = [prediction_id for _, prediction_id in load.accepted]
        print(f"back after {back[0]:.2f} s; answers {dict(load.answers)}; accepted {len(ids)}")
        terminals = Terminals(group.url, MASTER)
        terminals.expect(ids)
        statuses = terminals.wait(timeout=120)
        terminals.close()
        ended = collections.Counter(statuses.values())
        assert set(ended) <= {"succeeded", "cancelled"}, ended
        assert all(text in ("one two three", "unfinished") for text in load.streamed), load.streamed
        runs = collections.Counter(
            prediction_id
            for kind, prediction_id, _ in map(str.split, load.record.read_text().splitlines())
            if kind == "done"
        )
        assert [pid for pid, done in runs.items() if done > 1] == []

        _old_primary_rejoins_as_a_replica_nobody_writes_to(group, old_primary, load)
    finally:
        launcher.stop_all()


def _old_primary_rejoins_as_a_replica_nobody_writes_to(
    group: SentinelGroup, old_primary: object, load: Load
) -> None:
    server = next(server for server in group.servers if server is old_primary)
    server.start()  # the Sentinels make it a replica of the new master
    client = SentinelGroup.client(server)
    group._wait(lambda: client.info("replication")["role"] == "slave", "the old primary a replica", 30)
    with httpx.Client(base_url=load.base_url, headers=load.headers(), timeout=REQUEST_TIMEOUT) as http:
        for _ in range(10):
            load.create_sync(http)
    assert "cmdstat_evalsha" not in client.info("commandstats")  # no inferq script ran on it
    assert client.info("replication")["role"] == "slave"

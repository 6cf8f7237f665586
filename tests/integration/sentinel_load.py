"""A steady load of creates (sync and async), streams and cancels on inferq pointed at a
:class:`~tests.integration.sentinels.SentinelGroup`: what ``tests/integration/test_sentinel.py``
fails over under, and what every answer was."""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import wriftai

from common.processes.embedded_redis import free_port
from common.processes.launcher import Launcher
from tests.conftest import KEYS, base_env
from tests.integration.sentinels import BACK_WITHIN, MASTER, SentinelGroup

REQUEST_TIMEOUT = 20.0
"""Seconds a request may take before the test calls it a hang."""


@dataclass
class Load:
    """What a steady load of requests met, shared by its threads."""

    base_url: str
    record: Path
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    accepted: list[tuple[float, float, str]] = field(default_factory=list)
    """``(sent, answered, id)`` of each accepted create (``time.monotonic()``)."""
    answers: collections.Counter[int] = field(default_factory=collections.Counter)
    problems: list[str] = field(default_factory=list)
    streamed: list[str] = field(default_factory=list)

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {KEYS['alice']}"}

    def answered(self, sent: float, response: httpx.Response) -> str | None:
        """Records one create's answer; returns the prediction id when it was accepted."""
        with self.lock:
            self.answers[response.status_code] += 1
            if response.status_code in (200, 201):
                prediction_id = str(response.json()["id"])
                self.accepted.append((sent, time.monotonic(), prediction_id))
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
        self.answered(time.monotonic(), http.post("/v1/predictions", json=body))

    def create_sync(self, http: httpx.Client) -> None:
        body = {"model": "tests/runs", "input": {"record_to": str(self.record), "seconds": 0.05}}
        self.answered(time.monotonic(), http.post("/v1/predictions", json=body, headers={"Prefer": "wait=5"}))

    def create_and_cancel(self, http: httpx.Client) -> None:
        body = {"model": "tests/runs", "input": {"record_to": str(self.record), "seconds": 1}}
        prediction_id = self.answered(time.monotonic(), http.post("/v1/predictions", json=body))
        if prediction_id is not None:
            time.sleep(0.2)
            response = http.post(f"/v1/predictions/{prediction_id}/cancel")
            # 409: it finished first (a cancel held up by the failover can arrive after its run).
            if response.status_code not in (200, 409, 503):
                with self.lock:
                    self.problems.append(f"cancel {response.status_code}: {response.text[:200]}")

    def follow_streams(self, _: httpx.Client) -> None:
        """Creates a streamed echo prediction and follows it to its end, resuming after errors."""
        with httpx.Client(timeout=REQUEST_TIMEOUT) as http:
            client = wriftai.Client(
                access_token=KEYS["alice"], api_base_url=f"{self.base_url}/v1", http_client=http
            )
            sent = time.monotonic()
            try:
                created = client.predictions.create(
                    model="inferq/echo", input={"prompt": "one two three", "delay_s": 0.5}, stream=True
                )
            except httpx.HTTPError:
                return  # refused (a 503): nothing accepted
            prediction_id = str(created["id"])
            with self.lock:
                self.accepted.append((sent, time.monotonic(), prediction_id))
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


def inferq_env(group: SentinelGroup, tmp_path: Path, failover: float = BACK_WITHIN) -> dict[str, str]:
    """inferq pointed at ``group``'s Sentinels, each write acknowledged by a replica, with leases that
    outlive a ``failover`` seconds long."""
    return base_env(
        group.url,
        tmp_path / "data",
        INFERQ_REDIS_MASTER=MASTER,
        INFERQ_REDIS_REPLICAS_ACK="1",
        # A claim must outlive the failover: a lease that lapses while no master takes renewals
        # is released, and the prediction runs again beside its first worker.
        INFERQ_LEASE_TTL=str(int(failover)),
        INFERQ_REDIS_MAX_CONNECTIONS="64",
        INFERQ_RATE_LIMIT="100000/minute",
    )


@contextmanager
def inferq(
    group: SentinelGroup,
    tmp_path: Path,
    *,
    failover: float = BACK_WITHIN,
    workers: int = 1,
    queues: list[str] | None = None,
    concurrency: int = 2,
) -> Iterator[Load]:
    """The API and ``workers`` workers on ``group`` (:func:`inferq_env`), stopped after the block;
    yields the load that drives them."""
    launcher = Launcher(inferq_env(group, tmp_path, failover), log_dir=tmp_path / "logs")
    try:
        load = Load(launcher.start_api("127.0.0.1", free_port()), tmp_path / "runs.txt")
        for _ in range(workers):
            launcher.start_worker(queues or ["tests.runs"], concurrency=concurrency)
        yield load
    finally:
        launcher.stop_all()


@contextmanager
def running(load: Load, bodies: list[Callable[[httpx.Client], None]]) -> Iterator[None]:
    """Runs each of ``bodies`` in a loop on a thread of its own for the duration of the block."""
    threads = [threading.Thread(target=load.run, args=(body,)) for body in bodies]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        load.stop.set()
        for thread in threads:
            thread.join(90)

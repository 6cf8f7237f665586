"""The running stack: real gunicorn API and real Celery worker processes on the private Redis."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
import pytest
import redis
import wriftai

from common.processes.embedded_redis import EmbeddedRedis, free_port
from common.processes.launcher import Launcher
from common.store import keys
from common.store.notifier import split_news
from tests.conftest import KEYS, base_env
from tests.integration.batch_client import client_for
from tests.integration.sentinels import SentinelGroup
from tests.integration.terminals import Terminals


@dataclass
class Stack:
    """The API's base URL, the environment its processes share, and their launcher."""

    base_url: str
    env: dict[str, str]
    launcher: Launcher
    logs: Path

    @contextmanager
    def client(self, owner: str = "alice") -> Iterator[wriftai.Client]:
        """The official client, authenticated as ``owner``, its connections closed after."""
        with httpx.Client(timeout=httpx.Timeout(None, connect=10.0)) as http:
            yield wriftai.Client(
                access_token=KEYS[owner], api_base_url=f"{self.base_url}/v1", http_client=http
            )

    def http(self, owner: str = "alice") -> httpx.Client:
        """A plain HTTP client on the API, authenticated as ``owner`` (use it in a ``with``)."""
        return httpx.Client(base_url=self.base_url, headers={"Authorization": f"Bearer {KEYS[owner]}"})


@pytest.fixture
def own_api(redis_server: EmbeddedRedis, tmp_path: Path) -> Iterator[Callable[..., str]]:
    """Starts an API of its own (on the shared Redis) with some settings changed; stopped after."""
    launcher = Launcher(base_env(redis_server.url, tmp_path), log_dir=tmp_path / "logs")

    def start(**env: str) -> str:
        launcher.env = {**launcher.env, **env}
        return launcher.start_api("127.0.0.1", free_port(), name=f"api-{len(launcher.processes)}")

    start.launcher = launcher  # type: ignore[attr-defined]
    yield start
    launcher.stop_all()


@pytest.fixture(scope="session")
def stack(redis_server: EmbeddedRedis, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One API process and one worker (two processes) for echo, sketch and webhooks, for the whole run."""
    logs = tmp_path_factory.mktemp("logs")
    env = base_env(redis_server.url, tmp_path_factory.mktemp("data"))
    launcher = Launcher(env, log_dir=logs)
    try:
        base_url = launcher.start_api("127.0.0.1", free_port())
        queues = ["inferq.echo", "inferq.sketch", "inferq.hash-embed", "inferq.webhooks"]
        launcher.start_worker(queues, concurrency=2, name="default@tests")
        yield Stack(base_url, env, launcher, logs)
    finally:
        launcher.stop_all()


@pytest.fixture(autouse=True)
def _flushed(redis_server: EmbeddedRedis) -> None:
    """Every integration test starts with an empty database."""
    client = redis.Redis.from_url(redis_server.url)
    client.flushdb()
    client.close()


@pytest.fixture
def alice(stack: Stack) -> Iterator[wriftai.Client]:
    """The official client as owner ``alice``."""
    with stack.client("alice") as client:
        yield client


@pytest.fixture
def bob(stack: Stack) -> Iterator[wriftai.Client]:
    """The official client as owner ``bob``."""
    with stack.client("bob") as client:
        yield client


@pytest.fixture
def oai(stack: Stack) -> Iterator[openai.OpenAI]:
    """An ``openai`` client of alice's on the stack (no retries)."""
    client = client_for(stack.base_url)
    yield client
    client.close()


@pytest.fixture
def start_worker(stack: Stack) -> Iterator[Callable[..., str]]:
    """Starts workers for one test on the given queues; all are stopped after it."""
    launcher = Launcher(stack.env, log_dir=stack.logs)

    def start(queues: list[str], concurrency: int = 1, **env: str) -> str:
        launcher.env = {**stack.env, **env}
        return launcher.start_worker(queues, concurrency=concurrency)

    start.launcher = launcher  # type: ignore[attr-defined]
    yield start
    launcher.stop_all()


def wait_for_status(redis_url: str, prediction_id: str, statuses: set[str], timeout: float = 60.0) -> str:
    """Blocks until the prediction reaches one of ``statuses`` (heard on the updates and progress news)."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(keys.updates_channel(), keys.progress_channel())
    try:
        for _ in range(2):  # both subscriptions are live
            pubsub.get_message(ignore_subscribe_messages=False, timeout=5)
        current = client.hget(keys.prediction(prediction_id), "status")
        deadline = time.monotonic() + timeout
        while current not in statuses:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{prediction_id} stayed {current}, not {statuses}")
            message = pubsub.get_message(timeout=remaining)
            if message is not None:
                about, note, _ = split_news(message["data"])
                current = note if about == prediction_id else current
        return str(current)
    finally:
        pubsub.close()
        client.close()


def pool_children(pid: int) -> list[int]:
    """The pids of a process's children (a Celery worker's pool processes)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in children]


@pytest.fixture
def group(tmp_path: Path) -> Iterator[SentinelGroup]:
    """A primary, two replicas and three Sentinels of this test's own."""
    found = SentinelGroup(tmp_path / "ha").start()
    try:
        yield found
    finally:
        found.stop()


@pytest.fixture
def terminals(stack: Stack) -> Iterator[Terminals]:
    """Collects terminal statuses from the stack's Redis."""
    found = Terminals(stack.env["INFERQ_REDIS_URL"])
    yield found
    found.close()

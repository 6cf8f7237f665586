"""The webhook deliverer against hostile receivers: real Redis, real sockets, loopback only.

A receiver that answers a byte at a time must not hold a delivery past its
deadline, nor let a second deliverer post beside it; a deliverer whose lock
lapsed must not drop a snapshot it never posted; and a host name that
resolves to a public address for the check and to loopback for the
connection (DNS rebinding) must not reach loopback.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import redis

from common.config import Settings
from common.ids import new_prediction_id
from common.records import ModelRef, Prediction, Status
from common.store import keys
from common.store import outbox as outbox_module
from common.store.outbox import Outbox
from tests.integration.redis_faults import REFUSALS
from workers.webhooks import WebhookDeliverer

DRIBBLE = b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 10_000
"""A response head that never ends, sent a byte every 0.2 s."""

PUBLIC = "93.184.215.14"
"""A public address the rebinding resolver names at check time (never connected to)."""


@dataclass
class Receiver:
    """A loopback webhook receiver; ``behave(n, status)`` answers its ``n``-th request (from 0)."""

    behave: Callable[[int, str, BaseHTTPRequestHandler], int]
    url: str = ""
    statuses: list[str] = field(default_factory=list)
    answered: list[tuple[str, int]] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)
    arrived: list[threading.Event] = field(default_factory=lambda: [threading.Event() for _ in range(8)])
    stopping: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture
def serve() -> Iterator[Callable[..., Receiver]]:
    """Starts receivers on loopback for one test; all are stopped after it."""
    servers: list[tuple[ThreadingHTTPServer, Receiver]] = []

    def start(behave: Callable[[int, str, BaseHTTPRequestHandler], int]) -> Receiver:
        found = Receiver(behave)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - the http.server hook
                status = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["status"]
                with found.lock:
                    index = len(found.statuses)
                    found.statuses.append(status)
                    found.hosts.append(self.headers["Host"])
                found.arrived[index].set()
                code = found.behave(index, status, self)
                if code:
                    with found.lock:
                        found.answered.append((status, code))
                    self.send_response(code)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                self.close_connection = True

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        found.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append((server, found))
        return found

    yield start
    for server, found in servers:
        found.stopping.set()
        server.shutdown()
        server.server_close()


def dribble_until_closed(handler: BaseHTTPRequestHandler, stopping: threading.Event) -> None:
    """Sends :data:`DRIBBLE` a byte every 0.2 s until the client hangs up (or the test ends)."""
    conn = handler.connection
    for byte in DRIBBLE:
        if stopping.is_set():
            return
        readable, _, _ = select.select([conn], [], [], 0.2)
        try:
            if readable and not conn.recv(1, socket.MSG_PEEK):
                return  # the client closed its end
            conn.sendall(bytes([byte]))
        except OSError:
            return


def snapshot(prediction_id: str, status: Status, url: str) -> str:
    """A snapshot as the store's scripts take it: the record hash plus ``logs``."""
    model = ModelRef("inferq", "echo", 1)
    now = time.time()
    record = Prediction(
        prediction_id, "alice", model, "inferq.echo", {"prompt": "hi"}, status, now, now, webhook={"url": url}
    )
    return json.dumps({**record.to_hash(), "logs": ""})


def queued(client: redis.Redis, url: str, *statuses: Status) -> tuple[str, list[str]]:
    """A prediction with one snapshot per status waiting in its outbox; returns its id and them."""
    prediction_id = new_prediction_id()
    raws = [snapshot(prediction_id, status, url) for status in statuses]
    client.rpush(keys.webhook_outbox(prediction_id), *raws)
    # Due later, so the recovery of a test stack running meanwhile leaves it to the test's deliverers.
    client.zadd(keys.webhooks_due(), {prediction_id: time.time() + 3600})
    return prediction_id, raws


def waiting(client: redis.Redis, prediction_id: str) -> list[str]:
    return list(client.lrange(keys.webhook_outbox(prediction_id), 0, -1))


def in_thread(target: Callable[[], Any]) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            target()
        except BaseException as e:  # reported by the test
            errors.append(e)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, errors


def test_a_dribbling_receiver_cannot_hold_an_attempt_past_its_deadline_nor_share_it(
    redis_client: redis.Redis, serve: Callable[..., Receiver], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outbox_module, "LOCK_SECONDS", 5)  # a lock that lapses soon, unless renewed
    first_ended = threading.Event()
    overlapped: list[bool] = []

    def behave(index: int, status: str, handler: BaseHTTPRequestHandler) -> int:
        if index == 0:
            dribble_until_closed(handler, receiver.stopping)
            first_ended.set()
            return 0
        overlapped.append(not first_ended.wait(2))  # is the first attempt still going on?
        return 200

    receiver = serve(behave)
    settings = Settings.defaults(webhook_allow_private=True, webhook_timeout=1.0)
    prediction_id, _ = queued(redis_client, receiver.url, Status.STARTED, Status.SUCCEEDED)

    first, errors = in_thread(lambda: WebhookDeliverer(Outbox(redis_client), settings).deliver(prediction_id))
    assert receiver.arrived[0].wait(10)
    deadline = time.monotonic() + 15
    while redis_client.exists(keys.webhook_lock(prediction_id)) and time.monotonic() < deadline:
        time.sleep(0.05)  # until the first deliverer lets go of the outbox, or its lock lapses
    WebhookDeliverer(Outbox(redis_client), settings).deliver(prediction_id)  # a second deliverer

    assert overlapped == [False, False], "the second deliverer posted during the first one's attempt"
    first.join(10)
    assert not first.is_alive(), "the slow attempt outlived its deadline"
    assert errors == []
    assert receiver.answered == [("started", 200), ("succeeded", 200)]
    assert waiting(redis_client, prediction_id) == []


def test_a_deliverer_whose_lock_lapsed_cannot_drop_a_later_snapshot(
    redis_client: redis.Redis, serve: Callable[..., Receiver]
) -> None:
    release = threading.Event()

    def behave(index: int, status: str, handler: BaseHTTPRequestHandler) -> int:
        if index == 0:
            release.wait(10)  # the first deliverer's attempt, held until its lock has lapsed
            return 200
        return 503 if index == 2 else 200  # the second deliverer fails at the terminal snapshot

    receiver = serve(behave)
    settings = Settings.defaults(webhook_allow_private=True, webhook_timeout=30.0)
    prediction_id, raws = queued(redis_client, receiver.url, Status.STARTED, Status.SUCCEEDED)

    first, errors = in_thread(lambda: WebhookDeliverer(Outbox(redis_client), settings).deliver(prediction_id))
    assert receiver.arrived[0].wait(10)
    redis_client.delete(keys.webhook_lock(prediction_id))  # as if its process had stalled for minutes
    WebhookDeliverer(Outbox(redis_client), settings).deliver(prediction_id)
    assert receiver.statuses == ["started", "started", "succeeded"]
    release.set()
    first.join(10)
    assert not first.is_alive()

    assert waiting(redis_client, prediction_id) == raws[1:], "the terminal snapshot was dropped unposted"
    assert errors == []
    WebhookDeliverer(Outbox(redis_client), settings).deliver(prediction_id)
    assert receiver.answered[-1] == ("succeeded", 200)
    assert waiting(redis_client, prediction_id) == []


Resolver = Callable[[str, str], list[str]]


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> Resolver:
    """``resolver(first, then)`` makes ``rebind.test`` resolve to ``first`` once, then to ``then``
    (other names as usual); it returns the list of answers given, which grows."""
    real = socket.getaddrinfo
    answers: list[str] = []

    def install(first: str, then: str) -> list[str]:
        def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
            if host != "rebind.test":
                return real(host, port, *args, **kwargs)
            answers.append(then if answers else first)
            return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (answers[-1], int(port)))]

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
        return answers

    return install


def test_a_host_that_rebinds_to_loopback_after_the_check_is_not_connected_to(
    redis_client: redis.Redis, serve: Callable[..., Receiver], resolver: Resolver
) -> None:
    answers = resolver(PUBLIC, "127.0.0.1")
    receiver = serve(lambda index, status, handler: 200)
    port = receiver.url.rsplit(":", 1)[1].split("/")[0]
    settings = Settings.defaults(webhook_allow_private=False)
    prediction_id, raws = queued(redis_client, f"http://rebind.test:{port}/hook", Status.SUCCEEDED)

    WebhookDeliverer(Outbox(redis_client), settings).deliver(prediction_id)

    assert answers[:2] == [PUBLIC, "127.0.0.1"]  # the check, then the connection
    assert receiver.statuses == [], "the delivery reached loopback"
    assert waiting(redis_client, prediction_id) == raws  # a failed attempt, to be tried again


def test_a_host_name_is_connected_to_through_the_check_and_kept_in_the_host_header(
    redis_client: redis.Redis, serve: Callable[..., Receiver], resolver: Resolver
) -> None:
    answers = resolver("127.0.0.1", "127.0.0.1")
    receiver = serve(lambda index, status, handler: 200)
    port = receiver.url.rsplit(":", 1)[1].split("/")[0]
    settings = Settings.defaults(webhook_allow_private=True)  # loopback allowed, as in development
    prediction_id, _ = queued(redis_client, f"http://rebind.test:{port}/hook", Status.SUCCEEDED)

    WebhookDeliverer(Outbox(redis_client), settings).deliver(prediction_id)

    assert receiver.answered == [("succeeded", 200)]
    assert receiver.hosts == [f"rebind.test:{port}"]
    assert answers == ["127.0.0.1"]  # resolved once, by the connection's check
    assert waiting(redis_client, prediction_id) == []


@pytest.mark.parametrize("refusal", sorted(REFUSALS))
def test_a_deliverer_outlives_redis_refusing_writes_and_delivers_after(
    redis_client: redis.Redis, serve: Callable[..., Receiver], refusal: str
) -> None:
    receiver = serve(lambda index, status, handler: 200)
    settings = Settings.defaults(webhook_allow_private=True, webhook_timeout=5.0)
    prediction_id, _ = queued(redis_client, receiver.url, Status.SUCCEEDED)
    with REFUSALS[refusal](redis_client):
        WebhookDeliverer(Outbox(redis_client), settings).deliver(prediction_id)  # no exception

    assert receiver.statuses == []
    assert redis_client.zscore(keys.webhooks_due(), prediction_id) is not None, "no longer due"
    WebhookDeliverer(Outbox(redis_client), settings).deliver(prediction_id)
    assert receiver.answered == [("succeeded", 200)]
    assert waiting(redis_client, prediction_id) == []

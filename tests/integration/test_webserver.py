"""The API's web server: a connection left idle is closed after ``--keep-alive`` seconds; a request
that has arrived is not, however long it is held."""

from __future__ import annotations

import http.client
import socket
import time
from collections.abc import Iterator

import httpx
import pytest
import wriftai

from common.processes.embedded_redis import free_port
from common.processes.launcher import Launcher
from tests.conftest import KEYS
from tests.integration.conftest import Stack

KEEPALIVE = 1


@pytest.fixture
def port(stack: Stack) -> Iterator[int]:
    """The port of an API process (beside the stack's) that closes connections idle for 1 s."""
    launcher = Launcher(stack.env, log_dir=stack.logs)
    chosen = free_port()
    launcher.start_api("127.0.0.1", chosen, name="api-keepalive", keepalive=KEEPALIVE)
    yield chosen
    launcher.stop_all()


def seconds_until_closed(sock: socket.socket, limit: float = 10.0) -> float:
    """How long until the server closes ``sock`` (which must have nothing left to read)."""
    sock.settimeout(limit)
    started = time.monotonic()
    assert sock.recv(1) == b""
    return time.monotonic() - started


def test_a_connection_that_never_sends_is_closed(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port)) as silent:
        assert KEEPALIVE - 0.5 < seconds_until_closed(silent) < KEEPALIVE + 5


def test_a_kept_alive_connection_is_reused_then_closed_once_idle(port: int) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for _ in range(2):
        connection.request("GET", "/healthz")
        response = connection.getresponse()
        assert response.status == 200
        response.read()
    sock = connection.sock
    assert sock is not None
    assert KEEPALIVE - 0.5 < seconds_until_closed(sock) < KEEPALIVE + 5
    connection.close()


def test_a_held_wait_outlasts_the_keep_alive(port: int) -> None:
    with httpx.Client(timeout=30) as http:
        client = wriftai.Client(
            access_token=KEYS["alice"], api_base_url=f"http://127.0.0.1:{port}/v1", http_client=http
        )
        done = client.predictions.create(
            model="inferq/echo", input={"prompt": "still here", "delay_s": KEEPALIVE + 1.5}, wait=True
        )
    assert (done["status"], done["output"]) == ("succeeded", "still here")

"""The API's web server: a connection left idle is closed after ``--keep-alive`` seconds, one whose
request dribbles in after ``INFERQ_REQUEST_READ_TIMEOUT``; a request that has arrived is not, however
long it is held."""

from __future__ import annotations

import http.client
import json
import select
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
READ_TIMEOUT = 1


@pytest.fixture
def port(stack: Stack) -> Iterator[int]:
    """The port of an API process (beside the stack's) that closes connections idle for 1 s."""
    launcher = Launcher(stack.env, log_dir=stack.logs)
    chosen = free_port()
    launcher.start_api("127.0.0.1", chosen, name="api-keepalive", keepalive=KEEPALIVE)
    yield chosen
    launcher.stop_all()


@pytest.fixture
def slow_port(stack: Stack) -> Iterator[int]:
    """The port of an API process that gives a request 1 s to arrive whole (and keeps idle ones 30 s)."""
    launcher = Launcher({**stack.env, "INFERQ_REQUEST_READ_TIMEOUT": str(READ_TIMEOUT)}, log_dir=stack.logs)
    chosen = free_port()
    launcher.start_api("127.0.0.1", chosen, name="api-read-timeout", keepalive=30)
    yield chosen
    launcher.stop_all()


def dribble(sock: socket.socket, data: bytes, limit: float = 15.0) -> bytes:
    """Sends ``data`` a byte every 50 ms until the server answers or closes, within ``limit``
    seconds; returns what it answered (fails if it let the whole ``data`` or ``limit`` through)."""
    deadline = time.monotonic() + limit
    for byte in data:
        assert time.monotonic() < deadline, "the server still waits for the request"
        readable, _, _ = select.select([sock], [], [], 0.05)
        if readable:
            break
        try:
            sock.sendall(bytes([byte]))
        except (BrokenPipeError, ConnectionResetError):
            break
    else:
        raise AssertionError("the server took the whole slow request")
    sock.settimeout(limit)
    answer = b""
    try:
        while chunk := sock.recv(65536):
            answer += chunk
    except ConnectionResetError:
        pass
    return answer


def test_headers_sent_a_byte_at_a_time_get_408_and_a_closed_connection(slow_port: int) -> None:
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 4000 + b"\r\n\r\n"
    with socket.create_connection(("127.0.0.1", slow_port)) as sock:
        answer = dribble(sock, head)
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["error"]["code"] == "request_timeout"


def test_a_body_sent_a_byte_at_a_time_gets_408_and_a_closed_connection(slow_port: int) -> None:
    body = json.dumps({"model": "inferq/echo", "input": {"prompt": "p" * 4000}}).encode()
    head = (
        f"POST /v1/predictions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEYS['alice']}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", slow_port)) as sock:
        sock.sendall(head)
        answer = dribble(sock, body)
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["error"]["code"] == "request_timeout"


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

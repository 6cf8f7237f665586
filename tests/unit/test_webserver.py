"""The API's connection handler writes a response's head and body in one send."""

from __future__ import annotations

import http.client
import io
import socket
from collections.abc import Callable, Iterable
from types import SimpleNamespace
from typing import Any

import pytest
from gevent import pywsgi

from common.processes.webserver import ONE_SEND_LIMIT, IdleClosingHandler

App = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class RecordingSocket:
    """A socket that remembers every ``sendall``, and does everything else as the real one."""

    def __init__(self, sock: socket.socket) -> None:
        self._wrapped = sock
        self.sent: list[bytes] = []

    def sendall(self, data: bytes) -> None:
        self.sent.append(bytes(data))
        self._wrapped.sendall(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._wrapped, name)


def serve_one(app: App) -> tuple[http.client.HTTPResponse, bytes, list[bytes]]:
    """Serves one ``GET /`` with ``app`` through the handler; returns the parsed response,
    its body, and what the handler passed to each ``sendall``."""
    server_end, client_end = socket.socketpair()
    server = pywsgi.WSGIServer(("127.0.0.1", 0), app)
    server.log = SimpleNamespace(access=lambda *args: None)  # gunicorn's access logger
    recording = RecordingSocket(server_end)
    with server_end, client_end:
        client_end.sendall(b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        with server_end.makefile("rb") as rfile:
            IdleClosingHandler(recording, ("127.0.0.1", 1), server, rfile).handle()  # answers, then closes
        client_end.settimeout(10)
        raw = b"".join(iter(lambda: client_end.recv(65536), b""))
    response = http.client.HTTPResponse(FakeSocket(raw))
    response.begin()
    return response, response.read(), recording.sent


class FakeSocket:
    """What ``http.client.HTTPResponse`` reads a recorded response from."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw

    def makefile(self, mode: str) -> io.BytesIO:
        return io.BytesIO(self.raw)


def sized(body: bytes) -> App:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        start_response("201 Created", headers)
        return [body]

    return app


def test_a_response_goes_out_in_one_send() -> None:
    body = b'{"status": "succeeded"}'
    response, received, sent = serve_one(sized(body))
    assert response.status == 201
    assert response.getheader("Content-Type") == "application/json"
    assert received == body
    assert len(sent) == 1
    assert sent[0].startswith(b"HTTP/1.1 201 Created\r\n") and sent[0].endswith(b"\r\n\r\n" + body)


@pytest.mark.parametrize("size", [ONE_SEND_LIMIT, ONE_SEND_LIMIT + 1])
def test_a_large_body_is_sent_whole(size: int) -> None:
    body = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    response, received, sent = serve_one(sized(body))
    assert response.status == 201 and received == body
    assert len(sent) == (1 if size <= ONE_SEND_LIMIT else 2)


def test_a_chunked_response_keeps_its_framing() -> None:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/event-stream")])
        yield b"data: one\n\n"
        yield b"data: two\n\n"

    response, received, sent = serve_one(app)
    assert response.status == 200
    assert response.getheader("Transfer-Encoding") == "chunked"
    assert received == b"data: one\n\ndata: two\n\n"
    assert sent[0].endswith(b"\r\n\r\nb\r\ndata: one\n\n\r\n")  # the head with the first chunk

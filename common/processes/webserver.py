"""The API's gunicorn worker: gevent's own HTTP server, closing connections left idle.

(It lives outside ``api`` because gunicorn's master imports the worker class
before it forks, and the app must be imported only in the workers, after
gevent has patched the standard library.)

gunicorn's ``gevent_pywsgi`` worker serves with :mod:`gevent.pywsgi`, which
costs less CPU per request than gunicorn's own parser (see ``bench/README.md``).
gevent sends a response's head and body in two sends; :class:`IdleClosingHandler`
sends them in one (a large body excepted). Unlike gunicorn's other
workers it would keep an idle connection open for ever, so idle clients could
fill the ``--worker-connections`` pool. :class:`Worker` gives each connection
``--keep-alive`` seconds to start its next request, as gunicorn's ``gevent``
worker does, and from its first byte ``INFERQ_REQUEST_READ_TIMEOUT`` seconds to
send all of it: request line, headers and body. (gevent bounds none of these,
so a client sending its headers a byte at a time held a connection for as long
as it liked.) A client too slow gets ``408`` and its connection is closed: the
JSON error body when its body was late (the app answers), a fixed one when its
head was. A request that has arrived is never cut short: held waits and event
streams last as long as they need.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import Any, BinaryIO

import gevent
from gunicorn.workers.ggevent import GeventPyWSGIWorker, PyWSGIHandler

from common.config import Settings
from common.errors import RequestTimedOut

ONE_SEND_LIMIT = 64 * 1024
"""Bytes of body up to which a response's head and body go out in one send."""

TOO_SLOW = "The request was not sent in time."
"""The message of a ``408``."""


def _timeout_response() -> bytes:
    error = {"message": TOO_SLOW, "type": RequestTimedOut.error_type, "param": None}
    body = json.dumps({"detail": TOO_SLOW, "error": {**error, "code": RequestTimedOut.code}}).encode()
    head = (
        "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


TIMEOUT_RESPONSE = _timeout_response()
"""The whole ``408`` sent when a request's head is late (the app never sees that request)."""


class DeadlineReader:
    """A request's input, read until the request's deadline, then :class:`RequestTimedOut`.

    gevent's ``wsgi.input`` reads its body (and chunk sizes) through this.
    """

    def __init__(self, rfile: BinaryIO, deadline: float) -> None:
        self._rfile = rfile
        self._deadline = deadline

    def read(self, size: int = -1) -> bytes:
        return self._call(self._rfile.read, size)

    def readline(self, size: int = -1) -> bytes:
        return self._call(self._rfile.readline, size)

    def _call(self, method: Callable[[int], bytes], size: int) -> bytes:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise RequestTimedOut(TOO_SLOW)
        with gevent.Timeout(remaining, RequestTimedOut(TOO_SLOW)):
            return method(size)


class IdleClosingHandler(PyWSGIHandler):
    """A connection handler that closes a connection when no request starts in time, answers
    ``408`` to a request not sent in time, and sends a response's head and first body chunk
    together."""

    keepalive: float = 75.0
    """Seconds to wait for a request to start; 0 waits for ever (set from gunicorn's ``--keep-alive``)."""

    read_timeout: float = 60.0
    """Seconds from a request's first byte to its last (set from ``INFERQ_REQUEST_READ_TIMEOUT``)."""

    _held: list[bytes] | None = None
    """What :meth:`_sendall` holds back while the head is written."""

    _deadline: float | None = None
    """When the request being read must have arrived whole (monotonic clock)."""

    _head_timer: gevent.Timeout | None = None
    """Interrupts reading the request line and headers at the deadline."""

    def read_requestline(self) -> str:
        started = False
        with gevent.Timeout(self.keepalive or None, False):
            started = bool(self.rfile.peek(1))  # waits for the first byte
        if not started:
            return ""  # an empty line closes the connection
        self._deadline = time.monotonic() + self.read_timeout
        self._head_timer = gevent.Timeout.start_new(self.read_timeout, RequestTimedOut(TOO_SLOW))
        return super().read_requestline()

    def handle_one_request(self) -> Any:
        try:
            return super().handle_one_request()
        except RequestTimedOut:  # from the request line (gevent catches the rest)
            self.close_connection = True
            return ("408", TIMEOUT_RESPONSE)
        finally:
            self._stop_head_timer()
            self._deadline = None

    def _handle_client_error(self, ex: BaseException) -> Any:
        """Answers a request whose headers came too late (gevent's hook for bad requests)."""
        if isinstance(ex, RequestTimedOut):
            self.close_connection = True
            return ("408", TIMEOUT_RESPONSE)
        return super()._handle_client_error(ex)

    def get_environ(self) -> dict[str, Any]:
        """The request's environment, once its head has arrived: its body is read against the deadline."""
        self._stop_head_timer()
        env: dict[str, Any] = super().get_environ()
        if self._deadline is not None:
            self.wsgi_input.rfile = DeadlineReader(self.rfile, self._deadline)
        return env

    def handle_error(self, t: Any, v: BaseException, tb: Any) -> None:
        """Closes the connection of a request whose body came too late after the app answered
        (gevent reads what the app left unread); anything else is a server error as usual."""
        if isinstance(v, RequestTimedOut):
            self.close_connection = True
            return
        super().handle_error(t, v, tb)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.close()
            self._head_timer = None

    def _write_with_headers(self, data: bytes) -> None:
        """Writes the status line, headers and ``data`` in one send (gevent makes two).

        Two sends cost a second system call per response and wake the client
        twice. A large body still goes out on its own, to save copying it.
        """
        if len(data) > ONE_SEND_LIMIT:
            super()._write_with_headers(data)
            return
        self._held = []
        try:
            super()._write_with_headers(data)
            pieces = self._held
        finally:
            self._held = None
        self._sendall(b"".join(pieces))

    def _sendall(self, data: bytes) -> None:
        if self._held is None:
            super()._sendall(data)
        else:
            self._held.append(bytes(data))


class Worker(GeventPyWSGIWorker):
    """gunicorn's ``gevent_pywsgi`` worker with :class:`IdleClosingHandler`."""

    def init_process(self) -> None:
        timings = {
            "keepalive": float(self.cfg.keepalive),
            "read_timeout": Settings.from_env(os.environ).request_read_timeout,
        }
        self.wsgi_handler = type("Handler", (IdleClosingHandler,), timings)
        super().init_process()

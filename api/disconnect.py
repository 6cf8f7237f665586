"""Noticing that a client hung up while its request waits (under the API's gevent workers)."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from flask import request

READ = 1
"""gevent's loop event for a readable descriptor (``gevent.socket.wait_read`` uses the same)."""


def _check(sock: socket.socket, on_disconnect: Callable[[], None]) -> None:
    try:
        data = sock.recv(1, socket.MSG_PEEK)
    except OSError:
        data = b""
    if not data:
        on_disconnect()


@contextmanager
def disconnect_watch(on_disconnect: Callable[[], None]) -> Iterator[None]:
    """Calls ``on_disconnect`` if the client closes its connection before the block ends.

    The event loop watches the client's socket (no polling, and no greenlet
    until something happens): when it turns readable, a greenlet peeks at it,
    and end-of-file means the client is gone (data means it is still there:
    its next request). Outside gevent (the Flask test client, a threaded
    server) nothing is watched.
    """
    sock = request.environ.get("gunicorn.sock")  # set by common.processes.webserver.Worker
    gevent = _gevent()
    if sock is None or gevent is None:
        yield
        return
    checks: list[Any] = []
    readable = gevent.get_hub().loop.io(sock.fileno(), READ)

    def check() -> None:  # runs in the event loop: it must not block
        readable.stop()
        checks.append(gevent.spawn(_check, sock, on_disconnect))

    readable.start(check)
    try:
        yield
    finally:
        readable.stop()
        readable.close()
        # Wait for a check to end: gunicorn reads the next keep-alive request from
        # this socket right after, and gevent allows one reader per socket at a time.
        for running in checks:
            running.kill(block=True, timeout=1.0)


def _gevent() -> Any:
    """The ``gevent`` module when it has patched ``socket`` (the API's workers), else None."""
    try:
        import gevent
        import gevent.monkey
    except ImportError:
        return None
    if not gevent.monkey.is_module_patched("socket"):
        return None
    return gevent

"""Noticing that a client hung up while its request waits (under the API's gevent workers)."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from flask import request


def _watch(sock: socket.socket, on_disconnect: Callable[[], None]) -> None:
    try:
        data = sock.recv(1, socket.MSG_PEEK)
    except OSError:
        data = b""
    if not data:
        on_disconnect()


@contextmanager
def disconnect_watch(on_disconnect: Callable[[], None]) -> Iterator[None]:
    """Calls ``on_disconnect`` if the client closes its connection before the block ends.

    A greenlet waits (cooperatively, without polling) for the client's socket to
    become readable: end-of-file means it is gone. Outside gevent (the Flask
    test client, a threaded server) nothing is watched.
    """
    sock = request.environ.get("gunicorn.sock")  # set by common.webserver.Worker
    hub = _gevent_spawn()
    if sock is None or hub is None:
        yield
        return
    watcher = hub(_watch, sock, on_disconnect)
    try:
        yield
    finally:
        # Wait for it to die: gunicorn reads the next keep-alive request from this
        # socket right after, and gevent allows one reader per socket at a time.
        watcher.kill(block=True, timeout=1.0)


def _gevent_spawn() -> Callable[..., Any] | None:
    try:
        import gevent.monkey
    except ImportError:
        return None
    if not gevent.monkey.is_module_patched("socket"):
        return None
    return gevent.spawn

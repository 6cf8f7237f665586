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
``--keep-alive`` seconds to send its next request line, as gunicorn's
``gevent`` worker does. A request that has arrived is never cut short: held
waits and event streams last as long as they need.
"""

from __future__ import annotations

import gevent
from gunicorn.workers.ggevent import GeventPyWSGIWorker, PyWSGIHandler

ONE_SEND_LIMIT = 64 * 1024
"""Bytes of body up to which a response's head and body go out in one send."""


class IdleClosingHandler(PyWSGIHandler):
    """A connection handler that closes a connection when no request line arrives in time,
    and sends a response's head and first body chunk together."""

    keepalive: float = 75.0
    """Seconds to wait for a request line; 0 waits for ever (set from gunicorn's ``--keep-alive``)."""

    _held: list[bytes] | None = None
    """What :meth:`_sendall` holds back while the head is written."""

    def read_requestline(self) -> str:
        line = ""  # an empty line closes the connection
        with gevent.Timeout(self.keepalive or None, False):
            line = super().read_requestline()
        return line

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
        self.wsgi_handler = type("Handler", (IdleClosingHandler,), {"keepalive": float(self.cfg.keepalive)})
        super().init_process()

"""The API's gunicorn worker: gevent's own HTTP server, closing connections left idle.

(It lives outside ``api`` because gunicorn's master imports the worker class
before it forks, and the app must be imported only in the workers, after
gevent has patched the standard library.)

gunicorn's ``gevent_pywsgi`` worker serves with :mod:`gevent.pywsgi`, which
costs less CPU per request than gunicorn's own parser and sends a response's
headers and body together (see ``bench/README.md``). Unlike gunicorn's other
workers it would keep an idle connection open for ever, so idle clients could
fill the ``--worker-connections`` pool. :class:`Worker` gives each connection
``--keep-alive`` seconds to send its next request line, as gunicorn's
``gevent`` worker does. A request that has arrived is never cut short: held
waits and event streams last as long as they need.
"""

from __future__ import annotations

import gevent
from gunicorn.workers.ggevent import GeventPyWSGIWorker, PyWSGIHandler


class IdleClosingHandler(PyWSGIHandler):
    """A connection handler that closes a connection when no request line arrives in time."""

    keepalive: float = 75.0
    """Seconds to wait for a request line; 0 waits for ever (set from gunicorn's ``--keep-alive``)."""

    def read_requestline(self) -> str:
        line = ""  # an empty line closes the connection
        with gevent.Timeout(self.keepalive or None, False):
            line = super().read_requestline()
        return line


class Worker(GeventPyWSGIWorker):
    """gunicorn's ``gevent_pywsgi`` worker with :class:`IdleClosingHandler`."""

    def init_process(self) -> None:
        self.wsgi_handler = type("Handler", (IdleClosingHandler,), {"keepalive": float(self.cfg.keepalive)})
        super().init_process()

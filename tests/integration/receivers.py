"""A webhook receiver on loopback for the integration tests: records every POST, can fail the first."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TERMINAL = {"succeeded", "failed", "cancelled", "abandoned"}


@dataclass
class Receiver:
    """Records every POST; fails the first ``failures`` of them with ``failure_status``."""

    url: str
    failures: int = 0
    failure_status: int = 503
    deliveries: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    attempts: int = 0
    changed: threading.Condition = field(default_factory=threading.Condition)

    def wait_for_terminal(
        self, timeout: float = 30.0, terminal: frozenset[str] | set[str] = TERMINAL
    ) -> list[tuple[dict[str, str], bytes]]:
        """Blocks until the delivery of a ``terminal`` status arrived; returns every delivery."""

        def ended() -> bool:
            return bool(self.deliveries) and json.loads(self.deliveries[-1][1])["status"] in terminal

        with self.changed:
            assert self.changed.wait_for(ended, timeout), self.deliveries
            return list(self.deliveries)


@contextmanager
def receiving() -> Iterator[Receiver]:
    """A webhook receiver on loopback, stopped after."""
    found = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server hook
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with found.changed:
                found.attempts += 1
                fail = found.attempts <= found.failures
                if not fail:
                    found.deliveries.append((dict(self.headers), body))
                found.changed.notify_all()
            self.send_response(found.failure_status if fail else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    found.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield found
    finally:
        server.shutdown()
        server.server_close()

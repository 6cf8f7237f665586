"""Where a webhook delivery connects, and for how long: an address just checked, until the attempt's deadline.

httpx resolves a URL's host name itself when it connects, after inferq checked
the URL: a name that answers a public address to the check and 127.0.0.1 to the
connection (DNS rebinding) would reach loopback. :class:`CheckedBackend`
resolves through the check instead (:func:`common.webhooks.resolve`) and
connects to an address that passed it. The URL is unchanged, so the ``Host``
header, TLS SNI and the certificate check still use the host name.

httpx's timeouts bound each read and write, not an attempt: a receiver
answering a byte a second would hold a webhooks worker for ever. Each
connection here carries its attempt's deadline (``INFERQ_WEBHOOK_TIMEOUT``
from the connect): every read, write and TLS handshake waits at most until
then, and a watchdog shuts the socket down at the deadline, which also ends a
handshake or a send that a trickling peer keeps alive. Connections are not
reused, so every attempt resolves, checks and connects afresh.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Iterable
from contextlib import suppress
from typing import Any

import httpcore
import httpx

from common.config import Settings
from common.webhooks import WebhookRefused, resolve

CONNECT_TIMEOUT = 5.0
"""Seconds one connection attempt may take, at most (and never past the attempt's deadline)."""

Timeouts = type[httpcore.ReadTimeout] | type[httpcore.WriteTimeout] | type[httpcore.ConnectTimeout]


class Watchdog:
    """Shuts a connection down at a deadline, waking whatever waits on it, unless cancelled first."""

    def __init__(self, sock: socket.socket, seconds: float) -> None:
        self._handle: socket.socket | None = sock.dup()  # the same connection, on a descriptor of its own
        self._lock = threading.Lock()
        self._timer = threading.Timer(max(0.0, seconds), self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        with self._lock:
            if self._handle is not None:
                with suppress(OSError):
                    self._handle.shutdown(socket.SHUT_RDWR)

    def cancel(self) -> None:
        """Stops watching (the connection is being closed)."""
        self._timer.cancel()
        with self._lock:
            if self._handle is not None:
                self._handle.close()
                self._handle = None


class DeadlineStream(httpcore.NetworkStream):
    """A connection that ends at its deadline: each operation's timeout is cut to the time left."""

    def __init__(self, stream: httpcore.NetworkStream, deadline: float, watchdog: Watchdog) -> None:
        self._stream = stream
        self._deadline = deadline
        self._watchdog = watchdog

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        data = self._stream.read(max_bytes, self._left(timeout, httpcore.ReadTimeout))
        if not data:
            self._left(None, httpcore.ReadTimeout)  # the watchdog's end, not the peer's
        return data

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        try:
            self._stream.write(buffer, self._left(timeout, httpcore.WriteTimeout))
        except httpcore.WriteError:
            self._left(None, httpcore.WriteTimeout)
            raise

    def close(self) -> None:
        self._watchdog.cancel()
        self._stream.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        try:
            tls = self._stream.start_tls(
                ssl_context, server_hostname, self._left(timeout, httpcore.ConnectTimeout)
            )
        except BaseException:
            self.close()
            raise
        return DeadlineStream(tls, self._deadline, self._watchdog)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)

    def _left(self, timeout: float | None, error: Timeouts) -> float:
        """Seconds the next operation may take; raises ``error`` once the deadline has passed."""
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise error("the webhook delivery attempt ran out of time")
        return left if timeout is None else min(timeout, left)


class CheckedBackend(httpcore.NetworkBackend):
    """Opens webhook connections: to a checked address of the host, with the attempt's deadline."""

    def __init__(self, *, allow_private: bool, attempt_seconds: float) -> None:
        self.allow_private = allow_private
        self.attempt_seconds = attempt_seconds
        self._plain = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        """Resolves ``host`` once, through the check, and connects to the first address that answers.

        Raises:
            httpcore.ConnectError: When the host is refused, or no address could be reached.
        """
        deadline = time.monotonic() + self.attempt_seconds
        try:
            addresses = resolve(host, port, allow_private=self.allow_private)
        except WebhookRefused as e:
            raise httpcore.ConnectError(e.message) from e
        failure: Exception = httpcore.ConnectError(f"no address of {host} to connect to")
        for _, sockaddr in addresses:
            left = deadline - time.monotonic()
            if left <= 0:
                raise httpcore.ConnectTimeout("the webhook delivery attempt ran out of time")
            wait = min(left, CONNECT_TIMEOUT if timeout is None else timeout)
            try:
                stream = self._plain.connect_tcp(str(sockaddr[0]), port, wait, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as e:
                failure = e
                continue
            watchdog = Watchdog(stream.get_extra_info("socket"), deadline - time.monotonic())
            return DeadlineStream(stream, deadline, watchdog)
        raise failure


def webhook_client(settings: Settings) -> httpx.Client:
    """The HTTP client of webhook deliveries: checked addresses, a deadline per attempt, a fresh
    connection per attempt, no redirects, and no proxies from the environment (they would
    connect wherever the name leads)."""
    transport = httpx.HTTPTransport(trust_env=False)
    backend = CheckedBackend(
        allow_private=settings.webhook_allow_private, attempt_seconds=settings.webhook_timeout
    )
    transport._pool = httpcore.ConnectionPool(  # httpx takes no network backend of its own
        ssl_context=httpx.create_ssl_context(trust_env=False),
        max_keepalive_connections=0,
        network_backend=backend,
    )
    timeout = httpx.Timeout(settings.webhook_timeout, connect=min(CONNECT_TIMEOUT, settings.webhook_timeout))
    return httpx.Client(transport=transport, timeout=timeout, follow_redirects=False, trust_env=False)

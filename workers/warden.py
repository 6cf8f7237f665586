"""The warden: a small process beside each pool process that keeps its claims even when it cannot.

A model inside a C call that holds the GIL (a pathological regular expression,
many C extensions) starves every thread of its process, so the supervisor thread
there can neither renew the lease (the prediction would lapse and run again)
nor kill the adapter when it is cancelled or runs past its cap. The warden is a
separate process, started by each pool process, told over a pipe which claims
the pool process holds. It runs a :class:`~workers.supervisor.Supervisor` of its
own on them: it renews their leases, hears their cancels, and when a stopped
prediction is still running its grace period (plus :data:`MARGIN`) later, it
records the outcome and SIGKILLs the pool process, exactly as the supervisor
inside would have.

The pool process's own supervisor still relays stops to the adapter (only it
can), and both renew: a lease renewed twice is renewed once. Only one terminal
write of a claim can succeed, so both enforcing is harmless.

The pipe carries one line per change: ``watch <id> <token>``, ``adapter <id> 1|0``
and ``end <id>``. The warden exits when the pipe closes (the pool process ended).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import IO

from common.config import Settings
from common.connections import redis_client
from common.processes import logs
from common.store import keys
from common.store.notifier import Notifier
from common.store.predictions import PredictionStore
from workers.context import PredictionContext
from workers.supervisor import Supervisor, Watch

logger = logging.getLogger(__name__)

MARGIN = 0.5
"""Seconds the warden waits past the grace period before it acts, so a pool process that can
still act on a stop itself does so first."""

WARDEN_REDIS_RETRIES = 10
"""Retries of a Redis command in the warden (with backoff), as in the pool process."""


class WardenLink:
    """The pool process's end of the pipe: tells its warden which claims it holds."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self._lock = threading.Lock()
        self._broken = False
        self._held: list[str] = []
        self._depth = 0
        self.pid = os.getpid()

    @classmethod
    def start(cls) -> WardenLink:
        """Starts the warden of the calling process."""
        command = [sys.executable, "-m", "workers.warden", str(os.getpid())]
        return cls(subprocess.Popen(command, stdin=subprocess.PIPE, text=True))

    def watch(self, prediction_id: str, token: str) -> None:
        """This process now holds the claim ``token`` on ``prediction_id``."""
        self._send(f"watch {prediction_id} {token}")

    def adapter(self, prediction_id: str, inside: bool) -> None:
        """The adapter started (or stopped) running ``prediction_id``: only then may it be killed."""
        self._send(f"adapter {prediction_id} {int(inside)}")

    def end(self, prediction_id: str) -> None:
        """This process is done with ``prediction_id``."""
        self._send(f"end {prediction_id}")

    @contextmanager
    def together(self) -> Iterator[None]:
        """Holds the lines sent in the block and writes them at its end in one write (at the end
        of an inner block too, with what the outer one held so far): a run of many predictions
        then wakes the warden (on the same core, when the worker is pinned) a few times, not
        four times per prediction."""
        with self._lock:
            self._depth += 1
        try:
            yield
        finally:
            with self._lock:
                self._depth -= 1
                lines, self._held = self._held, []
            if lines:
                self._write("\n".join(lines))

    def close(self) -> None:
        """Closes the pipe; the warden exits."""
        with self._lock:
            if self.process.stdin is not None:
                self.process.stdin.close()

    def _send(self, line: str) -> None:
        with self._lock:
            if self._depth:
                self._held.append(line)
                return
        self._write(line)

    def _write(self, lines: str) -> None:
        with self._lock:
            if self._broken or self.process.stdin is None:
                return
            try:
                self.process.stdin.write(lines + "\n")
                self.process.stdin.flush()
            except (BrokenPipeError, ValueError, OSError) as e:
                self._broken = True
                logger.error("process %d lost its warden (%s): GIL-holding models are unguarded", self.pid, e)


class Warden:
    """Follows the pool process's claims (read from the pipe) with a supervisor of its own."""

    def __init__(self, supervisor: Supervisor, store: PredictionStore) -> None:
        self.supervisor = supervisor
        self.store = store
        self.open: dict[str, tuple[AbstractContextManager[Watch], Watch]] = {}

    def serve(self, pipe: IO[str]) -> None:
        """Applies each line until the pipe closes, then lets go of every claim left."""
        for line in pipe:
            self.apply(line.split())
        for prediction_id in list(self.open):
            self.apply(["end", prediction_id])

    def apply(self, words: list[str]) -> None:
        """Applies one line of the pipe."""
        match words:
            case ["watch", prediction_id, token]:
                ctx = PredictionContext(prediction_id, self.store, stream=False)
                watching = self.supervisor.watching(prediction_id, token, ctx)
                self.open[prediction_id] = (watching, watching.__enter__())
            case ["adapter", prediction_id, inside] if prediction_id in self.open:
                self.open[prediction_id][1].in_adapter = inside == "1"
            case ["end", prediction_id] if prediction_id in self.open:
                ended, _ = self.open.pop(prediction_id)
                ended.__exit__(None, None, None)
            case _:
                logger.warning("the warden ignores %r", " ".join(words))


def kill_pool_process(pool_pid: int) -> None:
    """SIGKILLs the pool process, if it is still this warden's parent (never a reused pid)."""
    if os.getppid() == pool_pid:
        os.kill(pool_pid, signal.SIGKILL)


def main(argv: list[str] | None = None) -> int:
    """``python -m workers.warden <pool pid>``: wards the pool process that started it."""
    pool_pid = int((sys.argv[1:] if argv is None else argv)[0])
    settings = Settings.from_env(os.environ)
    logs.configure(settings.log_format, settings.log_level, f"warden-of-{pool_pid}")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the pool process decides
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the warden ends when its pipe closes, not before
    client = redis_client(settings, retries=WARDEN_REDIS_RETRIES)
    store = PredictionStore(client, settings)
    supervisor = Supervisor(
        store,
        Notifier(client, keys.cancel_channel()),
        settings,
        kill=lambda: kill_pool_process(pool_pid),
        grace_margin=MARGIN,
    )
    Warden(supervisor, store).serve(sys.stdin)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The output of ``inferq up``'s child processes, copied to its own stderr line by line.

While the processes start, their lines are held back, so that ``inferq up`` can
print them all and then its banner last, once everything is ready; after
``release()`` every line is copied as it comes.
"""

from __future__ import annotations

import threading
import time
from typing import IO

QUIET = 0.3
"""Seconds without a line after which :meth:`Relay.settle` takes the output to have settled."""


class Relay:
    """Copies the lines of any number of pipes to one text stream, holding them until released."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.held: list[str] = []
        self.holding = True
        self.last_line = time.monotonic()
        self.lock = threading.Lock()

    def attach(self, pipe: IO[bytes], name: str) -> None:
        """Copies ``pipe`` until it closes, from a daemon thread of its own."""
        threading.Thread(target=self._copy, args=(pipe,), name=f"inferq-relay-{name}", daemon=True).start()

    def _copy(self, pipe: IO[bytes]) -> None:
        with pipe:
            for raw in iter(pipe.readline, b""):
                self.write(raw.decode(errors="replace"))

    def write(self, line: str) -> None:
        """Copies one line now, or keeps it while holding."""
        with self.lock:
            self.last_line = time.monotonic()
            if self.holding:
                self.held.append(line)
            else:
                self._emit(line)

    def release(self) -> None:
        """Copies every held line, and every later line as it comes."""
        with self.lock:
            for line in self.held:
                self._emit(line)
            self.held.clear()
            self.holding = False

    def settle(self, timeout: float = 3.0) -> None:
        """Waits until no line came for :data:`QUIET` seconds (at most ``timeout``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                quiet_for = time.monotonic() - self.last_line
            if quiet_for >= QUIET:
                return
            time.sleep(QUIET - quiet_for)

    def _emit(self, line: str) -> None:
        try:
            self.stream.write(line)
            self.stream.flush()
        except (OSError, ValueError):  # the terminal went away, or the stream was closed
            pass

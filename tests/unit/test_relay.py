"""The relay of ``inferq up``'s child output: held while starting, then copied line by line."""

from __future__ import annotations

import io
import os
import time

from common.processes.relay import Relay


def _wait_for(condition: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.01)


def test_lines_are_held_until_release_then_copied_in_order() -> None:
    out = io.StringIO()
    relay = Relay(out)
    read, write = os.pipe()
    relay.attach(os.fdopen(read, "rb"), "child")
    os.write(write, b"one\ntwo\n")
    _wait_for(lambda: len(relay.held) == 2)
    assert out.getvalue() == ""

    relay.release()
    os.write(write, b"three\n")
    os.close(write)
    _wait_for(lambda: out.getvalue().endswith("three\n"))

    assert out.getvalue() == "one\ntwo\nthree\n"


def test_settle_returns_once_the_output_is_quiet() -> None:
    relay = Relay(io.StringIO())
    relay.release()
    relay.write("last line\n")
    relay.settle(timeout=5.0)
    assert time.monotonic() - relay.last_line >= 0.3


def test_a_closed_stream_does_not_stop_the_relay() -> None:
    out = io.StringIO()
    relay = Relay(out)
    relay.release()
    out.close()
    relay.write("nobody reads this\n")

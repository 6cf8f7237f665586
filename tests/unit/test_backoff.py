"""The backoff every background loop runs its rounds through: survive, log, wait longer, go on."""

import logging
import threading

import pytest
import redis

from common.backoff import Backoff
from common.processes.ticker import Ticker

REDIS_ERRORS = [
    redis.exceptions.OutOfMemoryError("command not allowed when used memory > 'maxmemory'."),
    redis.exceptions.ReadOnlyError("You can't write against a read only replica."),
    redis.exceptions.ResponseError("BUSY Redis is busy running a script."),
    redis.ConnectionError("Connection closed by server."),
]
"""What Redis may answer a background loop with, besides its answer: each must cost only a round."""


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_failing_round_is_logged_and_waits_longer_each_time_up_to_the_cap(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    backoff = Backoff("renewing leases", logging.getLogger("tests"), first=0.1, cap=0.5, clock=clock)
    delays = []
    for error in REDIS_ERRORS:
        with backoff.round():
            raise error
        delays.append(backoff.delay)
        assert not backoff.due()
        clock.now += backoff.delay or 0
        assert backoff.due()
    assert delays == [0.1, 0.2, 0.4, 0.5]
    assert backoff.failures == 4
    failures = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(failures) == 4 and all(r.exc_info is None for r in failures)  # one line each
    assert "renewing leases failed: You can't write against a read only replica." in failures[1].message

    with backoff.round():
        pass
    assert (backoff.failures, backoff.delay, backoff.due()) == (0, None, True)


def test_an_unexpected_error_is_survived_too_and_logged_with_its_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    backoff = Backoff("housekeeping job sweep", logging.getLogger("tests"))
    with backoff.round():
        raise KeyError("surprise")
    assert backoff.failures == 1
    assert caplog.records[-1].exc_info is not None


def test_a_stop_is_not_swallowed() -> None:
    backoff = Backoff("x", logging.getLogger("tests"))
    with pytest.raises(KeyboardInterrupt), backoff.round():
        raise KeyboardInterrupt


def test_a_ticker_job_outlives_redis_errors_and_the_others_go_on() -> None:
    errors = list(REDIS_ERRORS)
    recovered, others = threading.Event(), threading.Event()
    count = 0

    def flaky() -> None:
        if errors:
            raise errors.pop(0)
        recovered.set()

    def steady() -> None:
        nonlocal count
        count += 1
        if count > 2 * len(REDIS_ERRORS):
            others.set()

    ticker = Ticker("tests-ticker", 0.01, [flaky, steady]).start()
    try:
        assert recovered.wait(30) and others.wait(30)
    finally:
        ticker.stop()

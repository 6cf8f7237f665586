"""Which Redis errors mean "Redis cannot serve right now" rather than a bug."""

from __future__ import annotations

import pytest
import redis

from common.connections import redis_unavailable


@pytest.mark.parametrize(
    "error",
    [
        redis.ConnectionError("Connection reset by peer"),
        redis.TimeoutError("Timeout reading from socket"),
        redis.exceptions.OutOfMemoryError("command not allowed when used memory > 'maxmemory'."),
        redis.exceptions.ReadOnlyError("You can't write against a read only replica."),
        redis.exceptions.BusyLoadingError("Redis is loading the dataset in memory"),
        redis.ResponseError("BUSY Redis is busy running a script. You can only call SCRIPT KILL."),
        redis.ResponseError(
            "Error running script (call to f_c78): @user_script:1: @user_script: 1: "
            "-OOM command not allowed when used memory > 'maxmemory'."
        ),
        redis.ResponseError(
            "Error running script (call to f_c78): @user_script:1: @user_script: 1: "
            "-READONLY You can't write against a read only replica."
        ),
    ],
)
def test_refusals_and_outages_are_unavailable(error: Exception) -> None:
    assert redis_unavailable(error)


@pytest.mark.parametrize(
    "error",
    [
        redis.ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value"),
        redis.ResponseError("Error running script (call to f_1): @user_script:3: attempt to index nil"),
        redis.exceptions.NoScriptError("No matching script."),
        ValueError("OOM in a message of another kind"),
    ],
)
def test_bugs_are_not_unavailable(error: Exception) -> None:
    assert not redis_unavailable(error)

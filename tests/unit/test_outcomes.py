"""Writing a batch's outcomes in a thread of its own while the next batch runs."""

from __future__ import annotations

import threading

import pytest

from workers.outcomes import Recording


def test_a_recording_writes_beside_its_caller_and_wait_returns_once_written() -> None:
    started, release, written = threading.Event(), threading.Event(), []

    def write() -> None:
        started.set()
        release.wait(5)
        written.append("ended")

    recording = Recording(write)
    assert started.wait(5) and written == []  # the caller goes on meanwhile
    release.set()
    recording.wait()
    assert written == ["ended"]


def test_what_a_recording_raised_is_raised_by_wait_once() -> None:
    def write() -> None:
        raise ConnectionError("Redis went away")

    recording = Recording(write)
    with pytest.raises(ConnectionError, match="went away"):
        recording.wait()
    recording.wait()  # already raised: a second wait (the runner's finally) returns

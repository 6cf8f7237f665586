"""What an adapter sees of its prediction: stop requests, streamed output, logs."""

from typing import Any

import pytest

from common.errors import PredictionCancelled
from workers.context import PredictionContext, StopReason


class FakeEvents(list[tuple[str, str, Any]]):
    """Records the events the context appends."""

    def append(self, prediction_id: str, event: str, data: Any) -> str:  # type: ignore[override]
        super().append((prediction_id, event, data))
        return "1-0"


class FakeStore:
    """Records what the context writes, instead of writing to Redis."""

    def __init__(self) -> None:
        self.events = FakeEvents()
        self.logs: list[tuple[str, str]] = []

    def append_log(self, prediction_id: str, text: str) -> None:
        self.logs.append((prediction_id, text))


def context(*, stream: bool = False) -> tuple[PredictionContext, FakeStore]:
    store = FakeStore()
    return PredictionContext("p1", store, stream=stream), store


def test_first_stop_reason_wins() -> None:
    ctx, _ = context()
    ctx.raise_if_cancelled()
    assert not ctx.cancelled.is_set() and ctx.stop_reason is None
    ctx.request_stop(StopReason.TIMED_OUT)
    ctx.request_stop(StopReason.CANCELLED)
    assert ctx.cancelled.is_set() and ctx.stop_reason is StopReason.TIMED_OUT
    with pytest.raises(PredictionCancelled, match="p1"):
        ctx.raise_if_cancelled()


@pytest.mark.parametrize(("stream", "expected"), [(True, [("p1", "output", {"t": "hi"})]), (False, [])])
def test_emit_streams_only_when_asked(stream: bool, expected: list[tuple[str, str, Any]]) -> None:
    ctx, store = context(stream=stream)
    ctx.emit({"t": "hi"})
    assert store.events == expected


def test_log_appends_one_line() -> None:
    ctx, store = context()
    ctx.log("loading")
    ctx.log("done\n")
    assert store.logs == [("p1", "loading\n"), ("p1", "done\n")]

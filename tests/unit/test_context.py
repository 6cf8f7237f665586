"""What an adapter sees of its prediction: stop requests, streamed output, logs."""

from typing import Any

import pytest

from common.errors import PredictionCancelled
from workers.context import PredictionContext, StopReason


class FakeEvents(list[tuple[str, str, Any]]):
    """Records the chunks the context emits; refuses them once ``refusing`` (a lost claim)."""

    refusing = False

    def emit(self, prediction_id: str, token: str, data: Any) -> str | None:
        self.append((prediction_id, token, data))
        return None if self.refusing else "1-0"


class FakeStore:
    """Records what the context writes, instead of writing to Redis."""

    def __init__(self) -> None:
        self.events = FakeEvents()
        self.logs: list[tuple[str, str]] = []

    def append_log(self, prediction_id: str, text: str) -> None:
        self.logs.append((prediction_id, text))


def context(*, stream: bool = False) -> tuple[PredictionContext, FakeStore]:
    store = FakeStore()
    return PredictionContext("p1", store, stream=stream, token="t1"), store


def test_first_stop_reason_wins() -> None:
    ctx, _ = context()
    ctx.raise_if_cancelled()
    assert not ctx.cancelled.is_set() and ctx.stop_reason is None
    ctx.request_stop(StopReason.TIMED_OUT)
    ctx.request_stop(StopReason.CANCELLED)
    assert ctx.cancelled.is_set() and ctx.stop_reason is StopReason.TIMED_OUT
    with pytest.raises(PredictionCancelled, match="p1"):
        ctx.raise_if_cancelled()


@pytest.mark.parametrize(("stream", "expected"), [(True, [("p1", "t1", {"t": "hi"})]), (False, [])])
def test_emit_streams_only_when_asked(stream: bool, expected: list[tuple[str, str, Any]]) -> None:
    ctx, store = context(stream=stream)
    ctx.emit({"t": "hi"})
    assert store.events == expected


def test_log_appends_one_line() -> None:
    ctx, store = context()
    ctx.log("loading")
    ctx.log("done\n")
    assert store.logs == [("p1", "loading\n"), ("p1", "done\n")]


def test_a_refused_chunk_stops_the_adapter_and_later_chunks_are_not_sent() -> None:
    ctx, store = context(stream=True)
    store.events.refusing = True
    ctx.emit("lost")
    assert ctx.cancelled.is_set() and ctx.stop_reason is StopReason.LOST
    ctx.emit("still going")
    assert store.events == [("p1", "t1", "lost")]


def test_a_streamed_context_needs_its_claim_token() -> None:
    with pytest.raises(ValueError, match="token"):
        PredictionContext("p1", FakeStore(), stream=True)  # type: ignore[arg-type]

"""Statuses answer questions about themselves; records survive a trip through a Redis hash."""

import json

import pytest

from common.records import (
    ErrorSource,
    ModelRef,
    Prediction,
    PredictionError,
    RecordError,
    Status,
)


@pytest.mark.parametrize(
    ("status", "terminal", "running"),
    [
        (Status.PENDING, False, False),
        (Status.STARTING, False, True),
        (Status.STARTED, False, True),
        (Status.SUCCEEDED, True, False),
        (Status.FAILED, True, False),
        (Status.CANCELLED, True, False),
        (Status.ABANDONED, True, False),
    ],
)
def test_status_answers(status: Status, terminal: bool, running: bool) -> None:
    assert (status.is_terminal, status.is_running) == (terminal, running)


def test_every_status_is_covered() -> None:
    assert len(Status) == 7


def prediction(**overrides: object) -> Prediction:
    values: dict[str, object] = {
        "id": "0190f3a2-7b1c-7d3e-8f00-0123456789ab",
        "owner": "alice",
        "model": ModelRef("inferq", "echo", 2),
        "queue": "inferq.echo",
        "input": {"prompt": "hi", "n": [1, 2.5, None]},
        "status": Status.PENDING,
        "created_at": 1700000000.123456,
        "updated_at": 1700000000.123456,
    }
    values.update(overrides)
    return Prediction(**values)


@pytest.mark.parametrize(
    "record",
    [
        prediction(),
        prediction(
            status=Status.SUCCEEDED,
            started_at=1700000001.1,
            predict_started_at=1700000001.25,
            completed_at=1700000002.0000001,
            setup_time=0.1,
            execution_time=1 / 3,
            output={"text": "ok", "scores": [0.1, 0.2]},
            metrics={"predict_time": 0.75},
            stream=True,
            webhook={"url": "https://example.com/hook", "secret": None},
            attempts=2,
        ),
        prediction(
            status=Status.FAILED,
            output=None,
            error=PredictionError(ErrorSource.EXTERNAL, "boom", {"type": "ValueError"}),
            cancel_requested=True,
            attempts=1,
        ),
        prediction(status=Status.ABANDONED, error=PredictionError(ErrorSource.INTERNAL, "lost")),
        prediction(output="plain string"),
        prediction(output=0),
    ],
)
def test_hash_round_trip(record: Prediction) -> None:
    fields = record.to_hash()
    assert all(isinstance(v, str) for v in fields.values())
    assert Prediction.from_hash(fields) == record


def test_hash_layout() -> None:
    fields = prediction(error=PredictionError(ErrorSource.INTERNAL, "x")).to_hash()
    assert fields["status"] == "pending"
    assert json.loads(fields["model"]) == {"owner": "inferq", "name": "echo", "version_number": 2}
    assert json.loads(fields["error"]) == {"source": "internal", "message": "x", "detail": None}
    assert (fields["output"], fields["metrics"], fields["started_at"]) == ("null", "null", "")
    assert (fields["stream"], fields["cancel_requested"], fields["attempts"]) == ("0", "0", "0")


def test_logs_travel_beside_the_hash() -> None:
    restored = Prediction.from_hash(prediction().to_hash(), logs="line 1\n")
    assert restored.logs == "line 1\n"


def test_missing_optional_fields_take_defaults() -> None:
    fields = prediction().to_hash()
    optional = ("output", "error", "metrics", "stream", "webhook", "cancel_requested", "attempts")
    for name in (*optional, "stream_start"):
        del fields[name]
    assert Prediction.from_hash(fields) == prediction()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("id", None),
        ("status", "exploded"),
        ("model", "not json"),
        ("model", "[1, 2]"),
        ("model", '{"owner": "a", "name": "b", "version_number": "one"}'),
        ("input", "{"),
        ("created_at", "yesterday"),
        ("started_at", "soon"),
        ("error", '{"source": "cosmic", "message": "x"}'),
        ("error", '{"source": "internal"}'),
        ("error", "[]"),
        ("attempts", "two"),
    ],
)
def test_from_hash_on_garbage_raises_record_error(name: str, value: str | None) -> None:
    fields = prediction().to_hash()
    if value is None:
        del fields[name]
    else:
        fields[name] = value
    with pytest.raises(RecordError, match="cannot be decoded") as caught:
        Prediction.from_hash(fields)
    assert isinstance(caught.value, ValueError)
    assert caught.value.__cause__ is not None


def test_from_hash_on_an_empty_hash_raises_record_error() -> None:
    with pytest.raises(RecordError, match="'\\?'"):
        Prediction.from_hash({})


def test_model_ref() -> None:
    ref = ModelRef("inferq", "echo", 3)
    assert ref.key == "inferq/echo:3"
    assert ref.to_dict() == {"owner": "inferq", "name": "echo", "version_number": 3}


def test_prediction_error_wire_round_trip() -> None:
    error = PredictionError(ErrorSource.EXTERNAL, "bad input", [{"loc": ["input", "x"]}])
    assert error.to_dict()["source"] == "external"
    assert PredictionError.from_dict(error.to_dict()) == error

"""``render`` is built by hand for speed; it must stay exactly what ``PredictionSchema`` documents."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from common.records import ErrorSource, ModelRef, Prediction, PredictionError, Status
from common.wire import PredictionSchema, render

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(), children, max_size=3),
    max_leaves=8,
)
SECONDS = st.floats(min_value=0, max_value=4e9, allow_nan=False)
DURATIONS = st.none() | st.floats(min_value=-5, max_value=1e6, allow_nan=False)
ERRORS = st.none() | st.builds(PredictionError, st.sampled_from(list(ErrorSource)), st.text(), JSON)


@st.composite
def predictions(draw: st.DrawFn) -> Prediction:
    return Prediction(
        id=draw(st.uuids()).hex,
        owner=draw(st.text(min_size=1)),
        model=ModelRef(draw(st.text()), draw(st.text()), draw(st.integers(1, 10**6))),
        queue="q",
        input=draw(st.dictionaries(st.text(), JSON, max_size=4)),
        status=draw(st.sampled_from(list(Status))),
        created_at=draw(SECONDS),
        updated_at=draw(SECONDS),
        setup_time=draw(DURATIONS),
        execution_time=draw(DURATIONS),
        output=draw(JSON),
        error=draw(ERRORS),
        metrics=draw(st.none() | st.dictionaries(st.text(), JSON, max_size=3)),
        stream=draw(st.booleans()),
        logs=draw(st.text()),
    )


@settings(max_examples=300, deadline=None)
@given(predictions())
def test_render_is_the_schemas_dump_key_for_key(prediction: Prediction) -> None:
    documented: dict[str, Any] = PredictionSchema().dump(prediction)
    # As JSON, so order and type count too (True == 1 in Python, not on the wire).
    assert json.dumps(render(prediction)) == json.dumps(documented)


def test_render_copies_what_a_caller_may_change() -> None:
    prediction = Prediction(
        id="a",
        owner="o",
        model=ModelRef("inferq", "echo", 1),
        queue="q",
        input={"prompt": "hi"},
        status=Status.SUCCEEDED,
        created_at=1.0,
        updated_at=2.0,
        metrics={"predict_time": 0.1},
    )
    rendered = render(prediction)
    rendered["input"]["prompt"] = "changed"
    rendered["metrics"]["predict_time"] = 9
    assert prediction.input == {"prompt": "hi"} and prediction.metrics == {"predict_time": 0.1}

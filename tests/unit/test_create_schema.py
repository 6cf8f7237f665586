"""The create schemas answer the plain body themselves; it must be exactly marshmallow's load."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.schemas.predictions import CreateModelPredictionSchema, CreatePredictionSchema, plain_create_body

SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5)
NAMES = st.text(max_size=5)
JSON = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(NAMES, children, max_size=3),
    max_leaves=6,
)
KEYS = st.sampled_from(["model", "input", "stream", "webhook", "extra"])
FIELD_VALUES = {
    "model": st.text(max_size=12) | JSON,
    "input": st.dictionaries(NAMES, JSON, max_size=3) | JSON,
    "stream": st.booleans() | JSON,
    "webhook": st.none() | st.just({"url": "https://example.com/hook"}) | JSON,
    "extra": JSON,
}


@st.composite
def bodies(draw: st.DrawFn) -> Any:
    """Mostly near-plain bodies (so both paths are exercised), sometimes any JSON at all."""
    if draw(st.integers(0, 9)) == 0:
        return draw(JSON)
    keys = draw(st.sets(KEYS))
    return {key: draw(FIELD_VALUES[key]) for key in keys}


def outcome(load: Any, schema: ma.Schema, body: Any) -> Any:
    """What ``load(schema, body)`` returns, or the messages of the error it raises."""
    try:
        return load(schema, body)
    except ma.ValidationError as e:
        return ("error", e.messages)


@pytest.mark.parametrize("schema", [CreatePredictionSchema(), CreateModelPredictionSchema()])
@settings(max_examples=400, deadline=None)
@given(body=bodies())
def test_the_shortcut_agrees_with_marshmallow(schema: ma.Schema, body: Any) -> None:
    expected = outcome(ma.Schema.load, schema, body)
    assert outcome(type(schema).load, schema, body) == expected
    shortcut = plain_create_body(body, with_model="model" in schema.fields)
    assert shortcut is None or shortcut == expected


@pytest.mark.parametrize(
    ("schema", "body"),
    [
        (CreatePredictionSchema(), {"model": "inferq/echo", "input": {"prompt": "hi"}}),
        (CreatePredictionSchema(), {"model": "a/b:2", "input": {}, "stream": True, "webhook": None}),
        (CreateModelPredictionSchema(), {"input": {"prompt": "hi"}, "stream": False}),
    ],
)
def test_the_plain_body_takes_the_shortcut(schema: ma.Schema, body: dict[str, Any]) -> None:
    shortcut = plain_create_body(body, with_model="model" in schema.fields)
    assert shortcut is not None
    assert schema.load(body) == shortcut == ma.Schema.load(schema, body)

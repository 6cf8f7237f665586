"""Strict JSON bodies, and marshmallow messages turned into FastAPI-style detail items."""

import json

import pytest

from api.validation import MAX_JSON_DEPTH, details_from_messages, parse_json_body
from common.errors import InvalidRequest


def nested(depth: int) -> bytes:
    return ("[" * depth + "]" * depth).encode()


@pytest.mark.parametrize(
    "value",
    [{"model": "inferq/echo", "input": {"prompt": "hi", "n": [1, 2.5, None, True]}}, [], "text", 3, None],
)
def test_valid_json(value: object) -> None:
    assert parse_json_body(json.dumps(value).encode()) == value


def test_nesting_up_to_the_limit_is_accepted() -> None:
    assert parse_json_body(nested(MAX_JSON_DEPTH)) is not None
    assert parse_json_body(b'{"a": ' * (MAX_JSON_DEPTH - 1) + b"{}" + b"}" * (MAX_JSON_DEPTH - 1))


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{", "not valid JSON"),
        (b"", "not valid JSON"),
        (b"{'a': 1}", "not valid JSON"),
        (b'{"a": 1} trailing', "not valid JSON"),
        (b"\xff\xfe\xfd", "not valid JSON"),
        (b"NaN", "NaN is not valid JSON"),
        (b'{"x": Infinity}', "Infinity is not valid JSON"),
        (b"[-Infinity]", "-Infinity is not valid JSON"),
        (b"[1e999]", "out of range"),
        (b"1" * 5000, "not valid JSON"),
        (nested(MAX_JSON_DEPTH + 1), f"deeper than {MAX_JSON_DEPTH} levels"),
        (b"[" * 100_000, "nesting too deep"),
        (nested(100_000), "nesting too deep"),
        (b'{"a":' * 100_000, "nesting too deep"),
    ],
)
def test_invalid_json_is_a_400(raw: bytes, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message) as caught:
        parse_json_body(raw)
    assert caught.value.status_code == 400


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        (
            {"model": ["Missing data for required field."]},
            [{"loc": ["body", "model"], "msg": "Field required", "type": "missing"}],
        ),
        (
            {"colour": ["Unknown field."], "stream": ["Not a valid boolean."]},
            [
                {
                    "loc": ["body", "colour"],
                    "msg": "Extra inputs are not permitted",
                    "type": "extra_forbidden",
                },
                {"loc": ["body", "stream"], "msg": "Input should be a valid boolean", "type": "bool_type"},
            ],
        ),
        (
            {"webhook": {"url": ["Not a valid URL."]}},
            [
                {
                    "loc": ["body", "webhook", "url"],
                    "msg": "Input should be a valid URL",
                    "type": "url_parsing",
                }
            ],
        ),
        (
            {"statuses": {1: ["Must be one of: pending."]}},
            [{"loc": ["body", "statuses", 1], "msg": "Must be one of: pending.", "type": "value_error"}],
        ),
        (
            {"_schema": ["Invalid input type."]},
            [{"loc": ["body"], "msg": "Input should be a valid object", "type": "dict_type"}],
        ),
        (
            ["Not a valid integer.", "Too big."],
            [
                {"loc": ["body"], "msg": "Input should be a valid integer", "type": "int_type"},
                {"loc": ["body"], "msg": "Too big.", "type": "value_error"},
            ],
        ),
        (
            [{"a": ["Field may not be null."]}, "Not a valid list."],
            [
                {"loc": ["body", "a"], "msg": "Input should not be null", "type": "none_forbidden"},
                {"loc": ["body"], "msg": "Input should be a valid array", "type": "list_type"},
            ],
        ),
        (
            "Not a valid string.",
            [{"loc": ["body"], "msg": "Input should be a valid string", "type": "string_type"}],
        ),
        (42, [{"loc": ["body"], "msg": "42", "type": "value_error"}]),
        ({}, []),
    ],
)
def test_details_from_messages(messages: object, expected: list[dict[str, object]]) -> None:
    assert details_from_messages(messages, ["body"]) == expected

"""Request parsing: strict JSON, and marshmallow errors turned into FastAPI-style ``detail`` items."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any, NoReturn

import flask
import marshmallow as ma
from webargs import core
from webargs.flaskparser import FlaskParser

from common.errors import InvalidRequest, RequestValidationError

MAX_JSON_DEPTH = 100
"""Deepest nesting of arrays and objects accepted in a request body."""

LOCATIONS = {
    "json": "body",
    "form": "body",
    "files": "body",
    "query": "query",
    "view_args": "path",
    "headers": "header",
}
"""webargs' location names, as the ``loc`` prefixes of the detail items."""

_TYPES = {
    "Missing data for required field.": ("missing", "Field required"),
    "Unknown field.": ("extra_forbidden", "Extra inputs are not permitted"),
    "Field may not be null.": ("none_forbidden", "Input should not be null"),
    "Not a valid string.": ("string_type", "Input should be a valid string"),
    "Not a valid integer.": ("int_type", "Input should be a valid integer"),
    "Not a valid number.": ("float_type", "Input should be a valid number"),
    "Not a valid boolean.": ("bool_type", "Input should be a valid boolean"),
    "Not a valid mapping type.": ("dict_type", "Input should be a valid object"),
    "Not a valid list.": ("list_type", "Input should be a valid array"),
    "Invalid input type.": ("dict_type", "Input should be a valid object"),
    "Not a valid URL.": ("url_parsing", "Input should be a valid URL"),
}


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:20]} is out of range")
    return value


_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)
"""Built once: ``json.loads`` given hooks builds a decoder per call."""


def _depth(value: Any) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return deepest


def parse_json_body(raw: bytes) -> Any:
    """Parses a request body as strict JSON (no NaN/Infinity, bounded nesting).

    Raises:
        InvalidRequest: When the body is not such JSON (400).
    """
    try:
        text = raw.decode(json.detect_encoding(raw), "surrogatepass")
    except ValueError as e:
        raise InvalidRequest(f"The request body is not valid JSON: {e}") from e
    return parse_json_text(text, "The request body")


def parse_json_text(text: str, what: str) -> Any:
    """Parses ``text`` as strict JSON (no NaN/Infinity, bounded nesting).

    Args:
        what: What the text is, for the error's message ("The request body", "Line 3").

    Raises:
        InvalidRequest: When it is not such JSON (400).
    """
    try:
        value = _DECODER.decode(text)
    except (ValueError, RecursionError) as e:
        message = "nesting too deep" if isinstance(e, RecursionError) else str(e)
        raise InvalidRequest(f"{what} is not valid JSON: {message}") from e
    # Each level takes an opening and a closing bracket, so a short text cannot nest too deep.
    if len(text) > 2 * MAX_JSON_DEPTH and _depth(value) > MAX_JSON_DEPTH:
        raise InvalidRequest(f"{what} nests deeper than {MAX_JSON_DEPTH} levels")
    return value


class StrictBoolean(ma.fields.Boolean):
    """A boolean that must be JSON ``true`` or ``false`` (marshmallow's also takes ``0``, ``"yes"``...)."""

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


def details_from_messages(messages: Any, loc: list[str | int]) -> list[dict[str, Any]]:
    """Flattens marshmallow's nested error messages into ``{loc, msg, type}`` items."""
    if isinstance(messages, Mapping):
        items = []
        for key, value in messages.items():
            child = loc if key == "_schema" else [*loc, key]
            items.extend(details_from_messages(value, child))
        return items
    if isinstance(messages, list | tuple):
        if all(isinstance(m, str) for m in messages):
            return [_detail(loc, m) for m in messages]
        return [item for m in messages for item in details_from_messages(m, loc)]
    return [_detail(loc, str(messages))]


def _detail(loc: list[str | int], message: str) -> dict[str, Any]:
    type_, msg = _TYPES.get(message, ("value_error", message))
    return {"loc": loc, "msg": msg, "type": type_}


class StrictParser(FlaskParser):
    """webargs' Flask parser, reading any body as strict JSON and raising inferq's errors."""

    def _raw_load_json(self, req: flask.Request) -> Any:
        raw = req.get_data(cache=True)
        if not raw.strip():
            return core.missing
        return parse_json_body(raw)

    def handle_error(
        self, error: ma.ValidationError, req: flask.Request, schema: ma.Schema, **_: Any
    ) -> NoReturn:
        messages = error.messages
        details: list[dict[str, Any]] = []
        if isinstance(messages, Mapping):
            for location, inner in messages.items():
                details.extend(details_from_messages(inner, [LOCATIONS.get(str(location), str(location))]))
        else:
            details = details_from_messages(messages, ["body"])
        raise RequestValidationError(details)

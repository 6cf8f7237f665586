"""A batch's input file: its lines checked as their endpoint would check each request, and planned
into parts (``common.store.batches``).

Validation is all or nothing: every line is checked, and one bad line fails the
whole batch with every problem listed (``{code, message, param, line}``, lines
counted from 1 as OpenAI counts them); nothing runs.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields

from api import embeddings, images, predictions
from api.schemas.embeddings import EmbeddingsRequestSchema
from api.schemas.images import ImageGenerationSchema
from api.services import Services
from common.catalog import ModelVersion
from common.errors import InferqError, RequestValidationError
from common.store.batches import Line

EMBEDDINGS, IMAGES, PREDICTIONS = "/v1/embeddings", "/v1/images/generations", "/v1/predictions"
ENDPOINTS = (EMBEDDINGS, IMAGES, PREDICTIONS)
"""What a batch may run (``/v1/predictions`` is an inferq extension: bodies ``{model, input}``;
image edits take multipart bodies, which a JSONL line cannot hold)."""

PART_INPUTS = 32
"""Embedding inputs one part (one prediction, one forward pass) runs at most: as many as a
model's own batch (sentence-transformers encodes 32 at a time), so a part holds the model
about as long as an interactive request's pass, and one waiting on the same model waits for
at most one part."""

MAX_ERRORS = 100
"""Problems listed for a failed batch, at most."""


@dataclass
class Planned:
    """A valid line: the version it runs on, what its part's prediction gets, and what its answer
    needs besides the output."""

    line: Line
    version: ModelVersion
    payload: dict[str, Any]
    group: tuple[Any, ...] = ()
    """Lines of one group may share a part (embeddings of one version and dimensions)."""


@dataclass
class PartPlan:
    version: ModelVersion
    payload: dict[str, Any]
    lines: list[Line] = field(default_factory=list)


class PredictionBodySchema(Schema):
    """A ``/v1/predictions`` line's body: the create body's ``model`` and ``input``."""

    class Meta:
        unknown = RAISE

    model = fields.String(required=True)
    input = fields.Dict(keys=fields.String(), required=True)


SCHEMAS: dict[str, Schema] = {
    EMBEDDINGS: EmbeddingsRequestSchema(),
    IMAGES: ImageGenerationSchema(),
    PREDICTIONS: PredictionBodySchema(),
}
"""Each endpoint's body schema, built once: building one per line took longer than loading it."""


def problem(code: str, message: str, line: int, param: str | None = None) -> dict[str, Any]:
    return {"code": code, "message": message, "param": param, "line": line}


def check(services: Services, endpoint: str, text: str) -> tuple[list[Planned], list[dict[str, Any]]]:
    """Every line of ``text`` checked; the valid ones planned, and the problems found."""
    planned: list[Planned] = []
    problems: list[dict[str, Any]] = []
    counting: list[tuple[Line, embeddings.Resolved]] = []
    seen: set[str] = set()
    for number, raw in enumerate(text.split("\n"), start=1):  # as the upload's check counts lines
        raw = raw.removesuffix("\r")
        if not raw.strip():
            continue
        if len(problems) >= MAX_ERRORS:
            break
        try:
            request = json.loads(raw)
        except ValueError as e:
            problems.append(problem("invalid_json_line", f"This line is not JSON: {e}", number))
            continue
        found = _envelope_problem(request, endpoint, seen, number)
        if found:
            problems.append(found)
            continue
        seen.add(request["custom_id"])
        line = Line(request["custom_id"], number)
        try:
            if endpoint == EMBEDDINGS:
                loaded = _load(SCHEMAS[EMBEDDINGS], request["body"])
                counting.append((line, embeddings.resolve(services, loaded)))
            else:
                planned.append(CHECKERS[endpoint](services, line, request["body"]))
        except (ValidationError, InferqError) as e:
            problems.append(_problem_of(e, number))
    if counting:
        counted, more = _counted(counting)
        planned += counted
        problems = sorted([*problems, *more], key=lambda p: int(p["line"]))[:MAX_ERRORS]
    if not planned and not problems:
        problems.append(problem("empty_file", "The input file has no requests.", 0))
    return planned, problems


def _problem_of(e: ValidationError | InferqError, number: int) -> dict[str, Any]:
    """The problem a line's body has, from what checking it raised."""
    if isinstance(e, ValidationError):
        param, message = _first(e.normalized_messages())
        return problem("invalid_body", message, number, f"body.{param}")
    if isinstance(e, RequestValidationError):
        first = e.details[0]
        param = ".".join(str(part) for part in first["loc"])
        return problem(str(first["type"]), str(first["msg"]), number, param)
    return problem(e.code or "invalid_request", e.message, number, e.param and f"body.{e.param}")


def _counted(counting: list[tuple[Line, embeddings.Resolved]]) -> tuple[list[Planned], list[dict[str, Any]]]:
    """The embedding lines checked against their models' token limits.

    The texts of each model are counted in one call of its tokenizer (5,000 lines one by one
    took most of a second of the create call); token-id lines, which need no tokenizer, line
    by line, so a bad id is named in its own line.
    """
    counts: dict[int, list[int]] = {}
    texts_of: dict[str, list[int]] = defaultdict(list)
    for position, (_, request) in enumerate(counting):
        if isinstance(request.inputs[0], str):
            texts_of[request.version.ref.key].append(position)
    for positions in texts_of.values():
        requests = [counting[position][1] for position in positions]
        first = requests[0]
        try:
            found = first.adapter_class.count_tokens(
                first.version.options, [t for r in requests for t in r.inputs]
            )
        except InferqError:  # counted line by line below, each naming its own line
            continue
        start = 0
        for position, request in zip(positions, requests, strict=True):
            counts[position] = found[start : start + len(request.inputs)]
            start += len(request.inputs)
    planned, problems = [], []
    for position, (line, request) in enumerate(counting):
        try:
            checked = embeddings.counted(request, counts.get(position) or request.count_tokens())
        except InferqError as e:
            problems.append(_problem_of(e, line.number))
            continue
        planned.append(_embedding_planned(line, checked))
    return planned, problems


def _envelope_problem(request: Any, endpoint: str, seen: set[str], number: int) -> dict[str, Any] | None:
    if not isinstance(request, dict):
        return problem("invalid_json_line", "A line must be a JSON object.", number)
    unknown = set(request) - {"custom_id", "method", "url", "body"}
    if unknown:
        return problem("invalid_request", f"Unknown field(s): {', '.join(sorted(unknown))}.", number)
    custom_id = request.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id or len(custom_id) > 512:
        return problem("missing_custom_id", "custom_id must be a string of 1 to 512 characters.", number)
    if custom_id in seen:
        return problem("duplicate_custom_id", f"custom_id {custom_id!r} is used by an earlier line.", number)
    if request.get("method") != "POST":
        return problem("invalid_method", "method must be POST.", number, "method")
    if request.get("url") != endpoint:
        return problem("mismatched_url", f"url must be the batch's endpoint, {endpoint}.", number, "url")
    if not isinstance(request.get("body"), dict):
        return problem("invalid_body", "body must be a JSON object.", number, "body")
    return None


def _first(messages: Any, path: str = "") -> tuple[str, str]:
    """The first field path and message of marshmallow's nested error messages."""
    if isinstance(messages, dict):
        name, inner = next(iter(messages.items()))
        return _first(inner, f"{path}.{name}" if path else str(name))
    if isinstance(messages, list) and messages:
        return _first(messages[0], path)
    return path, str(messages)


def _load(schema: Schema, body: dict[str, Any]) -> dict[str, Any]:
    loaded: dict[str, Any] = schema.load(body)
    return loaded


def _embedding_planned(line: Line, request: embeddings.EmbeddingRequest) -> Planned:
    items = len(request.payload["input"])
    extra = {"items": items, "tokens": request.tokens, "encoding_format": request.encoding_format}
    group = (request.version.ref.key, request.payload.get("dimensions"))
    return Planned(Line(line.custom_id, line.number, extra), request.version, request.payload, group)


def _image_line(services: Services, line: Line, body: dict[str, Any]) -> Planned:
    loaded = _load(SCHEMAS[IMAGES], body)
    if loaded["stream"]:
        raise RequestValidationError.single(["body", "stream"], "A batch line cannot stream.")
    request = images.prepare(services, loaded)
    extra = {"response_format": request.response_format}
    return Planned(Line(line.custom_id, line.number, extra), request.version, request.payload)


def _prediction_line(services: Services, line: Line, body: dict[str, Any]) -> Planned:
    loaded = _load(SCHEMAS[PREDICTIONS], body)
    version = services.catalog.resolve(loaded["model"])
    predictions.validate_input(version, loaded["input"])
    return Planned(line, version, loaded["input"])


CHECKERS: dict[str, Callable[[Services, Line, dict[str, Any]], Planned]] = {
    IMAGES: _image_line,
    PREDICTIONS: _prediction_line,
}
"""How a line of each endpoint but embeddings is checked (embeddings: ``check`` and ``_counted``)."""


def parts(endpoint: str, planned: list[Planned]) -> list[PartPlan]:
    """The lines grouped into parts: embedding lines of one version and dimensions share parts
    of up to ``PART_INPUTS`` inputs, shortest first; every other line is a part of its own."""
    if endpoint != EMBEDDINGS:
        return [PartPlan(p.version, p.payload, [p.line]) for p in planned]
    found: list[PartPlan] = []
    open_parts: dict[tuple[Any, ...], PartPlan] = {}
    # By length first, as sentence-transformers' own encode() does: a pass pads every input
    # to its longest, so a part of like lengths wastes no work on padding.
    for p in sorted(planned, key=lambda p: p.line.extra["tokens"] / max(1, len(p.payload["input"]))):
        current = open_parts.get(p.group)
        items = len(p.payload["input"])
        if current is None or len(current.payload["input"]) + items > PART_INPUTS:
            current = PartPlan(p.version, {**p.payload, "input": []})
            open_parts[p.group] = current
            found.append(current)
        current.payload["input"] = [*current.payload["input"], *p.payload["input"]]
        current.lines.append(p.line)
    return found

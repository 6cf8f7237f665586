"""Embeddings through the OpenAI-compatible endpoint: inputs checked with the model's own tokenizer."""

from __future__ import annotations

import base64
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from api import compat, offload
from api.services import Services
from common.catalog import ModelVersion, load_adapter_class
from common.errors import RequestValidationError
from common.store.predictions import Idempotency

FLAG = "openai_embeddings"
"""The compatibility flag a version needs to be served here."""

MAX_ITEMS = 2048
"""Inputs per request, at most (OpenAI's limit)."""

MAX_TOTAL_TOKENS = 300_000
"""Tokens per request, at most (OpenAI's limit), unless the version's options say ``max_total_tokens``."""

Inputs = list[str] | list[list[int]]


@dataclass(frozen=True)
class EmbeddingRequest:
    """A validated request: which version runs, its adapter input, and how to answer."""

    version: ModelVersion
    payload: dict[str, Any]
    encoding_format: str
    tokens: int = 0
    """The inputs' tokens, as the model's tokenizer counts them."""


def _invalid(
    message: str, loc: tuple[str | int, ...] = ("body", "input"), type_: str = "value_error"
) -> RequestValidationError:
    return RequestValidationError.single(list(loc), message, type_)


def _is_token(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def normalise_input(value: Any) -> Inputs:
    """The four OpenAI forms as one list: of non-empty strings, or of non-empty token-id lists.

    Raises:
        RequestValidationError: Naming the offending item (422).
    """
    if isinstance(value, str):
        value = [value]
    elif isinstance(value, list) and value and all(_is_token(v) for v in value):
        value = [value]
    if not isinstance(value, list) or not value:
        raise _invalid("input must be a non-empty string or array")
    if len(value) > MAX_ITEMS:
        raise _invalid(f"input may hold at most {MAX_ITEMS} items")
    if all(isinstance(v, str) for v in value):
        for index, text in enumerate(value):
            if not text:
                raise _invalid("input strings must not be empty", ("body", "input", index))
        return value
    for index, tokens in enumerate(value):
        if not isinstance(tokens, list) or not tokens or not all(_is_token(t) and t >= 0 for t in tokens):
            raise _invalid(
                "each input must be a non-empty string, or all must be non-empty arrays of token ids >= 0",
                ("body", "input", index),
            )
    return value


@dataclass(frozen=True)
class Resolved:
    """A request whose model and inputs are known good, its tokens not counted yet."""

    version: ModelVersion
    adapter_class: Any
    inputs: Inputs
    body: dict[str, Any]

    def count_tokens(self) -> list[int]:
        """Each input's tokens, by the model's own tokenizer (see ``EmbeddingAdapter.count_tokens``)."""
        counts: list[int] = self.adapter_class.count_tokens(self.version.options, self.inputs)
        return counts


def resolve(services: Services, body: dict[str, Any]) -> Resolved:
    """The version that serves ``body`` and its inputs in one form.

    Raises:
        RequestValidationError, ModelNotFound, UnsupportedModel.
    """
    version = compat.resolve(services, body["model"], FLAG)
    inputs = normalise_input(body["input"])
    return Resolved(version, load_adapter_class(version.adapter), inputs, body)


def counted(request: Resolved, counts: list[int]) -> EmbeddingRequest:
    """The request checked against its version's limits, given its inputs' token ``counts``.

    Raises:
        RequestValidationError: An input or the whole is too long, or ``dimensions`` unsupported.
    """
    version, adapter_class, body = request.version, request.adapter_class, request.body
    options = version.options
    limit = adapter_class.max_input_tokens(options)
    for index, count in enumerate(counts):
        if count > limit:
            raise _invalid(
                f"input {index} has {count} tokens; {version.ref.key} takes at most {limit}",
                ("body", "input", index),
            )
    total = int(options.get("max_total_tokens", MAX_TOTAL_TOKENS))
    if sum(counts) > total:
        raise _invalid(f"the inputs have {sum(counts)} tokens in all; at most {total} per request")
    payload: dict[str, Any] = {"input": request.inputs}
    if body["dimensions"] is not None:
        native = adapter_class.native_dimensions(options)
        if not adapter_class.supports_dimensions(options):
            raise _invalid(f"{version.ref.key} does not support dimensions", ("body", "dimensions"))
        if body["dimensions"] > native:
            raise _invalid(f"{version.ref.key} has {native} dimensions at most", ("body", "dimensions"))
        payload["dimensions"] = body["dimensions"]
    return EmbeddingRequest(version, payload, body["encoding_format"] or "float", sum(counts))


def prepare(services: Services, body: dict[str, Any]) -> EmbeddingRequest:
    """Validates the request against the model version, counting tokens with its tokenizer.

    The item count is checked first; a large count runs off the gevent loop (``api.offload``).

    Raises:
        RequestValidationError, ModelNotFound, UnsupportedModel.
    """
    request = resolve(services, body)
    size = sum(len(item) for item in request.inputs)
    return counted(request, offload.in_thread(size, request.count_tokens))


def decode(vector: str) -> list[float]:
    """Floats from base64 of little-endian float32."""
    raw = base64.b64decode(vector)
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))


def embed(
    services: Services, owner: str, request: EmbeddingRequest, idempotency: Idempotency | None = None
) -> dict[str, Any]:
    """Runs the prediction under the deadline (or waits on the one ``idempotency`` names) and answers
    in the OpenAI shape."""
    prediction = compat.run(services, owner, request.version, request.payload, idempotency)
    output = prediction.output
    return answer(
        request.version.ref.key, output["data"], int(output["prompt_tokens"]), request.encoding_format
    )


def answer(
    model: str,
    vectors: list[str],
    tokens: int,
    encoding_format: str,
    floats: Callable[[str], Any] = decode,
) -> dict[str, Any]:
    """The OpenAI answer for ``vectors`` (base64 of float32, as the adapters return them);
    ``floats`` decodes one for ``encoding_format: float``."""
    as_float = encoding_format == "float"
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": index, "embedding": floats(vector) if as_float else vector}
            for index, vector in enumerate(vectors)
        ],
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }

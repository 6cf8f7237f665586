"""Listing predictions: the strict envelope, cursors both ways, status filters, page sizes."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
import redis
import wriftai

from common.store import keys
from tests.integration.conftest import Stack


def _create(client: wriftai.Client, count: int, **input: object) -> list[str]:
    return [
        client.predictions.create(model="inferq/echo", input={"prompt": f"n{i}", **input}, wait=True)["id"]
        for i in range(count)
    ]


def test_pages_forward_and_back_newest_first(alice: wriftai.Client) -> None:
    ids = _create(alice, 12)
    newest_first = list(reversed(ids))

    first = alice.predictions.list({"page_size": 5})
    assert [p["id"] for p in first.items] == newest_first[:5]
    assert first.previous_cursor is None and first.next_cursor
    second = alice.predictions.list({"page_size": 5, "cursor": first.next_cursor})
    assert [p["id"] for p in second.items] == newest_first[5:10]
    third = alice.predictions.list({"page_size": 5, "cursor": second.next_cursor})
    assert [p["id"] for p in third.items] == newest_first[10:]
    assert third.next_cursor is None and third.previous_cursor

    back = alice.predictions.list({"page_size": 5, "cursor": third.previous_cursor})
    assert [p["id"] for p in back.items] == newest_first[5:10]
    assert back.next_cursor and back.previous_cursor
    start = alice.predictions.list({"page_size": 5, "cursor": back.previous_cursor})
    assert [p["id"] for p in start.items] == newest_first[:5]
    assert start.previous_cursor is None


def test_items_are_list_items_and_the_envelope_is_exact(alice: wriftai.Client, stack: Stack) -> None:
    _create(alice, 1)
    with stack.http() as http:
        body = http.get("/v1/predictions").json()
    assert set(body) == {"items", "next_cursor", "previous_cursor"}
    assert set(body["items"][0]) == {
        "id", "created_at", "updated_at", "status", "setup_time", "execution_time", "model",
    }  # fmt: skip


def test_status_filters_repeat_and_combine(alice: wriftai.Client, start_worker: Callable[..., str]) -> None:
    start_worker(["tests.raises"])
    succeeded = set(_create(alice, 6))
    failed = {alice.predictions.create(model="tests/raises", input={}, wait=True)["id"] for _ in range(2)}
    cancelled = alice.predictions.create(model="inferq/echo", input={"prompt": "x", "delay_s": 30})["id"]
    alice.predictions.cancel(cancelled)
    alice.predictions.wait(cancelled)

    only_failed = alice.predictions.list({"statuses": [wriftai.predictions.Status.FAILED]})
    assert {p["id"] for p in only_failed.items} == failed
    both = alice.predictions.list({"statuses": ["failed", "cancelled"], "page_size": 5})  # type: ignore[list-item]
    assert {p["id"] for p in both.items} == failed | {cancelled}
    page = alice.predictions.list({"statuses": ["succeeded"], "page_size": 5})  # type: ignore[list-item]
    rest = alice.predictions.list({"statuses": ["succeeded"], "page_size": 5, "cursor": page.next_cursor})  # type: ignore[list-item]
    assert {p["id"] for p in page.items + rest.items} == succeeded
    assert rest.next_cursor is None


@pytest.mark.parametrize(
    "query",
    [
        {"page_size": 4},
        {"page_size": 51},
        {"page_size": "many"},
        {"statuses": "done"},
        {"cursor": "garbage"},
    ],
)
def test_bad_list_queries_are_422(stack: Stack, query: dict[str, object]) -> None:
    with stack.http() as http:
        response = http.get("/v1/predictions", params=query)  # type: ignore[arg-type]
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"][0] == "query"


def test_an_empty_cursor_means_the_first_page(alice: wriftai.Client, stack: Stack) -> None:
    ids = _create(alice, 2)
    with stack.http() as http:
        body = http.get("/v1/predictions", params={"cursor": ""}).json()
    assert [p["id"] for p in body["items"]] == list(reversed(ids))


def test_an_empty_list(bob: wriftai.Client) -> None:
    page = bob.predictions.list()
    assert page.items == [] and page.next_cursor is None and page.previous_cursor is None


def test_unknown_query_parameters_are_ignored(stack: Stack) -> None:
    with stack.http() as http:
        assert http.get("/v1/predictions", params={"sort": "whatever"}).status_code == 200


def test_list_needs_auth(stack: Stack) -> None:
    assert httpx.get(f"{stack.base_url}/v1/predictions").status_code == 401


def test_the_index_of_an_owner_who_never_lists_keeps_only_what_has_not_expired(
    alice: wriftai.Client, stack: Stack
) -> None:
    client = redis.Redis.from_url(stack.env["INFERQ_REDIS_URL"], decode_responses=True)
    try:
        old = _create(alice, 6)
        client.delete(*(keys.prediction(prediction_id) for prediction_id in old))  # their retention passed

        new = _create(alice, 2)

        assert client.zrange(keys.owner_predictions("alice"), 0, -1) == new
    finally:
        client.close()

"""Keys and owners: nobody sees, lists or cancels another owner's predictions; no key, no entry."""

from __future__ import annotations

import httpx
import pytest
import wriftai

from tests.integration.conftest import Stack


def _status(error: pytest.ExceptionInfo[httpx.HTTPStatusError]) -> int:
    return error.value.response.status_code


def test_another_owners_prediction_is_invisible(alice: wriftai.Client, bob: wriftai.Client) -> None:
    mine = alice.predictions.create(model="inferq/echo", input={"prompt": "mine", "delay_s": 30})

    with pytest.raises(httpx.HTTPStatusError) as read:
        bob.predictions.get(mine["id"])
    with pytest.raises(httpx.HTTPStatusError) as cancel:
        bob.predictions.cancel(mine["id"])

    assert _status(read) == 404 and _status(cancel) == 404
    assert bob.predictions.list().items == []
    assert alice.predictions.get(mine["id"])["status"] != "cancelled"
    alice.predictions.cancel(mine["id"])


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Basic c2stYWxpY2U6",
        "Bearer sk-nobody",
        "sk-alice",
        "Bearer sk-alice extra",
    ],
)
def test_missing_or_garbled_auth_is_401(stack: Stack, authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    for method, path in (("GET", "/v1/predictions"), ("POST", "/v1/predictions"), ("GET", "/v1/nowhere")):
        response = httpx.request(method, f"{stack.base_url}{path}", headers=headers, json={})
        assert response.status_code == 401, (authorization, path)
        assert response.json()["error"]["type"] == "authentication_error"


def test_health_needs_no_key(stack: Stack) -> None:
    assert httpx.get(f"{stack.base_url}/healthz").json() == {"status": "ok"}

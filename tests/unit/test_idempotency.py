"""The ``Idempotency-Key`` header: its bounds, and the fingerprint of the request it names."""

import pytest

from api.idempotency import MAX_LENGTH, parse
from common.errors import IdempotencyKeyInvalid

BODY = {"model": "inferq/echo", "input": {"prompt": "hi", "n": 1}, "stream": False}


def test_no_header_no_key() -> None:
    assert parse(None, "/v1/predictions", BODY) is None


@pytest.mark.parametrize("value", ["", "k" * (MAX_LENGTH + 1)])
def test_an_empty_or_long_key_is_a_400(value: str) -> None:
    with pytest.raises(IdempotencyKeyInvalid) as refused:
        parse(value, "/v1/predictions", BODY)
    assert refused.value.status_code == 400 and refused.value.param == "Idempotency-Key"


def test_the_fingerprint_is_the_request_not_its_spelling() -> None:
    longest = parse("k" * MAX_LENGTH, "/v1/predictions", BODY)
    assert longest is not None and longest.key == "k" * MAX_LENGTH
    reordered = {"stream": False, "input": {"n": 1, "prompt": "hi"}, "model": "inferq/echo"}
    same = parse("k", "/v1/predictions", reordered)
    assert same is not None and same.fingerprint == longest.fingerprint
    other_body = parse("k", "/v1/predictions", {**BODY, "input": {"prompt": "ho", "n": 1}})
    other_route = parse("k", "/v1/models/inferq/echo/predictions", BODY)
    assert other_body is not None and other_route is not None
    assert len({longest.fingerprint, other_body.fingerprint, other_route.fingerprint}) == 3

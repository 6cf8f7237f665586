"""The Prefer: wait and Validate-Input headers."""

import pytest

from api.prefer import parse_prefer_wait, parse_validate_input
from common.errors import RequestValidationError

DEFAULT, CAP = 60.0, 120.0


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("respond-async", None),
        ("wait", DEFAULT),
        ("Wait", DEFAULT),
        ("wait=5", 5.0),
        ("wait=2.5", 2.5),
        ('wait="7"', 7.0),
        ("wait = 3", 3.0),
        ("wait=1e+16", CAP),
        ("wait=inf", CAP),
        ("wait=120.5", CAP),
        ("respond-async, wait=10", 10.0),
        ("wait=-3", 0.0),
        ("wait=-inf", 0.0),
        ("wait=soon", DEFAULT),
        ("wait=", DEFAULT),
        ("wait=nan", DEFAULT),
        ("wait=NaN", DEFAULT),
        ("waiter=5", None),
    ],
)
def test_parse_prefer_wait(header: str | None, expected: float | None) -> None:
    assert parse_prefer_wait(header, DEFAULT, CAP) == expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [(None, False), ("", False), ("  ", False), ("true", True), (" TRUE ", True), ("1", True),
     ("false", False), ("False", False), ("0", False)],
)  # fmt: skip
def test_parse_validate_input(header: str | None, expected: bool) -> None:
    assert parse_validate_input(header) is expected


@pytest.mark.parametrize("header", ["yes", "no", "2", "truthy", "t"])
def test_parse_validate_input_rejects_garbage(header: str) -> None:
    with pytest.raises(RequestValidationError) as caught:
        parse_validate_input(header)
    assert caught.value.status_code == 422
    assert caught.value.details == [
        {
            "loc": ["header", "validate-input"],
            "msg": "Validate-Input must be true or false",
            "type": "bool_parsing",
        }
    ]

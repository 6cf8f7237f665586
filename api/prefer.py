"""The ``Prefer`` and ``Validate-Input`` request headers."""

from __future__ import annotations

import math

from common.errors import RequestValidationError


def parse_prefer_wait(header: str | None, default: float, cap: float) -> float | None:
    """Seconds to hold the request for ``Prefer: wait`` / ``wait=<n>``, or None when not asked.

    ``n`` may be any float Python prints (``30``, ``2.5``, ``1e+16``); it is capped
    at ``cap``, a negative one counts as 0, and an unreadable one as a bare
    ``wait``. Every other preference is ignored, as RFC 7240 asks.
    """
    if not header:
        return None
    wait: float | None = None
    for preference in header.split(","):
        token = preference.split(";", 1)[0]  # a preference's own ;parameters are ignored
        name, sep, value = token.strip().partition("=")
        if name.strip().lower() != "wait":
            continue
        wait = default
        if sep:
            try:
                asked = float(value.strip().strip('"'))
            except ValueError:
                continue
            if not math.isnan(asked):
                wait = min(max(asked, 0.0), cap)
    return wait


def parse_validate_input(header: str | None) -> bool:
    """Whether ``Validate-Input`` asks for validation before the prediction is created.

    Raises:
        RequestValidationError: When the header is neither true nor false (422).
    """
    if header is None or not header.strip():
        return False
    value = header.strip().lower()
    if value in {"true", "1"}:
        return True
    if value in {"false", "0"}:
        return False
    raise RequestValidationError.single(
        ["header", "validate-input"], "Validate-Input must be true or false", "bool_parsing"
    )

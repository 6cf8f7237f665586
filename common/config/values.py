"""The parsers of settings' values: each takes the raw text of one ``INFERQ_*`` variable and returns
its value, or raises ``ValueError`` saying what it must be (:class:`common.config.Settings` names
the variable)."""

from __future__ import annotations

import re
from pathlib import Path

from common.config.sentinel_url import SentinelUrl

OWNER_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")
"""What an owner (account) name may look like; it becomes part of Redis keys."""


def redis_url(raw: str) -> str | None:
    url = optional_text(raw)
    if url is not None:
        SentinelUrl.parse(url)
    return url


def seconds(raw: str) -> float:
    value = float(raw)
    if not value > 0 or value == float("inf"):
        raise ValueError("must be a positive number of seconds")
    return value


def count(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise ValueError("must be a whole number >= 1")
    return value


def optional_text(raw: str) -> str | None:
    return raw.strip() or None


def optional_seconds(raw: str) -> float | None:
    return seconds(raw) if raw.strip() else None


def flag(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError("must be one of 1/0, true/false, yes/no, on/off")


def whole(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError("must be a whole number >= 0")
    return value


def rate_limit(raw: str) -> str | None:
    if not raw.strip():
        return None
    from limits import parse_many

    try:
        parse_many(raw)
    except ValueError as e:
        raise ValueError(f"is not in the limits notation (e.g. 600/minute): {e}") from e
    return raw.strip()


def log_format(raw: str) -> str:
    if raw.strip().lower() not in {"json", "text"}:
        raise ValueError("must be json or text")
    return raw.strip().lower()


def log_level(raw: str) -> str:
    if raw.strip().upper() not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
    return raw.strip().upper()


def text(raw: str) -> str:
    if not raw.strip():
        raise ValueError("must not be empty")
    return raw.strip()


def path(raw: str) -> Path:
    if not raw.strip():
        raise ValueError("must not be empty")
    return Path(raw).expanduser()


def api_keys(raw: str) -> dict[str, str]:
    """Parses ``owner:key,owner:key`` into a mapping of key to owner.

    Raises:
        ValueError: On an entry without both parts, a bad owner name, or a repeated key.
    """
    keys: dict[str, str] = {}
    for entry in filter(None, (part.strip() for part in raw.split(","))):
        owner, sep, key = entry.partition(":")
        if not sep or not owner or not key:
            raise ValueError(f"entry {len(keys) + 1} is not of the form owner:key")
        if not OWNER_PATTERN.match(owner):
            raise ValueError(f"owner {owner!r} may hold only letters, digits, '_', '.' and '-'")
        if key in keys:
            raise ValueError(f"a key is given twice (for {keys[key]!r} and {owner!r})")
        keys[key] = owner
    return keys


def key_weights(raw: str) -> dict[str, float]:
    """Parses ``owner:weight,owner:weight`` (each a share of turns, above 0) into a mapping.

    Raises:
        ValueError: On an entry without both parts, a bad owner name or weight, or a repeated owner.
    """
    weights: dict[str, float] = {}
    for entry in filter(None, (part.strip() for part in raw.split(","))):
        owner, sep, weight = entry.partition(":")
        if not sep or not OWNER_PATTERN.match(owner):
            raise ValueError(f"entry {entry!r} is not of the form owner:weight")
        if owner in weights:
            raise ValueError(f"owner {owner!r} is given twice")
        try:
            value = float(weight)
        except ValueError:
            value = 0.0
        if not 0 < value < 1e6:
            raise ValueError(f"the weight of {owner!r} must be a number above 0 (and below a million)")
        weights[owner] = value
    return weights

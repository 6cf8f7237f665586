"""What the model routes do, as plain functions of the services (the views only translate).

The catalog is small and held in memory, so a list is sorted whole on each
request and cut at a keyset cursor: the sort value and id of the item the page
starts after (or ends before). A cursor names its sort too, so it cannot be
replayed against another one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import html
import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from api.services import Services
from common.catalog import Model, ModelVersion
from common.errors import NotFound, RequestValidationError
from common.records import ModelRef

SORT_FIELDS = ("created_at", "predictions_count")
"""What ``sort_by`` may name."""

SORT_DIRECTIONS = ("asc", "desc")
"""What ``sort_direction`` may name."""

AFTER = "a"
"""A cursor to the items after its key (``next_cursor``)."""

BEFORE = "b"
"""A cursor to the items before its key (``previous_cursor``)."""

ACCOUNT_NAMESPACE = uuid.UUID("5b4f3c4e-2f0a-4d7e-9a43-6f1d0f6c2a11")
"""Namespace of the UUIDv5 account ids derived from owner names (stable across restarts)."""

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
"""Where creation times are counted from in sort keys; also the creation time of an account nobody dated."""

T = TypeVar("T")

SortKey = tuple[int, str]
"""A list position: the sort value (as an integer), then the id that breaks ties."""


@dataclass(frozen=True)
class Account:
    """Someone who owns models or holds an API key.

    inferq keeps no user records, so everything but the name is derived from it.
    """

    name: str
    created_at: datetime = EPOCH

    @property
    def account_id(self) -> str:
        """A UUID derived from the name."""
        return str(uuid.uuid5(ACCOUNT_NAMESPACE, self.name))

    @property
    def avatar_url(self) -> str:
        """A ``data:`` SVG of the initial on a disc coloured by the name's hash: no file, no network."""
        hue = int(hashlib.sha256(self.name.encode()).hexdigest()[:4], 16) % 360
        svg = (
            '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64">'
            f'<circle cx="32" cy="32" r="32" fill="hsl({hue},55%,42%)"/>'
            '<text x="32" y="42" font-family="sans-serif" font-size="28" text-anchor="middle" fill="#fff">'
            f"{html.escape(self.name[:1].upper())}</text></svg>"
        )
        return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


@dataclass(frozen=True)
class ModelEntry:
    """A configured model as the models API shows it: with its owner and live prediction count."""

    model: Model
    owner: Account
    predictions_count: int

    @property
    def id(self) -> str:
        """``owner/name``."""
        return f"{self.model.owner}/{self.model.name}"


@dataclass(frozen=True)
class Cursor:
    """A position in a sorted list: the items after (or before) the one with ``key``, in ``order``."""

    direction: str
    order: str
    key: SortKey

    def encode(self) -> str:
        """The opaque string handed to clients."""
        text = f"{self.direction}:{self.order}:{self.key[0]}:{self.key[1]}"
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str, order: str) -> Cursor:
        """Reads a cursor back, for a list sorted by ``order``.

        Raises:
            RequestValidationError: When ``text`` is not a cursor of this list and sort (422).
        """
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
            direction, cursor_order, value, ident = raw.split(":", 3)
            cursor = cls(direction, cursor_order, (int(value), ident))
        except (binascii.Error, UnicodeDecodeError, ValueError):
            cursor = None
        if cursor is None or cursor.direction not in (AFTER, BEFORE) or cursor.order != order:
            raise RequestValidationError.single(["query", "cursor"], "Invalid cursor", "value_error")
        return cursor


def paginate(
    items: Sequence[T], key: Callable[[T], SortKey], order: str, cursor_text: str | None, page_size: int
) -> dict[str, Any]:
    """One page of ``items`` (already in display order, sorted by ``key``) with cursors both ways.

    ``order`` names the sort (``created_at.desc``); the display order is descending when it ends
    in ``.desc``.

    Raises:
        RequestValidationError: For a cursor of another list or sort (422).
    """
    keys = [key(item) for item in items]
    start, end = 0, min(page_size, len(items))
    if cursor_text:
        cursor = Cursor.decode(cursor_text, order)
        descending = order.endswith(".desc")
        if cursor.direction == AFTER:
            start = sum(1 for k in keys if (k >= cursor.key if descending else k <= cursor.key))
            end = min(start + page_size, len(items))
        else:
            end = sum(1 for k in keys if (k > cursor.key if descending else k < cursor.key))
            start = max(end - page_size, 0)
    found = end > start
    return {
        "items": list(items[start:end]),
        "next_cursor": Cursor(AFTER, order, keys[end - 1]).encode() if found and end < len(items) else None,
        "previous_cursor": Cursor(BEFORE, order, keys[start]).encode() if found and start > 0 else None,
    }


def known_owners(services: Services) -> set[str]:
    """Everyone the API knows of: the owners of models and of API keys."""
    return {m.owner for m in services.catalog.models} | set(services.settings.api_keys.values())


def entry(model: Model, counts: dict[str, int]) -> ModelEntry:
    """``model`` with its owner and its count in ``counts`` (``store.prediction_counts()``)."""
    return ModelEntry(model, Account(model.owner), counts.get(f"{model.owner}/{model.name}", 0))


def _sort_key(sort_by: str) -> Callable[[ModelEntry], SortKey]:
    if sort_by == "predictions_count":
        return lambda e: (e.predictions_count, e.id)
    return lambda e: ((e.model.created_at - EPOCH) // timedelta(microseconds=1), e.id)


def list_models(
    services: Services,
    owner: str | None,
    *,
    cursor: str | None,
    page_size: int,
    sort_by: str,
    sort_direction: str,
    category_slugs: Collection[str],
) -> dict[str, Any]:
    """A page of models (one owner's, or everyone's) in any of ``category_slugs`` (all when empty).

    Ties in the sort value are broken by id, so ``asc`` is exactly ``desc`` reversed.

    Raises:
        NotFound: When ``owner`` owns no model and holds no API key.
        RequestValidationError: For a cursor of another list or sort (422).
    """
    if owner is not None and owner not in known_owners(services):
        raise NotFound(f"Owner {owner} not found")
    slugs = set(category_slugs)
    counts = services.store.prediction_counts()
    entries = [
        entry(m, counts)
        for m in services.catalog.models
        if (owner is None or m.owner == owner) and (not slugs or any(c.slug in slugs for c in m.categories))
    ]
    key = _sort_key(sort_by)
    entries.sort(key=key, reverse=sort_direction == "desc")
    return paginate(entries, key, f"{sort_by}.{sort_direction}", cursor or None, page_size)


def all_models(services: Services) -> list[Model]:
    """Every model, newest first (what OpenAI's ``models.list()`` gets, unpaginated)."""
    return sorted(services.catalog.models, key=lambda m: (m.created_at, m.owner, m.name), reverse=True)


def get_model(services: Services, owner: str, name: str) -> ModelEntry:
    """One model with its live prediction count.

    Raises:
        ModelNotFound: When no such model is configured.
    """
    return entry(services.catalog.model(owner, name), services.store.prediction_counts())


def list_versions(
    services: Services, owner: str, name: str, *, cursor: str | None, page_size: int
) -> dict[str, Any]:
    """A page of a model's versions, newest (highest number) first.

    Raises:
        ModelNotFound: When no such model is configured.
        RequestValidationError: For a cursor of another list (422).
    """
    versions = list(reversed(services.catalog.model(owner, name).versions))

    def key(version: ModelVersion) -> SortKey:
        return (version.number, "")

    return paginate(versions, key, "number.desc", cursor or None, page_size)


def get_version(services: Services, owner: str, name: str, number: int) -> ModelVersion:
    """One version of a model.

    Raises:
        ModelNotFound: When the model or the version is not configured.
    """
    services.catalog.model(owner, name)
    return services.catalog.version(ModelRef(owner, name, number).key)


def caller(services: Services, owner: str) -> Account:
    """The account behind the caller's API key.

    It dates from the oldest configured model (when this server first had something to serve).
    """
    created = min((m.created_at for m in services.catalog.models), default=EPOCH)
    return Account(owner, created)

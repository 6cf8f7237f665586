"""The models API's logic on in-memory catalogs: keyset pages both ways, sorts, filters, metadata."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
import yaml

from api import models
from api.schemas.models import ModelPageSchema, ModelWithDetailsSchema
from api.services import Services
from common.catalog import Catalog, Category, Model, ModelVersion, category_slug
from common.errors import ConfigError, ModelNotFound, NotFound, RequestValidationError

T0 = datetime(2025, 1, 1, tzinfo=UTC)
QUERY: dict[str, Any] = {
    "cursor": None, "page_size": 5, "sort_by": "created_at", "sort_direction": "desc", "category_slugs": [],
}  # fmt: skip


def version(owner: str, name: str, number: int) -> ModelVersion:
    return ModelVersion(
        owner=owner, name=name, number=number, adapter="echo", options={}, queue=f"{owner}.{name}",
        input_schema={"type": "object"}, output_schema={}, compatibilities={}, release_notes=f"v{number}",
        created_at=T0 + timedelta(days=number),
    )  # fmt: skip


def model(owner: str, name: str, day: int, categories: tuple[str, ...] = (), versions: int = 1) -> Model:
    return Model(
        owner,
        name,
        None,
        "public",
        T0 + timedelta(days=day),
        tuple(version(owner, name, n) for n in range(1, versions + 1)),
        categories=tuple(Category(c, category_slug(c)) for c in categories),
    )


class FakeStore:
    def __init__(self, counts: dict[str, int]) -> None:
        self.counts = counts

    def prediction_counts(self) -> dict[str, int]:
        return dict(self.counts)


def services(
    catalog: list[Model], counts: dict[str, int] | None = None, key_owners: tuple[str, ...] = ()
) -> Services:
    found = SimpleNamespace(
        catalog=Catalog(catalog),
        store=FakeStore(counts or {}),
        settings=SimpleNamespace(api_keys={f"sk-{o}": o for o in key_owners}),
    )
    return cast(Services, found)


def names(page: dict[str, Any]) -> list[str]:
    return [entry.model.name for entry in page["items"]]


# 23 models over two owners, one a day: m00 is the oldest.
MANY = [
    model("acme" if i % 2 else "zeta", f"m{i:02d}", i, ("Text",) if i % 3 else ("Image", "Text"))
    for i in range(23)
]
NEWEST_FIRST = [f"m{i:02d}" for i in reversed(range(23))]


@pytest.mark.parametrize("page_size", [5, 7, 23, 50])
def test_pages_forward_then_back_cover_everything_once(page_size: int) -> None:
    found = services(MANY)
    pages, cursor = [], None
    while True:
        page = models.list_models(found, None, **{**QUERY, "page_size": page_size, "cursor": cursor})
        pages.append(page)
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [n for page in pages for n in names(page)] == NEWEST_FIRST
    assert pages[0]["previous_cursor"] is None
    back = []
    cursor = pages[-1]["previous_cursor"]
    while cursor is not None:
        page = models.list_models(found, None, **{**QUERY, "page_size": page_size, "cursor": cursor})
        back.append(names(page))
        cursor = page["previous_cursor"]
    assert back == [names(page) for page in reversed(pages[:-1])]


def test_ascending_is_descending_reversed() -> None:
    found = services(MANY)
    ascending = models.list_models(found, None, **{**QUERY, "page_size": 50, "sort_direction": "asc"})
    assert names(ascending) == list(reversed(NEWEST_FIRST))


def test_sorting_by_live_prediction_counts_breaks_ties_by_id() -> None:
    found = services(MANY, {"acme/m01": 9, "zeta/m02": 4, "acme/m03": 4})
    query = {**QUERY, "sort_by": "predictions_count"}
    first = models.list_models(found, None, **query)
    assert names(first) == ["m01", "m02", "m03", "m22", "m20"]  # ties: ids descending too (zeta > acme)
    assert [e.predictions_count for e in first["items"]] == [9, 4, 4, 0, 0]
    rest = models.list_models(found, None, **{**query, "page_size": 50, "cursor": first["next_cursor"]})
    assert len(rest["items"]) == 18 and not set(names(rest)) & set(names(first))


def test_a_count_that_grows_between_pages_does_not_repeat_items() -> None:
    counts = {"acme/m01": 9}
    found = services(MANY, counts)
    query = {**QUERY, "sort_by": "predictions_count"}
    first = models.list_models(found, None, **query)
    assert "m22" in names(first)
    counts["zeta/m22"] = 100  # it moves ahead of the cursor: the next pages do not show it again
    rest = models.list_models(found, None, **{**query, "page_size": 50, "cursor": first["next_cursor"]})
    assert "m22" not in names(rest) and len(rest["items"]) == 18


def test_owner_and_category_filters() -> None:
    found = services(MANY, key_owners=("alice",))
    acme = models.list_models(found, "acme", **{**QUERY, "page_size": 50})
    assert names(acme) == [n for n in NEWEST_FIRST if int(n[1:]) % 2]
    images = models.list_models(found, None, **{**QUERY, "page_size": 50, "category_slugs": ["image"]})
    assert names(images) == [n for n in NEWEST_FIRST if int(n[1:]) % 3 == 0]
    either = models.list_models(
        found, None, **{**QUERY, "page_size": 50, "category_slugs": ["image", "text"]}
    )
    assert len(either["items"]) == 23
    assert models.list_models(found, "alice", **QUERY)["items"] == []
    with pytest.raises(NotFound):
        models.list_models(found, "nobody", **QUERY)


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "",
        base64.urlsafe_b64encode(b"a:predictions_count.desc:0:zeta/m22").decode(),  # another sort
        base64.urlsafe_b64encode(b"x:created_at.desc:0:zeta/m22").decode(),  # no such direction
        base64.urlsafe_b64encode(b"a:created_at.desc:soon:zeta/m22").decode(),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    ],
)
def test_foreign_or_malformed_cursors_are_422(cursor: str) -> None:
    with pytest.raises(RequestValidationError) as e:
        models.Cursor.decode(cursor, "created_at.desc")
    assert e.value.details[0]["loc"] == ["query", "cursor"]


def test_versions_page_newest_first_both_ways() -> None:
    found = services([model("acme", "big", 0, versions=12)])
    first = models.list_versions(found, "acme", "big", cursor=None, page_size=5)
    assert [v.number for v in first["items"]] == [12, 11, 10, 9, 8] and first["previous_cursor"] is None
    second = models.list_versions(found, "acme", "big", cursor=first["next_cursor"], page_size=5)
    third = models.list_versions(found, "acme", "big", cursor=second["next_cursor"], page_size=5)
    assert [v.number for v in third["items"]] == [2, 1] and third["next_cursor"] is None
    back = models.list_versions(found, "acme", "big", cursor=third["previous_cursor"], page_size=5)
    assert [v.number for v in back["items"]] == [7, 6, 5, 4, 3]
    models_cursor = models.Cursor(models.AFTER, "created_at.desc", (0, "acme/big")).encode()
    with pytest.raises(RequestValidationError):
        models.list_versions(found, "acme", "big", cursor=models_cursor, page_size=5)
    with pytest.raises(ModelNotFound):
        models.get_version(found, "acme", "big", 13)


def test_wire_shapes() -> None:
    found = services([model("acme", "big", 0, ("Text generation",), versions=3)], {"acme/big": 2})
    entry = models.get_model(found, "acme", "big")
    detail = ModelWithDetailsSchema().dump(entry)
    assert (
        detail["created_at"] == "2025-01-01T00:00:00.000Z"
        and detail["updated_at"] == "2025-01-04T00:00:00.000Z"
    )
    assert detail["categories"] == [{"name": "Text generation", "slug": "text-generation"}]
    assert detail["predictions_count"] == 2 and detail["latest_version"]["number"] == 3
    assert (detail["object"], detail["created"], detail["owned_by"]) == ("model", int(T0.timestamp()), "acme")
    page = ModelPageSchema().dump(models.list_models(found, None, **QUERY))
    assert set(page) == {"items", "next_cursor", "previous_cursor"}


def test_accounts_are_derived_from_names() -> None:
    assert models.Account("alice").account_id == models.Account("alice").account_id
    assert models.Account("alice").account_id != models.Account("bob").account_id
    svg = base64.b64decode(models.Account("<x>").avatar_url.split(",", 1)[1]).decode()
    assert "&lt;" in svg and "<x>" not in svg
    assert models.caller(services(MANY), "alice").created_at == T0


@pytest.mark.parametrize(
    ("name", "slug"),
    [("Image generation", "image-generation"), ("  Text-to-Speech!! ", "text-to-speech"), ("LLM", "llm")],
)
def test_category_slugs(name: str, slug: str) -> None:
    assert category_slug(name) == slug


def write(tmp_path: Path, **extra: Any) -> Path:
    path = tmp_path / "models.yaml"
    spec = {"owner": "acme", "name": "m", "versions": [{"number": 1, "adapter": "echo"}], **extra}
    path.write_text(yaml.safe_dump({"models": [spec]}), encoding="utf-8")
    return path


def test_the_models_file_carries_metadata(tmp_path: Path) -> None:
    links = {f"{k}_url": f"https://example.com/{k}" for k in ("source", "license", "paper", "cover_image")}
    loaded = Catalog.load(write(tmp_path, categories=["Image generation"], overview="Long.", **links)).model(
        "acme", "m"
    )
    assert loaded.categories == (Category("Image generation", "image-generation"),)
    assert loaded.overview == "Long." and loaded.paper_url == "https://example.com/paper"
    bare = Catalog.load(write(tmp_path)).model("acme", "m")
    assert bare.categories == () and bare.overview is None and bare.cover_image_url is None


@pytest.mark.parametrize(
    "extra",
    [
        {"categories": ["Text", "text"]},
        {"categories": ["!!"]},
        {"categories": "Text"},
        {"source_url": "ftp://example.com/x"},
        {"paper_url": "not a url"},
        {"tags": ["x"]},
    ],
)
def test_bad_metadata_is_refused(tmp_path: Path, extra: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        Catalog.load(write(tmp_path, **extra))

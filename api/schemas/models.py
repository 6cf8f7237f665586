"""The shapes of ``/v1/models`` and ``/v1/user``, as the ``wriftai`` (and ``openai``) clients read them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from marshmallow import Schema, fields, validate

from api.models import SORT_DIRECTIONS, SORT_FIELDS
from common.catalog import COMPATIBILITY_FLAGS, ModelVersion
from common.wire import rfc3339


class DateTime(fields.Field):
    """An aware datetime, written as an RFC 3339 string (``2026-01-01T12:00:00.000Z``) like predictions'."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(metadata={"type": "string", "format": "date-time"}, **kwargs)

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else rfc3339(value.timestamp())


class ListModelsQuerySchema(Schema):
    """Query of the model lists; an empty ``cursor=`` means none."""

    cursor = fields.String(load_default=None)
    page_size = fields.Integer(load_default=25, validate=validate.Range(min=5, max=50))
    sort_by = fields.String(load_default="created_at", validate=validate.OneOf(SORT_FIELDS))
    sort_direction = fields.String(load_default="desc", validate=validate.OneOf(SORT_DIRECTIONS))
    category_slugs = fields.List(fields.String(), load_default=list)


class ListVersionsQuerySchema(Schema):
    """Query of a model's version list; an empty ``cursor=`` means none."""

    cursor = fields.String(load_default=None)
    page_size = fields.Integer(load_default=25, validate=validate.Range(min=5, max=50))


class AccountSchema(Schema):
    """A model's owner: ``{account_id, name, avatar_url}``."""

    account_id = fields.String()
    name = fields.String()
    avatar_url = fields.String()


class UserSchema(AccountSchema):
    """The caller (``GET /v1/user``): inferq keeps no profile, so those fields are null."""

    display_name = fields.Constant(None)
    bio = fields.Constant(None)
    location = fields.Constant(None)
    company = fields.Constant(None)
    created_at = DateTime()
    updated_at = fields.Constant(None)
    urls = fields.Constant(None)


class CategorySchema(Schema):
    """``{name, slug}``."""

    name = fields.String()
    slug = fields.String()


class ModelVersionSchema(Schema):
    """A version as lists show it."""

    number = fields.Integer()
    release_notes = fields.String()
    created_at = DateTime()


class ModelVersionWithDetailsSchema(ModelVersionSchema):
    """A version with its prediction schemas and every compatibility flag."""

    schemas = fields.Method("_schemas")
    compatibilities = fields.Method("_compatibilities")

    def _schemas(self, version: ModelVersion) -> dict[str, Any]:
        return {"prediction": {"input": dict(version.input_schema), "output": dict(version.output_schema)}}

    def _compatibilities(self, version: ModelVersion) -> dict[str, bool]:
        return {flag: bool(version.compatibilities.get(flag, False)) for flag in COMPATIBILITY_FLAGS}


class ModelSchema(Schema):
    """A model as lists show it (dumped from an ``api.models.ModelEntry``)."""

    id = fields.String()
    name = fields.String(attribute="model.name")
    created_at = DateTime(attribute="model.created_at")
    updated_at = fields.Method("_updated_at")
    visibility = fields.String(attribute="model.visibility")
    description = fields.String(attribute="model.description", allow_none=True)
    owner = fields.Nested(AccountSchema)
    predictions_count = fields.Integer()
    categories = fields.List(fields.Nested(CategorySchema), attribute="model.categories")
    cover_image_url = fields.String(attribute="model.cover_image_url", allow_none=True)

    def _updated_at(self, entry: Any) -> str | None:
        """When its newest version was added, if after the model itself."""
        created: datetime = entry.model.created_at
        latest: datetime = entry.model.latest.created_at
        return rfc3339(latest.timestamp()) if latest > created else None


class ModelWithDetailsSchema(ModelSchema):
    """A model with its overview, links and latest version, plus OpenAI's ``object/created/owned_by``."""

    overview = fields.String(attribute="model.overview", allow_none=True)
    latest_version = fields.Nested(ModelVersionWithDetailsSchema, attribute="model.latest", allow_none=True)
    source_url = fields.String(attribute="model.source_url", allow_none=True)
    license_url = fields.String(attribute="model.license_url", allow_none=True)
    paper_url = fields.String(attribute="model.paper_url", allow_none=True)
    object = fields.Constant("model")
    created = fields.Method("_created", metadata={"type": "integer"})
    owned_by = fields.String(attribute="model.owner")

    def _created(self, entry: Any) -> int:
        """Unix seconds, as OpenAI's ``created``."""
        return int(entry.model.created_at.timestamp())


class ModelPageSchema(Schema):
    """Exactly ``{items, next_cursor, previous_cursor}``: the client breaks on any other key."""

    items = fields.List(fields.Nested(ModelSchema))
    next_cursor = fields.String(allow_none=True)
    previous_cursor = fields.String(allow_none=True)


class ModelVersionPageSchema(Schema):
    """Exactly ``{items, next_cursor, previous_cursor}``."""

    items = fields.List(fields.Nested(ModelVersionSchema))
    next_cursor = fields.String(allow_none=True)
    previous_cursor = fields.String(allow_none=True)


class OpenAIModelSchema(Schema):
    """A model as OpenAI's SDKs read it (dumped from a ``common.catalog.Model``)."""

    id = fields.Function(lambda model: f"{model.owner}/{model.name}")
    object = fields.Constant("model")
    created = fields.Function(lambda model: int(model.created_at.timestamp()), metadata={"type": "integer"})
    owned_by = fields.String(attribute="owner")


class OpenAIModelListSchema(Schema):
    """``{"object": "list", "data": [...]}``: what ``openai``'s ``models.list()`` reads."""

    object = fields.Constant("list")
    data = fields.List(fields.Nested(OpenAIModelSchema))

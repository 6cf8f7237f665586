"""The models file: which models exist, their versions, adapters, queues and schemas.

The file is YAML::

    models:
      - owner: inferq
        name: echo
        description: Returns its prompt.
        versions:
          - number: 1
            adapter: echo                 # built-in short name, or package.module:Class
            options: {}                   # handed to the adapter's constructor
            queue: inferq.echo            # default: <owner>.<name>, one queue per model
            input_schema: {...}           # default: the adapter's own
            output_schema: {...}          # default: the adapter's own
            compatibilities: {openai_embeddings: false, ...}
        requires: [sentence_transformers]   # optional: serve the model only if these import
        categories: [Diagnostics]           # optional, shown by the models API (slugs derived)
        overview: A longer description.     # optional, as are source_url, license_url,
        source_url: https://example.com/    #   paper_url and cover_image_url (http or https)

Adapter classes are imported here only to read the schemas and compatibility
flags they declare, so adapter modules must keep heavy imports (torch, model
weights) inside ``setup()``.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from marshmallow import RAISE, Schema, ValidationError, fields, validate

from common.errors import ConfigError, ModelNotFound, RequestValidationError
from common.records import ModelRef

logger = logging.getLogger(__name__)

BUILTIN_ADAPTERS: dict[str, str] = {
    "echo": "workers.adapters.echo:EchoAdapter",
    "sketch": "workers.adapters.sketch.adapter:SketchAdapter",
    "hash-embed": "workers.adapters.embeddings:HashEmbedAdapter",
    "minilm": "workers.adapters.embeddings:MiniLMAdapter",
    "diffusers": "workers.adapters.diffusion.pipeline:DiffusersAdapter",
}
"""Short adapter names usable in the models file, and the classes they stand for."""

COMPATIBILITY_FLAGS = (
    "openai_chat_completions",
    "openai_embeddings",
    "openai_images_generations",
    "openai_images_edits",
    "openai_responses",
    "anthropic_messages",
)
"""The OpenAI/Anthropic-compatible endpoints a version may be served through."""

TEXT_METADATA = ("overview", "source_url", "license_url", "paper_url", "cover_image_url")
"""Optional model fields the models API shows as the file gives them."""

NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}"
_REF = re.compile(rf"^({NAME_PATTERN})/({NAME_PATTERN})(?::([0-9]{{1,9}}))?\Z")


@dataclass(frozen=True)
class InputProblem:
    """One violation of a version's input schema."""

    path: list[str | int]
    """Where in the input, as keys and indices."""
    message: str
    kind: str
    """The JSON Schema keyword that failed (``required``, ``type``...)."""


@dataclass(frozen=True)
class ModelVersion:
    """One runnable version of a model."""

    owner: str
    name: str
    number: int
    adapter: str
    options: Mapping[str, Any]
    queue: str
    input_schema: Mapping[str, Any]
    output_schema: Mapping[str, Any]
    compatibilities: Mapping[str, bool]
    release_notes: str
    created_at: datetime
    batching: bool = False
    """The adapter gathers queued predictions of this version into batches."""

    @property
    def ref(self) -> ModelRef:
        """The ``owner/name:number`` reference stored on predictions."""
        return ModelRef(self.owner, self.name, self.number)

    @cached_property
    def _input_validator(self) -> jsonschema.Draft202012Validator:
        return jsonschema.Draft202012Validator(self.input_schema)

    def input_problems(self, payload: Any) -> list[InputProblem]:
        """Every way ``payload`` violates the input schema, in path order (none when it is valid)."""
        problems = sorted(self._input_validator.iter_errors(payload), key=lambda e: list(e.absolute_path))
        return [InputProblem(list(p.absolute_path), p.message, str(p.validator)) for p in problems]


@dataclass(frozen=True)
class Category:
    """A label models are filed under; lists filter by its slug."""

    name: str
    slug: str
    """The name in lowercase, each run of other characters turned into one hyphen."""


@dataclass(frozen=True)
class Model:
    """A model and its versions, newest last, with the metadata the models API shows."""

    owner: str
    name: str
    description: str | None
    visibility: str
    created_at: datetime
    versions: tuple[ModelVersion, ...] = field(default_factory=tuple)
    categories: tuple[Category, ...] = ()
    overview: str | None = None
    source_url: str | None = None
    license_url: str | None = None
    paper_url: str | None = None
    cover_image_url: str | None = None

    @property
    def latest(self) -> ModelVersion:
        """The version with the highest number."""
        return self.versions[-1]


def load_adapter_class(adapter: str) -> type:
    """Imports an adapter class from a short name or a ``package.module:Class`` reference.

    Raises:
        ConfigError: When the reference is malformed or cannot be imported.
    """
    target = BUILTIN_ADAPTERS.get(adapter, adapter)
    module_name, sep, class_name = target.partition(":")
    if not sep or not module_name or not class_name:
        known = ", ".join(sorted(BUILTIN_ADAPTERS))
        raise ConfigError(f"adapter {adapter!r} is neither a built-in ({known}) nor package.module:Class")
    try:
        adapter_class = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as e:
        raise ConfigError(f"adapter {adapter!r} cannot be imported: {e}") from e
    if not isinstance(adapter_class, type):
        raise ConfigError(f"adapter {adapter!r} is not a class")
    return adapter_class


def category_slug(name: str) -> str:
    """``Image generation`` becomes ``image-generation``."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def parse_model_ref(text: str) -> tuple[str, str, int | None]:
    """Splits ``owner/name[:N]``.

    Raises:
        ValueError: When ``text`` is not of that form.
    """
    match = _REF.match(text)
    if not match:
        raise ValueError("must be owner/name or owner/name:<version number>")
    owner, name, number = match.groups()
    return owner, name, int(number) if number is not None else None


def _boolean(value: object) -> None:
    if not isinstance(value, bool):
        raise ValidationError("must be true or false")


def _category_name(value: str) -> None:
    if not category_slug(value):
        raise ValidationError("must hold a letter or digit")


def _link() -> fields.Url:
    return fields.Url(schemes={"http", "https"}, require_tld=False, load_default=None, allow_none=True)


class _VersionSchema(Schema):
    class Meta:
        unknown = RAISE

    number = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))
    adapter = fields.String(required=True, validate=validate.Length(min=1))
    options = fields.Dict(keys=fields.String(), load_default=dict)
    queue = fields.String(validate=validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}\Z"))
    input_schema = fields.Dict()
    output_schema = fields.Dict()
    compatibilities = fields.Dict(
        keys=fields.String(validate=validate.OneOf(COMPATIBILITY_FLAGS)),
        values=fields.Raw(validate=_boolean),
        load_default=dict,
    )
    release_notes = fields.String(load_default="")
    created_at = fields.AwareDateTime(default_timezone=UTC)


class _ModelSchema(Schema):
    class Meta:
        unknown = RAISE

    owner = fields.String(required=True, validate=validate.Regexp(rf"^{NAME_PATTERN}\Z"))
    name = fields.String(required=True, validate=validate.Regexp(rf"^{NAME_PATTERN}\Z"))
    description = fields.String(load_default=None, allow_none=True)
    visibility = fields.String(
        load_default="public", validate=validate.OneOf(["public", "private", "restricted"])
    )
    created_at = fields.AwareDateTime(default_timezone=UTC)
    requires = fields.List(fields.String(validate=validate.Length(min=1)), load_default=list)
    versions = fields.List(fields.Nested(_VersionSchema), required=True, validate=validate.Length(min=1))
    categories = fields.List(
        fields.String(validate=[validate.Length(max=100), _category_name]), load_default=list
    )
    overview = fields.String(load_default=None, allow_none=True)
    source_url = _link()
    license_url = _link()
    paper_url = _link()
    cover_image_url = _link()


class _FileSchema(Schema):
    class Meta:
        unknown = RAISE

    models = fields.List(fields.Nested(_ModelSchema), required=True)


class Catalog:
    """Every configured model, looked up by reference."""

    def __init__(self, models: Iterable[Model]) -> None:
        self._models = {(m.owner, m.name): m for m in models}
        self._versions = {v.ref.key: v for m in self._models.values() for v in m.versions}

    @classmethod
    def load(cls, path: Path) -> Catalog:
        """Reads and checks a models file, importing each adapter to read its defaults.

        Raises:
            ConfigError: When the file is missing, malformed, or names an unusable adapter.
        """
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
            spec = _FileSchema().load(raw if isinstance(raw, dict) else {"models": raw})
        except OSError as e:
            raise ConfigError(f"models file {path} cannot be read: {e}") from e
        except yaml.YAMLError as e:
            raise ConfigError(f"models file {path} is not valid YAML: {e}") from e
        except ValidationError as e:
            raise ConfigError(f"models file {path} is invalid: {e.messages}") from e
        file_time = datetime.fromtimestamp(path.stat().st_mtime, UTC).replace(microsecond=0)
        models = [_build_model(m, file_time) for m in spec["models"] if _available(m)]
        seen: set[tuple[str, str]] = set()
        for model in models:
            if (model.owner, model.name) in seen:
                raise ConfigError(f"models file {path} lists {model.owner}/{model.name} twice")
            seen.add((model.owner, model.name))
        return cls(models)

    @property
    def models(self) -> list[Model]:
        """Every model, in file order."""
        return list(self._models.values())

    @property
    def queues(self) -> list[str]:
        """Every queue some version runs on, sorted."""
        return sorted({v.queue for v in self._versions.values()})

    def version(self, key: str) -> ModelVersion:
        """The version with canonical reference ``owner/name:N``.

        Raises:
            ModelNotFound: When no such version is configured.
        """
        try:
            return self._versions[key]
        except KeyError:
            raise ModelNotFound(f"Model version {key} not found") from None

    def model(self, owner: str, name: str) -> Model:
        """The model ``owner/name``.

        Raises:
            ModelNotFound: When no such model is configured.
        """
        try:
            return self._models[(owner, name)]
        except KeyError:
            raise ModelNotFound(f"Model {owner}/{name} not found") from None

    def resolve(self, text: str, loc: tuple[str, ...] = ("body", "model")) -> ModelVersion:
        """Resolves ``owner/name`` (latest version) or ``owner/name:N`` (that version).

        Raises:
            RequestValidationError: When the reference is malformed (422), at ``loc``.
            ModelNotFound: When the model or version does not exist (404).
        """
        try:
            owner, name, number = parse_model_ref(text)
        except ValueError as e:
            raise RequestValidationError.single(list(loc), f"Invalid model reference: {e}") from e
        model = self.model(owner, name)
        if number is None:
            return model.latest
        return self.version(ModelRef(owner, name, number).key)


def _available(spec: Mapping[str, Any]) -> bool:
    """Whether every module the model ``requires`` (an optional extra) is installed."""
    missing = [name for name in spec["requires"] if importlib.util.find_spec(name) is None]
    if missing:
        logger.info(
            "model %s/%s is not served: %s not installed", spec["owner"], spec["name"], ", ".join(missing)
        )
    return not missing


def _build_model(spec: Mapping[str, Any], file_time: datetime) -> Model:
    owner, name = spec["owner"], spec["name"]
    numbers = [v["number"] for v in spec["versions"]]
    if len(set(numbers)) != len(numbers):
        raise ConfigError(f"model {owner}/{name} repeats a version number")
    created = spec.get("created_at", file_time)
    versions = tuple(
        _build_version(owner, name, v, created) for v in sorted(spec["versions"], key=lambda v: v["number"])
    )
    categories = tuple(Category(label, category_slug(label)) for label in spec["categories"])
    if len({c.slug for c in categories}) != len(categories):
        raise ConfigError(f"model {owner}/{name} lists a category twice")
    texts = {key: spec[key] for key in TEXT_METADATA}
    description, visibility = spec["description"], spec["visibility"]
    return Model(owner, name, description, visibility, created, versions, categories=categories, **texts)


def _build_version(owner: str, name: str, spec: Mapping[str, Any], created: datetime) -> ModelVersion:
    where = f"{owner}/{name}:{spec['number']}"
    adapter_class = load_adapter_class(spec["adapter"])
    input_schema = spec.get("input_schema", getattr(adapter_class, "input_schema", {"type": "object"}))
    output_schema = spec.get("output_schema", getattr(adapter_class, "output_schema", {}))
    for label, schema in (("input_schema", input_schema), ("output_schema", output_schema)):
        try:
            jsonschema.Draft202012Validator.check_schema(schema)
        except jsonschema.SchemaError as e:
            raise ConfigError(f"{where}: {label} is not a valid JSON Schema: {e.message}") from e
    compatibilities = {flag: False for flag in COMPATIBILITY_FLAGS}
    compatibilities.update(getattr(adapter_class, "compatibilities", {}))
    compatibilities.update(spec["compatibilities"])
    return ModelVersion(
        owner=owner,
        name=name,
        number=spec["number"],
        adapter=spec["adapter"],
        options=dict(spec["options"]),
        queue=spec.get("queue", f"{owner}.{name}"),
        input_schema=input_schema,
        output_schema=output_schema,
        compatibilities=compatibilities,
        release_notes=spec["release_notes"],
        created_at=spec.get("created_at", created),
        batching=bool(getattr(adapter_class, "batching", False)),
    )

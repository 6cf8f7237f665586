"""The models file: loading, checking, and resolving model references."""

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from common.catalog import COMPATIBILITY_FLAGS, Catalog, load_adapter_class, parse_model_ref
from common.config import DEFAULT_MODELS_PATH
from common.errors import ConfigError, ModelNotFound, RequestValidationError
from tests.conftest import MODELS
from tests.fixtures.adapters.succeeds import Succeeds
from workers.adapters.echo import EchoAdapter

SUCCEEDS = "tests.fixtures.adapters.succeeds:Succeeds"
TEXT_SCHEMA = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}


def model(name: str = "m", owner: str = "acme", **extra: Any) -> dict[str, Any]:
    versions = extra.pop("versions", [{"number": 1, "adapter": SUCCEEDS}])
    return {"owner": owner, "name": name, "versions": versions, **extra}


def with_version(**fields: Any) -> dict[str, Any]:
    """A model with one version of the Succeeds adapter, with ``fields`` added or replaced."""
    return model(versions=[{"number": 1, "adapter": SUCCEEDS, **fields}])


@pytest.fixture
def load(tmp_path: Path) -> Any:
    """Writes ``models`` (or raw text) as a models file and loads it."""

    def load_file(models: list[dict[str, Any]] | str) -> Catalog:
        path = tmp_path / "models.yaml"
        text = models if isinstance(models, str) else yaml.safe_dump({"models": models})
        path.write_text(text, encoding="utf-8")
        return Catalog.load(path)

    return load_file


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("inferq/echo", ("inferq", "echo", None)),
        ("inferq/echo:3", ("inferq", "echo", 3)),
        ("A-b_c.d/x.y-z_1:123456789", ("A-b_c.d", "x.y-z_1", 123456789)),
    ],
)
def test_parse_model_ref(text: str, expected: tuple[str, str, int | None]) -> None:
    assert parse_model_ref(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "echo", "inferq/", "/echo", "inferq/echo:", "inferq/echo:x", "inferq/echo:1234567890",
     "inferq/echo/extra", "inferq/ echo", "-x/echo", "inferq/echo:-1", "inferq/echo:1.0",
     "inferq/echo:\uff11", "inferq/echo:\u0663"],
)  # fmt: skip
def test_parse_model_ref_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="owner/name"):
        parse_model_ref(text)


def test_parse_model_ref_rejects_a_trailing_newline() -> None:
    with pytest.raises(ValueError, match="owner/name"):
        parse_model_ref("inferq/echo\n")


def test_resolve_latest_and_pinned(load: Any) -> None:
    versions = [{"number": n, "adapter": SUCCEEDS, "options": {"v": n}} for n in (2, 10, 1)]
    catalog = load([model(versions=versions)])
    assert catalog.resolve("acme/m").number == 10
    assert catalog.model("acme", "m").latest.options == {"v": 10}
    assert [v.number for v in catalog.model("acme", "m").versions] == [1, 2, 10]
    assert catalog.resolve("acme/m:2").options == {"v": 2}
    assert catalog.version("acme/m:1").ref.key == "acme/m:1"


@pytest.mark.parametrize("ref", ["acme/other", "other/m", "acme/m:2", "acme/m:0"])
def test_unknown_model_or_version_is_not_found(load: Any, ref: str) -> None:
    catalog = load([model()])
    with pytest.raises(ModelNotFound) as caught:
        catalog.resolve(ref)
    assert caught.value.status_code == 404


def test_malformed_reference_is_a_422_at_body_model(load: Any) -> None:
    with pytest.raises(RequestValidationError) as caught:
        load([model()]).resolve("acme:m")
    assert caught.value.status_code == 422
    assert [d["loc"] for d in caught.value.details] == [["body", "model"]]
    assert caught.value.param == "model"


def test_malformed_reference_at_another_location(load: Any) -> None:
    with pytest.raises(RequestValidationError) as caught:
        load([model()]).resolve("nope", loc=("path", "model"))
    assert caught.value.details[0]["loc"] == ["path", "model"]


def test_queue_defaults_to_owner_dot_name(load: Any) -> None:
    versions = [{"number": 1, "adapter": SUCCEEDS}, {"number": 2, "adapter": SUCCEEDS, "queue": "gpu:big"}]
    catalog = load([model(versions=versions)])
    assert catalog.version("acme/m:1").queue == "acme.m"
    assert catalog.version("acme/m:2").queue == "gpu:big"
    assert catalog.queues == ["acme.m", "gpu:big"]


def test_adapter_schemas_are_used_unless_the_file_gives_one(load: Any) -> None:
    versions = [
        {"number": 1, "adapter": "echo"},
        {"number": 2, "adapter": "echo", "input_schema": TEXT_SCHEMA, "output_schema": {"type": "object"}},
        {"number": 3, "adapter": SUCCEEDS},
    ]
    catalog = load([model(versions=versions)])
    echo = catalog.version("acme/m:1")
    assert (echo.input_schema, echo.output_schema) == (EchoAdapter.input_schema, EchoAdapter.output_schema)
    given = catalog.version("acme/m:2")
    assert (given.input_schema, given.output_schema) == (TEXT_SCHEMA, {"type": "object"})
    base = catalog.version("acme/m:3")
    assert (base.input_schema, base.output_schema) == (Succeeds.input_schema, Succeeds.output_schema)


def test_compatibilities_default_false_and_can_be_set(load: Any) -> None:
    versions = [
        {"number": 1, "adapter": SUCCEEDS},
        {"number": 2, "adapter": SUCCEEDS, "compatibilities": {"openai_embeddings": True}},
    ]
    catalog = load([model(versions=versions)])
    assert catalog.version("acme/m:1").compatibilities == dict.fromkeys(COMPATIBILITY_FLAGS, False)
    assert catalog.version("acme/m:2").compatibilities == {
        **dict.fromkeys(COMPATIBILITY_FLAGS, False),
        "openai_embeddings": True,
    }


def test_model_fields_and_defaults(load: Any) -> None:
    stamp = datetime(2024, 5, 1, 12, tzinfo=UTC)
    catalog = load([model("a"), model("b", description="B", visibility="private", created_at=stamp)])
    first, second = catalog.models
    assert (first.name, first.description, first.visibility) == ("a", None, "public")
    assert first.created_at.tzinfo is not None
    assert (second.description, second.visibility, second.created_at) == ("B", "private", stamp)
    assert second.latest.created_at == stamp
    assert first.latest.release_notes == "" and first.latest.options == {}


@pytest.mark.parametrize(
    ("models", "message"),
    [
        ([model(), model()], "lists acme/m twice"),
        ([model(versions=[{"number": 1, "adapter": SUCCEEDS}] * 2)], "repeats a version number"),
        ([with_version(adapter="nope")], "neither a built-in"),
        ([with_version(adapter="no.such.module:X")], "cannot be imported"),
        ([with_version(adapter="tests.fixtures.adapters.succeeds:Nope")], "cannot be imported"),
        ([with_version(adapter="common.config:DEFAULT_WAIT")], "is not a class"),
        ([with_version(input_schema={"type": 12})], "input_schema is not a valid JSON Schema"),
        ([with_version(output_schema={"minimum": "x"})], "output_schema is not a valid JSON Schema"),
        ([with_version(adapters="typo")], "Unknown field"),
        ([model(colour="red")], "Unknown field"),
        ([with_version(number=0)], "invalid"),
        ([with_version(number="1")], "invalid"),
        ([with_version(queue="a queue")], "invalid"),
        ([with_version(compatibilities={"openai_fax": True})], "invalid"),
        ([with_version(compatibilities={"openai_embeddings": "on"})], "invalid"),
        ([model(versions=[])], "invalid"),
        ([model(owner="bad owner")], "invalid"),
        ([model(visibility="secret")], "invalid"),
        ("models: [\n  - {owner: a", "not valid YAML"),
        ("", "invalid"),
        ("models: 3", "invalid"),
        ("other: []", "invalid"),
    ],
)
def test_bad_models_file_raises_config_error(load: Any, models: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(models)


def test_missing_models_file_raises_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot be read"):
        Catalog.load(tmp_path / "absent.yaml")


@pytest.mark.parametrize("path", [DEFAULT_MODELS_PATH, MODELS])
def test_shipped_models_files_load(path: Path) -> None:
    assert Catalog.load(path).resolve("inferq/echo").adapter == "echo"


def test_input_problems(load: Any) -> None:
    echo = load([model(versions=[{"number": 1, "adapter": "echo"}])]).resolve("acme/m")
    assert echo.input_problems({"prompt": "hi", "delay_s": 1}) == []
    missing = echo.input_problems({})
    assert [(p.path, p.kind) for p in missing] == [([], "required")]
    assert "'prompt' is a required property" in missing[0].message
    problems = echo.input_problems({"prompt": 5, "delay_s": -1, "extra": True})
    assert [(p.path, p.kind) for p in problems] == [
        ([], "additionalProperties"),
        (["delay_s"], "minimum"),
        (["prompt"], "type"),
    ]
    assert [(p.path, p.kind) for p in echo.input_problems([])] == [([], "type")]


def test_load_adapter_class() -> None:
    assert load_adapter_class("echo") is EchoAdapter
    assert load_adapter_class(SUCCEEDS) is Succeeds


def test_a_model_whose_extra_is_missing_is_not_served(tmp_path: Path) -> None:
    path = tmp_path / "models.yaml"
    path.write_text(
        "models:\n"
        "  - {owner: a, name: kept, versions: [{number: 1, adapter: echo}]}\n"
        "  - {owner: a, name: gone, requires: [no_such_module_for_inferq],\n"
        "     versions: [{number: 1, adapter: echo}]}\n"
    )
    catalog = Catalog.load(path)
    assert [m.name for m in catalog.models] == ["kept"]
    with pytest.raises(ModelNotFound):
        catalog.resolve("a/gone")

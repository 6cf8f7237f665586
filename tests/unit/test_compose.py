"""docker-compose.yml and the Dockerfile, checked without a Docker engine.

The compose file is validated against the Compose Specification's JSON Schema (kept in
``../shared/data`` beside the checkout, never copied here), then read the way Compose reads
it: YAML anchors merged, ``${VAR}`` interpolated from a host environment, each service's
command put after its image's entry point. What it wires up is checked against the code it
runs: the ``inferq`` command line parser, the settings, and the queues of the built-in
models file.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from common.catalog import Catalog
from common.config import DEFAULT_MODELS_PATH, Settings, describe_settings
from common.processes.cli import parser

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
SCHEMA_FILE = ROOT.parent / "shared" / "data" / "compose-spec.schema.json"

HOST_ENV = {"INFERQ_API_KEYS": "ops:sk-ops-test"}
"""The host environment of ``docker compose up``, as the README has it: only the API keys set."""

WORKERS = ("worker-images", "worker-embeddings", "worker-general", "worker-webhooks")
"""The worker services, one per model family (and one for webhook deliveries)."""

_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<name>[A-Za-z_]\w*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}|(?P<bare>[A-Za-z_]\w*))"
)
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(us|ms|s|m|h)")
_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}

Services = dict[str, dict[str, Any]]
"""The compose file's services, by name."""

Stages = dict[str, dict[str, Any]]
"""The Dockerfile's stages, by name, in order: each ``{"from": parent, "instructions": [...]}``."""


class MissingVariable(Exception):
    """A ``${NAME:?message}`` whose variable is unset: Compose stops with the message."""


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """``value`` with every ``$NAME``, ``${NAME}``, ``${NAME:-default}`` and ``${NAME:?error}``
    substituted as Compose does (``$$`` is a literal ``$``), in every string of a YAML tree."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name, op, arg = match["name"] or match["bare"], match["op"] or "", match["arg"] or ""
        current = env.get(name)
        unset = current is None or (op.startswith(":") and current == "")
        if op.endswith("-"):
            return arg if unset else str(current)
        if op.endswith("?"):
            if unset:
                raise MissingVariable(f"{name}: {arg}")
            return str(current)
        if op.endswith("+"):
            return "" if unset else arg
        return current or ""

    return _VARIABLE.sub(substitute, value)


def seconds(duration: str) -> float:
    """A Compose duration (``90s``, ``1m30s``) in seconds."""
    parts = _DURATION.findall(duration)
    assert parts and "".join(n + u for n, u in parts) == duration, f"not a duration: {duration!r}"
    return sum(float(number) * _UNITS[unit] for number, unit in parts)


def dockerfile_stages() -> Stages:
    """The Dockerfile's stages in order, each with its parent and its instructions.

    Comment lines are dropped and continuation lines joined, as Docker does.
    """
    lines = [line for line in DOCKERFILE.read_text().splitlines() if not line.lstrip().startswith("#")]
    logical = re.sub(r"\\\n", "", "\n".join(lines)).splitlines()
    stages: Stages = {}
    current: dict[str, Any] = {"from": None, "instructions": []}
    for line in filter(str.strip, logical):
        keyword, _, rest = line.strip().partition(" ")
        if keyword.upper() == "FROM":
            words = rest.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else f"stage-{len(stages)}"
            current = stages[name] = {"from": words[0], "instructions": []}
        current["instructions"].append((keyword.upper(), rest.strip()))
    return stages


def stage_setting(stages: Stages, stage: str, keyword: str) -> str | None:
    """The last ``keyword`` instruction (``USER``, ``ENTRYPOINT``...) in effect in ``stage``,
    following its ``FROM`` chain through the Dockerfile's own stages."""
    while stage in stages:
        found = [rest for kw, rest in stages[stage]["instructions"] if kw == keyword]
        if found:
            return str(found[-1])
        stage = stages[stage]["from"]
    return None


def exec_form(instruction: str) -> list[str]:
    """An ``ENTRYPOINT``/``CMD`` in exec (JSON) form, as a list."""
    value = json.loads(instruction)
    assert isinstance(value, list), f"not in exec form: {instruction}"
    return [str(part) for part in value]


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    """docker-compose.yml as YAML gives it (anchors merged, nothing interpolated)."""
    document = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def compose(raw: dict[str, Any]) -> dict[str, Any]:
    """docker-compose.yml interpolated from the README's host environment."""
    document = interpolate(raw, HOST_ENV)
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> Services:
    return dict(compose["services"])


@pytest.fixture(scope="module")
def stages() -> Stages:
    return dockerfile_stages()


def argv(service: Mapping[str, Any], stages: Stages) -> list[str]:
    """What a service's container runs: its entry point (or its image's), then its command."""
    entrypoint = service.get("entrypoint")
    if entrypoint is None:
        target = service.get("build", {}).get("target") or list(stages)[-1]
        entrypoint = exec_form(stage_setting(stages, target, "ENTRYPOINT") or "[]")
    return [str(part) for part in _words(entrypoint) + _words(service["command"])]


def _words(value: str | list[str]) -> list[str]:
    """A command in either Compose form: a string (split as a shell would) or a list."""
    return shlex.split(value) if isinstance(value, str) else list(value)


def inferq_args(service: Mapping[str, Any], stages: Stages) -> Any:
    """The service's command line, parsed by the real ``inferq`` parser (a bad flag fails here)."""
    command = argv(service, stages)
    assert command[0] == "inferq", f"runs {command}, not the inferq command"
    return parser().parse_args(command[1:])


def queues_of(service: Mapping[str, Any], stages: Stages) -> list[str]:
    args = inferq_args(service, stages)
    assert args.command == "worker"
    assert args.queues, "a worker without --queues would consume every queue and load every model"
    return [queue.strip() for queue in args.queues.split(",")]


def environment(service: Mapping[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    assert isinstance(env, dict), "environment is written as a mapping"
    return {name: "" if value is None else str(value) for name, value in env.items()}


HA = ("redis-replica", "sentinel-1", "sentinel-2", "sentinel-3")
"""The services of the ``ha`` profile: Redis's replica and its Sentinels."""


def inferq_services(services: Services) -> Services:
    """The services running the ``inferq`` command (all but Redis, its replica and Sentinels, and Flower)."""
    return {name: s for name, s in services.items() if name not in ("redis", "flower", *HA)}


# ---- the file as a whole ---------------------------------------------------------------------


def test_the_compose_file_is_valid_against_the_compose_specification(
    raw: dict[str, Any], compose: dict[str, Any]
) -> None:
    if not SCHEMA_FILE.is_file():
        missing = (
            f"the Compose Specification's JSON Schema is not at {SCHEMA_FILE}: it comes from the "
            "shared/ directory beside the checkout (shared/data/compose-spec.schema.json), which CI has"
        )
        if os.environ.get("CI"):
            pytest.fail(missing)
        pytest.skip(missing)
    schema = json.loads(SCHEMA_FILE.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    validator = jsonschema.Draft7Validator(schema)
    for document in (raw, compose):
        problems = [f"{e.json_path}: {e.message}" for e in validator.iter_errors(document)]
        assert problems == []
    assert "version" not in raw, "the top-level version key is obsolete in the Compose Specification"
    assert set(compose["services"]) == {"redis", "api", "flower", *WORKERS, *HA}


def test_without_api_keys_compose_stops_with_a_message(raw: dict[str, Any]) -> None:
    declared = raw["services"]["api"]["environment"]["INFERQ_API_KEYS"]
    assert declared.startswith("${INFERQ_API_KEYS:?")
    with pytest.raises(MissingVariable, match="INFERQ_API_KEYS"):
        interpolate(raw, {})


def test_every_inferq_variable_is_a_setting_and_each_service_environment_loads(
    services: Services,
) -> None:
    known = {name for name, _ in describe_settings()}
    referenced = set(re.findall(r"\bINFERQ_[A-Z0-9_]+", COMPOSE_FILE.read_text()))
    assert referenced - known == set(), "not settings (inferq would refuse to start)"
    for name, service in services.items():
        assert {v for v in environment(service) if v.startswith("INFERQ_")} <= known, name
    for name, service in inferq_services(services).items():
        settings = Settings.from_env(environment(service))
        assert settings.redis_url == "redis://redis:6379/0", name


def test_every_inferq_service_waits_for_a_healthy_redis(services: Services) -> None:
    for name in [*inferq_services(services), "flower"]:
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy", name


# ---- redis -----------------------------------------------------------------------------------


def test_redis_persists_every_second_never_evicts_and_reports_health(
    compose: dict[str, Any], services: Services
) -> None:
    redis = services["redis"]
    command = redis["command"]
    assert command[0] == "redis-server"
    flags = dict(zip(command[1::2], command[2::2], strict=True))
    assert flags["--appendonly"] == "yes"
    assert flags["--appendfsync"] == "everysec"
    assert flags["--maxmemory-policy"] == "noeviction"
    volume, _, target = redis["volumes"][0].partition(":")
    assert target == "/data" and volume in compose["volumes"]
    assert "redis-cli ping" in " ".join(redis["healthcheck"]["test"])
    assert "ports" not in redis, "Redis holds every record and has no password: keep it unpublished"


# ---- api -------------------------------------------------------------------------------------


def test_the_api_runs_inferq_api_on_all_interfaces(services: Services, stages: Stages) -> None:
    api = services["api"]
    args = inferq_args(api, stages)
    assert (args.command, args.host, args.port) == ("api", "0.0.0.0", 8000)
    assert args.workers >= 1
    assert any(str(port).endswith(":8000") for port in api["ports"])
    assert "/healthz" in " ".join(api["healthcheck"]["test"])
    assert seconds(api["stop_grace_period"]) > 30, "gunicorn's graceful timeout is 30 s"


@pytest.mark.parametrize(
    ("folder", "sharers"),
    [("files", {"api"}), ("openai-files", {"api"}), ("uploads", {"api", "worker-images"})],
)
def test_stored_files_live_on_named_volumes_only_their_readers_mount(
    compose: dict[str, Any], services: Services, folder: str, sharers: set[str]
) -> None:
    """Generated images and the Files API's files are the API's; the images uploaded for an edit
    are read by the worker that runs it, at the same path under its INFERQ_DATA_DIR."""
    api = services["api"]
    data_dir = Settings.from_env(environment(api)).data_dir
    mounts = dict(reversed(mount.split(":")[:2]) for mount in api["volumes"])
    volume = mounts[str(data_dir / folder)]
    assert volume in compose["volumes"], "a named volume, so every API replica reads the same files"
    for name, service in services.items():
        mounted = {
            str(m).split(":")[1] for m in service.get("volumes", []) if str(m).startswith(f"{volume}:")
        }
        if name in sharers:
            own_dir = Settings.from_env(environment(service)).data_dir
            assert mounted == {str(own_dir / folder)}, name
        else:
            assert not mounted, name


# ---- workers ---------------------------------------------------------------------------------


def _queues_produced(tmp_path: Path) -> set[str]:
    """Every queue the API sends work to: each model's, and the webhooks queue.

    The images carry the extras their models need, so every model of the file is served:
    the models file is read with its ``requires`` lists dropped, whatever this test's own
    environment has installed.
    """
    spec = yaml.safe_load(DEFAULT_MODELS_PATH.read_text())
    for model in spec["models"]:
        model.pop("requires", None)
    models = tmp_path / "models.yaml"
    models.write_text(yaml.safe_dump(spec))
    return {*Catalog.load(models).queues, Settings.defaults().webhook_queue}


def test_each_queue_is_consumed_by_exactly_one_worker_service_and_no_other_queue_is(
    services: Services, stages: Stages, tmp_path: Path
) -> None:
    produced = _queues_produced(tmp_path)
    consumed = [(queue, name) for name in WORKERS for queue in queues_of(services[name], stages)]
    assert sorted(queue for queue, _ in consumed) == sorted(produced), consumed
    assert queues_of(services["worker-images"], stages) == ["inferq.sketch"]
    assert queues_of(services["worker-webhooks"], stages) == [Settings.defaults().webhook_queue]


def test_workers_can_be_scaled(services: Services, stages: Stages) -> None:
    for name in WORKERS:
        worker = services[name]
        for fixed in ("container_name", "hostname", "ports"):
            assert fixed not in worker, f"{name} sets {fixed}: `--scale` would clash"
        assert inferq_args(worker, stages).hostname is None, f"{name}: replicas would share one name"


def test_workers_get_longer_to_stop_than_predictions_get_to_finish(services: Services) -> None:
    for name in WORKERS:
        worker = services[name]
        grace = Settings.from_env(environment(worker)).shutdown_grace
        assert seconds(worker["stop_grace_period"]) >= grace + 15, name
        assert worker["healthcheck"] == {"disable": True}, f"{name} would inherit the API's /healthz check"


# ---- images ----------------------------------------------------------------------------------


def _extras(service: Mapping[str, Any]) -> set[str]:
    return {e.strip() for e in str(service["build"]["args"]["EXTRAS"]).split(",") if e.strip()}


def test_images_are_built_here_with_real_extras_and_the_api_has_every_worker_extra(
    services: Services, stages: Stages
) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime_extras = set(project["optional-dependencies"]) - {"dev"}
    built = {name: s for name, s in services.items() if "build" in s}
    assert set(built) == {*inferq_services(services), "flower"}
    assert not set(built) & set(HA), "Redis and its Sentinels run the official image"
    for name, service in built.items():
        assert service["pull_policy"] == "never", f"{name} could run a registry image of that name"
        assert service["build"].get("target", list(stages)[-1]) in stages, name
        assert _extras(service) <= runtime_extras, name
    assert "embeddings" in _extras(services["worker-embeddings"])
    for name in WORKERS:
        assert _extras(services[name]) <= _extras(services["api"]), f"the API would not serve {name}'s models"
    by_image: dict[str, set[str]] = {}
    for service in built.values():
        assert by_image.setdefault(service["image"], _extras(service)) == _extras(service), service["image"]


def test_flower_runs_only_in_the_monitoring_profile(services: Services, stages: Stages) -> None:
    flower = services["flower"]
    assert flower["profiles"] == ["monitoring"]
    assert [name for name, s in services.items() if "profiles" in s and name not in HA] == ["flower"]
    assert argv(flower, stages)[:3] == ["celery", "--broker=redis://redis:6379/0", "flower"]
    installs = [rest for kw, rest in stages[flower["build"]["target"]]["instructions"] if kw == "RUN"]
    assert any(re.search(r"pip install .*\bflower\b", rest) for rest in installs)
    assert all(str(port).startswith("127.0.0.1:") for port in flower["ports"]), "Flower has no login"


def test_the_dockerfile_builds_slim_non_root_images_with_a_healthcheck(
    stages: Stages,
) -> None:
    default = list(stages)[-1]
    for stage in (default, "flower"):
        user = stage_setting(stages, stage, "USER")
        assert user is not None and user.split(":")[0] not in ("root", "0"), stage
    assert stages["base"]["from"] in ("python:3.11-slim", "${PYTHON_IMAGE}")
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in DOCKERFILE.read_text()
    assert exec_form(stage_setting(stages, default, "ENTRYPOINT") or "[]") == ["inferq"]
    healthcheck = stage_setting(stages, default, "HEALTHCHECK") or ""
    assert "/healthz" in healthcheck
    build = stages["build"]["instructions"]
    args = [rest for kw, rest in build if kw == "ARG"]
    assert any(rest.split("=")[0] == "EXTRAS" for rest in args)
    installs = " ".join(rest for kw, rest in build if kw == "RUN" and "pip install" in rest)
    assert "$EXTRAS" in installs and "--extra-index-url" in installs
    assert "download.pytorch.org/whl/cpu" in " ".join(args)
    for stage in (default, "flower"):
        copies = [rest for kw, rest in stages[stage]["instructions"] if kw == "COPY"]
        assert all(rest.startswith("--from=build ") for rest in copies), "only the built virtualenv"
        assert not any(kw == "RUN" and "apt-get" in rest for kw, rest in stages[stage]["instructions"])


def test_the_build_context_holds_only_what_the_image_installs() -> None:
    rules = [line for line in (ROOT / ".dockerignore").read_text().splitlines() if line and line[0] != "#"]
    assert rules[0] == "*", "an allow-list: .git, .venv, tests and any .env stay out of the context"
    assert {r[1:].rstrip("/") for r in rules if r.startswith("!")} == {
        "pyproject.toml",
        "README.md",
        "api",
        "common",
        "workers",
    }


def test_the_ha_profile_runs_a_replica_and_three_sentinels_that_inferq_can_follow(services: Services) -> None:
    for name in HA:
        assert services[name]["profiles"] == ["ha"], name
    assert services["redis-replica"]["command"][1:3] == ["--replicaof", "redis"]
    volumes = {services[name]["volumes"][0] for name in HA}
    assert len(volumes) == len(HA), "each Sentinel rewrites a config file of its own"
    for name in ("sentinel-2", "sentinel-3"):
        assert services[name]["command"] == services["sentinel-1"]["command"]
    assert "sentinel monitor inferq redis 6379 2" in services["sentinel-1"]["command"][0]
    env = {
        "INFERQ_API_KEYS": "ops:sk",
        "INFERQ_REDIS_URL": "sentinel://sentinel-1:26379,sentinel-2:26379,sentinel-3:26379/0",
        "INFERQ_REDIS_MASTER": "inferq",
        "INFERQ_REDIS_REPLICAS_ACK": "1",
    }
    api = interpolate(yaml.safe_load(COMPOSE_FILE.read_text()), env)["services"]["api"]
    settings = Settings.from_env(environment(api))
    assert settings.sentinel is not None and len(settings.sentinel.hosts) == 3
    assert settings.redis_master == "inferq" and settings.redis_replicas_ack == 1

"""deploy/: the Kubernetes manifests, checked offline, without a cluster.

Every YAML document under ``deploy/`` is validated against the schema of its kind: Kubernetes
kinds against the Kubernetes JSON Schemas that kubernetes-validate ships, KEDA's ScaledObject
against the ``openAPIV3Schema`` of KEDA's own CRD, kept in ``tests/data`` (its README says
where from). Both are strict: a field the kind does not have is an error, as ``kubectl apply``
makes it (server-side field validation), so a misspelled field fails here, not in a cluster.
Then what the ScaledObject and the worker Deployment say about each other, and about inferq,
is checked against the code: the ``inferq`` command line parser, the settings, the models file.
"""

from __future__ import annotations

import codecs
import copy
import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from common.catalog import Catalog
from common.config import DEFAULT_MODELS_PATH, Settings, describe_settings
from common.processes.cli import parser

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KEDA = DEPLOY / "keda"
KEDA_CRD = ROOT / "tests" / "data" / "keda.sh_scaledobjects.yaml"

KEDA_CRD_SHA256 = "af35555862a83933b074af14ad439c4b4ceabaf4daa3e9338e9b23e36d308d80"
"""The stored CRD, byte for byte as KEDA v2.20.2 ships it (tests/data/README.md): replace both together."""

KUBERNETES_VERSION = "1.34"
"""The Kubernetes version whose schemas the manifests are checked against (one KEDA 2.20 supports)."""

STOP_MARGIN = 15
"""Seconds a pod keeps past ``INFERQ_SHUTDOWN_GRACE`` before it is killed, to requeue what still
runs (``tests/unit/test_compose.py`` holds compose's ``stop_grace_period`` to the same)."""

Document = dict[str, Any]
"""One YAML document: a Kubernetes object."""


def documents() -> Iterator[tuple[str, Document]]:
    """Every YAML document under ``deploy/``, named ``path#index``."""
    for path in sorted([*DEPLOY.rglob("*.yaml"), *DEPLOY.rglob("*.yml")]):
        for index, document in enumerate(yaml.safe_load_all(path.read_text())):
            if document is not None:
                yield f"{path.relative_to(ROOT)}#{index}", document


def strict(schema: Any) -> Any:
    """A CRD's structural schema as the API server applies it to ``kubectl apply``: every object
    that lists its properties refuses others, unless it preserves unknown fields."""
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    closed = {key: strict(value) for key, value in schema.items()}
    if "properties" in schema:
        closed["properties"] = {name: strict(value) for name, value in schema["properties"].items()}
        if "additionalProperties" not in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
            closed["additionalProperties"] = False
    return closed


def crd_schemas(path: Path) -> dict[tuple[str, str], Any]:
    """The served versions' ``openAPIV3Schema`` in a CRD file, strict, by (apiVersion, kind)."""
    crd = yaml.safe_load(path.read_text())
    assert crd["kind"] == "CustomResourceDefinition"
    group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
    return {
        (f"{group}/{version['name']}", kind): strict(version["schema"]["openAPIV3Schema"])
        for version in crd["spec"]["versions"]
        if version["served"]
    }


CUSTOM_SCHEMAS = crd_schemas(KEDA_CRD)
"""The custom kinds the manifests may use, with their schemas."""


def kubernetes_problems(document: Document) -> list[str]:
    """What the Kubernetes schemas of ``KUBERNETES_VERSION`` find wrong (the first problem)."""
    try:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as e:
        return [f"{e.json_path}: {e.message}"]
    except kubernetes_validate.SchemaNotFoundError as e:
        return [e.message]
    return []


def problems(document: Document) -> list[str]:
    """What the schema of the document's kind finds wrong with it; a kind with no schema is one."""
    api_version, kind = document.get("apiVersion", ""), document.get("kind", "")
    schema = CUSTOM_SCHEMAS.get((api_version, kind))
    if schema is None:
        group = api_version.rpartition("/")[0]
        if "." in group and not group.endswith(".k8s.io"):
            return [f"no schema for {kind} {api_version}: store its CRD in tests/data"]
        return kubernetes_problems(document)
    # A CRD's schema is an OpenAPI 3.0 schema object: JSON Schema draft 4 with extensions
    # (x-kubernetes-*) that a validator ignores.
    validator = jsonschema.Draft4Validator(schema)
    found = [f"{e.json_path}: {e.message}" for e in validator.iter_errors(document)]
    # A custom object's metadata is the same ObjectMeta as any other object's; the CRD leaves it
    # to the API server, which checks it as it checks a ConfigMap's.
    wrapper = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": document.get("metadata", {})}
    return found + kubernetes_problems(wrapper)


def load(name: str) -> Document:
    """The one document of ``deploy/keda/<name>``."""
    found = [d for d in yaml.safe_load_all((KEDA / name).read_text()) if d is not None]
    assert len(found) == 1, name
    document = found[0]
    assert isinstance(document, dict)
    return document


@pytest.fixture
def deployment() -> Document:
    return load("worker-deployment.yaml")


@pytest.fixture
def scaled_object() -> Document:
    return load("scaledobject.yaml")


def worker(deployment: Document) -> Document:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert isinstance(container, dict)
    return container


def trigger(scaled_object: Document) -> Document:
    (found,) = scaled_object["spec"]["triggers"]
    assert isinstance(found, dict)
    return found


def worker_args(deployment: Document) -> Any:
    """The worker's command line, parsed by the real ``inferq`` parser (a bad flag fails here)."""
    container = worker(deployment)
    assert "command" not in container, "the image's entry point, `inferq`, is what runs the args"
    args = parser().parse_args([str(arg) for arg in container["args"]])
    assert args.command == "worker"
    assert args.queues, "a worker without --queues would consume every queue and load every model"
    return args


def settings_of(container: Document) -> Settings:
    """The settings the container's ``env`` gives inferq (those set from Secrets left unset)."""
    env = container.get("env", [])
    known = {name for name, _ in describe_settings()}
    assert {v["name"] for v in env if v["name"].startswith("INFERQ_")} <= known
    return Settings.from_env({v["name"]: str(v["value"]) for v in env if "value" in v})


# ---- every document against its schema ------------------------------------------------------


def test_deploy_holds_the_keda_manifests() -> None:
    found = {(d["kind"], name.split("#")[0]) for name, d in documents()}
    assert {
        ("Deployment", "deploy/keda/worker-deployment.yaml"),
        ("ScaledObject", "deploy/keda/scaledobject.yaml"),
    } <= found


@pytest.mark.parametrize("document", [d for _, d in documents()], ids=[name for name, _ in documents()])
def test_every_document_is_valid_against_the_schema_of_its_kind(document: Document) -> None:
    assert problems(document) == []


def test_the_keda_schema_is_kedas_crd_as_released() -> None:
    assert hashlib.sha256(KEDA_CRD.read_bytes()).hexdigest() == KEDA_CRD_SHA256
    assert list(CUSTOM_SCHEMAS) == [("keda.sh/v1alpha1", "ScaledObject")]
    for schema in CUSTOM_SCHEMAS.values():
        jsonschema.Draft4Validator.check_schema(schema)


def _at(document: Document, path: str) -> tuple[Any, str | int]:
    """The container and key of a dotted path (``spec.triggers.0.metadata``) in a document."""
    *parents, last = [int(part) if part.isdigit() else part for part in path.split(".")]
    node: Any = document
    for part in parents:
        node = node[part]
    return node, last


def broken(document: Document, path: str, value: Any = None, *, remove: bool = False) -> Document:
    """A copy of ``document`` with ``path`` removed, or set to ``value``."""
    copied = copy.deepcopy(document)
    node, key = _at(copied, path)
    if remove:
        del node[key]
    else:
        node[key] = value
    assert copied != document, f"{path}: nothing changed"
    return copied


SCALED_OBJECT_BREAKS = [
    # (path, value, remove, what the problem must say)
    ("spec.minReplicas", 0, False, "'minReplicas' was unexpected"),  # misspelled minReplicaCount
    (
        "spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleDown.stabilizationWindow",
        300,
        False,
        "'stabilizationWindow' was unexpected",
    ),
    ("spec.triggers.0.metadata.threshold", 2, False, "2 is not of type 'string'"),  # metadata is strings
    ("spec.maxReplicaCount", "10", False, "'10' is not of type 'integer'"),
    ("spec.maxReplicaCount", 0, False, "less than the minimum of 1"),
    ("spec.triggers", [], False, "should be non-empty"),
    ("spec.scaleTargetRef", None, True, "'scaleTargetRef' is a required property"),
    ("metadata.lables", {"a": "b"}, False, "'lables' was unexpected"),  # checked as ObjectMeta
]

DEPLOYMENT_BREAKS = [
    ("spec.template.spec.containers", None, True, "'containers' is a required property"),
    ("spec.template.spec.terminationGracePeriodSeconds", "90", False, "'90' is not of type 'integer'"),
    ("spec.template.spec.containers.0.arg", ["worker"], False, "'arg' was unexpected"),  # misspelled args
    ("spec.template.spec.containers.0.resources.limits.cpu", {"cores": 2}, False, "limits.cpu"),
    ("spec.selector", None, True, "'selector' is a required property"),
    ("metadata.lables", {"a": "b"}, False, "'lables' was unexpected"),
]


@pytest.mark.parametrize(("path", "value", "remove", "expected"), SCALED_OBJECT_BREAKS)
def test_a_broken_scaled_object_fails_validation(
    scaled_object: Document, path: str, value: Any, remove: bool, expected: str
) -> None:
    assert problems(scaled_object) == []
    (problem,) = problems(broken(scaled_object, path, value, remove=remove))
    assert expected in problem


@pytest.mark.parametrize(("path", "value", "remove", "expected"), DEPLOYMENT_BREAKS)
def test_a_broken_deployment_fails_validation(
    deployment: Document, path: str, value: Any, remove: bool, expected: str
) -> None:
    assert problems(deployment) == []
    (problem,) = problems(broken(deployment, path, value, remove=remove))
    assert expected in problem


def test_a_kind_without_a_schema_fails_validation() -> None:
    assert problems({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledJob", "metadata": {"name": "x"}})
    assert problems({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "x"}})
    assert problems({"apiVersion": "apps/v1", "kind": "Deploymnet", "metadata": {"name": "x"}})


# ---- what the manifests say about each other and about inferq -------------------------------


def test_the_scaled_object_scales_the_worker_deployment_beside_it(
    scaled_object: Document, deployment: Document
) -> None:
    target = scaled_object["spec"]["scaleTargetRef"]
    assert target["name"] == deployment["metadata"]["name"]
    assert target.get("apiVersion", "apps/v1") == "apps/v1"
    assert target.get("kind", "Deployment") == deployment["kind"] == "Deployment"
    assert "replicas" not in deployment["spec"], "kubectl apply would reset the count KEDA set"
    spec = scaled_object["spec"]
    # The CRD's CEL rule, which a JSON Schema cannot say.
    assert spec.get("minReplicaCount", 0) <= spec.get("maxReplicaCount", 100)


def test_the_deployment_selects_its_own_pods(deployment: Document) -> None:
    # The API server refuses a selector that does not match the template; no schema says so.
    selector = deployment["spec"]["selector"]["matchLabels"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= labels.items()


def test_the_threshold_per_replica_is_the_workers_concurrency(
    scaled_object: Document, deployment: Document
) -> None:
    found = trigger(scaled_object)
    assert found["type"] == "prometheus"
    assert found["metricType"] == "AverageValue", "the HPA divides the total by the threshold only then"
    assert int(found["metadata"]["threshold"]) == worker_args(deployment).concurrency
    assert float(found["metadata"]["activationThreshold"]) == 0, "one prediction wakes a worker"


def test_the_query_counts_queued_and_running_predictions_of_the_workers_queues(
    scaled_object: Document, deployment: Document
) -> None:
    query = trigger(scaled_object)["metadata"]["query"]
    queues = {queue.strip() for queue in worker_args(deployment).queues.split(",")}
    known = {*Catalog.load(DEFAULT_MODELS_PATH).queues, Settings.defaults().webhook_queue}
    assert queues <= known
    selectors = re.findall(r'(inferq_queue_\w+)\{queue(=~|=)"([^"]*)"\}', query)
    assert sorted(metric for metric, _, _ in selectors) == ["inferq_queue_queued", "inferq_queue_running"]
    for metric, op, literal in selectors:
        value = codecs.decode(literal, "unicode_escape")  # PromQL's "inferq\\.sketch" is inferq\.sketch
        matched = {q for q in known if (re.fullmatch(value, q) if op == "=~" else q == value)}
        assert matched == queues, metric
    assert query.count("or vector(0)") == len(selectors), "an idle side would blank the whole sum"


def test_pods_get_longer_to_stop_than_predictions_get_to_finish(deployment: Document) -> None:
    pod = deployment["spec"]["template"]["spec"]
    grace = settings_of(worker(deployment)).shutdown_grace
    assert pod["terminationGracePeriodSeconds"] >= grace + STOP_MARGIN


def test_the_worker_runs_unprivileged_with_redis_from_a_secret(deployment: Document) -> None:
    pod = deployment["spec"]["template"]["spec"]
    container = worker(deployment)
    assert pod["enableServiceLinks"] is False, "a Service named inferq would add INFERQ_* variables"
    assert pod["securityContext"]["runAsNonRoot"] is True
    pod_user = pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]
    image_user = re.findall(r"^USER (\d+):(\d+)$", (ROOT / "Dockerfile").read_text(), re.M)[-1]
    assert pod_user == tuple(map(int, image_user)), "the image's user inferq, by number"
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    (redis_url,) = [v for v in container["env"] if v["name"] == "INFERQ_REDIS_URL"]
    assert "secretKeyRef" in redis_url["valueFrom"]
    assert {"requests", "limits"} <= set(container["resources"])

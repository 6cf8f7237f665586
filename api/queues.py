"""What ``GET /v1/queues`` and ``/metrics`` say about the model queues: the scheduler's figures."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from api.services import Services
from common.records import Priority
from common.store.heartbeats import live_processes
from common.store.schedule import QueueFigures


def queue_models(services: Services) -> dict[str, list[str]]:
    """Each model queue and the models (``owner/name``) whose versions run on it."""
    found: dict[str, set[str]] = defaultdict(set)
    for model in services.catalog.models:
        for version in model.versions:
            found[version.queue].add(f"{version.ref.owner}/{version.ref.name}")
    return {queue: sorted(models) for queue, models in sorted(found.items())}


def list_queues(services: Services, owner: str) -> dict[str, Any]:
    """Every model queue's counts by class and its live worker processes, with ``owner``'s own
    share of them (another key's predictions are counted, never shown)."""
    queues = queue_models(services)
    names = list(queues)
    everyone = services.store.schedule.figures(names)
    own = services.store.schedule.figures(names, owner=owner)
    data = []
    for queue, all_figures, own_figures in zip(names, everyone, own, strict=True):
        data.append(
            {
                "queue": queue,
                "models": queues[queue],
                **_counts(all_figures),
                "worker_processes": live_processes(services.store, queue),
                "yours": _counts(own_figures),
            }
        )
    return {"object": "list", "data": data}


def _counts(figures: QueueFigures) -> dict[str, Any]:
    return {
        "queued": figures.queued,
        "running": figures.running,
        "classes": {
            priority.value: {
                "queued": line.queued,
                "running": line.running,
                "oldest_queued_age": None if line.oldest_age is None else round(line.oldest_age, 3),
            }
            for priority, line in figures.lines.items()
            if isinstance(priority, Priority)
        },
    }

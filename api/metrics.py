"""Prometheus metrics: this process's HTTP requests, and the cluster's predictions, queues and workers.

Request counts and latencies live in the process (prometheus-client's
multiprocess mode aggregates gunicorn's workers when ``PROMETHEUS_MULTIPROC_DIR``
is set, as ``inferq api`` does). Everything about predictions is read from
Redis at scrape time, so any API process reports the whole cluster.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from api.services import Services
from common.store import keys, stats
from common.store.heartbeats import live_processes, live_workers

REQUESTS = Counter(
    "inferq_http_requests_total", "HTTP requests served, by route and status.", ["method", "route", "status"]
)
LATENCY = Histogram(
    "inferq_http_request_duration_seconds",
    "Time to answer an HTTP request (to the first byte of a stream).",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    """Counts one answered request."""
    REQUESTS.labels(method, route, str(status)).inc()
    LATENCY.labels(method, route).observe(seconds)


class ClusterCollector(Collector):
    """Reads the cluster's prediction statistics, queue depths and live workers from Redis."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def collect(self) -> Iterator[Metric]:
        client = self.services.store.redis
        created = CounterMetricFamily(
            "inferq_predictions_created", "Predictions created, by model.", labels=["model"]
        )
        for model, count in self.services.store.prediction_counts().items():
            created.add_metric([model], count)
        yield created
        ended = CounterMetricFamily(
            "inferq_predictions_finished",
            "Predictions ended, by model and status.",
            labels=["model", "status"],
        )
        for (model, status), count in stats.finished(client).items():
            ended.add_metric([model, status], count)
        yield ended
        lines = CounterMetricFamily(
            "inferq_batch_lines", "Batch lines ended, by outcome (completed, failed).", labels=["status"]
        )
        for status, count in stats.batch_lines(client).items():
            lines.add_metric([status], count)
        yield lines
        yield from self._histograms()
        yield from self._queues()

    def _histograms(self) -> Iterator[Metric]:
        for name, doc in (
            ("wait", "Seconds from creation until a worker started the prediction."),
            ("run", "Seconds a worker ran the prediction (from its claim to its end)."),
        ):
            family = HistogramMetricFamily(f"inferq_prediction_{name}_seconds", doc, labels=["model"])
            for model, histogram in stats.histograms(self.services.store.redis, name).items():
                family.add_metric([model], histogram.buckets, histogram.total)
            yield family

    def _queues(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily("inferq_queue_depth", "Tasks waiting in each queue.", labels=["queue"])
        workers = GaugeMetricFamily("inferq_live_workers", "Live workers on each queue.", labels=["queue"])
        queues = [*self.services.catalog.queues, self.services.settings.webhook_queue]
        pipe = self.services.store.redis.pipeline(transaction=False)
        for queue in queues:
            pipe.llen(keys.celery_queue(queue))
        for queue, length in zip(queues, pipe.execute(), strict=True):
            depth.add_metric([queue], length)
            workers.add_metric([queue], live_workers(self.services.store, queue))
        yield depth
        yield workers
        yield from self._lines()

    def _lines(self) -> Iterator[Metric]:
        """The scheduler's figures per model queue and class, and the pool processes serving each
        queue: what to autoscale workers on (README, Autoscaling)."""
        labels = ["queue", "priority"]
        queued = GaugeMetricFamily("inferq_queue_queued", "Predictions waiting for a worker.", labels=labels)
        running = GaugeMetricFamily("inferq_queue_running", "Predictions running on workers.", labels=labels)
        oldest = GaugeMetricFamily(
            "inferq_queue_oldest_age_seconds",
            "Seconds the oldest waiting prediction has waited (0: none waits).",
            labels=labels,
        )
        processes = GaugeMetricFamily(
            "inferq_queue_worker_processes",
            "Pool processes of the live workers on each queue.",
            labels=["queue"],
        )
        store = self.services.store
        for figures in store.schedule.figures(self.services.catalog.queues):
            for priority, line in figures.lines.items():
                label = [figures.queue, priority.value]
                queued.add_metric(label, line.queued)
                running.add_metric(label, line.running)
                oldest.add_metric(label, line.oldest_age or 0.0)
            processes.add_metric([figures.queue], live_processes(store, figures.queue))
        yield from (queued, running, oldest, processes)


def exposition(services: Services) -> tuple[bytes, str]:
    """The scrape: every metric in the Prometheus text format, and its content type."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)
        body = generate_latest(registry)
    else:
        body = generate_latest(REGISTRY)
    cluster = CollectorRegistry()
    cluster.register(ClusterCollector(services))
    return body + generate_latest(cluster), CONTENT_TYPE_LATEST

"""The inferq HTTP API: a Flask app speaking the WriftAI (and OpenAI-compatible) wire contracts."""

from __future__ import annotations

import os
import time

from flask import Flask

from api import docs, hooks, ratelimits
from api.auth import KeyRing
from api.batch_outputs import FINISH_INTERVAL, BatchFinisher
from api.error_handler import register_error_handler
from api.moderation import load_policy
from api.services import EXTENSION, Services
from api.signing import UrlSigner, derive_key
from api.views import batches as batch_views
from api.views import console as console_views
from api.views import embeddings as embedding_views
from api.views import files as file_views
from api.views import health as health_views
from api.views import images as image_views
from api.views import links as link_views
from api.views import models as model_views
from api.views import predictions as prediction_views
from api.views import queues as queue_views
from common.catalog import Catalog
from common.config import Settings
from common.connections import redis_client
from common.errors import ConfigError
from common.processes import logs
from common.processes.runtime import tune_gc
from common.processes.ticker import Ticker
from common.queue.broker import TaskMessages, make_celery
from common.queue.recovery import INTERVAL, Recovery
from common.storage import LocalStorage, openai_files_storage, uploads_storage
from common.store import keys
from common.store.batches import BatchStore
from common.store.files import FileStore
from common.store.notifier import Notifier
from common.store.outbox import Outbox
from common.store.predictions import PredictionStore

API_REDIS_RETRIES = 2
"""Retries of a Redis command in the API before the request answers 503."""

RETENTION_SWEEP_INTERVAL = 60.0
"""Seconds between sweeps of stored files older than the retention window (and of expired uploads)."""


def create_app(settings: Settings | None = None, *, background: bool = True) -> Flask:
    """Builds the API app.

    Args:
        settings: Defaults to the environment (``Settings.from_env``).
        background: Run as a server: JSON logs, and this process's recovery and
            retention threads and notifier listener (off for in-process tests).

    Raises:
        ConfigError: On unusable settings, a bad models file, or no API keys.
    """
    settings = settings or Settings.from_env(os.environ)
    if not settings.api_keys:
        raise ConfigError("INFERQ_API_KEYS is empty: set owner:key pairs (or run `inferq up`)")
    app = Flask("inferq")
    app.config.update(MAX_CONTENT_LENGTH=settings.max_body_bytes)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    found = build_services(settings)
    app.extensions[EXTENSION] = found
    api = docs.configure(app)
    for views in (
        health_views,
        prediction_views,
        model_views,
        image_views,
        embedding_views,
        link_views,
        file_views,
        queue_views,
        batch_views,
    ):
        api.register_blueprint(views.blp)
    app.register_blueprint(console_views.blp)
    register_error_handler(app)
    app.before_request(hooks.before)
    app.after_request(hooks.after)
    ratelimits.install(app, settings)
    if background:
        _start_background(found)
    return app


def build_services(settings: Settings) -> Services:
    """Everything the requests of one API process share."""
    client = redis_client(settings, retries=API_REDIS_RETRIES)
    return Services(
        settings=settings,
        catalog=Catalog.load(settings.models_path),
        store=PredictionStore(client, settings),
        messages=TaskMessages(make_celery(settings, "inferq-api"), settings.webhook_queue),
        notifier=Notifier(client, keys.updates_channel()),
        keys=KeyRing(settings.api_keys),
        storage=LocalStorage(settings.data_dir / "files"),
        signer=UrlSigner(signing_key(settings), settings.url_ttl),
        files=FileStore(client, openai_files_storage(settings), settings),
        moderation=load_policy(settings.moderation),
        batches=BatchStore(client, settings.retention),
        uploads=uploads_storage(settings),
        outbox=Outbox(client),
    )


def _start_background(found: Services) -> None:
    """Logging, and the threads every API process runs: notifier, recovery, file retention (generated
    files past the retention window, uploaded files past their expiry)."""
    logs.configure(found.settings.log_format, found.settings.log_level, "api")
    tune_gc()
    found.notifier.start()
    recovery = Recovery(found.store, found.messages, found.outbox)
    Ticker("inferq-recovery", INTERVAL, [recovery.run_once]).start()
    Ticker("inferq-batches", FINISH_INTERVAL, [BatchFinisher(found).run_once]).start()

    def sweep_files() -> None:
        found.storage.sweep(time.time() - found.settings.retention)
        found.uploads.sweep(time.time() - found.settings.live_ttl)  # when their prediction's record expires

    Ticker("inferq-retention", RETENTION_SWEEP_INTERVAL, [sweep_files, found.files.sweep]).start()


def signing_key(settings: Settings) -> bytes:
    """``INFERQ_URL_SIGNING_KEY``, or a key derived from the API keys."""
    if settings.url_signing_key:
        return settings.url_signing_key.encode()
    return derive_key(settings.api_keys)

"""The inferq HTTP API: a Flask app speaking the WriftAI (and OpenAI-compatible) wire contracts."""

from __future__ import annotations

import os
import re
import uuid

from flask import Flask, Response, g, request
from flask_smorest import Api

from api.auth import KeyRing
from api.error_handler import register_error_handler
from api.moderation import load_policy
from api.services import EXTENSION, Services, services
from api.signing import UrlSigner, derive_key
from api.views import embeddings as embedding_views
from api.views import files as file_views
from api.views import health as health_views
from api.views import images as image_views
from api.views import models as model_views
from api.views import predictions as prediction_views
from common import keys
from common.broker import TaskMessages, make_celery
from common.catalog import Catalog
from common.config import Settings
from common.connections import redis_client
from common.errors import ConfigError
from common.notifier import Notifier
from common.outbox import Outbox
from common.recovery import INTERVAL, Recovery
from common.runtime import tune_gc
from common.storage import LocalStorage
from common.store import PredictionStore
from common.ticker import Ticker

API_REDIS_RETRIES = 2
"""Retries of a Redis command in the API before the request answers 503."""

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


def create_app(settings: Settings | None = None, *, background: bool = True) -> Flask:
    """Builds the API app.

    Args:
        settings: Defaults to the environment (``Settings.from_env``).
        background: Start this process's recovery thread and notifier listener
            (off for in-process unit tests).

    Raises:
        ConfigError: On unusable settings, a bad models file, or no API keys.
    """
    settings = settings or Settings.from_env(os.environ)
    if not settings.api_keys:
        raise ConfigError("INFERQ_API_KEYS is empty: set owner:key pairs (or run `inferq up`)")
    app = Flask("inferq")
    app.config.update(
        API_TITLE="inferq",
        API_VERSION="v1",
        OPENAPI_VERSION="3.1.0",
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
    )
    app.json.sort_keys = False  # type: ignore[attr-defined]
    client = redis_client(settings, retries=API_REDIS_RETRIES)
    store = PredictionStore(client, settings)
    messages = TaskMessages(make_celery(settings, "inferq-api"), settings.webhook_queue)
    app.extensions[EXTENSION] = Services(
        settings=settings,
        catalog=Catalog.load(settings.models_path),
        store=store,
        messages=messages,
        notifier=Notifier(client, keys.updates_channel()),
        keys=KeyRing(settings.api_keys),
        storage=LocalStorage(settings.data_dir / "files"),
        signer=UrlSigner(signing_key(settings), settings.url_ttl),
        moderation=load_policy(settings.moderation),
    )
    api = Api(app)
    for views in (health_views, prediction_views, model_views, image_views, embedding_views, file_views):
        api.register_blueprint(views.blp)
    register_error_handler(app)
    app.before_request(_authenticate)
    app.after_request(_tag_request_id)
    if background:
        tune_gc()
        app.extensions[EXTENSION].notifier.start()
        recovery = Recovery(store, messages, Outbox(client))
        Ticker("inferq-recovery", INTERVAL, [recovery.run_once]).start()
    return app


def signing_key(settings: Settings) -> bytes:
    """``INFERQ_URL_SIGNING_KEY``, or a key derived from the API keys."""
    if settings.url_signing_key:
        return settings.url_signing_key.encode()
    return derive_key(settings.api_keys)


def _authenticate() -> None:
    incoming = request.headers.get("X-Request-Id", "")
    g.request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
    if request.path == "/v1" or request.path.startswith("/v1/"):
        g.owner = services().keys.owner(request.headers.get("Authorization"))


def _tag_request_id(response: Response) -> Response:
    response.headers["x-request-id"] = g.get("request_id") or uuid.uuid4().hex
    if g.get("prediction_id"):
        response.headers["x-prediction-id"] = g.prediction_id
    return response

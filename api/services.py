"""Everything a request needs, built once per API process by the app factory."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from api.auth import KeyRing
from api.moderation import ModerationPolicy
from api.signing import UrlSigner
from common.catalog import Catalog
from common.config import Settings
from common.queue.broker import TaskMessages
from common.storage import Storage
from common.store.batches import BatchStore
from common.store.files import FileStore
from common.store.notifier import Notifier
from common.store.outbox import Outbox
from common.store.predictions import PredictionStore


@dataclass(frozen=True)
class Services:
    """What the API process's requests share: settings, models, Redis store, task messages,
    notifier, keys, file storage and link signer, uploaded files, batches, the moderation policy,
    the edits' uploads, and the webhook outboxes (for their delivery logs)."""

    settings: Settings
    catalog: Catalog
    store: PredictionStore
    messages: TaskMessages
    notifier: Notifier
    keys: KeyRing
    storage: Storage
    signer: UrlSigner
    files: FileStore
    moderation: ModerationPolicy
    batches: BatchStore
    uploads: Storage
    outbox: Outbox


EXTENSION = "inferq"
"""Key of the :class:`Services` in ``app.extensions``."""


def services() -> Services:
    """The current app's services."""
    found: Services = current_app.extensions[EXTENSION]
    return found

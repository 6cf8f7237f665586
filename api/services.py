"""Everything a request needs, built once per API process by the app factory."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from api.auth import KeyRing
from common.broker import TaskMessages
from common.catalog import Catalog
from common.config import Settings
from common.notifier import Notifier
from common.store import PredictionStore


@dataclass(frozen=True)
class Services:
    """The API process's settings, models, store, task messages, notifier and keys."""

    settings: Settings
    catalog: Catalog
    store: PredictionStore
    messages: TaskMessages
    notifier: Notifier
    keys: KeyRing


EXTENSION = "inferq"
"""Key of the :class:`Services` in ``app.extensions``."""


def services() -> Services:
    """The current app's services."""
    found: Services = current_app.extensions[EXTENSION]
    return found

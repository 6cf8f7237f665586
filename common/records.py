"""Prediction records and statuses, and how they are laid out in a Redis hash."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from common.errors import InferqError


class Status(StrEnum):
    """A prediction's lifecycle: ``pending → starting → started → one terminal status``."""

    PENDING = "pending"
    STARTING = "starting"
    STARTED = "started"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    ABANDONED = "abandoned"

    @property
    def is_terminal(self) -> bool:
        """Whether the prediction has ended and will never change again."""
        return self in TERMINAL_STATUSES

    @property
    def is_running(self) -> bool:
        """Whether a worker has claimed the prediction and not yet ended it."""
        return self in (Status.STARTING, Status.STARTED)


TERMINAL_STATUSES = frozenset({Status.SUCCEEDED, Status.FAILED, Status.CANCELLED, Status.ABANDONED})
"""Statuses a prediction never leaves."""


class Priority(StrEnum):
    """A prediction's class in its queue's line, highest first: a worker always takes the highest
    class with work (``common.store.schedule``)."""

    INTERACTIVE = "interactive"
    """Somebody waits on an open connection: ``Prefer: wait``, a streamed create, the OpenAI routes."""
    DEFAULT = "default"
    """Every other create."""
    BATCH = "batch"
    """Bulk work nobody waits on (a create asks for it with ``"priority": "batch"``)."""

    def ranks_above(self, other: Priority) -> bool:
        """Whether this class is taken before ``other``."""
        order = list(Priority)
        return order.index(self) < order.index(other)


class ErrorSource(StrEnum):
    """Who is at fault: ``external`` is the model or its input, ``internal`` is inferq."""

    INTERNAL = "internal"
    EXTERNAL = "external"


class RecordError(InferqError, ValueError):
    """A stored record cannot be decoded (corrupted or written by an incompatible version)."""


@dataclass(frozen=True)
class ModelRef:
    """A resolved model version: ``owner/name:version_number``."""

    owner: str
    name: str
    version_number: int

    @property
    def key(self) -> str:
        """The canonical ``owner/name:N`` reference."""
        return f"{self.owner}/{self.name}:{self.version_number}"

    def to_dict(self) -> dict[str, Any]:
        """The wire shape ``{"owner", "name", "version_number"}``."""
        return {"owner": self.owner, "name": self.name, "version_number": self.version_number}

    @classmethod
    def from_json(cls, raw: str) -> ModelRef:
        """Reads the record's ``model`` field (:meth:`to_dict` as JSON).

        Raises:
            RecordError: When it cannot be decoded.
        """
        try:
            found = json.loads(raw)
            return cls(found["owner"], found["name"], int(found["version_number"]))
        except (KeyError, ValueError, TypeError) as e:
            raise RecordError(f"model reference {raw!r} cannot be decoded: {e}") from e


@dataclass(frozen=True)
class PredictionError:
    """Why a prediction failed, was abandoned, or (rarely) could not be cancelled cleanly."""

    source: ErrorSource
    message: str
    detail: Any = None

    def to_dict(self) -> dict[str, Any]:
        """The wire shape ``{"source", "message", "detail"}``."""
        return {"source": self.source.value, "message": self.message, "detail": self.detail}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PredictionError:
        """Reads the wire shape back."""
        return cls(ErrorSource(data["source"]), str(data["message"]), data.get("detail"))


_JSON_FIELDS = ("input", "output", "metrics", "webhook")
_OPTIONAL_FLOATS = ("started_at", "predict_started_at", "completed_at", "setup_time", "execution_time")


@dataclass
class Prediction:
    """One prediction as stored in Redis (a hash at :func:`common.store.keys.prediction`)."""

    id: str
    owner: str
    model: ModelRef
    queue: str
    input: dict[str, Any]
    status: Status
    created_at: float
    updated_at: float
    started_at: float | None = None
    predict_started_at: float | None = None
    completed_at: float | None = None
    setup_time: float | None = None
    execution_time: float | None = None
    output: Any = None
    error: PredictionError | None = None
    metrics: dict[str, Any] | None = None
    stream: bool = False
    webhook: dict[str, Any] | None = None
    cancel_requested: bool = False
    attempts: int = 0
    stream_start: str = ""
    """The id of the restart marker the event log's current attempt begins at ('' before any restart)."""
    priority: Priority = Priority.DEFAULT
    batch_part: str = ""
    """For a prediction that runs part of a batch: ``<batch id> <part number> <lines>`` (see
    ``common.store.batches``); its terminal write records the outcome with the batch."""
    logs: str = field(default="", compare=False)

    def to_hash(self) -> dict[str, str]:
        """Flattens the record into Redis hash fields (JSON for nested values)."""
        fields: dict[str, str] = {
            "id": self.id,
            "owner": self.owner,
            "model": json.dumps(self.model.to_dict()),
            "queue": self.queue,
            "status": self.status.value,
            "created_at": repr(self.created_at),
            "updated_at": repr(self.updated_at),
            "error": json.dumps(self.error.to_dict()) if self.error else "",
            "stream": "1" if self.stream else "0",
            "cancel_requested": "1" if self.cancel_requested else "0",
            "attempts": str(self.attempts),
            "stream_start": self.stream_start,
            "priority": self.priority.value,
            "batch_part": self.batch_part,
        }
        for name in _JSON_FIELDS:
            fields[name] = json.dumps(getattr(self, name))
        for name in _OPTIONAL_FLOATS:
            value = getattr(self, name)
            fields[name] = "" if value is None else repr(value)
        return fields

    @classmethod
    def from_snapshot(cls, snapshot: Mapping[str, Any]) -> Prediction:
        """Rebuilds a record from a snapshot the store's scripts take: its hash fields plus ``logs``.

        Raises:
            RecordError: When a field is missing or cannot be decoded.
        """
        return cls.from_hash(snapshot, logs=str(snapshot.get("logs", "")))

    @classmethod
    def from_hash(cls, data: Mapping[str, str], logs: str = "") -> Prediction:
        """Rebuilds a record from its Redis hash fields.

        Raises:
            RecordError: When a field is missing or cannot be decoded.
        """
        try:
            model = json.loads(data["model"])
            return cls(
                id=data["id"],
                owner=data["owner"],
                model=ModelRef(model["owner"], model["name"], int(model["version_number"])),
                queue=data["queue"],
                input=json.loads(data["input"]),
                status=Status(data["status"]),
                created_at=float(data["created_at"]),
                updated_at=float(data["updated_at"]),
                output=json.loads(data.get("output") or "null"),
                error=PredictionError.from_dict(json.loads(data["error"])) if data.get("error") else None,
                metrics=json.loads(data.get("metrics") or "null"),
                stream=data.get("stream") == "1",
                webhook=json.loads(data.get("webhook") or "null"),
                cancel_requested=data.get("cancel_requested") == "1",
                attempts=int(data.get("attempts") or 0),
                stream_start=data.get("stream_start") or "",
                priority=Priority(data.get("priority") or Priority.DEFAULT),
                batch_part=data.get("batch_part") or "",
                logs=logs,
                **{name: float(data[name]) if data.get(name) else None for name in _OPTIONAL_FLOATS},
            )
        except (KeyError, ValueError, TypeError) as e:
            raise RecordError(f"prediction record {data.get('id', '?')!r} cannot be decoded: {e}") from e

"""The exception tree shared by the API and the workers.

Every error inferq raises on purpose derives from :class:`InferqError`. Each
class carries the HTTP status and the OpenAI-style ``type``/``code`` that the
API's single error handler turns into the documented error body, so no view
ever shapes an error itself.
"""

from __future__ import annotations

from typing import Any, ClassVar


class InferqError(Exception):
    """Root of every error inferq raises on purpose."""

    status_code: ClassVar[int] = 500
    error_type: ClassVar[str] = "server_error"
    code: ClassVar[str | None] = None

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


class ConfigError(InferqError, ValueError):
    """A setting or the models file holds a value inferq cannot use."""


class InvalidRequest(InferqError, ValueError):
    """The request is malformed in a way that is not a field-level validation error."""

    status_code = 400
    error_type = "invalid_request_error"
    code = "invalid_request"


class InvalidImage(InvalidRequest):
    """An uploaded image or mask cannot be used (not an image, corrupt, too large, a bad mask)."""

    code = "invalid_image"


class RequestTimedOut(InferqError):
    """The client did not send its whole request in time (``INFERQ_REQUEST_READ_TIMEOUT``).

    The connection is closed after the ``408``: the rest of the request may still be on its way.
    """

    status_code = 408
    error_type = "invalid_request_error"
    code = "request_timeout"


class RequestValidationError(InferqError, ValueError):
    """One or more fields of the request failed validation.

    Attributes:
        details: FastAPI-style items, each ``{"loc": [...], "msg": str, "type": str}``.
    """

    status_code = 422
    error_type = "invalid_request_error"

    def __init__(self, details: list[dict[str, Any]]) -> None:
        first = details[0] if details else {"loc": [], "msg": "Invalid request", "type": "value_error"}
        loc = [str(part) for part in first["loc"][1:]] if first["loc"] else []
        super().__init__(str(first["msg"]), param=".".join(loc) or None)
        self.details = details

    @classmethod
    def single(cls, loc: list[str | int], msg: str, type_: str = "value_error") -> RequestValidationError:
        """Builds the error for one failing field."""
        return cls([{"loc": loc, "msg": msg, "type": type_}])


class IdempotencyKeyInvalid(InvalidRequest):
    """The ``Idempotency-Key`` header is empty or longer than 255 characters."""

    code = "invalid_idempotency_key"


class IdempotencyKeyReused(RequestValidationError):
    """The ``Idempotency-Key`` already named a prediction made by a different request (422).

    Attributes:
        prediction_id: The prediction the key names.
    """

    def __init__(self, prediction_id: str) -> None:
        super().__init__(
            [
                {
                    "loc": ["header", "Idempotency-Key"],
                    "msg": "This Idempotency-Key was used with a different request; use a new key",
                    "type": "idempotency_key_reused",
                }
            ]
        )
        self.prediction_id = prediction_id


class Unauthorized(InferqError):
    """The request carries no API key, or one that is not configured."""

    status_code = 401
    error_type = "authentication_error"
    code = "invalid_api_key"


class NotFound(InferqError, LookupError):
    """The resource does not exist, or belongs to another owner."""

    status_code = 404
    error_type = "not_found_error"
    code = "not_found"


class ModelNotFound(NotFound):
    """No model or model version matches the reference."""

    code = "model_not_found"


class Conflict(InferqError):
    """The resource is in a state that forbids the request (e.g. cancelling a finished prediction)."""

    status_code = 409
    error_type = "invalid_request_error"
    code = "conflict"


class StreamUnavailable(Conflict):
    """The prediction was created without ``stream``, so it has no events to stream."""

    code = "stream_unavailable"


class StreamExpired(InferqError):
    """The prediction's events have expired."""

    status_code = 410
    error_type = "invalid_request_error"
    code = "stream_expired"


class IdempotencyKeyExpired(InferqError):
    """The prediction an ``Idempotency-Key`` made no longer exists (finished ones are kept for
    ``INFERQ_RETENTION``); the request is not run again.

    Attributes:
        prediction_id: The prediction the key named.
    """

    status_code = 410
    error_type = "invalid_request_error"
    code = "idempotency_key_expired"

    def __init__(self, prediction_id: str) -> None:
        super().__init__(
            f"Prediction {prediction_id}, made with this Idempotency-Key, has expired; use a new key",
            param="Idempotency-Key",
        )
        self.prediction_id = prediction_id


class UnsupportedModel(InferqError):
    """The model version does not support the endpoint it was called through."""

    status_code = 400
    error_type = "invalid_request_error"
    code = "model_not_supported"


class PredictionOutcomeError(InferqError):
    """A synchronous (OpenAI-compatible) call's prediction did not succeed.

    Attributes:
        prediction_id: The prediction, so the client can look it up; sent as ``x-prediction-id``.
        retryable: Whether the client may retry (sent as ``x-should-retry``).
    """

    retryable: ClassVar[bool] = False

    def __init__(self, message: str, prediction_id: str) -> None:
        super().__init__(message)
        self.prediction_id = prediction_id


class DeadlineExceeded(PredictionOutcomeError, TimeoutError):
    """The model did not answer within the deadline; the prediction was cancelled."""

    status_code = 504
    error_type = "timeout_error"
    code = "deadline_exceeded"


class PredictionFailed(PredictionOutcomeError):
    """The model failed on this request."""

    status_code = 500
    error_type = "server_error"
    code = "prediction_failed"


class PredictionInterrupted(PredictionOutcomeError):
    """The prediction was cancelled (through the predictions API) before it finished."""

    status_code = 409
    error_type = "invalid_request_error"
    code = "prediction_cancelled"


class PredictionAbandoned(PredictionOutcomeError):
    """inferq gave up on the prediction (no worker took it, or its workers kept dying)."""

    status_code = 503
    error_type = "server_error"
    code = "prediction_abandoned"
    retryable = True


class ModerationBlocked(InferqError):
    """The prompt was refused by the moderation policy."""

    status_code = 400
    error_type = "image_generation_user_error"
    code = "moderation_blocked"


class LinkInvalid(InferqError):
    """A file link's signature does not match: it was tampered with or forged."""

    status_code = 403
    error_type = "permission_error"
    code = "invalid_signature"


class LinkExpired(InferqError):
    """A file link was genuine but has expired."""

    status_code = 410
    error_type = "invalid_request_error"
    code = "link_expired"


class InputTooLarge(InferqError):
    """A prediction's input, as stored, is larger than ``INFERQ_MAX_INPUT_BYTES``: nothing was stored."""

    status_code = 413
    error_type = "invalid_request_error"
    code = "input_too_large"


class InvalidFile(InvalidRequest):
    """An uploaded file cannot be used for its purpose (a batch file that is not JSONL, or too long):
    nothing was stored."""

    code = "invalid_file"


class FileTooLarge(InferqError):
    """An uploaded file is larger than ``INFERQ_MAX_FILE_BYTES``: nothing was stored."""

    status_code = 413
    error_type = "invalid_request_error"
    code = "file_too_large"


class QueueFull(InferqError):
    """The model's queue holds as many tasks as it may: the prediction was not accepted.

    Attributes:
        retry_after: Seconds the client should wait before retrying.
    """

    status_code = 429
    error_type = "rate_limit_error"
    code = "queue_full"

    def __init__(self, message: str, *, retry_after: int = 5) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TooManyPending(QueueFull):
    """The owner has ``INFERQ_MAX_PENDING_PER_KEY`` predictions that have not ended: not accepted.

    Attributes:
        retry_after: Seconds the client should wait before retrying.
    """

    code = "too_many_pending"


class ServiceUnavailable(InferqError):
    """A backing service (Redis, the broker) cannot be reached right now.

    Attributes:
        retry_after: Seconds the client should wait before retrying.
    """

    status_code = 503
    error_type = "server_error"
    code = "service_unavailable"

    def __init__(self, message: str, *, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PredictionCancelled(InferqError):
    """Raised inside an adapter (via its context) once cancellation was requested."""


class AdapterError(InferqError):
    """An adapter could not be loaded or set up."""

"""Running one prediction in a worker process: claim, load, validate, predict, record.

Every outcome, including an adapter that raises, returns garbage or is stopped,
ends in exactly one terminal write through the store, guarded by this run's
claim token; a run that lost its claim writes nothing.
"""

from __future__ import annotations

import json
import logging
import time
import traceback
import uuid
from dataclasses import dataclass, field
from typing import Any

from common.catalog import Catalog, ModelVersion, load_adapter_class
from common.config import Settings
from common.errors import ConfigError, ModelNotFound, PredictionCancelled
from common.records import ErrorSource, Prediction, PredictionError, Status
from common.store import ClaimOutcome, PredictionStore
from workers.adapters.base import Adapter
from workers.context import PredictionContext, StopReason
from workers.supervisor import Supervisor, Watch, run_time_exceeded

logger = logging.getLogger(__name__)


@dataclass
class Outcome:
    """How a run ended, before it is written."""

    status: Status
    output: Any = None
    error: PredictionError | None = None
    timings: dict[str, float] = field(default_factory=dict)


def external_error(message: str, detail: Any = None) -> PredictionError:
    """An error the model or its input caused."""
    return PredictionError(ErrorSource.EXTERNAL, message, detail)


def exception_error(e: BaseException) -> PredictionError:
    """The error recorded when an adapter raises: its message, type and traceback tail."""
    frames = traceback.format_exception(type(e), e, e.__traceback__)
    detail = {"type": type(e).__name__, "traceback": "".join(frames)[-4000:]}
    return external_error(str(e) or type(e).__name__, detail)


class Runner:
    """Runs predictions for one worker process, loading each model version's adapter once."""

    def __init__(
        self, settings: Settings, catalog: Catalog, store: PredictionStore, supervisor: Supervisor
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.store = store
        self.supervisor = supervisor
        self._adapters: dict[str, Adapter] = {}

    def run(self, prediction_id: str, model_key: str) -> None:
        """Runs ``prediction_id`` unless another worker has it or it already ended."""
        token = uuid.uuid4().hex
        claim = self.store.claim(prediction_id, token, ready=model_key in self._adapters)
        if claim.outcome is not ClaimOutcome.CLAIMED or claim.prediction is None:
            logger.info("prediction %s not run: %s", prediction_id, claim.outcome)
            return
        prediction = claim.prediction
        ctx = PredictionContext(prediction_id, self.store, stream=prediction.stream)
        with self.supervisor.watching(prediction_id, token, ctx) as watch:
            outcome = self._execute(prediction, model_key, ctx, watch, token)
        if ctx.stop_reason is StopReason.LOST:
            logger.warning("prediction %s was taken over by another worker; result discarded", prediction_id)
            return
        ended = self.store.finish(
            prediction_id,
            token,
            outcome.status,
            output=outcome.output,
            error=outcome.error,
            metrics=self._metrics(outcome, ctx),
            timings=outcome.timings,
        )
        logger.info("prediction %s %s%s", prediction_id, outcome.status, "" if ended else " (not recorded)")

    def _execute(
        self, prediction: Prediction, model_key: str, ctx: PredictionContext, watch: Watch, token: str
    ) -> Outcome:
        claimed_at = time.monotonic()
        try:
            version = self.catalog.version(model_key)
            adapter = self._adapter(version, prediction.id, token)
        except (ModelNotFound, ConfigError) as e:
            return Outcome(Status.FAILED, error=PredictionError(ErrorSource.INTERNAL, str(e)))
        except Exception as e:
            logger.exception("setting up %s failed", model_key)
            return Outcome(Status.FAILED, error=exception_error(e))
        if ctx.cancelled.is_set():
            return self._stopped(ctx)
        problems = version.input_problems(prediction.input)
        if problems:
            detail = [{"loc": ["input", *p.path], "msg": p.message} for p in problems]
            error = external_error("The input does not match the model's schema.", detail)
            return Outcome(Status.FAILED, error=error)
        begun = time.monotonic()
        timings = {"setup_time": begun - claimed_at, "predict_started_at": time.time()}
        watch.in_adapter = True
        try:
            output = adapter.predict(prediction.input, ctx)
            json.dumps(output, allow_nan=False)
        except PredictionCancelled:
            output = None
        except Exception as e:
            if not ctx.cancelled.is_set():
                timings["execution_time"] = time.monotonic() - begun
                return Outcome(Status.FAILED, error=exception_error(e), timings=timings)
        finally:
            watch.in_adapter = False
        timings["execution_time"] = time.monotonic() - begun
        if ctx.cancelled.is_set():
            stopped = self._stopped(ctx)
            stopped.timings = timings
            return stopped
        return Outcome(Status.SUCCEEDED, output=output, timings=timings)

    def _adapter(self, version: ModelVersion, prediction_id: str, token: str) -> Adapter:
        key = version.ref.key
        adapter = self._adapters.get(key)
        if adapter is None:
            adapter_class = load_adapter_class(version.adapter)
            if not issubclass(adapter_class, Adapter):
                raise ConfigError(f"adapter {version.adapter!r} does not derive from Adapter")
            adapter = adapter_class(version.options)
            adapter.setup()
            self._adapters[key] = adapter
            self.store.mark_started(prediction_id, token)
        return adapter

    def _stopped(self, ctx: PredictionContext) -> Outcome:
        if ctx.stop_reason is StopReason.TIMED_OUT:
            return Outcome(Status.FAILED, error=run_time_exceeded(self.settings.max_run_time))
        return Outcome(Status.CANCELLED)

    @staticmethod
    def _metrics(outcome: Outcome, ctx: PredictionContext) -> dict[str, Any]:
        metrics: dict[str, Any] = dict(ctx.metrics)
        if "execution_time" in outcome.timings:
            metrics["predict_time"] = round(outcome.timings["execution_time"], 6)
        return metrics

"""Running predictions in a worker process: claim, load, gather, validate, predict, record.

A run is one prediction, or — for a version whose adapter batches — the
prediction the task named plus whatever else of that version is queued,
gathered into one forward pass. Every member's outcome, including an adapter
that raises, returns garbage or is stopped, ends in exactly one terminal write
through the store, guarded by that member's claim token; a member whose claim
was lost writes nothing.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import time
import uuid
from contextlib import ExitStack
from typing import Any

from common.catalog import Catalog, ModelVersion, load_adapter_class
from common.config import Settings
from common.errors import ConfigError, ModelNotFound, PredictionCancelled
from common.processes import logs
from common.queue.broker import TaskMessages
from common.records import ErrorSource, Prediction, PredictionError, Status
from common.storage import uploads_storage
from common.store.lanes import Hint
from common.store.predictions import Claim, ClaimOutcome, PredictionStore
from workers.adapters.base import Adapter, BatchAdapter
from workers.context import PredictionContext, StopReason
from workers.gathering import Gathering
from workers.outcomes import Member, Outcome, Recorder, Recording, exception_error, external_error
from workers.supervisor import Supervisor, run_time_exceeded

logger = logging.getLogger(__name__)

PARK_TRIES = 5
"""Claims tried when runs keep ending between a ``HELD`` claim and parking its message."""

DEFAULT_BATCH_SIZE = 32
"""Predictions per forward pass of a batching adapter, unless its options say ``max_batch_size``."""

DEFAULT_BATCH_WAIT_MS = 25.0
"""Milliseconds a batch may wait to fill up, at most, unless its options say ``max_batch_wait_ms``."""

DEFAULT_BATCH_GAP_MS = 3.0
"""Milliseconds without a new request that end a batch early, unless its options say ``batch_gap_ms``."""

FOLLOW_ON_SECONDS = 0.5
"""How long a batching run that found company goes on to gather and run the next batches of its
version itself before it hands back to Celery: each hand-back (the result to the pool's parent,
its acknowledgement and its fetch of the next message, the next claim) idles the model's core."""

LOOK_AFTER = 0.7
"""How far into a batch's expected pass (from the last pass's seconds per prediction) the next
batch is claimed (:class:`~workers.gathering.Gathering`): late enough that the requests answered
as the pass began are queued again, early enough that the claims are made before it ends."""


def batch_size(version: ModelVersion) -> int:
    """Predictions per forward pass of ``version`` (its ``max_batch_size`` option), at most."""
    return int(version.options.get("max_batch_size", DEFAULT_BATCH_SIZE))


class Runner:
    """Runs predictions for one worker process, loading each model version's adapter once."""

    def __init__(
        self,
        settings: Settings,
        catalog: Catalog,
        store: PredictionStore,
        supervisor: Supervisor,
        messages: TaskMessages,
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.store = store
        self.supervisor = supervisor
        self.messages = messages
        self.uploads = uploads_storage(settings)
        self.recorder = Recorder(store, settings, messages)
        self._adapters: dict[str, Adapter] = {}
        self._alone: set[str] = set()
        """Batching versions whose last batch found no company: the next one waits for none."""
        self._per_prediction: dict[str, float] = {}
        """Seconds per prediction of each batching version's last pass with company."""

    def run(self, hint: str, model_key: str) -> None:
        """Runs the prediction that should run next on ``model_key``'s queue (and, for a batching
        version, others queued with it); ``hint``, the one the task message named, usually is it.

        Nothing runs when nothing waits (another worker took it, or it ended), and the
        message is parked when every waiting key runs as many as it may.
        """
        context = logs.prediction_id.set(hint)
        try:
            self._run(hint, model_key)
        finally:
            logs.prediction_id.reset(context)

    def _run(self, hint: str, model_key: str) -> None:
        batch: tuple[ModelVersion, BatchAdapter, ExitStack] | None = None
        with self.supervisor.telling_warden_together(), ExitStack() as stack:
            heard = stack.enter_context(self.supervisor.hearing([hint]))
            first = self._claim(hint, model_key)
            if first is None:
                return
            if first.prediction.id != hint:
                logs.prediction_id.set(first.prediction.id)
                heard.set()  # its cancel was not listened for: the supervisor looks at once
            members = [first]
            with self.supervisor.telling_warden_together():
                self._watch(stack, first, heard)
            prepared = self._prepare(first.prediction.model.key, first)
            if prepared is not None:
                version, adapter = prepared
                if isinstance(adapter, BatchAdapter):
                    members += self._gather(stack, version, first)
                if isinstance(adapter, BatchAdapter) and len(members) > 1:
                    batch = version, adapter, stack.pop_all()  # the watches go on in _batches
                else:
                    self._execute(adapter, version, members)
        if batch is not None:
            self._batches(members, *batch)
        else:
            self.recorder.record(members)

    def _batches(
        self, members: list[Member], version: ModelVersion, adapter: BatchAdapter, stack: ExitStack
    ) -> None:
        """Runs ``members`` (a batch with company, watched on ``stack``) and the next batches of
        ``version`` from its lane, for up to :data:`FOLLOW_ON_SECONDS`.

        While the model runs one batch, a :class:`~workers.gathering.Gathering`
        claims the next (the predictions queued meanwhile), and a
        :class:`~workers.outcomes.Recording` writes the previous one's outcomes.
        Only hinted predictions run here (those of the classes and keys the lane
        holds, in its order), as they would in a gathered batch; the scheduler
        picks again once this run hands back to Celery, within the bound. The
        last batch gathers none after it, so what is queued meanwhile waits with
        its task message for the hand-back; a pass during which nothing was
        queued ends the run too. It returns once every outcome is written.
        """
        until = time.monotonic() + FOLLOW_ON_SECONDS
        size = batch_size(version)
        recording: Recording | None = None
        try:
            while members:
                ahead = None
                if time.monotonic() < until:
                    claim = functools.partial(self._claim_hints, version)
                    look_after = LOOK_AFTER * self._per_prediction.get(version.ref.key, 0.0) * len(members)
                    ahead = Gathering(self.store.lanes, version.ref, size, claim, look_after)
                try:
                    with self.supervisor.telling_warden_together(), stack:
                        logs.prediction_id.set(members[0].prediction.id)
                        begun = time.monotonic()
                        self._execute(adapter, version, members)
                        self._per_prediction[version.ref.key] = (time.monotonic() - begun) / len(members)
                    if recording is not None:
                        recording.wait()
                except BaseException:
                    if ahead is not None:
                        ahead.abandon()
                    raise
                recording = Recording(functools.partial(self.recorder.record, members))
                if ahead is None:
                    return
                members, stack = ahead.finish()
        finally:
            if recording is not None:
                recording.wait()

    def _claim(self, hint: str, model_key: str) -> Member | None:
        token = uuid.uuid4().hex
        try:
            version = self.catalog.version(model_key)
        except ModelNotFound:  # gone from the models file: claimed to be failed with the reason
            claim = self.store.claim(hint, token, ready=False)
        else:
            claim = self._claim_next(hint, version, token)
        if claim.outcome is not ClaimOutcome.CLAIMED or claim.prediction is None:
            logger.info("prediction %s not run: %s", hint, claim.outcome)
            return None
        self.recorder.announce(claim.prediction)
        return self._member(claim.prediction, token)

    def _claim_next(self, hint: str, version: ModelVersion, token: str) -> Claim:
        """The scheduler's claim on ``version``'s queue; a ``HELD`` one parks the message."""
        queue = version.queue
        for _ in range(PARK_TRIES):
            claim = self.store.claim_next(hint, queue, token, loaded=self._adapters.keys())
            if claim.outcome is not ClaimOutcome.HELD:
                return claim
            if self.store.park(hint, queue, self.messages.envelope(hint, version.ref, queue)):
                logger.info("every key waiting on %s runs as many as it may; message parked", queue)
                return claim
        logger.warning("could not park a message of %s; recovery will queue one if needed", queue)
        return claim

    def _member(self, prediction: Prediction, token: str) -> Member:
        ctx = PredictionContext(
            prediction.id, self.store, stream=prediction.stream, token=token, uploads=self.uploads
        )
        return Member(prediction, token, ctx)

    def _watch(self, stack: ExitStack, member: Member, heard: threading.Event) -> None:
        watching = self.supervisor.watching(member.prediction.id, member.token, member.ctx, heard)
        member.watch = stack.enter_context(watching)

    def _prepare(self, model_key: str, first: Member) -> tuple[ModelVersion, Adapter] | None:
        """The version and its loaded adapter; on failure ``first`` gets a failed outcome."""
        try:
            version = self.catalog.version(model_key)
            return version, self._adapter(version, first)
        except (ModelNotFound, ConfigError) as e:
            first.outcome = Outcome(Status.FAILED, error=PredictionError(ErrorSource.INTERNAL, str(e)))
        except Exception as e:
            logger.exception("setting up %s failed", model_key)
            first.outcome = Outcome(Status.FAILED, error=exception_error(e))
        return None

    def _adapter(self, version: ModelVersion, first: Member) -> Adapter:
        adapter = self._adapters.get(version.ref.key)
        if adapter is None:
            adapter = self.load(version)
            self.store.mark_started(first.prediction.id, first.token)
        return adapter

    def load(self, version: ModelVersion) -> Adapter:
        """Builds the version's adapter and runs its ``setup()`` (once per process).

        Raises:
            ConfigError: When the adapter is not an :class:`Adapter`; whatever ``setup()`` raises.
        """
        adapter_class = load_adapter_class(version.adapter)
        if not issubclass(adapter_class, Adapter):
            raise ConfigError(f"adapter {version.adapter!r} does not derive from Adapter")
        adapter = adapter_class(version.options)
        adapter.setup()
        self._adapters[version.ref.key] = adapter
        return adapter

    def preload(self, queues: list[str]) -> None:
        """Loads every version served on ``queues`` now, so no prediction waits for a cold start.

        A version that fails to load is logged and left to load (and fail) on demand.
        """
        for model in self.catalog.models:
            for version in model.versions:
                if version.queue in queues and version.ref.key not in self._adapters:
                    try:
                        self.load(version)
                    except Exception:
                        logger.exception(
                            "could not preload %s; it will load on its first prediction", version.ref.key
                        )

    def _gather(self, stack: ExitStack, version: ModelVersion, first: Member) -> list[Member]:
        """Claims other queued predictions of ``version`` to run with ``first``, up to its batch
        size and wait.

        It waits for more only while the version has company: after a batch of
        one, the next takes just what is queued, so a lone client's requests do
        not each wait ``batch_gap_ms`` for nobody. A batch that finds others
        queued (requests that came while the model ran) turns waiting back on.
        """
        options = version.options
        size = batch_size(version)
        wait = float(options.get("max_batch_wait_ms", DEFAULT_BATCH_WAIT_MS)) / 1000
        gap = float(options.get("batch_gap_ms", DEFAULT_BATCH_GAP_MS)) / 1000
        if size <= 1:
            return []
        key = version.ref.key
        hints = self.store.lanes.take(version.ref, size - 1, 0.0 if key in self._alone else wait, gap)
        hints = [hint for hint in hints if hint.prediction_id != first.prediction.id]
        others = self._claim_hints(version, stack, hints)
        if not others:
            self._alone.add(key)
        return others

    def _claim_hints(self, version: ModelVersion, stack: ExitStack, hints: list[Hint]) -> list[Member]:
        """Claims the hinted predictions still free, watched on ``stack`` from their claim on."""
        if not hints:
            return []
        heard = stack.enter_context(self.supervisor.hearing([hint.prediction_id for hint in hints]))
        others = [self._member(p, token) for p, token in self.store.claim_hinted(hints, version.queue)]
        if others:
            self._alone.discard(version.ref.key)
        with self.supervisor.telling_warden_together():
            for member in others:
                self._watch(stack, member, heard)
        return others

    def _execute(self, adapter: Adapter, version: ModelVersion, members: list[Member]) -> None:
        ready = [m for m in members if m.outcome is None and not self._screen(version, m)]
        if not ready:
            return
        begun = time.monotonic()
        with self.supervisor.telling_warden_together():
            for member in ready:
                member.timings = {"setup_time": begun - member.claimed_at, "predict_started_at": time.time()}
                if member.watch is not None:
                    self.supervisor.in_adapter(member.watch, True)
        try:
            results = self._predict(adapter, ready)
        finally:
            with self.supervisor.telling_warden_together():
                for member in ready:
                    if member.watch is not None:
                        self.supervisor.in_adapter(member.watch, False)
        elapsed = time.monotonic() - begun
        batch = {"batch_size": len(ready), "batch_id": uuid.uuid4().hex[:12]} if len(ready) > 1 else {}
        for member, result in zip(ready, results, strict=True):
            member.timings["execution_time"] = elapsed
            member.ctx.metrics.update(batch)
            member.outcome = self._judge(member, result)

    def _screen(self, version: ModelVersion, member: Member) -> bool:
        """Gives ``member`` its outcome early if it was stopped or its input is invalid."""
        if member.ctx.cancelled.is_set():
            member.outcome = self._stopped(member.ctx)
            return True
        problems = version.input_problems(member.prediction.input)
        if problems:
            detail = [{"loc": ["input", *p.path], "msg": p.message} for p in problems]
            member.outcome = Outcome(
                Status.FAILED, error=external_error("The input does not match the model's schema.", detail)
            )
            return True
        return False

    @staticmethod
    def _predict(adapter: Adapter, ready: list[Member]) -> list[Any]:
        """One result per member: its output, or the exception that failed it."""
        try:
            if isinstance(adapter, BatchAdapter):
                results = adapter.predict_batch([m.prediction.input for m in ready], [m.ctx for m in ready])
                if len(results) != len(ready):
                    raise RuntimeError(f"the adapter returned {len(results)} results for {len(ready)} inputs")
                return results
            return [adapter.predict(ready[0].prediction.input, ready[0].ctx)]
        except Exception as e:
            return [e] * len(ready)

    def _judge(self, member: Member, result: Any) -> Outcome:
        if member.ctx.cancelled.is_set():
            return self._stopped(member.ctx)
        if isinstance(result, PredictionCancelled):
            return Outcome(Status.FAILED, error=external_error("The adapter stopped without being asked to."))
        if isinstance(result, BaseException):
            return Outcome(Status.FAILED, error=exception_error(result))
        try:
            json.dumps(result, allow_nan=False)
        except (TypeError, ValueError) as e:
            return Outcome(Status.FAILED, error=external_error(f"The model's output is not JSON: {e}"))
        return Outcome(Status.SUCCEEDED, output=result)

    def _stopped(self, ctx: PredictionContext) -> Outcome:
        if ctx.stop_reason is StopReason.TIMED_OUT:
            return Outcome(Status.FAILED, error=run_time_exceeded(self.settings.max_run_time))
        return Outcome(Status.CANCELLED)

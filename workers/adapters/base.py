"""The adapter base class: the whole contract between inferq and a model.

An adapter is constructed once per worker process with its version's
``options`` from the models file. ``setup()`` loads weights once;
``predict()`` runs one prediction. Keep heavy imports (torch, model code)
inside ``setup()``: the API imports adapter classes to read their schemas.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from workers.context import PredictionContext


class Adapter:
    """Base class for model adapters; subclass it and implement :meth:`predict`."""

    input_schema: ClassVar[Mapping[str, Any]] = {"type": "object"}
    """JSON Schema of ``input``, unless the models file gives one."""

    output_schema: ClassVar[Mapping[str, Any]] = {}
    """JSON Schema of the output, unless the models file gives one."""

    compatibilities: ClassVar[Mapping[str, bool]] = {}
    """OpenAI-compatible endpoints this adapter can serve (see ``common.catalog.COMPATIBILITY_FLAGS``)."""

    def __init__(self, options: Mapping[str, Any]) -> None:
        """Keeps the version's options; raise ``common.errors.ConfigError`` on unusable ones."""
        self.options = dict(options)

    def setup(self) -> None:
        """Loads weights and warms up; called once per worker process, before the first predict."""

    def predict(self, input: dict[str, Any], ctx: PredictionContext) -> Any:
        """Runs one prediction on validated ``input`` and returns its JSON-serialisable output."""
        raise NotImplementedError


class BatchAdapter(Adapter):
    """An adapter that runs many predictions of one version in a single forward pass.

    The worker gathers what is queued for the version, up to the options'
    ``max_batch_size`` (default 32) or for at most ``max_batch_wait_ms``
    (default 5), and hands them over together. Each prediction keeps its own
    context, so cancellation and failure stay per prediction.
    """

    batching: ClassVar[bool] = True
    """Read by the catalog: predictions of this version are queued for gathering too."""

    def predict_batch(self, inputs: list[dict[str, Any]], ctxs: list[PredictionContext]) -> list[Any]:
        """Runs validated ``inputs`` together; returns one output per input, in order.

        An exception instance in the returned list fails that prediction alone.
        """
        raise NotImplementedError

    def predict(self, input: dict[str, Any], ctx: PredictionContext) -> Any:
        """Runs one prediction as a batch of one."""
        (result,) = self.predict_batch([input], [ctx])
        if isinstance(result, BaseException):
            raise result
        return result

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

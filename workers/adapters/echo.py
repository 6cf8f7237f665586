"""``inferq/echo``: returns its prompt. The diagnostic and benchmark model."""

from __future__ import annotations

from typing import Any, ClassVar

from workers.adapters.base import Adapter
from workers.context import PredictionContext


class EchoAdapter(Adapter):
    """Returns ``prompt``, after ``delay_s`` seconds, streaming it word by word."""

    input_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "prompt": {"type": "string", "description": "Text to return."},
            "delay_s": {
                "type": "number",
                "minimum": 0,
                "maximum": 3600,
                "default": 0,
                "description": "Seconds to wait before answering (cancellable).",
            },
        },
        "required": ["prompt"],
        "additionalProperties": False,
    }
    output_schema: ClassVar[dict[str, Any]] = {"type": "string"}

    def predict(self, input: dict[str, Any], ctx: PredictionContext) -> Any:
        """Waits ``delay_s`` (stopping early on cancel), then emits and returns the prompt."""
        prompt: str = input["prompt"]
        words = prompt.split(" ")
        delay = float(input.get("delay_s", 0))
        pause = delay / len(words)
        for index, word in enumerate(words):
            if pause and ctx.cancelled.wait(pause):
                ctx.raise_if_cancelled()
            ctx.emit(word if index == 0 else " " + word)
        return prompt

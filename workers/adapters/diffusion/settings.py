"""The ``diffusers`` adapter's options, checked and with their defaults (no heavy imports).

See ``workers.adapters.diffusion.pipeline`` for what each option means.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.errors import ConfigError

QUALITIES = ("low", "medium", "high")
"""The quality levels ``steps`` and ``guidance`` are given for."""

DEFAULT_STEPS = {"low": 10, "medium": 25, "high": 50}
"""Denoising steps per quality, for Stable Diffusion 1.x/2.x and SDXL base models."""

DEFAULT_GUIDANCE = {"low": 7.5, "medium": 7.5, "high": 7.5}
"""Classifier-free guidance scale per quality (0 or 1 turns guidance off, as Turbo models need)."""

DTYPES = ("float32", "bfloat16", "float16")
"""The torch dtypes the weights may run in (float16 on a GPU only)."""

DEFAULT_TRANSPARENT_SUFFIX = ", isolated on a plain white background"
"""Appended to the prompt when a transparent background is asked for, so the background keys out."""


def _per_quality(options: Mapping[str, Any], key: str, defaults: Mapping[str, float]) -> dict[str, float]:
    value = options.get(key, {})
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = dict.fromkeys(QUALITIES, value)
    if not isinstance(value, Mapping) or not set(value) <= set(QUALITIES):
        raise ConfigError(f"diffusers option {key!r} must be a number or a mapping of {', '.join(QUALITIES)}")
    merged = {**defaults, **value}
    for quality, number in merged.items():
        if isinstance(number, bool) or not isinstance(number, int | float) or number < 0:
            raise ConfigError(f"diffusers option {key}.{quality} must be a number >= 0, not {number!r}")
    return merged


def _text_option(options: Mapping[str, Any], key: str, default: str | None) -> str | None:
    value = options.get(key, default)
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"diffusers option {key!r} must be a string")
    return value


@dataclass(frozen=True)
class DiffusersSettings:
    """The adapter's options, checked, with every default filled in (the device stays None for auto)."""

    path: Path
    dtype: str
    device: str | None
    steps: Mapping[str, int]
    guidance: Mapping[str, float]
    negative_prompt: str | None
    transparent_suffix: str

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> DiffusersSettings:
        """Reads the models file's options.

        Raises:
            ConfigError: Naming the first unusable option.
        """
        path = options.get("path")
        if not isinstance(path, str) or not path:
            raise ConfigError("diffusers option 'path' (the local pipeline directory) is required")
        dtype = options.get("dtype", "float32")
        if dtype not in DTYPES:
            raise ConfigError(f"diffusers option 'dtype' must be one of {', '.join(DTYPES)}, not {dtype!r}")
        steps = _per_quality(options, "steps", DEFAULT_STEPS)
        if any(int(s) != s or s < 1 for s in steps.values()):
            raise ConfigError("diffusers option 'steps' must be whole numbers >= 1")
        return cls(
            path=Path(path).expanduser(),
            dtype=dtype,
            device=_text_option(options, "device", None),
            steps={quality: int(s) for quality, s in steps.items()},
            guidance=_per_quality(options, "guidance", DEFAULT_GUIDANCE),
            negative_prompt=_text_option(options, "negative_prompt", None),
            transparent_suffix=_text_option(options, "transparent_suffix", DEFAULT_TRANSPARENT_SUFFIX) or "",
        )


def dtype_keyword(diffusers_version: str) -> str:
    """The name of ``from_pretrained``'s dtype argument in this diffusers version.

    ``dtype`` from diffusers 0.40 on, where ``torch_dtype`` warns that it is
    deprecated; ``torch_dtype`` before, where ``dtype`` is not read.
    """
    major, minor = (int(part) for part in diffusers_version.split(".")[:2])
    return "dtype" if (major, minor) >= (0, 40) else "torch_dtype"

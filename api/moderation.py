"""Prompt moderation for image generation: a pluggable check, with a configurable built-in policy.

``moderation: "auto"`` (the default) applies the policy's ``auto`` rules and
``"low"`` its more permissive ``low`` rules. The built-in policy refuses
prompts containing listed terms (whole words, case-insensitive). Point
``INFERQ_MODERATION`` at a YAML file with ``auto:`` and ``low:`` term lists to
change them, or at ``package.module:Class`` for a real classifier: any class
whose ``check(prompt, level)`` returns a reason to refuse (or None) will do.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

import yaml

from common.errors import ConfigError

DEFAULT_POLICY = Path(__file__).with_name("moderation.yaml")
"""The built-in term lists."""

LEVELS = ("auto", "low")


class ModerationPolicy(Protocol):
    """Decides whether a prompt may be rendered."""

    def check(self, prompt: str, level: str) -> str | None:
        """The reason to refuse ``prompt`` at ``level`` (``auto`` or ``low``), or None to allow it."""


class TermPolicy:
    """Refuses prompts containing any of a level's terms, as whole words."""

    def __init__(self, terms: dict[str, Iterable[str]]) -> None:
        self._patterns = {level: self._pattern(terms.get(level, ())) for level in LEVELS}

    @staticmethod
    def _pattern(terms: Iterable[str]) -> re.Pattern[str] | None:
        words = sorted({t.strip().lower() for t in terms if t.strip()}, key=len, reverse=True)
        if not words:
            return None
        return re.compile(r"\b(" + "|".join(re.escape(w) for w in words) + r")\b", re.IGNORECASE)

    @classmethod
    def from_file(cls, path: Path) -> TermPolicy:
        """Reads ``auto:`` and ``low:`` term lists from YAML.

        Raises:
            ConfigError: When the file is missing or not of that shape.
        """
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as e:
            raise ConfigError(f"moderation policy {path} cannot be read: {e}") from e
        if not isinstance(data, dict) or set(data) - set(LEVELS):
            raise ConfigError(f"moderation policy {path} must map only {', '.join(LEVELS)} to term lists")
        if not all(isinstance(v, list) and all(isinstance(t, str) for t in v) for v in data.values()):
            raise ConfigError(f"moderation policy {path}: every level must list terms (strings)")
        return cls(data)

    def check(self, prompt: str, level: str) -> str | None:
        """Names the first listed term found in ``prompt``, if any."""
        pattern = self._patterns.get(level)
        found = pattern.search(prompt) if pattern else None
        return f"the prompt contains a term the '{level}' policy refuses" if found else None


def load_policy(reference: str | None) -> ModerationPolicy:
    """The built-in policy, a term file, or ``package.module:Class``.

    Raises:
        ConfigError: When the reference cannot be loaded.
    """
    if reference is None:
        return TermPolicy.from_file(DEFAULT_POLICY)
    module_name, sep, class_name = reference.partition(":")
    if not sep:
        return TermPolicy.from_file(Path(reference).expanduser())
    try:
        policy_class = getattr(importlib.import_module(module_name), class_name)
        policy: ModerationPolicy = policy_class()
    except (ImportError, AttributeError, TypeError) as e:
        raise ConfigError(f"moderation policy {reference!r} cannot be loaded: {e}") from e
    return policy

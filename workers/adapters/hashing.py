"""Feature hashing for ``inferq/hash-embed``: words and token ids into signed buckets, no weights.

Text is split into words by :data:`WORD`; its features are the words and
each pair of adjacent words (so word order matters). Token ids give the same
two kinds of feature. Each feature lands in one of ``dimensions`` buckets,
with a sign, both taken from a keyed BLAKE2b digest: stable across processes,
machines and Python versions (Python's ``hash()`` is salted per process).
numpy is imported on first use: the API imports this module only to count words.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")
"""A word: a run of Unicode letters and digits, apostrophes inside it kept (``don't``).

Everything else (spaces, punctuation, ``_``, symbols) separates words. Text is
NFKC-normalised, its right single quotation mark read as an apostrophe, and
lowercased first, so ``"Don’t  PANIC!"`` is ``["don't", "panic"]``.
"""

PERSON = b"inferq-hash-v1"
"""BLAKE2b personalisation: changing it (or the feature spellings) changes every vector."""


def words(text: str) -> list[str]:
    """The lowercase words of ``text``, in order (see :data:`WORD`)."""
    normal = unicodedata.normalize("NFKC", text).replace("\u2019", "'").lower()
    return WORD.findall(normal)


def word_features(tokens: Sequence[str]) -> list[str]:
    """Unigrams ``w:<word>`` and bigrams ``b:<word> <word>`` of a word sequence."""
    unigrams = [f"w:{word}" for word in tokens]
    bigrams = [f"b:{first} {second}" for first, second in zip(tokens, tokens[1:], strict=False)]
    return unigrams + bigrams


def id_features(ids: Sequence[int]) -> list[str]:
    """Unigrams ``t:<id>`` and bigrams ``p:<id> <id>`` of a token-id sequence."""
    unigrams = [f"t:{token}" for token in ids]
    bigrams = [f"p:{first} {second}" for first, second in zip(ids, ids[1:], strict=False)]
    return unigrams + bigrams


@lru_cache(maxsize=1 << 16)
def slot(feature: str, dimensions: int) -> tuple[int, float]:
    """The bucket (``0 <= b < dimensions``) and sign (+1.0 or -1.0) of one feature.

    The sign is the digest's lowest bit, the bucket the remaining 63 bits modulo ``dimensions``.
    """
    digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=8, person=PERSON).digest()
    value = int.from_bytes(digest, "little")
    return (value >> 1) % dimensions, 1.0 if value & 1 else -1.0


def hashed_counts(features: Sequence[str], dimensions: int) -> npt.NDArray[np.float64]:
    """The signed feature counts per bucket: an unnormalised vector of ``dimensions`` floats."""
    import numpy as np

    if not features:
        return np.zeros(dimensions, dtype=np.float64)
    buckets, signs = zip(*(slot(feature, dimensions) for feature in features), strict=True)
    return np.bincount(buckets, weights=signs, minlength=dimensions).astype(np.float64)

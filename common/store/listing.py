"""Listing an owner's predictions: newest first, by id boundary, optionally filtered by status.

Prediction ids are time-ordered UUIDs, so an owner's index is one sorted set
with every score 0, ordered lexicographically: paging is a range by id.
A listing drops the entries it finds expired; the create script drops an
owner's oldest expired ones, a few per create, so the index of an owner who
never lists does not grow without bound.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import cast

import redis

from common.records import Prediction, Status
from common.store import keys

SCAN_CHUNK = 100
"""How many ids a listing reads per round trip while filtering by status."""


class OwnerIndex:
    """Reads pages of an owner's predictions, dropping index entries whose records expired."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client

    def page(
        self,
        owner: str,
        *,
        limit: int,
        older_than: str | None = None,
        newer_than: str | None = None,
        statuses: Collection[Status] = (),
    ) -> tuple[list[Prediction], bool]:
        """Reads up to ``limit`` of an owner's predictions next to a boundary id.

        Without ``newer_than`` it walks from ``older_than`` (or the newest) towards
        older ones; with it, towards newer ones. Either way the page comes back
        newest first, with whether more matching predictions lie beyond it.
        """
        index = keys.owner_predictions(owner)
        newer = newer_than is not None
        bound = newer_than if newer else older_than
        found: list[Prediction] = []
        stale: list[str] = []
        while len(found) <= limit:
            if newer:
                found_ids = self.redis.zrangebylex(index, f"({bound}", "+", start=0, num=SCAN_CHUNK)
            else:
                top = f"({bound}" if bound else "+"
                found_ids = self.redis.zrevrangebylex(index, top, "-", 0, SCAN_CHUNK)
            ids = cast(list[str], found_ids)
            if not ids:
                break
            for prediction_id, data in zip(ids, self._hashes(ids), strict=True):
                if not data:
                    stale.append(prediction_id)
                    continue
                prediction = Prediction.from_hash(data)
                if not statuses or prediction.status in statuses:
                    found.append(prediction)
                    if len(found) > limit:
                        break
            bound = ids[-1]
            if len(ids) < SCAN_CHUNK:
                break
        if stale:
            self.redis.zrem(index, *stale)
        more = len(found) > limit
        found = found[:limit]
        if newer:
            found.reverse()
        return found, more

    def _hashes(self, prediction_ids: Iterable[str]) -> list[dict[str, str]]:
        pipe = self.redis.pipeline(transaction=False)
        for prediction_id in prediction_ids:
            pipe.hgetall(keys.prediction(prediction_id))
        return pipe.execute()

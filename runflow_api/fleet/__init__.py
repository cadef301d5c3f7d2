"""Several machines, one set of promises: a shared store on Redis for results, claims, the run journal,
the ledger with a team budget, and learned durations.

Optional and additive: without `RUNFLOW_SHARED_STORE` none of this is used (redis is not even
imported) and every store stays on the local disk, exactly as on a single machine. With it, each shared
tier sits *behind* its local twin, so a Redis outage only ever loses the sharing (see `store.SharedStore.call`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .money import BUDGET_ENV, FleetMoney
from .shared_claims import claim_key
from .shared_inputs import SharedInputs
from .shared_results import SharedResults
from .store import STORE_ENV, SharedStore, store_from_env

__all__ = ["BUDGET_ENV", "STORE_ENV", "Fleet", "FleetMoney", "SharedInputs", "SharedResults", "SharedStore",
           "resolve_store", "team_budget_from_env"]


@dataclass
class Fleet:
    """What the engine reads of the shared store on every image's path."""

    store: SharedStore
    results: SharedResults
    money: FleetMoney
    inputs: SharedInputs

    def worth_retrying(self, cache_keys: Sequence[str]) -> set[str] | None:
        """Which set-aside inputs may be taken now, in one round trip: their result is stored, or nobody
        claims them any more (the holder gave up, or died and its claim expired). None when the store
        cannot say (it is down): then every one is tried, as without a fleet."""
        if not cache_keys:
            return set()

        def check(redis: Any) -> list[Any]:
            with redis.pipeline(transaction=False) as pipe:
                for cache_key in cache_keys:
                    pipe.exists(self.results.key_of(cache_key))
                    pipe.exists(claim_key(self.store, cache_key))
                return list(pipe.execute())

        found: list[Any] | None = self.store.call(check, None, what="checking set-aside inputs")
        if found is None or len(found) != 2 * len(cache_keys):
            return None
        return {key for key, stored, claimed in zip(cache_keys, found[::2], found[1::2], strict=True)
                if stored or not claimed}


def resolve_store(option: str | SharedStore | None) -> SharedStore | None:
    """The client's `shared_store` option: a store, a URL, "" for none, or None for RUNFLOW_SHARED_STORE."""
    if isinstance(option, SharedStore):
        return option
    if option is None:
        return store_from_env()
    return SharedStore.for_url(option) if option.strip() else None


def team_budget_from_env() -> str | None:
    return os.environ.get(BUDGET_ENV, "").strip() or None

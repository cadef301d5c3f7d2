"""Several machines, one set of promises: a shared store on Redis for results, claims, the run journal,
the ledger with a team budget, and learned durations.

Optional and additive: without `RUNFLOW_SHARED_STORE` none of this is used (redis is not even
imported) and every store stays on the local disk, exactly as on a single machine. With it, each shared
tier sits *behind* its local twin, so a Redis outage only ever loses the sharing (see `store.SharedStore.call`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .money import BUDGET_ENV, FleetMoney
from .shared_results import SharedResults
from .store import STORE_ENV, SharedStore, store_from_env

__all__ = ["BUDGET_ENV", "STORE_ENV", "Fleet", "FleetMoney", "SharedResults", "SharedStore", "resolve_store",
           "team_budget_from_env"]


@dataclass
class Fleet:
    """What the engine reads of the shared store on every image's path."""

    store: SharedStore
    results: SharedResults
    money: FleetMoney


def resolve_store(option: str | SharedStore | None) -> SharedStore | None:
    """The client's `shared_store` option: a store, a URL, "" for none, or None for RUNFLOW_SHARED_STORE."""
    if isinstance(option, SharedStore):
        return option
    if option is None:
        return store_from_env()
    return SharedStore.for_url(option) if option.strip() else None


def team_budget_from_env() -> str | None:
    return os.environ.get(BUDGET_ENV, "").strip() or None

"""Learned run durations shared by the fleet, so a worker started a minute ago polls like an old one.

A small Redis hash, one field per service, model and kind, beside the machine's own file
(`durations.DurationStore`), which still serves when Redis is down. On load the fleet's figure wins when
it is newer than this machine's; every save goes to both.
"""

from __future__ import annotations

import json
from typing import Any

from ..money.durations import DurationStore, Estimate, valid_entry
from .store import SharedStore

_KEEP_S = 7 * 86400


class SharedDurations:
    """Has `DurationStore`'s `load` and `save`, so `DurationModel` takes either."""

    def __init__(self, store: SharedStore, local: DurationStore) -> None:
        self.store = store
        self.local = local
        self._key = store.key("durations")

    def load(self, scope: str) -> dict[str, Estimate]:
        prefix = f"{scope}\t"
        local = self.local.load_entries(scope)
        raw: dict[Any, Any] = self.store.call(
            lambda redis: redis.hgetall(self._key), {}, what="reading learned durations"
        )
        for name, value in raw.items():
            field = name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name)
            if not field.startswith(prefix):
                continue
            entry = _parse(value)
            if entry is None:
                self.store.warn_foreign(f"{self._key} {field}", "not a learned duration")
                continue
            kind = field[len(prefix):]
            if kind not in local or entry["t"] > local[kind]["t"]:
                local[kind] = entry
        return {kind: (entry["s"], entry["p"]) for kind, entry in local.items()}

    def save(self, scope: str, kind: str, estimate: Estimate) -> None:
        entry = self.local.save(scope, kind, estimate)

        def write(redis: Any) -> Any:
            with redis.pipeline(transaction=False) as pipe:
                pipe.hset(self._key, f"{scope}\t{kind}", json.dumps(entry))
                pipe.expire(self._key, _KEEP_S)
                return pipe.execute()

        self.store.call(write, None, what="sharing a learned duration")


def _parse(value: Any) -> dict[str, Any] | None:
    try:
        entry = json.loads(value)
    except (ValueError, TypeError):
        return None
    return entry if valid_entry(entry) else None

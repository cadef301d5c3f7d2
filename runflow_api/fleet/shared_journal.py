"""The run journal's copy in the fleet's store: what a dead machine paid for, another one collects.

Each open entry (an intent about to be sent, or a run created and not yet collected) is written here as
well as on the local disk, with the exact request and its Idempotency-Key. If its machine dies, the
claim on the input expires and the next machine to claim it reads this entry: with a run id it collects
that run; without one it replays the very same create, which the service answers with the first
create's run instead of a second bill. Entries expire with the journal's own age limit.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from ..money.journal import JournalEntry, entry_from_json
from .store import SharedStore


class SharedJournal:
    def __init__(self, store: SharedStore, *, max_age_s: float) -> None:
        self.store = store
        self.max_age_s = max_age_s

    def _key(self, cache_key: str) -> str:
        return self.store.key("journal", cache_key)

    def get(self, cache_key: str) -> JournalEntry | None:
        return self.get_many([cache_key]).get(cache_key)

    def get_many(self, cache_keys: Sequence[str]) -> dict[str, JournalEntry]:
        """The open entries of `cache_keys` in one round trip (planning a batch asks for all of them)."""
        if not cache_keys:
            return {}
        keys = [self._key(cache_key) for cache_key in cache_keys]
        raws = self.store.call(lambda redis: redis.mget(keys), None, what="reading the shared journal") or []
        found = {}
        for cache_key, key, raw in zip(cache_keys, keys, raws, strict=False):
            entry = self._parse(cache_key, key, raw) if raw is not None else None
            if entry is not None:
                found[cache_key] = entry
        return found

    def _parse(self, cache_key: str, key: str, raw: Any) -> JournalEntry | None:
        try:
            entry = entry_from_json(json.loads(raw))
        except (ValueError, UnicodeDecodeError) as exc:
            self.store.warn_foreign(key, f"not a journal entry: {exc}")
            return None
        if entry.closed or entry.cache_key != cache_key:
            self.store.warn_foreign(key, "not an open entry for this input")
            return None
        return entry

    def put(self, entry: JournalEntry) -> None:
        key, data = self._key(entry.cache_key), json.dumps(asdict(entry))
        ttl_ms = int(self.max_age_s * 1000)
        self.store.call(lambda redis: redis.set(key, data, px=ttl_ms), None, what="sharing the journal")

    def delete(self, cache_key: str) -> None:
        key = self._key(cache_key)

        def drop(redis: Any) -> Any:
            return redis.delete(key)

        self.store.call(drop, None, what="closing a shared journal entry")

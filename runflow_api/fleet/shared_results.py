"""The fleet's result tier: one machine's paid result is every other machine's free hit.

It sits behind the local cache, keyed exactly like it, and holds the same checksummed entry bytes
(`cache.pack_entry`), so a damaged or foreign value is detected exactly as on disk and is only a miss.
Bounded two ways: an entry larger than `max_result_bytes` stays local (a 4K matte is well under it), and
every entry expires `result_ttl_s` after it was last written or read, so the set in Redis is the
fleet's working set; Redis's own `maxmemory` with `volatile-lru` then evicts the least used results
first if the total still outgrows the memory it is given (see docs/fleet.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..money.cache import CachedResult, unpack_entry
from .store import SharedStore


class SharedResults:
    def __init__(self, store: SharedStore) -> None:
        self.store = store

    def key_of(self, cache_key: str) -> str:
        return self.store.key("result", cache_key)

    def get(self, cache_key: str) -> tuple[CachedResult, bytes] | None:
        """(entry, its encoded bytes, ready for the local cache), or None on a miss or a bad value."""
        key = self.key_of(cache_key)
        ttl_ms = int(self.store.result_ttl_s * 1000)

        def read(redis: Any) -> Any:
            with redis.pipeline(transaction=False) as pipe:  # read and refresh its expiry in one trip
                pipe.get(key)
                pipe.pexpire(key, ttl_ms)
                return pipe.execute()[0]

        blob = self.store.call(read, None, what="reading a shared result")
        if blob is None:
            return None
        entry = unpack_entry(bytes(blob)) if isinstance(blob, (bytes, bytearray)) else None
        if entry is None:
            self.store.warn_foreign(key, "not a result entry this version wrote, or damaged")
            return None
        return entry, bytes(blob)

    def put(self, cache_key: str, blob: bytes) -> bool:
        """Share one stored entry; False when it is too big to share or the store is down."""
        if len(blob) > self.store.max_result_bytes:
            return False
        key, ttl_ms = self.key_of(cache_key), int(self.store.result_ttl_s * 1000)
        return bool(self.store.call(lambda redis: redis.set(key, blob, px=ttl_ms), False, what="sharing a result"))

    def present(self, cache_keys: Sequence[str]) -> set[str]:
        """Which of `cache_keys` the fleet holds, in one round trip (for planning the spend)."""
        if not cache_keys:
            return set()

        def check(redis: Any) -> list[Any]:
            with redis.pipeline(transaction=False) as pipe:
                for cache_key in cache_keys:
                    pipe.exists(self.key_of(cache_key))
                return list(pipe.execute())

        found: list[Any] = self.store.call(check, [], what="planning")
        return {cache_key for cache_key, hit in zip(cache_keys, found, strict=False) if hit}

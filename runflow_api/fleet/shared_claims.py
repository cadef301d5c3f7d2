"""Claims across machines: the first machine to start an input owns it; the others wait for its result.

A claim is a Redis key set only if absent (`SET NX PX`), holding a random token of its owner and an
expiry. The owner renews it every third of its lifetime for as long as it works on the input (upload,
create, waiting for the run, download, storing), so a claim outlives its owner only when the owner
stopped renewing: a crashed or killed machine. Its claim then expires and a waiting machine takes over,
finds the journal entry the dead one wrote before creating, and collects the paid run.

The machine's own `LocalClaims` are taken first, so processes on one machine coordinate through the
kernel as before and only one of them asks Redis. If Redis is down, or goes down while waiting, the
local claim alone holds: the batch goes on (the store has already warned) instead of hanging.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from ..errors import RunflowCancelled
from ..money.claims import CancelCheck, ClaimHeld, LocalClaims
from .store import SharedStore

log = logging.getLogger("runflow_api")

_WAIT_TICK_S = 0.1
# Take the claim when it is free, or when the key holds something no claimer of ours ever writes: a value
# without an expiry, or with more time left than a claim's whole lifetime (ARGV[2]); foreign or hand-made
# data would otherwise block the input for ever, or for hours. 1 taken, 2 taken over such a key, 0 held
# by another machine.
_TAKE = """
local ttl = redis.call('PTTL', KEYS[1])
local foreign = ttl == -1 or ttl > tonumber(ARGV[2])
if ttl >= 0 and not foreign then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if foreign then return 2 end
return 1
"""
# Compare-and-act scripts: only the token's owner may extend or drop a claim, never a later owner's.
_RENEW = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0"
_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


def claim_key(store: SharedStore, cache_key: str) -> str:
    """The Redis key of an input's fleet claim."""
    return store.key("claim", cache_key)


class _Renewer:
    """One background thread per store that keeps every claim this process holds alive."""

    def __init__(self, store: SharedStore) -> None:
        self.store = store
        self._held: dict[str, str] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def add(self, key: str, token: str) -> None:
        with self._lock:
            self._held[key] = token
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="runflow-claim-renewer", daemon=True)
                self._thread.start()

    def remove(self, key: str) -> None:
        with self._lock:
            self._held.pop(key, None)

    def _loop(self) -> None:
        ttl_ms = int(self.store.claim_ttl_s * 1000)
        while True:
            time.sleep(self.store.claim_ttl_s / 3)
            with self._lock:
                held = dict(self._held)
            if not held:
                continue

            def renew(redis: Any, held: dict[str, str] = held) -> list[Any]:
                with redis.pipeline(transaction=False) as pipe:
                    for key, token in held.items():
                        pipe.eval(_RENEW, 1, key, token, ttl_ms)
                    return list(pipe.execute())

            answers = self.store.call(renew, None, what="renewing claims")
            for (key, _), kept in zip(held.items(), answers or [], strict=False):
                if not kept:
                    log.warning("Shared store: the claim %s expired before it could be renewed; another "
                                "machine may now work on the same input.", key.rsplit(":", 1)[-1][:16])


class FleetClaims:
    """`Claims` for a fleet: this machine's `LocalClaims`, then the shared claim in Redis."""

    _renewers: dict[int, _Renewer] = {}
    _renewers_lock = threading.Lock()

    def __init__(self, local: LocalClaims, store: SharedStore) -> None:
        self.local = local
        self.store = store
        with self._renewers_lock:
            self._renewer = self._renewers.setdefault(id(store), _Renewer(store))

    @contextlib.contextmanager
    def hold(
        self, cache_key: str, *, should_cancel: CancelCheck, on_wait: Callable[[str], None] = lambda who: None,
        wait: bool = True,
    ) -> Iterator[bool]:
        with self.local.hold(cache_key, should_cancel=should_cancel, on_wait=on_wait, wait=wait) as waited_here:
            key, token = claim_key(self.store, cache_key), secrets.token_hex(16)
            waited_there = self._acquire(key, token, should_cancel, on_wait, wait)
            try:
                yield waited_here or waited_there
            finally:
                self._renewer.remove(key)
                self.store.call(lambda redis: redis.eval(_RELEASE, 1, key, token), None, what="releasing a claim")

    def _acquire(
        self, key: str, token: str, should_cancel: CancelCheck, on_wait: Callable[[str], None], wait: bool
    ) -> bool:
        """True when another machine held the input first (or `ClaimHeld` when told not to wait). Returns
        without the claim if the store fails."""
        ttl_ms = int(self.store.claim_ttl_s * 1000)
        waited = False
        while True:
            taken = self.store.call(lambda redis: redis.eval(_TAKE, 1, key, token, ttl_ms), None,
                                    what="claiming an input")
            if taken is None:
                return waited  # the store is down or refused: the local claim alone holds (it has warned)
            if taken:
                if int(taken) == 2:
                    self.store.warn_foreign(key, "a value without an expiry, or with more time left than any "
                                                 "claim has; taken over")
                self._renewer.add(key, token)
                return waited
            if not wait:
                raise ClaimHeld("machine")  # the local claim is let go on the way out
            if not waited:
                waited = True
                on_wait("machine")
            if should_cancel():
                raise RunflowCancelled("Cancelled while another machine was producing this image's result.")
            time.sleep(_WAIT_TICK_S)

"""The connection to a fleet's shared Redis, and the one rule for every use of it: Redis helps, never blocks.

Every shared tier (results, claims, journal, money, durations) goes through `SharedStore.call`. When Redis
cannot be reached, at start or mid-batch, the call returns its fallback at once and the work goes on with
this machine's own stores: one warning names the store (masked) and what is lost, and a background probe
brings sharing back when Redis answers again. While the store is down no call waits on a socket, so a
dead Redis costs a batch one connect timeout (about 2 s) at most, never a hang.

Keys are namespaced as `<prefix>:v1:<kind>:<id>`: several teams or services can share one Redis, and a
later format moves to `v2` instead of misreading old data.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from ..errors import InputRejected
from ..settings.redact import redact, url_for_display

log = logging.getLogger("runflow_api")

T = TypeVar("T")

STORE_ENV = "RUNFLOW_SHARED_STORE"
PREFIX_ENV = "RUNFLOW_SHARED_PREFIX"
FORMAT = "v1"
DEFAULT_PREFIX = "runflow"
CONNECT_TIMEOUT_S = 2.0
SOCKET_TIMEOUT_S = 2.0
PROBE_EVERY_S = 5.0
LOST_WHAT = (
    "results, in-flight claims, the run journal, the team budget and learned durations are not shared "
    "until it is back; this machine goes on with its own stores"
)
_INSTALL_HINT = (
    "RUNFLOW_SHARED_STORE is set, but the Python package 'redis' is not installed. Install it with "
    "`pip install \"runflow-product-isolation[fleet]\"` (or `pip install redis` in ComfyUI's Python), "
    "or unset RUNFLOW_SHARED_STORE to work with this machine's stores only."
)


def display_url(url: str) -> str:
    """The store's address as it may be shown: no password, and a note that there is one."""
    parts = urlsplit(url)
    secret = " (password set)" if parts.password or (parts.username and "@" in parts.netloc) else ""
    return url_for_display(url) + secret


def validate_url(url: str) -> str:
    """Refuse anything but redis:// and rediss:// before a connection is tried."""
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        raise InputRejected(
            f"The shared store {display_url(url)!r} is not a Redis URL. Use "
            "redis://[:password@]host:port/db (or rediss:// for TLS), or unset RUNFLOW_SHARED_STORE."
        )
    try:
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError as exc:
        raise InputRejected(f"The shared store {display_url(url)!r} has a malformed port.") from exc
    return url


def _redis_module() -> Any:
    try:
        import redis
    except ImportError as exc:
        raise InputRejected(_INSTALL_HINT) from exc
    return redis


class SharedStore:
    """One Redis connection pool per URL and prefix in a process (see `for_url`), with its health state.

    `claim_ttl_s` is how long a claim outlives a holder that stopped renewing it (a crashed machine):
    another machine waits at most that long before collecting the paid run. `result_ttl_s` and
    `max_result_bytes` bound the shared result tier (see docs/fleet.md)."""

    _shared: dict[tuple[str, str], SharedStore] = {}
    _shared_lock = threading.Lock()

    @classmethod
    def for_url(cls, url: str, *, prefix: str | None = None) -> SharedStore:
        prefix = prefix or os.environ.get(PREFIX_ENV) or DEFAULT_PREFIX
        with cls._shared_lock:
            key = (url, prefix)
            if key not in cls._shared:
                cls._shared[key] = cls(url, prefix=prefix)
            return cls._shared[key]

    def __init__(
        self,
        url: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        claim_ttl_s: float = 20.0,
        result_ttl_s: float = 7 * 86400,
        max_result_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        self.url = validate_url(url)
        self.display = display_url(self.url)
        self.prefix = f"{prefix}:{FORMAT}"
        self.claim_ttl_s = claim_ttl_s
        self.result_ttl_s = result_ttl_s
        self.max_result_bytes = max_result_bytes
        redis = _redis_module()
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        self._refusals: tuple[type[BaseException], ...] = (redis.ResponseError,)
        # No retries inside redis-py: a failed call marks the store down at once and the background probe
        # reconnects, so a dead or black-holed Redis costs one timeout, not one per retry per call.
        try:
            self.redis = redis.Redis.from_url(
                self.url, socket_connect_timeout=CONNECT_TIMEOUT_S, socket_timeout=SOCKET_TIMEOUT_S,
                retry=Retry(NoBackoff(), 0), retry_on_timeout=False,
            )
        except (ValueError, TypeError) as exc:  # an option in the URL's query that redis-py cannot read
            problem = redact(str(exc), [urlsplit(self.url).password])
            raise InputRejected(
                f"The shared store {self.display!r} has an option that cannot be used ({problem}). Fix or remove "
                "it in RUNFLOW_SHARED_STORE: timeouts are seconds (?socket_timeout=5), the database a number."
            ) from exc
        self._lock = threading.Lock()
        self._up = True
        self._problem = ""
        self._warned_foreign: set[str] = set()
        self._probing = False
        self.call(lambda r: r.ping(), None, what="connect")

    def key(self, kind: str, name: str = "") -> str:
        return f"{self.prefix}:{kind}:{name}" if name else f"{self.prefix}:{kind}"

    @property
    def available(self) -> bool:
        return self._up

    def state(self) -> dict[str, Any]:
        """For the settings panel and the CLI: never the password."""
        return {"url": self.display, "connected": self._up, "problem": self._problem}

    def call(self, operation: Callable[[Any], T], fallback: T, *, what: str) -> T:
        """`operation(redis)`, or `fallback` when the store is down or fails now (then marked down)."""
        if not self._up:
            return fallback
        try:
            return operation(self.redis)
        except self._refusals as exc:  # Redis answered, but refused (wrong type, a script error, no auth)
            self.warn_foreign(what, f"Redis refused it: {exc}")
            return fallback
        except self._errors as exc:
            self._mark_down(exc, what)
            return fallback

    def _mark_down(self, exc: BaseException, what: str) -> None:
        with self._lock:
            if not self._up:
                return
            self._up = False
            self._problem = redact(f"{type(exc).__name__}: {exc}", [urlsplit(self.url).password])
            start_probe = not self._probing
            self._probing = True
        log.warning(
            "Shared store %s is unreachable (%s, during %s): %s. Retrying every %.0f s.",
            self.display, type(exc).__name__, what, LOST_WHAT, PROBE_EVERY_S,
        )
        if start_probe:
            threading.Thread(target=self._probe, name="runflow-shared-probe", daemon=True).start()

    def _probe(self) -> None:
        """Ping in the background until Redis answers: no batch thread ever waits on a dead socket."""
        while True:
            time.sleep(PROBE_EVERY_S)
            try:
                self.redis.ping()
            except self._errors:
                continue
            with self._lock:
                self._up, self._problem, self._probing = True, "", False
            log.warning("Shared store %s is reachable again: sharing resumes.", self.display)
            return

    def warn_foreign(self, key: str, problem: str) -> None:
        """Data under our prefix that we did not write (another tool, an old format, a hand edit) is
        ignored, once with a warning per key, never a crash."""
        with self._lock:
            if key in self._warned_foreign:
                return
            self._warned_foreign.add(key)
        log.warning("Shared store %s: ignoring %s (%s).", self.display, key, problem)


def store_from_env() -> SharedStore | None:
    """The store `RUNFLOW_SHARED_STORE` names, or None when it is unset."""
    url = os.environ.get(STORE_ENV, "").strip()
    return SharedStore.for_url(url) if url else None

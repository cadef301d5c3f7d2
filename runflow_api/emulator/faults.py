"""What can go wrong, on purpose: the emulator's fault and response-variant switches.

Tests flip these fields on a live emulator between calls (`emu.faults.error_rate = 1.0`), so every field is
checked when it is set (a typo such as `output_shape = "imageurls"` fails at once instead of silently
testing nothing) and every random choice comes from one `random.Random(seed)`, so a failing fault test
can be replayed exactly. Setting `seed` restarts that sequence.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from typing import Any

# The routes faults can target; anything else (unknown paths) is never touched by a fault.
ROUTE_NAMES = frozenset(
    {"asset_upload", "put", "confirm", "asset", "create", "poll", "download", "me", "balance", "health"}
)
RUN_OUTCOMES = ("succeeded", "partial_succeeded", "failed", "canceled", "cancelled", "errored")
OUTPUT_SHAPES = (
    "outputs",
    "image_urls",
    "image_str",
    "image_list",
    "image_obj",
    "url",
    "output_url",
    "empty",
)
CREATE_STATUSES = (200, 201, 202)
BALANCE_SHAPES = ("decimal", "cents")


def _is_rate(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0.0 <= value <= 1.0


def _is_non_negative(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0


def _is_json_value(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool, list, dict))


_CHECKS: dict[str, tuple[Any, str]] = {
    "error_rate": (_is_rate, "a number from 0 to 1"),
    "error_status": (lambda v: isinstance(v, int) and 400 <= v <= 599, "an HTTP error status 400..599"),
    "routes": (
        lambda v: v is None or (isinstance(v, (set, frozenset)) and v <= ROUTE_NAMES),
        f"None or a set of {sorted(ROUTE_NAMES)}",
    ),
    "drop_rate": (_is_rate, "a number from 0 to 1"),
    "drop_after": (lambda v: isinstance(v, bool), "True or False"),
    "rate_limit_burst": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0, "a count >= 0"),
    "retry_after": (lambda v: v is None or _is_non_negative(v), "None or seconds >= 0"),
    "slow": (_is_non_negative, "seconds >= 0"),
    "run_outcome": (lambda v: v is None or v in RUN_OUTCOMES, f"None or one of {RUN_OUTCOMES}"),
    "fail_rate": (_is_rate, "a number from 0 to 1"),
    "output_shape": (lambda v: v in OUTPUT_SHAPES, f"one of {OUTPUT_SHAPES}"),
    "nested_errors": (lambda v: isinstance(v, bool), "True or False"),
    "create_status": (lambda v: v in CREATE_STATUSES, f"one of {CREATE_STATUSES}"),
    "upload_url_ttl": (_is_non_negative, "seconds >= 0"),
    "output_url_ttl": (_is_non_negative, "seconds >= 0"),
    "honour_idempotency": (lambda v: isinstance(v, bool), "True or False"),
    "balance_shape": (lambda v: v in BALANCE_SHAPES, f"one of {BALANCE_SHAPES}"),
    "cost_value": (_is_json_value, "None or a JSON value (str, number, bool, list, dict)"),
    "run_id_format": (lambda v: v is None or isinstance(v, str), "None or a str where {id} is the run id"),
    "output_count": (lambda v: v in (1, 2, 3), "1, 2 or 3 images per successful run"),
    "callback_delay": (_is_non_negative, "seconds >= 0"),
    "callback_duplicates": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0, "a count >= 0"),
    "callback_drop_rate": (_is_rate, "a number from 0 to 1"),
    "callback_bad_signature": (lambda v: isinstance(v, bool), "True or False"),
    "seed": (lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool)), "None or an int"),
}


@dataclass(frozen=True)
class RequestFault:
    """What one request meets: at most one of a 429, an injected error, or a dropped connection."""

    rate_limited: bool = False
    error_status: int | None = None
    drop: bool = False
    drop_after: bool = False


NO_FAULT = RequestFault()


@dataclass
class Faults:
    """Every switch is off by default: a fresh emulator behaves like a healthy Runflow."""

    error_rate: float = 0.0
    error_status: int = 500
    routes: set[str] | None = None
    drop_rate: float = 0.0
    drop_after: bool = False
    rate_limit_burst: int = 0
    retry_after: float | None = None
    slow: float = 0.0
    run_outcome: str | None = None
    fail_rate: float = 0.0
    output_shape: str = "image_urls"
    nested_errors: bool = False
    create_status: int = 201
    upload_url_ttl: float = 600.0
    output_url_ttl: float = 600.0
    honour_idempotency: bool = True
    balance_shape: str = "decimal"
    # Hostile answers the client must survive without losing a paid result or its money totals:
    # `cost_value` is sent verbatim as the `cost` of a finished, succeeded run ("sNaN", "-5", float("nan"),
    # [1]...); `run_id_format` is the run id a create answers with, `{id}` standing for the real id (e.g.
    # "{id}/x"). The run keeps its real id, is billed as usual, and replays answer the same malformed id.
    cost_value: Any = None
    run_id_format: str | None = None
    # A run that returns several images (`output.image_urls` is a list): decided when the run is created.
    output_count: int = 1
    # Callback deliveries (only for runs created with a callback_url, on an emulator with a callback
    # secret): `callback_delay` sends each one late by that many seconds, `callback_duplicates` sends
    # that many extra copies, `callback_drop_rate` is the share of runs whose callback is never sent,
    # `callback_bad_signature` signs with the wrong secret.
    callback_delay: float = 0.0
    callback_duplicates: int = 0
    callback_drop_rate: float = 0.0
    callback_bad_signature: bool = False
    seed: int | None = None

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(self.seed)

    def __setattr__(self, name: str, value: Any) -> None:
        check = _CHECKS.get(name)
        if check is not None and not check[0](value):
            raise ValueError(f"Faults.{name} must be {check[1]}, got {value!r}")
        if name == "routes" and value is not None:
            value = set(value)
        object.__setattr__(self, name, value)
        if name == "seed":
            object.__setattr__(self, "_rng", random.Random(value))  # a new seed restarts the sequence

    def applies_to(self, route: str | None) -> bool:
        """Request faults only ever hit the named API/storage routes selected by `routes`."""
        return route is not None and (self.routes is None or route in self.routes)

    def for_request(self, route: str | None) -> RequestFault:
        """Decide this request's fate. A 429 burst is used up first, then the error and drop draws.

        A draw only happens when its rate is non-zero, so turning one fault on does not shift the random
        sequence another fault sees.
        """
        if not self.applies_to(route):
            return NO_FAULT
        with self._lock:
            if self.rate_limit_burst > 0:
                object.__setattr__(self, "rate_limit_burst", self.rate_limit_burst - 1)
                return RequestFault(rate_limited=True)
            if self.error_rate > 0 and self._rng.random() < self.error_rate:
                return RequestFault(error_status=self.error_status)
            if self.drop_rate > 0 and self._rng.random() < self.drop_rate:
                return RequestFault(drop=True, drop_after=self.drop_after)
        return NO_FAULT

    def drops_callback(self) -> bool:
        """Whether this run's callback is lost (drawn once per run, only when the rate is non-zero)."""
        if self.callback_drop_rate <= 0:
            return False
        with self._lock:
            return self._rng.random() < self.callback_drop_rate

    def terminal_status(self) -> str:
        """The status a new run ends in: forced by `run_outcome`, else `failed` for a `fail_rate` share."""
        if self.run_outcome is not None:
            return self.run_outcome
        with self._lock:
            if self.fail_rate > 0 and self._rng.random() < self.fail_rate:
                return "failed"
        return "succeeded"

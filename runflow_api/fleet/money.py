"""The fleet's money: one ledger for every machine, and a daily team budget no race can pass.

Every paid run is recorded once in the day's shared ledger (keyed by run id, so a run collected by a
second machine after its creator died is never counted twice). With a team budget, each create first
*reserves* the list price for its input in one atomic Redis script that compares the day's spend plus
every open reservation with the budget; the reservation becomes the run's real cost once it is paid for,
and is released when the run turns out not to be billed. Three machines wanting three runs each under a
$1.00 budget therefore start three runs in all, whatever their timing.

When Redis is down, the budget falls back to this machine alone: its own ledger's spend today plus its
open reservations are held to the same budget. The fleet as a whole may then spend up to the budget per
machine; the warning says so, and the README documents it. Refusing every paid run instead would stop a
studio's work because of a bookkeeping outage, which the issue rules out ("work goes on").
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from ..errors import TeamBudgetExceeded
from ..ledger import Ledger
from ..product_isolation import PRICE_PER_IMAGE
from .store import SharedStore

log = logging.getLogger("runflow_api")

BUDGET_ENV = "RUNFLOW_TEAM_BUDGET"
_MICRO = Decimal(1_000_000)
_KEEP_DAYS_S = 90 * 86400
# KEYS: spent, reservations. ARGV: input, day, amount, limit. Returns {reserved (0/1), total before}.
_RESERVE = """
local mine = redis.call('HGET', KEYS[2], ARGV[1])
local total = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
local all = redis.call('HGETALL', KEYS[2])
for i = 1, #all, 2 do
  local day, amount = string.match(all[i + 1], '^(%d+)|(%d+)$')
  if day == ARGV[2] then
    if all[i] ~= ARGV[1] then total = total + tonumber(amount) end
  elseif day == nil or day < ARGV[2] then
    redis.call('HDEL', KEYS[2], all[i])
  end
end
if mine then return {1, total} end
if total + tonumber(ARGV[3]) > tonumber(ARGV[4]) then return {0, total} end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2] .. '|' .. ARGV[3])
return {1, total}
"""
# KEYS: spent, reservations, ledger. ARGV: input, run id, amount, record, ttl. Counts a run once; a
# counter that is not a number (not ours) restarts from this run.
_COMMIT = """
redis.call('HDEL', KEYS[2], ARGV[1])
if redis.call('HSETNX', KEYS[3], ARGV[2], ARGV[4]) == 1 then
  if redis.call('GET', KEYS[1]) and not tonumber(redis.call('GET', KEYS[1])) then redis.call('DEL', KEYS[1]) end
  redis.call('INCRBY', KEYS[1], ARGV[3])
  redis.call('EXPIRE', KEYS[1], ARGV[5])
  redis.call('EXPIRE', KEYS[3], ARGV[5])
end
return 1
"""
# KEYS: spent, reservations. ARGV: day. Returns {spent, reserved} in micro-dollars.
_TOTALS = """
local reserved = 0
local all = redis.call('HGETALL', KEYS[2])
for i = 2, #all, 2 do
  local day, amount = string.match(all[i], '^(%d+)|(%d+)$')
  if day == ARGV[1] then reserved = reserved + tonumber(amount) end
end
return {tonumber(redis.call('GET', KEYS[1]) or '0') or 0, reserved}
"""


def _day() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%d")


def _micro(amount: Decimal) -> int:
    return int(amount * _MICRO)


def _dollars(micro: Any) -> Decimal:
    return Decimal(int(micro)) / _MICRO


class FleetMoney:
    """The shared ledger and, when `team_budget` is set, the atomic daily team budget."""

    def __init__(
        self, store: SharedStore, *, team_budget: Decimal | None, local_ledger: Ledger, free: bool = False
    ) -> None:
        self.store = store
        self.team_budget = None if free else team_budget
        self.free = free  # the bundled emulator: its runs are neither money nor the team's budget
        self.local_ledger = local_ledger
        self._local_reserved: set[str] = set()  # this machine's reservations, for the fallback
        self._lock = threading.Lock()

    def _keys(self, day: str) -> list[str]:
        return [self.store.key("spent", day), self.store.key("reservations"), self.store.key("ledger", day)]

    def today(self) -> tuple[Decimal, Decimal, bool]:
        """(spent, reserved, shared?) today: the fleet's figures, or this machine's while Redis is down."""
        keys = self._keys(_day())[:2]
        totals = self.store.call(lambda redis: redis.eval(_TOTALS, 2, *keys, _day()), None, what="reading the budget")
        if totals is None:
            with self._lock:
                reserved = len(self._local_reserved) * PRICE_PER_IMAGE
            return self.local_ledger.spent_today(), reserved, False
        return _dollars(totals[0]), _dollars(totals[1]), True

    def check(self, runs: int) -> None:
        """Refuse a whole call up front when its new runs cannot fit in what is left today."""
        if self.team_budget is None or runs <= 0:
            return
        spent, reserved, shared = self.today()
        if spent + reserved + runs * PRICE_PER_IMAGE > self.team_budget:
            raise self._refusal(runs, spent + reserved, shared)

    def reserve(self, cache_key: str) -> None:
        """Hold the list price for one create, atomically across the fleet; raise when it does not fit."""
        if self.team_budget is None:
            return
        day, keys = _day(), self._keys(_day())[:2]
        answer = self.store.call(
            lambda redis: redis.eval(_RESERVE, 2, *keys, cache_key, day, _micro(PRICE_PER_IMAGE),
                                     _micro(self.team_budget or Decimal(0))),
            None, what="reserving from the team budget",
        )
        if answer is not None:
            if not int(answer[0]):
                raise self._refusal(1, _dollars(answer[1]), True)
            return
        with self._lock:  # the store is down: hold this machine alone to the budget
            if cache_key in self._local_reserved:
                return
            used = self.local_ledger.spent_today() + len(self._local_reserved) * PRICE_PER_IMAGE
            if used + PRICE_PER_IMAGE > self.team_budget:
                raise self._refusal(1, used, False)
            self._local_reserved.add(cache_key)

    def release(self, cache_key: str) -> None:
        """The run was not billed (or never created): give its reservation back."""
        with self._lock:
            self._local_reserved.discard(cache_key)
        key = self.store.key("reservations")
        self.store.call(lambda redis: redis.hdel(key, cache_key), None, what="releasing a reservation")

    def commit(self, cache_key: str, run_id: str, cost: Decimal, record: dict[str, Any]) -> None:
        """A paid run: record it once in the shared ledger and turn its reservation into its cost."""
        if self.free:
            return
        with self._lock:
            self._local_reserved.discard(cache_key)
        keys, data = self._keys(_day()), json.dumps(record)
        self.store.call(
            lambda redis: redis.eval(_COMMIT, 3, *keys, cache_key, run_id, _micro(cost), data, _KEEP_DAYS_S),
            None, what="recording a paid run",
        )

    def _refusal(self, runs: int, used: Decimal, shared: bool) -> TeamBudgetExceeded:
        assert self.team_budget is not None
        cost = runs * PRICE_PER_IMAGE
        scope = "across the fleet" if shared else "on this machine (the shared store is unreachable)"
        left = max(Decimal(0), self.team_budget - used)
        return TeamBudgetExceeded(
            f"Team budget: ${used:.2f} of ${self.team_budget:.2f} for today (UTC) is already spent or reserved "
            f"{scope}, ${left:.2f} left; this needs {runs} new paid run(s) costing ${cost:.2f} "
            f"(${PRICE_PER_IMAGE} each). Nothing was started for it. Raise {BUDGET_ENV} (or --team-budget, or the "
            "client's team_budget), or wait for the next UTC day.",
            runs=runs, cost=f"{cost:.2f}", limit=f"{self.team_budget:.2f}",
        )

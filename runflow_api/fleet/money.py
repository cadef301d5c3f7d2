"""The fleet's money: one ledger for every machine, and a daily team budget no race can pass.

Every paid run is recorded once in the day's shared ledger (keyed by run id, so a run collected by a
second machine after its creator died is never counted twice). With a team budget, each create first
*reserves* the list price for its input in one atomic Redis script that compares the day's spend plus
every open reservation with the budget; the reservation becomes the run's real cost once it is paid for,
and is released when the run turns out not to be billed. Three machines wanting three runs each under a
$1.00 budget therefore start three runs in all, whatever their timing.

A reservation holds the run's price as the fleet last saw it: the highest cost of a paid run in the last
`PRICE_MEMORY_S`, and never less than the list price, since the service may bill above it. When no price
is known, one create is priced first (it holds the short-lived "pricing" slot) and the others wait for
its cost before reserving; so runs billed at $0.50 under a $1.00 budget stop at two. What remains is a
price rise above the highest price seen: runs already reserved at the old price count at their real cost
when paid, and may pass the budget by the difference (docs/fleet.md says so).

When Redis is down, the budget falls back to this machine alone: its own ledger's spend today plus its
open reservations are held to the same budget. The fleet as a whole may then spend up to the budget per
machine; the warning says so, and docs/fleet.md documents it. Refusing every paid run instead would stop a
studio's work because of a bookkeeping outage, which the issue rules out ("work goes on").
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from ..errors import RunflowCancelled, TeamBudgetExceeded
from ..money.ledger import Ledger
from ..product_isolation import PRICE_PER_IMAGE
from ..service.cancel import CancelCheck, cancellable_sleep
from .store import SharedStore

log = logging.getLogger("runflow_api")

BUDGET_ENV = "RUNFLOW_TEAM_BUDGET"
_MICRO = Decimal(1_000_000)
_KEEP_DAYS_S = 90 * 86400
PRICE_MEMORY_S = 7 * 86400  # how long the highest price seen is kept without a run at that price
PRICING_SLOT_S = 120  # how long the first create at an unknown price keeps the others waiting, at most
_PRICING_POLL_S = 0.25
# KEYS: spent, reservations, price, pricing. ARGV: input, day, list price, limit, pricing slot ms.
# Returns {answer, total before, amount}: answer 1 reserved, 0 over the budget, 2 wait (another create is
# being priced). The amount is the list price, or the highest price seen when that is higher. A pricing
# slot without an expiry, or with more time left than a slot has, is not ours and is taken over.
_RESERVE = """
local mine = redis.call('HGET', KEYS[2], ARGV[1])
local total = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
local known = tonumber(redis.call('GET', KEYS[3]) or '')
local amount = tonumber(ARGV[3])
if known and known > amount then amount = known end
local all = redis.call('HGETALL', KEYS[2])
for i = 1, #all, 2 do
  local day, reserved = string.match(all[i + 1], '^(%d+)|(%d+)$')
  if day == ARGV[2] then
    if all[i] ~= ARGV[1] then total = total + tonumber(reserved) end
  elseif day == nil or day < ARGV[2] then
    redis.call('HDEL', KEYS[2], all[i])
  end
end
if mine then return {1, total, amount} end
if total + amount > tonumber(ARGV[4]) then return {0, total, amount} end
if not known then
  local pricing = redis.call('GET', KEYS[4])
  local ttl = redis.call('PTTL', KEYS[4])
  if pricing and pricing ~= ARGV[1] and ttl >= 0 and ttl <= tonumber(ARGV[5]) then return {2, total, amount} end
  redis.call('SET', KEYS[4], ARGV[1], 'PX', ARGV[5])
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2] .. '|' .. amount)
return {1, total, amount}
"""
# KEYS: spent, reservations, ledger, price, pricing. ARGV: input, run id, amount, record, ttl, price ttl.
# Counts a run once; a counter that is not a number (not ours) restarts from this run. The run's cost
# becomes the known price when it is the highest seen, and ends any wait for a price.
_COMMIT = """
redis.call('HDEL', KEYS[2], ARGV[1])
local cost = tonumber(ARGV[3])
local known = tonumber(redis.call('GET', KEYS[4]) or '')
if not known or cost >= known then redis.call('SET', KEYS[4], cost, 'EX', ARGV[6]) end
redis.call('DEL', KEYS[5])
if redis.call('HSETNX', KEYS[3], ARGV[2], ARGV[4]) == 1 then
  if redis.call('GET', KEYS[1]) and not tonumber(redis.call('GET', KEYS[1])) then redis.call('DEL', KEYS[1]) end
  redis.call('INCRBY', KEYS[1], ARGV[3])
  redis.call('EXPIRE', KEYS[1], ARGV[5])
  redis.call('EXPIRE', KEYS[3], ARGV[5])
end
return 1
"""
# KEYS: reservations, pricing. ARGV: input. A create that bills nothing gives its reservation back, and its
# pricing slot, so the next create can be priced.
_RELEASE = """
redis.call('HDEL', KEYS[1], ARGV[1])
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
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
        self._local_reserved: dict[str, Decimal] = {}  # this machine's reservations, for the fallback
        self._highest_paid = PRICE_PER_IMAGE  # the highest run cost this process has seen, for the fallback
        self._lock = threading.Lock()

    def _keys(self, day: str) -> list[str]:
        return [self.store.key("spent", day), self.store.key("reservations"), self.store.key("ledger", day)]

    def _price_keys(self) -> list[str]:
        return [self.store.key("price"), self.store.key("pricing")]

    def today(self) -> tuple[Decimal, Decimal, bool]:
        """(spent, reserved, shared?) today: the fleet's figures, or this machine's while Redis is down."""
        keys = self._keys(_day())[:2]
        totals = self.store.call(lambda redis: redis.eval(_TOTALS, 2, *keys, _day()), None, what="reading the budget")
        if totals is None:
            with self._lock:
                reserved = sum(self._local_reserved.values(), Decimal(0))
            return self.local_ledger.spent_today(), reserved, False
        return _dollars(totals[0]), _dollars(totals[1]), True

    def run_price(self) -> Decimal:
        """What one new run is reckoned to cost: the highest price seen recently, at least the list price."""
        key = self._price_keys()[0]
        known = self.store.call(lambda redis: redis.get(key), None, what="reading the run price")
        try:
            fleet_price = _dollars(known) if known is not None else PRICE_PER_IMAGE
        except ValueError:  # not ours: the list price, and the next paid run replaces it
            fleet_price = PRICE_PER_IMAGE
        with self._lock:
            return max(PRICE_PER_IMAGE, fleet_price, self._highest_paid)

    def check(self, runs: int) -> None:
        """Refuse a whole call up front when its new runs cannot fit in what is left today."""
        if self.team_budget is None or runs <= 0:
            return
        spent, reserved, shared = self.today()
        price = self.run_price()
        if spent + reserved + runs * price > self.team_budget:
            raise self._refusal(runs, spent + reserved, shared, price)

    def reserve(self, cache_key: str, should_cancel: CancelCheck | None = None) -> None:
        """Hold one create's price, atomically across the fleet; raise when it does not fit. While another
        create is being priced (no price known yet), wait for its cost, at most PRICING_SLOT_S."""
        if self.team_budget is None:
            return
        day, keys = _day(), [*self._keys(_day())[:2], *self._price_keys()]
        budget = _micro(self.team_budget)
        while True:
            answer = self.store.call(
                lambda redis: redis.eval(_RESERVE, 4, *keys, cache_key, day, _micro(PRICE_PER_IMAGE), budget,
                                         PRICING_SLOT_S * 1000),
                None, what="reserving from the team budget",
            )
            if answer is None:
                break
            if int(answer[0]) == 1:
                return
            if int(answer[0]) == 0:
                raise self._refusal(1, _dollars(answer[1]), True, _dollars(answer[2]))
            if cancellable_sleep(_PRICING_POLL_S, should_cancel):  # 2: another create is being priced
                raise RunflowCancelled("Cancelled while waiting for the fleet to learn the run price.")
        with self._lock:  # the store is down: hold this machine alone to the budget
            if cache_key in self._local_reserved:
                return
            price = self._highest_paid
            used = self.local_ledger.spent_today() + sum(self._local_reserved.values(), Decimal(0))
            if used + price > self.team_budget:
                raise self._refusal(1, used, False, price)
            self._local_reserved[cache_key] = price

    def release(self, cache_key: str) -> None:
        """The run was not billed (or never created): give its reservation back."""
        with self._lock:
            self._local_reserved.pop(cache_key, None)
        keys = [self.store.key("reservations"), self._price_keys()[1]]
        self.store.call(lambda redis: redis.eval(_RELEASE, 2, *keys, cache_key), None, what="releasing a reservation")

    def commit(self, cache_key: str, run_id: str, cost: Decimal, record: dict[str, Any]) -> None:
        """A paid run: record it once in the shared ledger and turn its reservation into its cost."""
        if self.free:
            return
        with self._lock:
            self._local_reserved.pop(cache_key, None)
            self._highest_paid = max(self._highest_paid, cost)
        keys, data = [*self._keys(_day()), *self._price_keys()], json.dumps(record)
        self.store.call(
            lambda redis: redis.eval(_COMMIT, 5, *keys, cache_key, run_id, _micro(cost), data, _KEEP_DAYS_S,
                                     PRICE_MEMORY_S),
            None, what="recording a paid run",
        )

    def _refusal(self, runs: int, used: Decimal, shared: bool, price: Decimal) -> TeamBudgetExceeded:
        assert self.team_budget is not None
        cost = runs * price
        scope = "across the fleet" if shared else "on this machine (the shared store is unreachable)"
        left = max(Decimal(0), self.team_budget - used)
        return TeamBudgetExceeded(
            f"Team budget: ${used:.2f} of ${self.team_budget:.2f} for today (UTC) is already spent or reserved "
            f"{scope}, ${left:.2f} left; this needs {runs} new paid run(s) costing ${cost:.2f} "
            f"(${price:.2f} each). Nothing was started for it. Raise {BUDGET_ENV} (or --team-budget, or the "
            "client's team_budget), or wait for the next UTC day.",
            runs=runs, cost=f"{cost:.2f}", limit=f"{self.team_budget:.2f}",
        )

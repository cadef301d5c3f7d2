"""The spend guard: before any create, a call's new runs are checked against the limit, the team budget
and the balance, and refused whole when they would pass one.

Cached, resumed and duplicate inputs are free, so what is checked is the plan's `estimated_cost` (its
runs to create at the list price), never the number of inputs. Dollar amounts typed by users are read
here too (`dollars`), so a NaN or an infinity can never switch a limit off.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from decimal import Decimal, InvalidOperation

from ..errors import InputRejected, InsufficientCredit, RunflowError, SpendLimitExceeded
from ..fleet import Fleet
from ..pictures.result_types import BatchPlan
from ..service.account import Balance

log = logging.getLogger("runflow_api")


def check_spend(
    plan: BatchPlan,
    limit: Decimal | None,
    *,
    fleet: Fleet | None,
    read_balance: Callable[[], Balance],
    balance_check_min_runs: int,
) -> None:
    """Refuse before any create when the new runs would pass `limit`, the fleet's team budget or the balance.

    The balance is only read for batches of `balance_check_min_runs` or more; if reading it fails,
    a warning is logged and the call goes on (the service still refuses with 402 when it is empty)."""
    cost = plan.estimated_cost
    if limit is not None and cost > limit:
        raise SpendLimitExceeded(
            f"This would start {plan.to_create} paid run(s) costing ${cost:.2f} "
            f"(${plan.price_per_image} each; {plan.cached} cached, {plan.resumable} resumed, "
            f"{plan.duplicates} duplicate(s) free), over the spend limit of ${limit:.2f}. "
            "Raise the limit (spend_limit / --max-cost / the node's spend_limit input) or send fewer images.",
            runs=plan.to_create,
            cost=f"{cost:.2f}",
            limit=f"{limit:.2f}",
        )
    if fleet is not None:
        fleet.money.check(plan.to_create)
    if plan.to_create < max(1, balance_check_min_runs):
        return
    try:
        balance = read_balance()
    except RunflowError as exc:
        log.warning("Could not check the balance before the batch: %s", exc)
        return
    if balance.amount is not None and balance.amount < cost:
        raise InsufficientCredit(
            f"Your Runflow balance is ${balance.amount:.2f}, but this batch needs {plan.to_create} paid run(s) "
            f"costing ${cost:.2f}. Top up in the Runflow dashboard, or send fewer images. Nothing was started.",
            status_code=402,
            code="INSUFFICIENT_CREDIT",
        )


def dollars(value: Decimal | float | str | None, name: str) -> Decimal | None:
    """A dollar amount from user input; None or a negative number means "no limit". NaN and infinity are
    refused: NaN compares false with everything (no limit at all) and infinity overflows the micro-dollar
    counts of the fleet's budget."""
    if value is None:
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation as exc:
        raise InputRejected(f"{name} must be a dollar amount like 5 or 2.70, got {value!r}.") from exc
    if not amount.is_finite():
        raise InputRejected(f"{name} must be a finite dollar amount like 5 or 2.70, got {value!r}; for no limit, "
                            "leave it unset.")
    return None if amount < 0 else amount

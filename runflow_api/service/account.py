"""The account behind the key: who it belongs to, its balance, and whether Runflow is up.

Three cheap reads that create nothing and cost nothing: the settings panel's "Test connection" and the
spend guard's balance check use them through `RunflowClient.me`, `balance` and `health`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from .http import Transport


@dataclass(frozen=True)
class Balance:
    """The account balance in dollars, from either shape the docs show; `raw` keeps the answer."""

    amount: Decimal | None
    currency: str
    low_balance_threshold: Decimal | None
    raw: dict[str, Any]


def parse_balance(body: Any) -> Balance:
    """A balance answer as dollars: `balance`, else `balance_cents` / 100; `raw` keeps the answer."""
    raw = body if isinstance(body, dict) else {}

    def dec(value: Any) -> Decimal | None:
        try:
            return Decimal(str(value)) if value is not None else None
        except InvalidOperation:
            return None

    amount = dec(raw.get("balance"))
    if amount is None and raw.get("balance_cents") is not None:
        cents = dec(raw.get("balance_cents"))
        amount = cents / 100 if cents is not None else None
    return Balance(amount, str(raw.get("currency") or "USD"), dec(raw.get("low_balance_threshold")), raw)


def read_me(transport: Transport) -> dict[str, Any]:
    """The key's user and memberships (org, role, scopes): the cheap "Test connection" call."""
    answer = transport.api("GET", "/v1/auth/me", what="Checking the key")
    return answer if isinstance(answer, dict) else {}


def read_balance(transport: Transport) -> Balance:
    """The balance, in either shape the docs show."""
    return parse_balance(transport.api("GET", "/v1/billing/balance", what="Reading the balance"))


def read_health(transport: Transport) -> dict[str, Any]:
    """Runflow's health answer; a bare true/false becomes {"ok": ...}."""
    answer = transport.api("GET", "/v1/health", what="Checking Runflow's health")
    return answer if isinstance(answer, dict) else {"ok": bool(answer)}

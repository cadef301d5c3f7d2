"""The JSON the emulator answers with: replies, error envelopes and the output shapes of docs/RUNFLOW-API.md.

Kept apart from the HTTP plumbing so each documented shape (and each documented disagreement between
Runflow's sources) is written down once, in one place.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from http import HTTPStatus
from typing import Any

# The codes docs/RUNFLOW-API.md names, per status; other statuses fall back to their reason phrase.
ERROR_CODES: dict[int, str] = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    402: "INSUFFICIENT_CREDIT",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "CONFLICT",
    422: "VALIDATION_ERROR",
    429: "RATE_LIMITED",
    500: "INTERNAL_ERROR",
    503: "MODEL_UNAVAILABLE",
}


@dataclass(frozen=True)
class Reply:
    """One finished HTTP answer, built before anything is written (so a fault can still swallow it)."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)


def json_reply(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> Reply:
    return Reply(status, json.dumps(payload, separators=(",", ":")).encode(), headers=dict(headers or {}))


class Problem(Exception):
    """An error answer raised from anywhere below the handler; `errors` are the 422 field entries."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        errors: Sequence[Mapping[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or code_for_status(status)
        self.message = message
        self.errors = list(errors) if errors is not None else None
        self.headers = dict(headers or {})

    def reply(self, *, nested: bool) -> Reply:
        """The flat envelope `{code, message, errors}`, or the nested `{error: {...}}` the SDK also meets."""
        envelope: dict[str, Any] = {"code": self.code, "message": self.message, "errors": self.errors}
        return json_reply(self.status, {"error": envelope} if nested else envelope, self.headers)


def code_for_status(status: int) -> str:
    if status in ERROR_CODES:
        return ERROR_CODES[status]
    try:
        return HTTPStatus(status).phrase.upper().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "ERROR"


def field_error(loc: Sequence[str | int], msg: str) -> dict[str, Any]:
    return {"loc": list(loc), "msg": msg}


def iso(unix_seconds: float) -> str:
    """Timestamps as the docs show them: ISO 8601 with `+00:00`, never `Z`."""
    return datetime.fromtimestamp(unix_seconds, timezone.utc).isoformat(timespec="milliseconds")


def output_object(shape: str, urls: Sequence[str]) -> dict[str, Any]:
    """The run's `output` in each shape the official sources disagree on (Faults.output_shape). The list
    shapes carry every image of a run; the single-URL shapes can only carry the first."""
    first = urls[0]
    shapes: dict[str, dict[str, Any]] = {
        "outputs": {"outputs": [{"url": url, "content_type": "image/png"} for url in urls]},
        "image_urls": {"image_urls": list(urls)},
        "image_str": {"image": first},
        "image_list": {"image": list(urls)},
        "image_obj": {"image": {"url": first, "content_type": "image/png"}},
        "url": {"url": first},
        "output_url": {"output_url": first},
        "empty": {"image_urls": []},
    }
    return shapes[shape]


def dollars(cents: int) -> str:
    """Cents as the decimal string the API uses for money: 9973 -> "99.73"."""
    return str(Decimal(cents).scaleb(-2))


def balance_object(balance_cents: int, low_balance_threshold_cents: int, shape: str) -> dict[str, Any]:
    """`{balance: "12.34", ...}` per most pages, `{balance_cents, currency}` per one (Faults.balance_shape)"""
    if shape == "cents":
        return {"balance_cents": balance_cents, "currency": "USD"}
    return {
        "balance": dollars(balance_cents),
        "low_balance_threshold": dollars(low_balance_threshold_cents),
        "currency": "USD",
    }


def me_object() -> dict[str, Any]:
    """The one user the emulator knows, with every scope the client's calls need."""
    return {
        "user": {"id": "user_emulator", "email": "emulator@localhost", "name": "Runflow Emulator"},
        "memberships": [
            {
                "org": {"id": "org_emulator", "name": "Local emulator", "slug": "emulator"},
                "role": "owner",
                "scopes": ["runs:create", "runs:read", "assets:create", "assets:read", "credit_balance:read"],
            }
        ],
    }

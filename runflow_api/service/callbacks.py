"""Runflow's run-ended callbacks: signing, checking and acting on one delivery, and when they are on.

A server that Runflow can reach (a ComfyUI behind a public URL, a CLI run with `--public-url`) does not
have to poll: each create carries `callback_url = <public>/runflow/callback`, Runflow POSTs there when
the run ends, and the waiter of that run wakes up at once (`wakeups`). The callback only *wakes*: the
waiter then reads the run from the API, so a forged or replayed body can at worst cause one extra read,
never a result from somewhere else. Polling stays on with long intervals, so a lost callback costs one
idle interval, never the result.

Both receivers (ComfyUI's route in routes/callback.py and the CLI's `callback_server`) answer through `receive`,
so the two cannot disagree on what a valid delivery is.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from dataclasses import dataclass, field

from ..settings import config
from . import address as service_address
from .wakeups import shared_wakeups

log = logging.getLogger("runflow_api")

SIGNATURE_HEADER = "Runflow-Signature"
REQUEST_ID_HEADER = "Runflow-Request-Id"
CALLBACK_PATH = "/runflow/callback"
MAX_BODY_BYTES = 1024 * 1024  # a callback is a small JSON document; anything bigger is refused (413)
_SIGNATURE = re.compile(r"[0-9a-f]{64}")


def sign(secret: str, body: bytes) -> str:
    """The `Runflow-Signature` of a body: lowercase hex HMAC-SHA256 under the callback secret."""
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def signature_valid(secrets: tuple[str, ...], body: bytes, header: str | None) -> bool:
    """True when `header` is the signature of the raw `body` under one of `secrets` (two are valid while
    a secret is rotated). A missing or malformed header is simply invalid; the compare is constant-time."""
    if header is None or not _SIGNATURE.fullmatch(header.strip()):
        return False
    given = header.strip().encode("ascii")
    matches = [hmac.compare_digest(sign(secret, body).encode("ascii"), given) for secret in secrets if secret]
    return any(matches)


@dataclass(frozen=True)
class Answer:
    """What a receiver answers one delivery: the HTTP status and a small JSON body (never a secret)."""

    status: int
    body: dict[str, object]


def too_large() -> Answer:
    return Answer(413, {"error": f"A callback body is at most {MAX_BODY_BYTES} bytes."})


def receive(body: bytes, signature: str | None, secrets: tuple[str, ...]) -> Answer:
    """Check one delivery and wake the waiter of its run.

    Unsigned or mis-signed: 401. Signed: 2xx, also for a run nobody here waits for and for repeats
    (Runflow retries deliveries, and answering 4xx to a valid one would only make it retry); only a
    signed body that is not a callback at all answers 400. The body's URLs are never used."""
    if len(body) > MAX_BODY_BYTES:
        return too_large()
    if not signature_valid(secrets, body, signature):
        return Answer(401, {"error": f"Missing or invalid {SIGNATURE_HEADER}."})
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    run_id = payload.get("run_id") if isinstance(payload, dict) else None
    if not isinstance(run_id, str) or not run_id:
        return Answer(400, {"error": "A signed body without a run_id is not a run callback."})
    woken = shared_wakeups().notify(run_id)
    log.debug("Runflow callback for run %s (%s); waiter %s.", run_id, payload.get("event"),
              "woken" if woken else "not here")
    return Answer(200, {"ok": True, "waiting": woken})


@dataclass(frozen=True)
class CallbackSettings:
    """Callbacks are on: where Runflow reaches this process, and the secret its deliveries are signed with.
    `repr` never shows the secret."""

    public_url: str
    secret: str = field(repr=False)

    @property
    def callback_url(self) -> str:
        return self.public_url.rstrip("/") + CALLBACK_PATH


def configured_settings() -> CallbackSettings | None:
    """Settings from the environment / the secret file, when both the public URL and the secret are set."""
    public_url = service_address.public_url()
    secret = config.resolve_callback_secret()
    if public_url is None or secret is None:
        return None
    return CallbackSettings(public_url, secret)


def host_settings() -> CallbackSettings | None:
    """The settings a client in this process uses by default: the configured ones, but only while
    something in this process receives callbacks (ComfyUI's route, or a CLI receiver). A script that merely
    inherits RUNFLOW_PUBLIC_URL would otherwise send runs' callbacks to a server that cannot wake it."""
    settings = configured_settings()
    if settings is not None and not shared_wakeups().receiving:
        log.info("Runflow callbacks are configured, but nothing in this process receives them; polling instead.")
        return None
    return settings

"""The credential routes: the API key and the callback secret, saved here, shown only masked.

The browser sends a new key (or callback secret) once; it is written server-side with mode 0600 and
every answer carries only its masked form. A credential that comes from the environment takes
precedence, so saving or deleting one here is refused (409) while it is set there. Both credentials go
through the same handlers, each described once by a `Credential` (as `web/lib/credentials.js` describes
its settings field): a new credential is one more description.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from ..runflow_api import errors
from ..runflow_api.service import address as service_address
from ..runflow_api.service import callbacks
from ..runflow_api.settings import config, directories, secret_files
from .answers import error_response, in_thread, reason_for
from .guards import JsonHandler, state_changing

log = logging.getLogger("runflow_api.routes")  # one logger for every route module


def key_status() -> dict[str, Any]:
    """What the browser may know about the key: whether there is one, its masked form and its source."""
    source = config.key_source()
    key = os.environ.get(config.KEY_ENV, "").strip() if source == "env" else config.read_key_file()
    masked = config.mask_key(key) if key else None
    return {"configured": source is not None, "masked": masked, "source": source}


def callback_status() -> dict[str, Any]:
    """What the browser may know about callbacks: whether a secret is stored (masked), where from, the
    public URL, and whether callbacks are on (both set). An unusable setting is reported, not raised."""
    source = config.callback_secret_source()
    problem = None
    if source == "env":
        secret: str | None = os.environ.get(config.CALLBACK_SECRET_ENV, "").strip()
    else:
        try:
            secret = secret_files.read_secret_file(config.callback_secret_path())
        except errors.InputRejected as exc:
            secret, problem = None, exc.message
    status: dict[str, Any] = {
        "configured": source is not None,
        "masked": config.mask_secret(secret) if secret else None,
        "source": source,
        "public_url": None,
        "active": False,
        "error": problem,
    }
    if problem is not None:
        return status
    try:
        settings = callbacks.configured_settings()
        status["public_url"] = service_address.public_url()
    except errors.InputRejected as exc:
        status["error"] = exc.message
        return status
    status["active"] = settings is not None
    return status


@dataclass(frozen=True)
class Credential:
    """One credential the browser may set: its names, where it comes from, how it is stored and shown."""

    what: str  # in messages: "the key"
    other: str  # the one saved here, in the 409: "a key"
    logged: str  # in log lines: "API key"
    member: str  # the JSON body's member: {"key": ...}
    example: str  # what a value looks like, for the 400 answer
    env: str  # the environment variable that takes precedence
    env_reason: str  # the 409's reason code
    file_env: str  # the environment variable that moves its file
    source: Callable[[], str | None]  # "env", "file" or None
    folder: Callable[[], Path]
    write: Callable[[str], Any]
    delete: Callable[[], bool]
    mask: Callable[[str | None], str]
    status: Callable[[], dict[str, Any]]  # what GET answers, and every change too


API_KEY = Credential(
    what="the key", other="a key", logged="API key", member="key", example="rf_live_...", env=config.KEY_ENV,
    env_reason="env_key",
    file_env=directories.KEY_FILE_ENV, source=config.key_source, folder=lambda: directories.key_file_path().parent,
    write=config.write_key_file, delete=config.delete_key_file, mask=config.mask_key, status=key_status,
)
CALLBACK_SECRET = Credential(
    what="the callback secret", other="one", logged="callback secret", member="secret", example="whsec_...",
    env=config.CALLBACK_SECRET_ENV, env_reason="env_secret", file_env=config.CALLBACK_SECRET_FILE_ENV,
    source=config.callback_secret_source, folder=lambda: config.callback_secret_path().parent,
    write=config.write_callback_secret_file, delete=config.delete_callback_secret_file, mask=config.mask_secret,
    status=callback_status,
)


def _env_conflict(credential: Credential) -> web.Response:
    return error_response(
        409,
        f"{credential.what.capitalize()} comes from the environment variable {credential.env}, which takes "
        f"precedence over {credential.other} saved here. Change or unset it where ComfyUI is started, then restart "
        "ComfyUI.",
        credential.env_reason,
    )


async def _save_credential(credential: Credential, value: str) -> web.Response | None:
    """Write a credential file in a worker thread; the error answer, or None once it is saved. The value
    itself never appears in an answer or a log line (validation messages show only its masked form)."""
    try:
        await in_thread(credential.write, value)
    except errors.InputRejected as exc:
        return error_response(400, exc.message, reason_for(exc))
    except OSError as exc:
        folder = credential.folder()
        log.warning("Runflow: could not save %s in %s: %s", credential.what, folder, exc)
        return error_response(
            500,
            f"Could not save {credential.what} in {folder}: {exc.strerror or exc}. Check that the folder is yours and "
            f"writable, or set {credential.file_env} to a file in a private folder.",
            "write_failed",
        )
    return None


def _post(credential: Credential) -> JsonHandler:
    async def post(request: web.Request, body: dict[str, Any]) -> web.Response:
        if credential.source() == "env":
            return _env_conflict(credential)
        value = body.get(credential.member)
        if not isinstance(value, str):
            example = f'{{"{credential.member}": "{credential.example}"}}'
            return error_response(400, f"Send the {credential.member} as {example}.", "bad_request")
        refused = await _save_credential(credential, value)
        if refused is not None:
            return refused
        log.info("Runflow: %s %s saved (mode 0600)", credential.logged, credential.mask(value.strip()))
        return web.json_response(await in_thread(credential.status))

    return post


def _delete(credential: Credential) -> JsonHandler:
    async def delete(request: web.Request, body: dict[str, Any]) -> web.Response:
        if credential.source() == "env":
            return _env_conflict(credential)
        if await in_thread(credential.delete):
            log.info("Runflow: stored %s removed", credential.logged)
        return web.json_response(await in_thread(credential.status))

    return delete


async def get_key(request: web.Request) -> web.Response:
    try:
        return web.json_response(await in_thread(key_status))
    except errors.InputRejected as exc:  # a key file that cannot be read: say which and how to fix it
        return error_response(400, exc.message, reason_for(exc))


async def get_callback_secret(request: web.Request) -> web.Response:
    return web.json_response(await in_thread(callback_status))


post_key = state_changing(_post(API_KEY))
delete_key = state_changing(_delete(API_KEY))
post_callback_secret = state_changing(_post(CALLBACK_SECRET))
delete_callback_secret = state_changing(_delete(CALLBACK_SECRET))

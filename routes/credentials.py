"""The credential routes: the API key and the callback secret, saved here, shown only masked.

The browser sends a new key (or callback secret) once; it is written server-side with mode 0600 and
every answer carries only its masked form. A credential that comes from the environment takes
precedence, so saving or deleting one here is refused (409) while it is set there.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

from aiohttp import web

from ..runflow_api import callbacks, config, directories, errors, secret_files, service_address
from .answers import error_response, in_thread, reason_for
from .guards import state_changing

log = logging.getLogger("runflow_api.routes")  # one logger for every route module


def key_status() -> dict[str, Any]:
    """What the browser may know about the key: whether there is one, its masked form and its source."""
    source = config.key_source()
    key = os.environ.get(config.KEY_ENV, "").strip() if source == "env" else config.read_key_file()
    masked = config.mask_key(key) if key else None
    return {"configured": source is not None, "masked": masked, "source": source}


def _env_key_conflict() -> web.Response:
    return error_response(
        409,
        f"The key comes from the environment variable {config.KEY_ENV}, which takes precedence over a "
        "key saved here. Change or unset it where ComfyUI is started, then restart ComfyUI.",
        "env_key",
    )


async def get_key(request: web.Request) -> web.Response:
    return web.json_response(await in_thread(key_status))


@state_changing
async def post_key(request: web.Request, body: dict[str, Any]) -> web.Response:
    if config.key_source() == "env":
        return _env_key_conflict()
    key = body.get("key")
    if not isinstance(key, str):
        return error_response(400, 'Send the key as {"key": "rf_live_..."}.', "bad_request")
    refused = await _save_credential(config.write_key_file, key, what="the key",
                                     folder=directories.key_file_path().parent, file_env=directories.KEY_FILE_ENV)
    if refused is not None:
        return refused
    log.info("Runflow: API key %s saved (mode 0600)", config.mask_key(key.strip()))
    return web.json_response(await in_thread(key_status))


async def _save_credential(
    write: Callable[[str], Any], value: str, *, what: str, folder: Any, file_env: str
) -> web.Response | None:
    """Write a credential file in a worker thread; the error answer, or None once it is saved. The value
    itself never appears in an answer or a log line (validation messages show only its masked form)."""
    try:
        await in_thread(write, value)
    except errors.InputRejected as exc:
        return error_response(400, exc.message, reason_for(exc))
    except OSError as exc:
        log.warning("Runflow: could not save %s in %s: %s", what, folder, exc)
        return error_response(
            500,
            f"Could not save {what} in {folder}: {exc.strerror or exc}. Check that the folder is yours and "
            f"writable, or set {file_env} to a file in a private folder.",
            "write_failed",
        )
    return None


@state_changing
async def delete_key(request: web.Request, body: dict[str, Any]) -> web.Response:
    if config.key_source() == "env":
        return _env_key_conflict()
    if await in_thread(config.delete_key_file):
        log.info("Runflow: stored API key removed")
    return web.json_response(await in_thread(key_status))


def callback_status() -> dict[str, Any]:
    """What the browser may know about callbacks: whether a secret is stored (masked), where from, the
    public URL, and whether callbacks are on (both set). An unusable setting is reported, not raised."""
    source = config.callback_secret_source()
    if source == "env":
        secret: str | None = os.environ.get(config.CALLBACK_SECRET_ENV, "").strip()
    else:
        secret = secret_files.read_secret_file(config.callback_secret_path())
    status: dict[str, Any] = {
        "configured": source is not None,
        "masked": config.mask_secret(secret) if secret else None,
        "source": source,
        "public_url": None,
        "active": False,
        "error": None,
    }
    try:
        settings = callbacks.configured_settings()
        status["public_url"] = service_address.public_url()
    except errors.InputRejected as exc:
        status["error"] = exc.message
        return status
    status["active"] = settings is not None
    return status


def _env_secret_conflict() -> web.Response:
    return error_response(
        409,
        f"The callback secret comes from the environment variable {config.CALLBACK_SECRET_ENV}, which takes "
        "precedence over one saved here. Change or unset it where ComfyUI is started, then restart ComfyUI.",
        "env_secret",
    )


async def get_callback_secret(request: web.Request) -> web.Response:
    return web.json_response(await in_thread(callback_status))


@state_changing
async def post_callback_secret(request: web.Request, body: dict[str, Any]) -> web.Response:
    if config.callback_secret_source() == "env":
        return _env_secret_conflict()
    secret = body.get("secret")
    if not isinstance(secret, str):
        return error_response(400, 'Send the secret as {"secret": "whsec_..."}.', "bad_request")
    refused = await _save_credential(config.write_callback_secret_file, secret, what="the callback secret",
                                     folder=config.callback_secret_path().parent,
                                     file_env=config.CALLBACK_SECRET_FILE_ENV)
    if refused is not None:
        return refused
    log.info("Runflow: callback secret %s saved (mode 0600)", config.mask_secret(secret.strip()))
    return web.json_response(await in_thread(callback_status))


@state_changing
async def delete_callback_secret(request: web.Request, body: dict[str, Any]) -> web.Response:
    if config.callback_secret_source() == "env":
        return _env_secret_conflict()
    if await in_thread(config.delete_callback_secret_file):
        log.info("Runflow: stored callback secret removed")
    return web.json_response(await in_thread(callback_status))

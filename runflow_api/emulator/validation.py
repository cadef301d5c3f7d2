"""Request-body checks, one `errors[]` entry per problem, as the service's 422 answers list them.

The fields a create's `input` may carry, and their allowed values, come from `product_isolation`'s
`IsolationParams`, the same definition the client builds the input from, so the two cannot drift
apart. Messages follow the pydantic wording Runflow's API uses.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from ..product_isolation import MAX_UPLOAD_BYTES, sent_fields
from ..service.url_policy import is_loopback_url
from .views import field_error

UPLOAD_MIME_TYPES = ("image/jpeg", "image/png", "image/webp")
MAX_FILENAME_CHARS = 255
INPUT_FIELDS = ("image_url", *(item.name for item, _ in sent_fields()))
MAX_CLIENT_REF_CHARS = 255

Errors = list[dict[str, Any]]


def _literal_message(allowed: tuple[str, ...] | list[str]) -> str:
    quoted = [f"'{value}'" for value in allowed]
    return f"Input should be {', '.join(quoted[:-1])} or {quoted[-1]}"


def check_asset_upload(body: dict[str, Any]) -> Errors:
    """Step 1 of the upload: `{filename, mime_type, size_bytes}`."""
    errors: Errors = []
    filename = body.get("filename")
    if "filename" not in body:
        errors.append(field_error(["body", "filename"], "Field required"))
    elif not isinstance(filename, str) or not filename.strip():
        errors.append(field_error(["body", "filename"], "Input should be a non-empty string"))
    elif len(filename) > MAX_FILENAME_CHARS or any(c in filename for c in "/\\\0"):
        errors.append(
            field_error(
                ["body", "filename"],
                f"Filename should be at most {MAX_FILENAME_CHARS} characters, without / \\ or NUL",
            )
        )
    if "mime_type" not in body:
        errors.append(field_error(["body", "mime_type"], "Field required"))
    elif body["mime_type"] not in UPLOAD_MIME_TYPES:
        errors.append(field_error(["body", "mime_type"], _literal_message(UPLOAD_MIME_TYPES)))
    size = body.get("size_bytes")
    if "size_bytes" not in body:
        errors.append(field_error(["body", "size_bytes"], "Field required"))
    elif not isinstance(size, int) or isinstance(size, bool):
        errors.append(field_error(["body", "size_bytes"], "Input should be a valid integer"))
    elif not 1 <= size <= MAX_UPLOAD_BYTES:
        errors.append(field_error(["body", "size_bytes"], f"Input should be between 1 and {MAX_UPLOAD_BYTES} (50 MiB)"))
    return errors


def _check_url(value: Any, loc: list[str | int], own_netloc: str, *, local_http: bool = False) -> Errors:
    """An https URL; plain http only for this emulator's own URLs (it serves http when TLS is off), and
    with `local_http` for any address on this machine (a callback receiver beside the emulator)."""
    if not isinstance(value, str):
        return [field_error(loc, "Input should be a valid string")]
    parts = urlsplit(value)
    if not parts.netloc or parts.scheme not in ("http", "https"):
        return [field_error(loc, "Input should be a valid URL; HTTPS required")]
    if parts.scheme == "http" and parts.netloc != own_netloc and not (local_http and is_loopback_url(value)):
        return [field_error(loc, "URL scheme should be 'https'")]
    return []


def check_run_create(body: dict[str, Any], own_netloc: str) -> Errors:
    """A run of `runflow/product-isolation`: the model's input schema is strict (unknown keys are refused);
    the envelope around it (`callback_url`, `metadata`, `client_ref`) is checked for type only."""
    errors: Errors = []
    run_input = body.get("input")
    if "input" not in body:
        errors.append(field_error(["body", "input"], "Field required"))
    elif not isinstance(run_input, dict):
        errors.append(field_error(["body", "input"], "Input should be a valid dictionary"))
    else:
        errors += _check_input(run_input, own_netloc)
    if body.get("callback_url") is not None:
        errors += _check_url(body["callback_url"], ["body", "callback_url"], own_netloc, local_http=True)
    metadata = body.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        errors.append(field_error(["body", "metadata"], "Input should be a valid dictionary"))
    elif metadata is not None:
        errors += [
            field_error(["body", "metadata", key], "Input should be a valid string")
            for key, value in metadata.items()
            if not isinstance(value, str)
        ]
    client_ref = body.get("client_ref")
    if client_ref is not None and (not isinstance(client_ref, str) or len(client_ref) > MAX_CLIENT_REF_CHARS):
        errors.append(
            field_error(
                ["body", "client_ref"],
                f"Input should be a string of at most {MAX_CLIENT_REF_CHARS} characters",
            )
        )
    return errors


def _check_input(run_input: dict[str, Any], own_netloc: str) -> Errors:
    errors: Errors = []
    loc: list[str | int] = ["body", "input"]
    if "image_url" not in run_input:
        errors.append(field_error([*loc, "image_url"], "Field required"))
    else:
        errors += _check_url(run_input["image_url"], [*loc, "image_url"], own_netloc)
    for item, how in sent_fields():
        where = [*loc, item.name]
        if item.name not in run_input:
            if how.required:
                errors.append(field_error(where, "Field required"))
            continue
        value = run_input[item.name]
        if how.choices:
            if value not in how.choices:
                errors.append(field_error(where, _literal_message(how.choices)))
        elif isinstance(item.default, bool):
            if not isinstance(value, bool):
                errors.append(field_error(where, "Input should be a valid boolean"))
        elif value is None and not how.required:
            continue
        elif not isinstance(value, str):
            errors.append(field_error(where, "Input should be a valid string"))
        elif how.max_chars is not None and len(value) > how.max_chars:
            errors.append(field_error(where, f"String should have at most {how.max_chars} characters"))
    errors += [
        field_error([*loc, key], "Extra inputs are not permitted") for key in run_input if key not in INPUT_FIELDS
    ]
    return errors

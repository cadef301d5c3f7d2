"""The `metadata` every create carries, so a user can find a run in Runflow's dashboard.

Always the pack and its version; then where the run came from (the host adds `source`, a ComfyUI node
and prompt id, a CLI input path) and the user's own keys. Validated before anything is spent: a JSON
object of short string keys and string values, bounded in count and size, and never anything that looks
like a credential (the API key, the callback secret, a key-shaped token, a URL with a password), in a
value or in a name: metadata is shown in a dashboard and shared with whoever sees the account. Every
credential configured on this machine is looked for, whether or not it is in use, and a refusal never
quotes text that carries one. It is not part of the cache key: the same image with other metadata is the
same result. The isolation nodes' `metadata` input is read here too (`node_metadata`), with the node and
prompt ids, refusing bad text with a message that names the input.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from ..errors import InputRejected
from ..settings import config
from ..settings.redact import carries_secret, quoted
from ..version import PACK_VERSION

PACK_NAME = "runflow-product-isolation"
PACK_KEYS = ("pack", "pack_version")
MAX_KEYS = 32
MAX_KEY_CHARS = 64
MAX_VALUE_CHARS = 512
MAX_TOTAL_BYTES = 4096
METADATA_INPUT = "metadata"  # the isolation nodes' input whose text `node_metadata` reads
_KEY = re.compile(rf"[A-Za-z0-9_][A-Za-z0-9_.:-]{{0,{MAX_KEY_CHARS - 1}}}")
_CREDENTIAL_HINT = ("looks like a credential (an API key, the callback secret, a token or a URL with a password). "
                    "Metadata is shown in Runflow's dashboard: leave secrets out.")

# What the client's `metadata=` accepts: one mapping for every input, or one per input index.
MetadataOption = Mapping[str, str] | Callable[[int], Mapping[str, str]] | None


def validate(value: Any, *, what: str = "metadata", secrets: Iterable[str | None] = ()) -> dict[str, str]:
    """`value` as a clean dict of strings, or InputRejected naming `what` and the first problem."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InputRejected(f"{what} must be a JSON object of string values, like {{\"sku\": \"A-123\"}}; "
                            f"got {type(value).__name__}.")
    if len(value) > MAX_KEYS - len(PACK_KEYS):
        raise InputRejected(f"{what} has {len(value)} keys; at most {MAX_KEYS - len(PACK_KEYS)} are allowed.")
    secrets = (*secrets, *config.configured_secrets())
    clean: dict[str, str] = {}
    for key, item in value.items():
        if isinstance(key, str) and carries_secret(key, secrets):
            raise InputRejected(f"{what}: a key name {_CREDENTIAL_HINT}")
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise InputRejected(
                f"{what}: the key {quoted(str(key), secrets)} is not allowed; keys are 1 to {MAX_KEY_CHARS} "
                "letters, digits or _ . : - (not starting with . : -)."
            )
        if key in PACK_KEYS:
            raise InputRejected(f"{what}: the key {key!r} is set by the pack itself; choose another name.")
        if not isinstance(item, str):
            raise InputRejected(f"{what}: the value of {key!r} must be a string, got {type(item).__name__}.")
        if carries_secret(item, secrets):
            raise InputRejected(f"{what}: the value of {key!r} {_CREDENTIAL_HINT}")
        if len(item) > MAX_VALUE_CHARS:
            raise InputRejected(f"{what}: the value of {key!r} is {len(item)} characters; at most {MAX_VALUE_CHARS}.")
        clean[key] = item
    return clean


def merge(*parts: Mapping[str, str], what: str = "metadata") -> dict[str, str]:
    """The parts in order, refusing a key given twice (a user key may not overwrite the host's)."""
    merged: dict[str, str] = {}
    for part in parts:
        for key, value in part.items():
            if key in merged:
                raise InputRejected(f"{what}: the key {key!r} is set by the pack itself; choose another name.")
            merged[key] = value
    return merged


def for_create(metadata: Mapping[str, str], *, what: str = "metadata") -> dict[str, str]:
    """What a create sends: the pack and its version first, then `metadata` (already validated), within
    MAX_TOTAL_BYTES as JSON."""
    body = merge({"pack": PACK_NAME, "pack_version": PACK_VERSION}, metadata, what=what)
    size = len(json.dumps(body).encode("utf-8"))
    if size > MAX_TOTAL_BYTES:
        raise InputRejected(f"{what} is {size} bytes as JSON; at most {MAX_TOTAL_BYTES} are allowed.")
    return body


def resolve(option: MetadataOption, index: int, *, secrets: Iterable[str | None] = ()) -> dict[str, str]:
    """The create metadata for input `index`, from the client's `metadata=` option."""
    value = option(index) if callable(option) else option
    what = "metadata" if not callable(option) else f"metadata of image {index}"
    return for_create(validate(value, what=what, secrets=secrets), what=what)


def parse_pairs(pairs: Sequence[str], *, what: str = "--metadata") -> dict[str, str]:
    """`key=value` strings (the CLI's repeatable --metadata) as a dict; the values are validated later."""
    parsed: dict[str, str] = {}
    secrets = config.configured_secrets()
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InputRejected(f"{what} {quoted(pair, secrets)} is not key=value (e.g. {what} sku=A-123).")
        if key.strip() in parsed:
            raise InputRejected(f"{what}: the key {quoted(key.strip(), secrets)} is given twice.")
        parsed[key.strip()] = value
    return parsed


def parse_metadata_input(text: str | None, *, input_name: str = METADATA_INPUT) -> dict[str, str]:
    """The node's `metadata` text as a dict of strings; empty text is no metadata. InputRejected names
    the input and the problem, so it reads well in ComfyUI's error dialog and in VALIDATE_INPUTS."""
    if text is None or not text.strip():
        return {}
    what = f"input '{input_name}'"
    try:
        value: Any = json.loads(text)
    except ValueError as exc:
        raise InputRejected(
            f"{what} is not valid JSON ({exc}). Write an object of strings, e.g. {{\"sku\": \"A-123\"}}, "
            "or leave it empty."
        ) from exc
    return validate(value, what=what)


def node_metadata(text: str | None, *, node_id: str | None, prompt_id: str | None) -> dict[str, str]:
    """The metadata an isolation node's runs carry: where they came from (ComfyUI, the node id, the prompt
    id) and the user's own keys, which may not reuse those names. The names are reserved even when an id
    is unknown (a check at queue time, a script), so a workflow's metadata is refused everywhere alike."""
    origin = {"source": "comfyui", "comfyui_node_id": str(node_id or ""), "comfyui_prompt_id": str(prompt_id or "")}
    merged = merge(origin, parse_metadata_input(text), what=f"input '{METADATA_INPUT}'")
    return {key: value for key, value in merged.items() if value or key not in origin}

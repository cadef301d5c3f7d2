"""The credentials: the API key and the callback signing secret, where each comes from, and how it is shown.

The key is looked up, in order, in `RUNFLOW_API_KEY` and then in a key file written with mode 0600 (by
the ComfyUI settings route or by hand; `secret_files.py` stores it, `directories.py` says where). It is
never read from a widget, a ComfyUI setting or a workflow, because all of those end up in shared files.
Everything that prints a key prints `mask_key(key)`; the callback secret likewise `mask_secret`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

from ..errors import InputRejected, MissingApiKey
from .directories import key_file_path
from .redact import KEY_PREFIXES, SECRET_PREFIXES
from .secret_files import delete_secret_file, read_secret_file, write_secret_file

KEY_ENV = "RUNFLOW_API_KEY"
CALLBACK_SECRET_ENV = "RUNFLOW_CALLBACK_SECRET"
CALLBACK_SECRET_FILE_ENV = "RUNFLOW_CALLBACK_SECRET_FILE"

_KEY_PATTERN = re.compile(r"^[A-Za-z0-9_]+$")
_MIN_KEY_LENGTH = 12
# Only these prefixes are shown by mask_key: they are public (they name the key's kind, not the key).
PUBLIC_KEY_PREFIXES = KEY_PREFIXES
PUBLIC_SECRET_PREFIXES = SECRET_PREFIXES
_MASK_TAIL = 4
# The tail is shown only when at least this many characters stay hidden between prefix and tail.
_MASK_MIN_HIDDEN = 8
ACCEPTED_KEY_SHAPES = (
    f"at least {_MIN_KEY_LENGTH} characters, only letters, digits and '_' "
    f"(Runflow keys look like {PUBLIC_KEY_PREFIXES[0]}... or {PUBLIC_KEY_PREFIXES[1]}...)"
)


def mask_key(key: str | None) -> str:
    """A form of the key safe to show: a recognised public prefix and the last four characters.

    Whatever the key's shape, nothing of its secret middle is shown: an unknown prefix is hidden (in
    `sk_SECRET_abcd` or `rf_SECRET_ab` the "prefix" would be the secret), and a key too short to keep
    at least eight characters hidden shows no tail at all."""
    return _mask(key, PUBLIC_KEY_PREFIXES)


def mask_secret(secret: str | None) -> str:
    """The callback secret as it may be shown: like `mask_key`, with `whsec_` as its public prefix."""
    return _mask(secret, PUBLIC_SECRET_PREFIXES)


def _mask(secret: str | None, public_prefixes: tuple[str, ...]) -> str:
    if not secret:
        return "(none)"
    prefix = next((p for p in public_prefixes if secret.startswith(p)), "")
    hidden = len(secret) - len(prefix) - _MASK_TAIL
    tail = secret[-_MASK_TAIL:] if hidden >= _MASK_MIN_HIDDEN else ""
    return f"{prefix}…{tail}"


def validate_key(key: str) -> str:
    """Refuse a malformed key before it is sent anywhere (the official SDK allows letters, digits and _)."""
    key = key.strip()
    if not key:
        raise MissingApiKey(missing_key_message())
    if not _KEY_PATTERN.match(key):
        fault = "contains characters other than letters, digits and '_' (a space, quote or line break?)"
    elif len(key) < _MIN_KEY_LENGTH:
        fault = f"is only {len(key)} characters long"
    else:
        return key
    raise InputRejected(
        f"The Runflow API key {mask_key(key)} is malformed: it {fault}. Accepted keys are "
        f"{ACCEPTED_KEY_SHAPES}. Copy it again from your Runflow dashboard, without quotes or spaces."
    )


def configured_secrets() -> tuple[str, ...]:
    """Every credential configured on this machine, as written (even a malformed one): the key from the
    environment and the key file, the callback secret from the environment and its file. For keeping
    them out of what is sent or shown, whether or not they are in use (callbacks may be off)."""
    found = (os.environ.get(KEY_ENV), _readable(read_key_file), os.environ.get(CALLBACK_SECRET_ENV),
             _readable(lambda: read_secret_file(callback_secret_path())))
    return tuple(text.strip() for text in found if text and text.strip())


def _readable(read: Callable[[], str | None]) -> str | None:
    """A credential file's text, or None when it cannot be read (a file that is not text holds no
    credential anyone could recognise; the command that needs it says what is wrong)."""
    try:
        return read()
    except InputRejected:
        return None


def missing_key_message() -> str:
    return (
        "No Runflow API key is set. Set the environment variable RUNFLOW_API_KEY, or save the key in "
        f"ComfyUI under Settings > Runflow > API key (it is stored in {key_file_path()}, mode 0600), "
        "or use the free offline emulator (Settings > Runflow > Service, or --emulator on the command line)."
    )


def read_key_file(path: Path | None = None) -> str | None:
    """The key stored in the key file, or None when there is no (readable, non-empty) file."""
    return read_secret_file(path or key_file_path())


def key_source() -> str | None:
    """Which source would supply the key now: "env", "file" or None."""
    if os.environ.get(KEY_ENV, "").strip():
        return "env"
    return _file_source(read_key_file)


def _file_source(read: Callable[[], str | None]) -> str | None:
    """"file" when a credential file supplies the credential, or is there but cannot be read (then
    reading it says why); None when there is none."""
    try:
        return "file" if read() else None
    except InputRejected:
        return "file"


def resolve_api_key(explicit: str | None = None) -> str:
    """The key to use: an explicit one, else the environment, else the key file; validated."""
    for candidate in (explicit, os.environ.get(KEY_ENV), read_key_file()):
        if candidate and candidate.strip():
            return validate_key(candidate)
    raise MissingApiKey(missing_key_message())


def write_key_file(key: str, path: Path | None = None) -> Path:
    """Store a validated key with mode 0600 (see `write_secret_file`)."""
    return write_secret_file(path or key_file_path(), validate_key(key))


def delete_key_file(path: Path | None = None) -> bool:
    """Remove the stored key; True when there was one (see `delete_secret_file`)."""
    return delete_secret_file(path or key_file_path())


# -- callbacks: the signing secret ---------------------------------------------------------------------

_SECRET_PATTERN = re.compile(r"^[\x21-\x7e]{16,256}$")  # printable ASCII, no spaces: what Runflow issues


def callback_secret_path() -> Path:
    """The callback secret's file: `RUNFLOW_CALLBACK_SECRET_FILE`, else `callback_secret` beside the key file."""
    if os.environ.get(CALLBACK_SECRET_FILE_ENV):
        return Path(os.environ[CALLBACK_SECRET_FILE_ENV])
    return key_file_path().parent / "callback_secret"


def callback_secret_source() -> str | None:
    """Which source would supply the callback secret now: "env", "file" or None."""
    if os.environ.get(CALLBACK_SECRET_ENV, "").strip():
        return "env"
    return _file_source(lambda: read_secret_file(callback_secret_path()))


def validate_callback_secret(secret: str) -> str:
    """Refuse a secret that cannot be what Runflow issued (`whsec_...`), without showing it."""
    secret = secret.strip()
    if not _SECRET_PATTERN.match(secret):
        raise InputRejected(
            f"The callback secret {mask_secret(secret)} is malformed: it must be 16 to 256 printable characters "
            "without spaces (Runflow's look like whsec_...). Copy it again from Runflow (POST /v1/callback-secrets)."
        )
    return secret


def resolve_callback_secret() -> str | None:
    """The secret that signs callbacks: `RUNFLOW_CALLBACK_SECRET`, else the 0600 file; None when unset.
    A malformed one is refused (InputRejected), never used."""
    for candidate in (os.environ.get(CALLBACK_SECRET_ENV), read_secret_file(callback_secret_path())):
        if candidate and candidate.strip():
            return validate_callback_secret(candidate)
    return None


def write_callback_secret_file(secret: str, path: Path | None = None) -> Path:
    """Store a validated callback secret with mode 0600 (see `write_secret_file`)."""
    return write_secret_file(path or callback_secret_path(), validate_callback_secret(secret))


def delete_callback_secret_file(path: Path | None = None) -> bool:
    return delete_secret_file(path or callback_secret_path())


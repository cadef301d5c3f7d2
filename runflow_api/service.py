"""Which service the host talks to: the real Runflow, or the bundled emulator running in-process.

The offline mode lets anyone build and test graphs for free. The choice is not a secret, so it lives in
a small file beside the journal (or `RUNFLOW_MODE`), shared by the ComfyUI nodes, its routes and the CLI.
Results from the two never mix: the emulator's client uses the service id "emulator" in cache keys.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from . import config, directories
from .client import RunflowClient
from .errors import InputRejected
from .service_address import EMULATOR_SERVICE_ID

MODES = ("runflow", "emulator")
MODE_ENV = "RUNFLOW_MODE"
EMULATOR_KEY = "rf_live_emulator_offline"
LATENCY_ENV = "RUNFLOW_EMULATOR_LATENCY"

_lock = threading.Lock()
_emulator: Any = None


def _mode_file() -> os.PathLike[str]:
    return directories.data_dir() / "mode"


def current_mode() -> str:
    """`RUNFLOW_MODE`, else the saved choice, else the real service."""
    env = os.environ.get(MODE_ENV, "").strip().lower()
    if env in MODES:
        return env
    try:
        with open(_mode_file(), encoding="utf-8") as handle:
            saved = handle.read().strip().lower()
    except OSError:
        return "runflow"
    return saved if saved in MODES else "runflow"


def set_mode(mode: str) -> None:
    if mode not in MODES:
        raise InputRejected(f"Service mode {mode!r} is unknown; use one of {', '.join(MODES)}.")
    path = directories.data_dir() / "mode"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(mode, encoding="utf-8")


def local_emulator() -> Any:
    """The process's one in-process emulator, started on first use on a free loopback port. With a
    callback secret configured it delivers callbacks signed with it, as Runflow would, so a server set up
    for callbacks can be tried offline end to end."""
    global _emulator
    with _lock:
        if _emulator is None:
            from .emulator import Emulator

            latency = float(os.environ.get(LATENCY_ENV) or 2.0)
            try:
                secret = config.resolve_callback_secret()
            except InputRejected:
                secret = None  # a client refuses it with the full message; the emulator just does not call back
            _emulator = Emulator(api_key=EMULATOR_KEY, latency=latency, port=0, balance="1000000",
                                 callback_secret=secret)
            _emulator.start()
        return _emulator


def make_client(mode: str | None = None, **options: Any) -> RunflowClient:
    """A client for the chosen mode; in emulator mode no key and no network are needed, at no cost."""
    if (mode or current_mode()) == "emulator":
        emulator = local_emulator()
        options.setdefault("service_id", EMULATOR_SERVICE_ID)
        return RunflowClient(api_key=EMULATOR_KEY, base_url=emulator.base_url, **options)
    return RunflowClient(**options)

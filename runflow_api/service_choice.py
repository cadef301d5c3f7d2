"""A client for the chosen service: the real Runflow, or the bundled emulator running in-process.

The choice itself (`address.current_mode`) is a setting; building the client for it, and starting
the emulator, is done here, at the top, by the hosts (the nodes, the routes, the CLI). Results from the
two never mix: the emulator's client uses the service id "emulator" in cache keys.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from .client import RunflowClient
from .errors import InputRejected
from .service.address import EMULATOR_SERVICE_ID, current_mode
from .settings import config

EMULATOR_KEY = "rf_live_emulator_offline"
LATENCY_ENV = "RUNFLOW_EMULATOR_LATENCY"

_lock = threading.Lock()
_emulator: Any = None


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

"""`Emulator`: a local Runflow on a loopback port, started in a background thread.

One object for tests, benchmarks, the demo, the CLI and ComfyUI's offline mode: construct, `start()` (or
`with`), point a client at `base_url`, read `stats`/`runs`/`assets`, flip `faults`, `stop()`.
"""

from __future__ import annotations

import ssl
import threading
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from types import TracebackType
from typing import Any

from .api import Api
from .callbacks import RETRY_DELAYS_S, CallbackSender
from .faults import Faults
from .lifecycle import RunRecord
from .server import EmulatorHTTPServer
from .state import EmulatorState

LOW_BALANCE_THRESHOLD_CENTS = 500
DEFAULT_MAX_STORED_BYTES = 1 << 30


def _cents(balance: str | int | float | Decimal) -> int:
    """ "100.00" -> 10000; the emulator keeps money in whole cents (anything finer is dropped)."""
    try:
        amount = Decimal(str(balance))
    except InvalidOperation as exc:
        raise ValueError(f"balance {balance!r} is not a number") from exc
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"balance must be a finite amount >= 0, got {balance!r}")
    return int((amount * 100).to_integral_value(rounding=ROUND_DOWN))


class Emulator:
    """A local Runflow over real HTTP. Nothing listens until `start()` (or entering `with`).

    `latency` is each run's time from creation to its terminal status (seconds, may be changed live);
    `cheap` answers a flat grey canvas instead of a real isolation; `seed` seeds `faults` unless the
    given Faults carries its own; `max_stored_bytes` bounds the uploaded and rendered bytes kept in memory.
    With `callback_secret`, runs created with a `callback_url` get a signed POST there when they end
    (retried after `callback_retry_delays`); without one, callback URLs are accepted and never called,
    since Runflow signs every callback.
    """

    def __init__(
        self,
        api_key: str = "rf_live_emulator",
        latency: float = 2.0,
        port: int = 0,
        cheap: bool = False,
        balance: str | int | float | Decimal = "100.00",
        faults: Faults | None = None,
        seed: int = 0,
        tls_cert: str | None = None,
        tls_key: str | None = None,
        host: str = "127.0.0.1",
        *,
        verbose: bool = False,
        max_stored_bytes: int = DEFAULT_MAX_STORED_BYTES,
        callback_secret: str | None = None,
        callback_retry_delays: tuple[float, ...] = RETRY_DELAYS_S,
    ) -> None:
        if not api_key:
            raise ValueError("api_key must not be empty")
        if latency < 0:
            raise ValueError(f"latency must be >= 0 seconds, got {latency!r}")
        if tls_key and not tls_cert:
            raise ValueError("tls_key needs tls_cert")
        self.host, self.port = host, port
        self.tls_cert, self.tls_key = tls_cert, tls_key
        self.verbose = verbose
        self._seed = seed
        self._state = EmulatorState(
            balance_cents=_cents(balance),
            low_balance_threshold_cents=LOW_BALANCE_THRESHOLD_CENTS,
            max_stored_bytes=max_stored_bytes,
        )
        self._api = Api(
            state=self._state,
            api_key=api_key,
            latency=latency,
            cheap=cheap,
            faults=self._seeded(faults or Faults()),
        )
        self.callback_secret = callback_secret or None
        self.callback_retry_delays = callback_retry_delays
        self._server: EmulatorHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lifecycle_lock = threading.Lock()

    # -- live settings ----------------------------------------------------------------------------------

    @property
    def faults(self) -> Faults:
        """The live Faults; mutate its fields, or assign a new Faults (seeded with `seed` if it has none)."""
        return self._api.faults

    @faults.setter
    def faults(self, faults: Faults) -> None:
        self._api.faults = self._seeded(faults)

    def _seeded(self, faults: Faults) -> Faults:
        if faults.seed is None:
            faults.seed = self._seed
        return faults

    @property
    def latency(self) -> float:
        return self._api.latency

    @latency.setter
    def latency(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"latency must be >= 0 seconds, got {seconds!r}")
        self._api.latency = seconds  # applies to runs created from now on

    # -- what it saw ------------------------------------------------------------------------------------

    @property
    def stats(self) -> dict[str, int]:
        """Live counters (see state.STAT_KEYS); the same dict across reset_stats()."""
        return self._state.stats

    def reset_stats(self) -> None:
        self._state.reset_stats()

    @property
    def runs(self) -> dict[str, RunRecord]:
        """A snapshot {run id: RunRecord}; a record's `status` is live, `completed_at_monotonic` is when it
        became (or will become) terminal on the `time.monotonic()` clock."""
        with self._state.lock:
            return dict(self._state.runs)

    @property
    def assets(self) -> dict[str, dict[str, Any]]:
        """A snapshot {asset id: {id, name, mime_type, size_bytes, uploaded, confirmed}}, in upload order."""
        with self._state.lock:
            return {asset_id: asset.summary() for asset_id, asset in self._state.assets.items()}

    @property
    def balance(self) -> Decimal:
        return Decimal(self._state.balance_cents()).scaleb(-2)

    # -- lifecycle --------------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """Like "http://127.0.0.1:PORT" ("https://" with TLS); the API paths are under /v1/. After stop()
        it stays the last address served, so a test can show that nothing answers there any more."""
        if not self._api.base_url:
            raise RuntimeError("The emulator has not been started: call start() or use it in a with block.")
        return self._api.base_url

    def start(self) -> Emulator:
        """Bind and serve in a daemon thread; returns self, so `emu = Emulator().start()` works."""
        with self._lifecycle_lock:
            if self._server is not None:
                raise RuntimeError("The emulator is already running.")
            context = None
            if self.tls_cert:
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                context.load_cert_chain(self.tls_cert, self.tls_key)
            server = EmulatorHTTPServer((self.host, self.port), self._api, ssl_context=context, verbose=self.verbose)
            port = server.server_address[1]
            host = f"[{self.host}]" if ":" in self.host else self.host
            self._api.base_url = f"{'https' if context else 'http'}://{host}:{port}"
            self._thread = threading.Thread(
                target=server.serve_until_stopped,
                name=f"runflow-emulator-{port}",
                daemon=True,
            )
            self._server = server
            if self.callback_secret:
                self._api.callbacks = CallbackSender(
                    self.callback_secret,
                    render=self._api.run_json,
                    faults=lambda: self._api.faults,
                    count=self._state.count,
                    retry_delays=self.callback_retry_delays,
                )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, close open connections and wait for the serving thread; safe to call twice."""
        with self._lifecycle_lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
        if server is None or thread is None:
            return
        if self._api.callbacks is not None:
            self._api.callbacks.stop()
            self._api.callbacks = None
        server.stop()
        thread.join()
        server.close()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self._api.base_url if self._server is not None else "stopped"
        return f"Emulator({where}, latency={self.latency}, cheap={self._api.cheap})"

"""`python -m runflow_api.emulator`: serve a local Runflow until Ctrl-C.

The first line on stdout is the base URL alone, so scripts can read it (useful with `--port 0`).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence

from .app import Emulator


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m runflow_api.emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port; 0 picks a free one (default: 8765)")
    parser.add_argument("--api-key", default="rf_live_emulator", help="the Bearer key clients must send")
    parser.add_argument("--latency", type=float, default=2.0, help="seconds from run creation to its end")
    parser.add_argument("--cheap", action="store_true", help="answer a flat grey canvas instead of isolating")
    parser.add_argument("--balance", default="100.00", help="starting credit in dollars (default: 100.00)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fault decisions")
    parser.add_argument("--tls-cert", help="PEM certificate (chain) to serve https")
    parser.add_argument("--tls-key", help="PEM private key for --tls-cert")
    parser.add_argument("--callback-secret", default=None,
                        help="sign and deliver callbacks to runs' callback_url with this secret (default: none)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request to stderr")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        emulator = Emulator(
            api_key=args.api_key,
            latency=args.latency,
            port=args.port,
            cheap=args.cheap,
            balance=args.balance,
            seed=args.seed,
            tls_cert=args.tls_cert,
            tls_key=args.tls_key,
            host=args.host,
            verbose=args.verbose,
            callback_secret=args.callback_secret,
        )
        emulator.start()
    except (ValueError, OSError) as exc:
        print(f"runflow emulator: cannot start: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    # Both signals only set the event, installed before the base URL is printed: a Ctrl-C that lands
    # before the wait loop would otherwise escape as KeyboardInterrupt while the server threads live on.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    print(emulator.base_url, flush=True)
    print(
        f"Runflow emulator: runflow/product-isolation, runs take {args.latency:g} s, "
        f"balance ${emulator.balance}. Ctrl-C to stop.",
        file=sys.stderr,
        flush=True,
    )
    try:
        while not stop.wait(0.5):
            pass
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

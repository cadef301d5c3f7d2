"""Callback deliveries: the emulator POSTs a signed run-ended message to a run's `callback_url`.

As docs/RUNFLOW-API.md ("Callbacks") describes: one POST when the run ends, body `{event, run_id, status,
output, duration_ms, created_at, completed_at, metadata}`, headers `Runflow-Signature` (hex HMAC-SHA256
of the raw body under the callback secret) and `Runflow-Request-Id`, retried on 5xx or a network error
after 1 s and then 2 s (3 attempts). No thread exists per run: one scheduler thread sleeps until the next
delivery is due and hands it to a small pool, so a slow receiver never delays another run's callback.
The fault switches (late, duplicated, dropped, mis-signed) live in `Faults`.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ..service.callbacks import REQUEST_ID_HEADER, SIGNATURE_HEADER, sign
from .faults import Faults
from .lifecycle import RunRecord, callback_payload

log = logging.getLogger(__name__)

RETRY_DELAYS_S = (1.0, 2.0)  # the model page's schedule: 3 attempts in all
SEND_TIMEOUT_S = 5.0  # "answer 2xx within a few seconds"
SENDERS = 4


@dataclass(frozen=True)
class _Delivery:
    run: RunRecord
    request_id: str
    attempt: int = 1


class CallbackSender:
    """Schedules and sends the callbacks of runs created with a `callback_url`.

    `render(run, now)` is the run object as a poll would answer it (so the callback carries the same,
    freshly signed output URLs); `faults()` the live Faults; `count(stat)` bumps an emulator counter.
    """

    def __init__(
        self,
        secret: str,
        *,
        render: Callable[[RunRecord, float], dict[str, Any]],
        faults: Callable[[], Faults],
        count: Callable[[str], None],
        retry_delays: tuple[float, ...] = RETRY_DELAYS_S,
    ) -> None:
        self._secret = secret
        self._render = render
        self._faults = faults
        self._count = count
        self._retry_delays = retry_delays
        self._queue: list[tuple[float, int, _Delivery]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(max_workers=SENDERS, thread_name_prefix="emulator-callback")

    def schedule(self, run: RunRecord) -> None:
        """Queue the run's callback for the moment it ends (plus any `callback_delay`), with duplicates."""
        faults = self._faults()
        if faults.drops_callback():
            self._count("callbacks_dropped")
            return
        due = run.completed_at_monotonic + faults.callback_delay
        delivery = _Delivery(run, uuid.uuid4().hex)
        for _ in range(1 + faults.callback_duplicates):  # a duplicate is the same delivery, sent again
            self._push(due, delivery)

    def _push(self, due: float, delivery: _Delivery) -> None:
        with self._wake:
            if self._stopping:
                return
            heapq.heappush(self._queue, (due, next(self._order), delivery))
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="emulator-callbacks", daemon=True)
                self._thread.start()
            self._wake.notify()

    def _loop(self) -> None:
        while True:
            with self._wake:
                while not self._stopping and (not self._queue or self._queue[0][0] > time.monotonic()):
                    timeout = self._queue[0][0] - time.monotonic() if self._queue else None
                    self._wake.wait(timeout)
                if self._stopping:
                    return
                _, _, delivery = heapq.heappop(self._queue)
            self._pool.submit(self._send, delivery)

    def _send(self, delivery: _Delivery) -> None:
        run = delivery.run
        body = json.dumps(callback_payload(self._render(run, time.monotonic())), separators=(",", ":")).encode()
        secret = self._secret + "-wrong" if self._faults().callback_bad_signature else self._secret
        request = urllib.request.Request(
            str(run.callback_url),
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                SIGNATURE_HEADER: sign(secret, body),
                REQUEST_ID_HEADER: delivery.request_id,
                "User-Agent": "RunflowEmulator-Callbacks/1.0",
            },
        )
        self._count("callbacks")
        retry = True
        try:
            with urllib.request.urlopen(request, timeout=SEND_TIMEOUT_S) as response:  # noqa: S310 - our own URL check
                response.read()
            self._count("callbacks_delivered")
            return
        except urllib.error.HTTPError as exc:  # answered, but not 2xx: only a 5xx is worth another try
            retry = exc.code >= 500
            exc.close()
        except (OSError, ValueError) as exc:  # refused, reset, timed out, unreachable
            log.debug("callback for run %s failed: %s", run.id, exc)
        self._count("callbacks_failed")
        if retry and delivery.attempt <= len(self._retry_delays):
            delay = self._retry_delays[delivery.attempt - 1]
            self._push(time.monotonic() + delay, _Delivery(run, delivery.request_id, delivery.attempt + 1))

    def stop(self) -> None:
        """Forget pending deliveries and stop the threads; deliveries in flight finish on their own."""
        with self._wake:
            self._stopping = True
            self._queue.clear()
            self._wake.notify()
            thread = self._thread
        if thread is not None:
            thread.join()
        self._pool.shutdown(wait=False, cancel_futures=True)

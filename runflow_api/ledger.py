"""An append-only record of every paid run, so a user can always see what the pack has spent.

One JSON line per run, appended with a single write on a file opened in append mode, so lines from
several processes never interleave. A run is recorded once even when it is collected again later (a
resumed run). Totals are read incrementally: only the bytes appended since the last read are parsed,
so the node's once-a-second status line costs next to nothing.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

log = logging.getLogger("runflow_api")


@dataclass(frozen=True)
class LedgerTotals:
    session_runs: int
    session_cost: Decimal
    all_runs: int
    all_cost: Decimal


class Ledger:
    """One per file per process (see `for_path`): "session" totals are what this process has spent."""

    _shared: dict[Path, Ledger] = {}
    _shared_lock = threading.Lock()

    @classmethod
    def for_path(cls, path: Path) -> Ledger:
        """The process's ledger for `path`, so the node, the routes and the CLI count one session."""
        resolved = Path(path).resolve()
        with cls._shared_lock:
            if resolved not in cls._shared:
                cls._shared[resolved] = cls(resolved)
            return cls._shared[resolved]

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._offset = 0
        self._known: dict[str, dict[str, Any]] = {}
        self._session: dict[str, Decimal] = {}

    def _catch_up(self) -> None:
        """Parse lines appended since the last read (by any process); a torn last line waits for more."""
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self._offset)
                chunk = handle.read()
        except FileNotFoundError:
            return
        end = chunk.rfind(b"\n") + 1
        for line in chunk[:end].splitlines():
            try:
                record = json.loads(line)
                Decimal(record["cost"])
                self._known.setdefault(record["run_id"], record)
            except (ValueError, KeyError, TypeError, InvalidOperation):
                log.warning("Spend ledger: skipping an unreadable line in %s.", self.path)
        self._offset += end

    def record(self, run_id: str, cost: Decimal, cache_key: str, *, service_id: str, list_price: bool) -> None:
        """Append one paid run, unless this run id is already in the ledger."""
        with self._lock:
            self._catch_up()
            if run_id in self._known:
                return
            record = {
                "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "run_id": run_id,
                "cost": str(cost),
                "cache_key": cache_key,
                "service_id": service_id,
                "list_price": list_price,
            }
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, (json.dumps(record) + "\n").encode("utf-8"))
            finally:
                os.close(fd)
            self._session[run_id] = cost

    def totals(self, service_id: str | None = None) -> LedgerTotals:
        """This process's spend and the all-time spend, optionally for one service only."""
        with self._lock:
            self._catch_up()
            records = [r for r in self._known.values() if service_id is None or r.get("service_id") == service_id]
            session = [
                cost for run_id, cost in self._session.items()
                if service_id is None or self._known.get(run_id, {}).get("service_id") == service_id
            ]
            return LedgerTotals(
                session_runs=len(session),
                session_cost=sum(session, Decimal(0)),
                all_runs=len(records),
                all_cost=sum((Decimal(r["cost"]) for r in records), Decimal(0)),
            )

    def entries(self, limit: int | None = None) -> list[dict[str, Any]]:
        with self._lock:
            self._catch_up()
            records = list(self._known.values())
        return records[-limit:] if limit else records

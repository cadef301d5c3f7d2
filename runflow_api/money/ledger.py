"""An append-only record of every paid run, so a user can always see what the pack has spent.

One JSON line per run, appended with a single write on a file opened in append mode, so lines from
several processes never interleave. A run is recorded once even when it is collected again later (a
resumed run). Totals are read incrementally: only the bytes appended since the last read are parsed,
so the node's once-a-second status line costs next to nothing.

Bookkeeping must never cost the user a result that was paid for: a ledger that cannot be written (a full
disk, a directory or a file in the way, no permission) keeps the runs in memory, says once what to do, and
appends them as soon as the file can be written again; a ledger that cannot be read, or holds a line that
is damaged or carries an implausible cost, is only a warning, and totals never raise.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..product_isolation import plausible_cost

log = logging.getLogger("runflow_api")

def _advice(exc: OSError) -> str:
    """What the user can do about the error that stopped the ledger being written or read."""
    if isinstance(exc, IsADirectoryError):
        return "remove the directory that is in its place"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return "free disk space (or raise the file-size limit, `ulimit -f`)"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "fix the permissions so this user can write the file and its folder"
    if exc.errno in (errno.ENOTDIR, errno.EEXIST):
        return "remove the file that is in place of its folder"
    return "make sure the file can be written"


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
        # This process's paid runs, with their service: counted even while they cannot be written.
        self._session: dict[str, tuple[Decimal, str]] = {}
        self._pending: list[dict[str, Any]] = []  # recorded, not yet in the file
        self._torn = False  # a short write left part of a line at the end of the file
        self._write_warned = False
        self._read_warned = False

    def _catch_up(self) -> None:
        """Parse lines appended since the last read (by any process); a torn last line waits for more."""
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self._offset)
                chunk = handle.read()
        except FileNotFoundError:
            return
        except OSError as exc:
            self._warn_unreadable(exc)
            return
        self._read_warned = False
        end = chunk.rfind(b"\n") + 1
        skipped = [line for line in chunk[:end].splitlines() if line.strip() and not self._accept(line)]
        if skipped:
            log.warning(
                "Spend ledger: skipped %d unreadable or implausible line(s) in %s (first: %r); they are not "
                "counted in the totals. Fix or delete those lines if they matter to you.",
                len(skipped), self.path, skipped[0][:120],
            )
        self._offset += end

    def _accept(self, line: bytes) -> bool:
        """Keep one line when it is a record with a run id and a believable cost; False to skip it."""
        try:
            record = json.loads(line)
        except ValueError:  # not JSON, or not UTF-8
            return False
        if not isinstance(record, dict) or not isinstance(record.get("run_id"), str) or not record["run_id"]:
            return False
        if not isinstance(record.get("cost"), str) or plausible_cost(record["cost"]) is None:
            return False
        self._known.setdefault(record["run_id"], record)
        return True

    def _warn_unreadable(self, exc: OSError) -> None:
        if not self._read_warned:
            self._read_warned = True
            log.warning(
                "Spend ledger: cannot read %s (%s); totals show only what this process spent. To fix it, %s.",
                self.path, exc.strerror or exc, _advice(exc),
            )

    def _flush(self) -> None:
        """Append the pending records, one write per line; stop at the first failure and keep the rest."""
        if not self._pending:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError as exc:
            self._warn_unwritable(exc)
            return
        written = 0
        try:
            for record in self._pending:
                self._append(fd, (json.dumps(record) + "\n").encode("utf-8"))
                written += 1
        except OSError as exc:
            self._warn_unwritable(exc)
        finally:
            os.close(fd)
            del self._pending[:written]
        if written and not self._pending and self._write_warned:
            self._write_warned = False
            log.info("Spend ledger: %s is writable again; the paid runs kept in memory are recorded.", self.path)

    def _append(self, fd: int, line: bytes) -> None:
        """One write per line. A short write (disk full) leaves a fragment: the next line then starts with
        a newline, so the fragment becomes one skipped line instead of swallowing a good one."""
        data = b"\n" + line if self._torn else line
        count = os.write(fd, data)
        if count < len(data):
            self._torn = True
            raise OSError(errno.ENOSPC, f"only {count} of {len(data)} bytes could be written")
        self._torn = False

    def _warn_unwritable(self, exc: OSError) -> None:
        if not self._write_warned:
            self._write_warned = True
            log.warning(
                "Spend ledger: cannot write %s (%s). Your results are not affected: the %d paid run(s) not yet "
                "recorded are kept in memory and written as soon as the file can be written. To fix it, %s.",
                self.path, exc.strerror or exc, len(self._pending), _advice(exc),
            )

    def record(
        self, run_id: str, cost: Decimal, cache_key: str, *, service_id: str, list_price: bool
    ) -> dict[str, Any]:
        """Note one paid run, unless this run id is already recorded; never raises on a file problem.
        Returns the run's record (the one already known, for a run recorded before)."""
        with self._lock:
            self._catch_up()
            known = self._known.get(run_id) or next((r for r in self._pending if r["run_id"] == run_id), None)
            if known is not None:
                return known
            record = {
                "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "run_id": run_id,
                "cost": str(cost),
                "cache_key": cache_key,
                "service_id": service_id,
                "list_price": list_price,
            }
            if run_id not in self._session:
                self._session[run_id] = (cost, service_id)
                self._pending.append(record)
                self._flush()
            return record

    def _records(self) -> list[dict[str, Any]]:
        """Every run known: read from the file, then those of this process still waiting to be written."""
        return list(self._known.values()) + [r for r in self._pending if r["run_id"] not in self._known]

    def totals(self, service_id: str | None = None) -> LedgerTotals:
        """This process's spend and the all-time spend, optionally for one service only."""
        with self._lock:
            self._flush()
            self._catch_up()
            records = [r for r in self._records() if service_id is None or r.get("service_id") == service_id]
            session = [cost for cost, service in self._session.values() if service_id in (None, service)]
            return LedgerTotals(
                session_runs=len(session),
                session_cost=sum(session, Decimal(0)),
                all_runs=len(records),
                all_cost=sum((Decimal(r["cost"]) for r in records), Decimal(0)),
            )

    def spent_today(self) -> Decimal:
        """What this machine's ledger says was spent since midnight UTC (all services)."""
        today = datetime.now(timezone.utc).date().isoformat()
        with self._lock:
            self._flush()
            self._catch_up()
            records = self._records()
        return sum((Decimal(r["cost"]) for r in records if str(r.get("time", "")).startswith(today)), Decimal(0))

    def entries(self, limit: int | None = None) -> list[dict[str, Any]]:
        with self._lock:
            self._flush()
            self._catch_up()
            records = self._records()
        return records[-limit:] if limit else records

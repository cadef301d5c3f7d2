"""Runs paid for and not yet collected, kept on disk so that nothing bought is ever bought again.

An entry is written *before* the create request leaves (with the Idempotency-Key the create and its
retries carry), then completed with the run id once the service answers. If the process is cancelled,
crashes or is killed in between, the next call with the same inputs finds the entry: with a run id it
collects that run; without one it re-sends the create with the same Idempotency-Key, which the service
replays instead of billing again. One small file per cache key, replaced atomically, so several
processes can share the journal.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from .fsutil import atomic_write

log = logging.getLogger("runflow_api")


@dataclass(frozen=True)
class JournalEntry:
    cache_key: str
    idempotency_key: str
    service_id: str
    run_id: str | None = None
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    params: dict[str, Any] = field(default_factory=dict)


class RunJournal:
    """Entries older than `max_age_s` are ignored and pruned: the service will have discarded the run."""

    def __init__(self, directory: Path, max_age_s: float = 24 * 3600) -> None:
        self.directory = Path(directory)
        self.max_age_s = max_age_s
        self._lock = threading.Lock()
        self._warned: set[str] = set()

    def _path(self, cache_key: str) -> Path:
        return self.directory / f"{cache_key}.json"

    def _read(self, path: Path) -> JournalEntry | None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return JournalEntry(**data)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError) as exc:
            if path.name not in self._warned:
                self._warned.add(path.name)
                log.warning("Run journal: ignoring unreadable entry %s (%s).", path, exc)
            return None

    def _write(self, entry: JournalEntry) -> None:
        atomic_write(self._path(entry.cache_key), json.dumps(asdict(entry)).encode("utf-8"))

    def find(self, cache_key: str) -> JournalEntry | None:
        entry = self._read(self._path(cache_key))
        if entry is not None and time.time() - entry.created_at > self.max_age_s:
            self.complete(cache_key)
            return None
        return entry

    def record_intent(
        self, cache_key: str, idempotency_key: str, service_id: str, params: dict[str, Any]
    ) -> JournalEntry:
        """Durably note a create about to be sent; an existing entry wins, so its key is reused."""
        with self._lock:
            existing = self.find(cache_key)
            if existing is not None:
                return existing
            entry = JournalEntry(cache_key, idempotency_key, service_id, params=params)
            self._write(entry)
            return entry

    def record_run(self, cache_key: str, run_id: str) -> None:
        with self._lock:
            entry = self.find(cache_key)
            if entry is None:
                log.warning("Run journal: no intent for run %s; recording it anyway.", run_id)
                entry = JournalEntry(cache_key, "", "")
            self._write(replace(entry, run_id=run_id, updated_at=time.time()))

    def complete(self, cache_key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(cache_key).unlink()

    def pending(self) -> list[JournalEntry]:
        entries = []
        for path in sorted(self.directory.glob("*.json")):
            entry = self.find(path.stem)
            if entry is not None:
                entries.append(entry)
        return entries

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
import os
import re
import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from ..settings.fsutil import atomic_write

log = logging.getLogger("runflow_api")
_ID_PATTERN = re.compile(r"[0-9a-f]{12}")
_PRUNE_EVERY_S = 3600.0


@dataclass(frozen=True)
class JournalEntry:
    cache_key: str
    idempotency_key: str
    service_id: str
    run_id: str | None = None
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    params: dict[str, Any] = field(default_factory=dict)
    generation: int = 0
    closed: bool = False


_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "cache_key": (str,),
    "idempotency_key": (str,),
    "service_id": (str,),
    "run_id": (str, type(None)),
    "created_at": (int, float),
    "updated_at": (int, float),
    "params": (dict,),
    "generation": (int,),
    "closed": (bool,),
}
_REQUIRED_FIELDS = ("cache_key", "idempotency_key", "service_id")


def entry_from_json(data: Any) -> JournalEntry:
    """A JournalEntry, or ValueError naming the first field missing or of the wrong type: a hand-edited
    or foreign file must read as "absent", never fail later as a TypeError deep inside a run."""
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    unknown = set(data) - set(_FIELD_TYPES)
    if unknown:
        raise ValueError(f"unknown field(s) {sorted(unknown)}")
    missing = [name for name in _REQUIRED_FIELDS if name not in data]
    if missing:
        raise ValueError(f"missing field(s) {missing}")
    for name, types in _FIELD_TYPES.items():
        if name in data and not _has_type(data[name], types):
            raise ValueError(f"field {name!r} is {type(data[name]).__name__}, not {types[0].__name__}")
    return JournalEntry(**data)


def _has_type(value: Any, types: tuple[type, ...]) -> bool:
    """isinstance, except that a bool is not accepted as a number (JSON true is not a timestamp)."""
    if isinstance(value, bool):
        return bool in types
    return isinstance(value, types)


def idempotency_key(journal_id: str, cache_key: str, generation: int) -> str:
    """Derived, not random: processes sharing a journal that create the same input at the same generation
    send the same key, so the service replays the first create instead of billing again. The journal's
    own id keeps apart machines and wiped disks, whose staged inputs (and so request bodies) differ:
    the same key with another body would only earn a 409."""
    return f"rf-{journal_id}-{cache_key[:40]}-g{generation}"


class JournalMirror(Protocol):
    """A copy of the open entries where other machines can read them (a fleet's shared store)."""

    def get(self, cache_key: str) -> JournalEntry | None: ...

    def get_many(self, cache_keys: Sequence[str]) -> dict[str, JournalEntry]: ...

    def put(self, entry: JournalEntry) -> None: ...

    def delete(self, cache_key: str) -> None: ...


class RunJournal:
    """Entries older than `max_age_s` are ignored and pruned: the service will have discarded the run.

    A finished attempt leaves a small *closed* entry holding the next generation, so the next attempt for
    the same input (after a failed, unbilled run, an evicted result or a forced re-run) carries a new
    Idempotency-Key; otherwise the service would replay the finished run instead of starting one.

    With a `mirror`, open entries are copied there too, and an input with no open entry here is looked
    up there: a run another machine paid for and never collected is collected here instead of bought
    again. Local entries still come first, and the mirror only ever holds open entries."""

    def __init__(self, directory: Path, max_age_s: float = 24 * 3600, *, mirror: JournalMirror | None = None) -> None:
        self.directory = Path(directory)
        self.max_age_s = max_age_s
        self.mirror = mirror
        self._lock = threading.Lock()
        self._warned: set[str] = set()
        self._id: str | None = None
        self._pruned_at = -_PRUNE_EVERY_S  # the first completion in a process prunes

    def _path(self, cache_key: str) -> Path:
        return self.directory / f"{cache_key}.json"

    @property
    def journal_id(self) -> str:
        """A random id made once per journal directory and shared by every process that uses it."""
        if self._id is None:
            self._id = _shared_random_id(self.directory / "journal-id")
        return self._id

    def _read(self, path: Path) -> JournalEntry | None:
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            self._warn_once(path.name, "Run journal: cannot read %s (%s); treating it as absent.", path, exc)
            return None
        try:
            return entry_from_json(json.loads(raw))
        except ValueError as exc:  # includes JSON errors
            self._set_aside(path, raw, str(exc))
            return None

    def _set_aside(self, path: Path, raw: bytes, problem: str) -> None:
        """Move a malformed entry out of the way (kept for inspection, never deleted) and say whether it
        named a paid run, so a run id is never dropped silently."""
        aside = path.with_name(path.name + ".malformed")
        with contextlib.suppress(OSError):
            os.replace(path, aside)
        run_id = _salvage_run_id(raw)
        self._warn_once(
            path.name,
            "Run journal: %s is malformed (%s) and was moved to %s. %s",
            path,
            problem,
            aside.name,
            f"It names run {run_id!r}, which may be paid: look it up in the Runflow dashboard."
            if run_id
            else "It names no run id, so nothing paid is lost.",
        )

    def _warn_once(self, key: str, message: str, *args: object) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message, *args)

    def _write(self, entry: JournalEntry, *, durable: bool = True) -> None:
        atomic_write(self._path(entry.cache_key), json.dumps(asdict(entry)).encode("utf-8"), durable=durable)

    def _current(self, cache_key: str) -> JournalEntry | None:
        """The entry on disk, open or closed; None (and pruned) when older than `max_age_s`."""
        entry = self._read(self._path(cache_key))
        if entry is not None and time.time() - max(entry.created_at, entry.updated_at) > self.max_age_s:
            with contextlib.suppress(FileNotFoundError):
                self._path(cache_key).unlink()
            return None
        return entry

    def find(self, cache_key: str) -> JournalEntry | None:
        """The open entry (an intent, or a run not yet collected) for this input, here or in the mirror."""
        return self.find_many([cache_key]).get(cache_key)

    def find_many(self, cache_keys: Sequence[str]) -> dict[str, JournalEntry]:
        """The open entries of several inputs, asking the mirror (one round trip) only for those with none
        here: planning a batch must not cost one network round trip per image."""
        found: dict[str, JournalEntry] = {}
        for cache_key in cache_keys:
            entry = self._current(cache_key)
            if entry is not None and not entry.closed:
                found[cache_key] = entry
        missing = [cache_key for cache_key in cache_keys if cache_key not in found]
        if self.mirror is not None and missing:
            for cache_key, shared in self.mirror.get_many(missing).items():
                if time.time() - max(shared.created_at, shared.updated_at) <= self.max_age_s:
                    found[cache_key] = shared
        return found

    def next_generation(self, cache_key: str) -> int:
        """The generation a new attempt for this input must use (see the class docstring)."""
        entry = self._current(cache_key)
        return entry.generation if entry is not None else 0

    def record_intent(self, cache_key: str, service_id: str, params: dict[str, Any]) -> JournalEntry:
        """Durably note a create about to be sent; an existing open entry wins, so its key is reused."""
        with self._lock:
            existing = self._current(cache_key)
            if existing is not None and not existing.closed:
                return existing
            generation = existing.generation if existing is not None else 0
            key = idempotency_key(self.journal_id, cache_key, generation)
            entry = JournalEntry(cache_key, key, service_id, params=params, generation=generation)
            self._write(entry)
        if self.mirror is not None:
            self.mirror.put(entry)
        return entry

    def record_run(self, cache_key: str, run_id: str) -> None:
        with self._lock:
            entry = self.find(cache_key)
            if entry is None:
                log.warning("Run journal: no intent for run %s; recording it anyway.", run_id)
                entry = JournalEntry(cache_key, "", "")
            entry = replace(entry, run_id=run_id, updated_at=time.time())
            self._write(entry)
        if self.mirror is not None:
            self.mirror.put(entry)

    def complete(self, cache_key: str) -> None:
        """Close the attempt: what it paid for is collected (or it was not billed). Keeps the next
        generation until the service has forgotten this generation's Idempotency-Key."""
        if self.mirror is not None:
            self.mirror.delete(cache_key)
        with self._lock:
            entry = self._current(cache_key)
            if entry is None or entry.closed:
                return
            closed = JournalEntry(
                cache_key, "", entry.service_id, generation=entry.generation + 1, closed=True,
                created_at=time.time(),
            )
            try:  # not fsynced: losing it on a crash only costs one 409 step to the next generation
                self._write(closed, durable=False)
            except OSError as exc:  # the attempt is over either way; a new one then reuses this generation
                log.warning("Run journal: cannot write %s (%s).", self._path(cache_key), exc)
                with contextlib.suppress(OSError):
                    self._path(cache_key).unlink()
        self._prune_if_due()

    def _prune_if_due(self) -> None:
        """Delete entries nobody has touched for `max_age_s`, at most once an hour per process.

        Every finished input leaves a closed entry, and most inputs are never asked for again, so
        without this the folder would gain a file per image for good. The file's modification time is
        its last write, so an entry in use is never older than that."""
        now = time.monotonic()
        if now - self._pruned_at < _PRUNE_EVERY_S:
            return
        self._pruned_at = now
        oldest = time.time() - self.max_age_s
        try:
            with os.scandir(self.directory) as found:
                stale = [entry.path for entry in found if entry.name.endswith(".json")
                         and entry.stat().st_mtime < oldest]
        except OSError:
            return
        for path in stale:
            with contextlib.suppress(OSError):
                os.unlink(path)

    def pending(self) -> list[JournalEntry]:
        """Open entries; closed ones past `max_age_s` are pruned on the way."""
        entries = []
        for path in sorted(self.directory.glob("*.json")):
            entry = self.find(path.stem)
            if entry is not None:
                entries.append(entry)
        return entries


def _shared_random_id(path: Path) -> str:
    """Read the id at `path`, or create it: written to a temporary file, then linked into place, which
    fails if another process got there first (its id then wins), so no reader sees a half-written id."""
    try:
        text = path.read_text(encoding="ascii").strip()
        if _ID_PATTERN.fullmatch(text):
            return text
    except (OSError, UnicodeDecodeError):
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    candidate = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    candidate.write_text(secrets.token_hex(6), encoding="ascii")
    try:
        os.link(candidate, path)
    except FileExistsError:
        pass
    except OSError:  # a file system without hard links, or an unreadable id: replace it outright
        os.replace(candidate, path)
    finally:
        with contextlib.suppress(OSError):
            candidate.unlink()
    text = path.read_text(encoding="ascii").strip()
    if not _ID_PATTERN.fullmatch(text):  # a damaged id file: this process's keys stay unique anyway
        return secrets.token_hex(6)
    return text


def _salvage_run_id(raw: bytes) -> str | None:
    """Best effort: the run id of a malformed entry, for the warning only."""
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    run_id = data.get("run_id") if isinstance(data, dict) else None
    return str(run_id) if run_id not in (None, "") else None

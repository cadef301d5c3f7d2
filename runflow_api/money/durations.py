"""How long runs take, learned from finished runs and kept on disk, so that polling is well timed from
the very first run of every process.

Most ComfyUI users queue one image at a time, and every CLI call, ComfyUI restart or new worker starts
a fresh process. With durations learned in memory only, each first run polled on a coarse schedule (at
2K and L = 2 s it ended 478 ms over L, against 101 ms once learned). The estimates are small (a number
per service, model and resolution), so one JSON file in the data directory, replaced atomically, serves
every process that shares the directory; a fleet shares them across machines through its Redis store
(`fleet.shared_durations.SharedDurations`, which has the same `load` and `save`).
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from pathlib import Path
from typing import Any, Protocol

from ..settings.fsutil import atomic_write

log = logging.getLogger("runflow_api")

Estimate = tuple[float, bool]  # (seconds from create to end, from a precise sample?)

_FORMAT = "runflow-durations-v1"
_MAX_SECONDS = 3600.0  # a run longer than the poll policy's whole patience is not a duration to learn


class EstimateStore(Protocol):
    def load(self, scope: str) -> dict[str, Estimate]: ...

    def save(self, scope: str, kind: str, estimate: Estimate) -> Any: ...


class DurationStore:
    """The estimates of every scope (service and model) on this machine, in one small file.

    Bounded (`max_entries`, least recently updated dropped first) and forgetful (`max_age_s`): a week-old
    figure says little about today's queue. Every failure here only costs a coarser first poll, so it is
    a warning at most, never an exception."""

    def __init__(self, path: Path, *, max_age_s: float = 7 * 86400, max_entries: int = 64) -> None:
        self.path = Path(path)
        self.max_age_s = max_age_s
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._warned = False

    def load(self, scope: str) -> dict[str, Estimate]:
        """The fresh estimates of `scope`, by kind."""
        return {kind: (entry["s"], entry["p"]) for kind, entry in self.load_entries(scope).items()}

    def load_entries(self, scope: str) -> dict[str, dict[str, Any]]:
        """The fresh entries of `scope` by kind, with when each was learned (`t`), for merging."""
        prefix = f"{scope}\t"
        return {name[len(prefix):]: entry for name, entry in self._read().items() if name.startswith(prefix)}

    def save(self, scope: str, kind: str, estimate: Estimate) -> dict[str, Any]:
        """Merge one estimate into the file (other processes' entries are kept); the entry written."""
        entry = {"s": estimate[0], "p": estimate[1], "t": time.time()}
        with self._lock:
            entries = self._read()
            entries[f"{scope}\t{kind}"] = entry
            newest = sorted(entries.items(), key=lambda item: item[1]["t"], reverse=True)[: self.max_entries]
            data = json.dumps({"format": _FORMAT, "entries": dict(newest)}, sort_keys=True).encode("utf-8")
            try:
                atomic_write(self.path, data, durable=False)
            except OSError as exc:
                self._warn(f"cannot write {self.path} ({exc}); run durations are learned afresh by each process")
        return entry

    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            document = json.loads(self.path.read_bytes())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            self._warn(f"ignoring {self.path} ({exc})")
            return {}
        entries = document.get("entries") if isinstance(document, dict) else None
        if not isinstance(entries, dict) or document.get("format") != _FORMAT:
            self._warn(f"ignoring {self.path}: not a {_FORMAT} file")
            return {}
        oldest = time.time() - self.max_age_s
        return {name: entry for name, entry in entries.items() if valid_entry(entry) and entry["t"] >= oldest}

    def _warn(self, problem: str) -> None:
        if not self._warned:
            self._warned = True
            log.warning("Learned run durations: %s.", problem)


def valid_entry(entry: Any) -> bool:
    """A well-formed entry: a plausible positive duration, a flag, a timestamp (anything else is ignored)."""
    if not isinstance(entry, dict):
        return False
    seconds, precise, updated = entry.get("s"), entry.get("p"), entry.get("t")
    return (
        isinstance(seconds, (int, float)) and not isinstance(seconds, bool) and math.isfinite(seconds)
        and 0 < seconds <= _MAX_SECONDS and isinstance(precise, bool)
        and isinstance(updated, (int, float)) and not isinstance(updated, bool) and math.isfinite(updated)
    )


class DurationModel:
    """Learns how long runs take from create to end, per kind (e.g. resolution), to time the polls.

    The run object's own timestamps give the duration exactly when the service sends them. Otherwise a
    run is known to have ended between two polls: when they were close (dense polling), the midpoint is
    a precise sample; when far apart (the first, unlearned runs), only the earlier poll is a safe
    estimate. A precise sample replaces a coarse estimate; precise samples are then averaged, leaning low
    on purpose (polling a little early costs one request, polling late costs the user waiting time); a
    coarse sample only ever lowers the estimate, when the run clearly ended sooner than expected.

    With a `store`, the model starts from what earlier processes learned for the same `scope` (service
    and model) and writes back each estimate that moved by more than `SAVE_CHANGE`.
    """

    PRECISE_GAP_S = 0.5
    SAVE_CHANGE = 0.02

    def __init__(self, weight: float = 0.3, *, store: EstimateStore | None = None, scope: str = "") -> None:
        self._weight = weight
        self._store = store
        self._scope = scope
        self._estimates: dict[str, Estimate] = store.load(scope) if store is not None else {}
        self._saved = dict(self._estimates)
        self._lock = threading.Lock()

    def expected(self, kind: str) -> float | None:
        with self._lock:
            entry = self._estimates.get(kind)
        return entry[0] if entry else None

    def observe(self, kind: str, ended_after: float, ended_by: float) -> None:
        """The run ended after `ended_after` and by `ended_by` seconds from its create."""
        precise = ended_by - ended_after <= self.PRECISE_GAP_S
        sample = (ended_after + ended_by) / 2 if precise else ended_after
        with self._lock:
            old = self._estimates.get(kind)
            if old is None or (precise and not old[1]):
                self._estimates[kind] = (sample, precise)
            elif precise:
                self._estimates[kind] = (min(sample, old[0] + self._weight * (sample - old[0])), True)
            elif ended_by < old[0]:
                self._estimates[kind] = (sample, False)
            new = self._estimates[kind]
            due = self._store is not None and _moved(self._saved.get(kind), new, self.SAVE_CHANGE)
            if due:
                self._saved[kind] = new
        if due and self._store is not None and new[0] > 0:
            self._store.save(self._scope, kind, new)


def _moved(saved: Estimate | None, new: Estimate, change: float) -> bool:
    if saved is None or saved[1] != new[1]:
        return True
    return abs(new[0] - saved[0]) > change * max(saved[0], 1e-9)

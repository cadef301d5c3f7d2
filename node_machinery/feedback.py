"""What the user sees while a node runs: progress bar, status line, Cancel.

ComfyUI's own modules are looked up at run time and may be absent (plain pytest, scripts): progress and
cancel then do nothing. The progress bar goes through the V3 execution API
(`ComfyAPISync().execution.set_progress`) when this ComfyUI offers it, and through the classic
`comfy.utils.ProgressBar` otherwise: in ComfyUI 0.3.64 the V3 API object has no `execution` attribute
yet, so the classic bar is what runs there. The status line is the web extension's strip, fed by our own
`runflow.status` event (`PromptServer.send_sync`); Cancel is `comfy.model_management`. ComfyUI's
`send_progress_text` is deliberately not used: the frontend shows that text in a widget it appends below
the node's others and grows the node for it, so it covered the node placed below and repeated the strip.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import time
from collections.abc import Callable
from decimal import Decimal
from types import ModuleType
from typing import Any, Protocol, TypeVar

from PIL import Image

from ..runflow_api.errors import RunflowCancelled
from ..runflow_api.flow.progress import ProgressTally, TallySnapshot
from ..runflow_api.pictures.result_types import ProgressEvent
from .asynchronous import abandoned
from .preview import PREVIEW_SIZE, LatestPreview

log = logging.getLogger("runflow")

STATUS_EVENT = "runflow.status"
STATUS_INTERVAL_S = 1.0
V3_API_MODULE = "comfy_api.v0_0_2"
T = TypeVar("T")


def optional_module(name: str) -> ModuleType | None:
    """A ComfyUI module, or None outside ComfyUI (or in a ComfyUI too old to have it)."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


class ProgressBar(Protocol):
    def update_absolute(self, value: int, preview: Image.Image | None = None) -> None: ...


class _V3ProgressBar:
    """ComfyUI's V3 execution API seen as a progress bar; it takes the preview as a PIL image."""

    def __init__(self, execution: Any, total: int, node_id: str) -> None:
        self._execution, self._total, self._node_id = execution, total, node_id
        try:  # a V3 API from before previews takes none: the bar still moves
            self._previews = "preview_image" in inspect.signature(execution.set_progress).parameters
        except (TypeError, ValueError):
            self._previews = False

    def update_absolute(self, value: int, preview: Image.Image | None = None) -> None:
        if preview is None or not self._previews:
            self._execution.set_progress(value, self._total, node_id=self._node_id)
        else:
            self._execution.set_progress(value, self._total, node_id=self._node_id, preview_image=preview)


class _ClassicProgressBar:
    """`comfy.utils.ProgressBar`, whose preview is ("JPEG", PIL image, largest side), as the samplers send it."""

    def __init__(self, bar: Any) -> None:
        self._bar = bar

    def update_absolute(self, value: int, preview: Image.Image | None = None) -> None:
        self._bar.update_absolute(value, None, None if preview is None else ("JPEG", preview, PREVIEW_SIZE))


def _v3_execution() -> Any:
    """`ComfyAPISync().execution` of ComfyUI's versioned API, or None where it is missing or broken."""
    v3 = optional_module(V3_API_MODULE)
    try:
        return getattr(v3.ComfyAPISync(), "execution", None) if v3 is not None else None
    except Exception as exc:  # a half-built API object must not stop a paid run
        log.debug("Runflow: ComfyUI's V3 execution API is unusable here (%s); using the classic bar.", exc)
        return None


def progress_bar(total: int, node_id: str | None) -> ProgressBar | None:
    """The V3 execution API's progress when it is there, else the classic ProgressBar, else None."""
    execution = _v3_execution() if node_id is not None else None
    if execution is not None and node_id is not None:
        return _V3ProgressBar(execution, total, node_id)
    utils = optional_module("comfy.utils")
    return _ClassicProgressBar(utils.ProgressBar(total, node_id=node_id)) if utils is not None else None


class Feedback:
    """Progress bar, status line and Cancel for one execution of one node.

    The engine calls `on_progress` from its worker threads, so that only feeds the thread-safe tally.
    ComfyUI binds its progress hook to the executing thread, and the engine polls `should_cancel` from
    that thread every 50 ms, so every update of the UI happens there, at most about once a second plus
    once per finished item.
    """

    def __init__(
        self, total: int, node_id: str | None, *, emulator: bool, preview: LatestPreview | None = None
    ) -> None:
        self.tally = ProgressTally(total, emulator=emulator)
        self._preview = preview
        self._node_id = node_id
        self._mm = optional_module("comfy.model_management")
        self._bar = progress_bar(total, node_id)
        server = optional_module("server")
        self._server = getattr(getattr(server, "PromptServer", None), "instance", None)
        self._last_push = float("-inf")
        self._last_finished = -1
        self._interrupt: BaseException | None = None
        self._display_failed = False

    def on_progress(self, event: ProgressEvent) -> None:
        self.tally.update(event)
        if self._preview is not None:
            self._preview.offer(event)

    def should_cancel(self) -> bool:
        if abandoned():  # ComfyUI cancelled this node's task: its prompt has ended
            return True
        if self._interrupt is None and self._mm is not None and self._mm.processing_interrupted():
            return True
        self.push()
        return self._interrupt is not None

    def run(self, work: Callable[[], T]) -> T:
        """Run the engine call and show the final status. A Cancel surfaces as ComfyUI's interruption
        (reported as "interrupted", not as an error); outside ComfyUI as the engine's RunflowCancelled."""
        try:
            result = work()
        except RunflowCancelled:
            self._raise_interrupt()
            raise
        finally:
            self.push(final=True)
        self._raise_interrupt()  # a Cancel pressed as the last item finished still wins
        return result

    def push(self, *, final: bool = False) -> None:
        snapshot = self.tally.snapshot()
        now = time.monotonic()
        if not final and snapshot.finished == self._last_finished and now - self._last_push < STATUS_INTERVAL_S:
            return
        self._last_push, self._last_finished = now, snapshot.finished
        try:
            if self._bar is not None:
                preview = self._preview.take(final=final) if self._preview is not None else None
                self._bar.update_absolute(snapshot.finished, preview)
            if self._server is not None and self._node_id is not None:
                self._server.send_sync(STATUS_EVENT, status_payload(self._node_id, snapshot, final=final))
        except Exception as exc:  # a broken display must never cost a paid result
            if self._mm is not None and isinstance(exc, self._mm.InterruptProcessingException):
                # ComfyUI's progress hook saw the Cancel first and cleared the flag: remember it.
                self._interrupt = exc
            elif not self._display_failed:
                self._display_failed = True
                log.warning("Runflow: could not update the node's progress display: %s", exc)

    def _raise_interrupt(self) -> None:
        if self._interrupt is not None:
            raise self._interrupt
        if self._mm is not None:
            self._mm.throw_exception_if_processing_interrupted()


def dollars(amount: Decimal | None, *, emulator: bool) -> str:
    return "0.00" if emulator or amount is None else f"{amount:.2f}"


def status_payload(node_id: str, snapshot: TallySnapshot, *, final: bool) -> dict[str, Any]:
    """The `runflow.status` event the web extension listens to (see docs/ARCHITECTURE.md)."""
    return {
        "node": node_id,
        "text": snapshot.status_line(),
        "total": snapshot.total,
        "done": snapshot.done,
        "cached": snapshot.cached,
        "resumed": snapshot.resumed,
        "failed": snapshot.failed,
        "queued": snapshot.queued,
        "running": snapshot.running,
        "waiting": snapshot.waiting,
        "waiting_for_machine": snapshot.waiting_for_machine,  # of `waiting`: another machine of the fleet
        "shared": snapshot.shared,  # of `cached`: from the fleet's shared store
        "waited_for_machine": snapshot.waited_for_machine,  # of `cached`: another machine produced it meanwhile
        "cost": dollars(snapshot.cost, emulator=snapshot.emulator),
        "elapsed_s": round(snapshot.elapsed_s, 1),
        "emulator": snapshot.emulator,
        "final": final,
    }

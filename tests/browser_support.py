"""What the real-browser tests share: Debian's Chromium and its flags, the ComfyUI set-ups each runs on
(bundled frontend, current frontend, Nodes 2.0), the pack's environment in ComfyUI, screenshots, and
waiting for a page or a queue."""

from __future__ import annotations

import importlib.util
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from comfy_harness import COMFYUI_DIR_ENV, PACK_DIR, ComfyUI
from PIL import Image
from support import product_photo

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync",
]  # fmt: skip
# Screenshots go to the test's temporary folder; RUNFLOW_SCREENSHOTS=docs refreshes the README's pictures.
SCREENSHOTS_ENV = "RUNFLOW_SCREENSHOTS"
FRONTEND_ROOT_ENV = "COMFYUI_FRONTEND_ROOT"
PACK_URL = "/extensions/runflow-product-isolation/"
PHOTO = "runflow-product.png"
# 1.27 exposes the app as window.comfyAPI.app.app (and window.app); today's frontend as window.app.
APP = "(window.app ?? window.comfyAPI?.app?.app)"


def skip_reason() -> str | None:
    if not os.environ.get(COMFYUI_DIR_ENV):
        return f"set {COMFYUI_DIR_ENV} (and COMFYUI_PYTHON, COMFYUI_PYTHONPATH) to run the real-browser test"
    if not CHROMIUM.exists():
        return f"the real-browser test needs Debian's chromium at {CHROMIUM}"
    if importlib.util.find_spec("playwright") is None:
        return "the real-browser test needs Python playwright"
    return None


def comfy_env(base: Path) -> dict[str, str]:
    """Emulator latency short enough for a test, long enough to see the node running. Empty RUNFLOW_*
    variables mean "unset", so ComfyUI keeps the key, data and cache in its own user directory; XDG
    folders point into the temporary base so nothing can reach the real home directory."""
    unset = ("RUNFLOW_API_KEY", "RUNFLOW_API_BASE", "RUNFLOW_MODE", "RUNFLOW_KEY_FILE", "RUNFLOW_DATA_DIR",
             "RUNFLOW_CACHE_DIR", "RUNFLOW_SHARED_STORE", "RUNFLOW_TEAM_BUDGET", "RUNFLOW_PUBLIC_URL",
             "RUNFLOW_CALLBACK_SECRET", "RUNFLOW_CALLBACK_SECRET_FILE")  # fmt: skip
    xdg = ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME")
    return {
        "RUNFLOW_EMULATOR_LATENCY": "1.0",
        **{name: "" for name in unset},
        **{name: str(base / "xdg" / name.lower()) for name in xdg},
    }


def prepare(comfy: ComfyUI, *, nodes2: bool) -> None:
    """A product photo to load (and the templates' sample photos), a user who has seen the tutorial (so
    no template browser pops up), and the node design under test."""
    # 480 x 640: enlarged at most 3.2 times to 2K, so a clean run is not flagged `enlarged` (its strip is "done").
    Image.fromarray(product_photo(3, (480, 640))).save(comfy.input_dir / PHOTO)
    for sample in (PACK_DIR / "examples").glob("*.[jp][pn]g"):
        shutil.copy(sample, comfy.input_dir / sample.name)
    comfy.post_json("/settings/Comfy.TutorialCompleted", True).raise_for_status()
    comfy.post_json("/settings/Comfy.VueNodes.Enabled", nodes2).raise_for_status()


def watch_page(page: Any) -> list[str]:
    """Collect what would make the extension silently broken: failed module loads and page errors."""
    problems: list[str] = []

    def on_error(error: Any) -> None:
        # ComfyUI frontend 1.27.10 itself throws "reading 'id'" at start-up, with or without this pack
        # (checked against a ComfyUI with no custom nodes): only errors raised through our modules count.
        if PACK_URL in (error.stack or ""):
            problems.append(f"page error: {error}\n{error.stack}")

    page.on("pageerror", on_error)

    def on_response(response: Any) -> None:
        if response.status >= 400 and PACK_URL in response.url:
            problems.append(f"{response.status} {response.url}")

    def on_failed(request: Any) -> None:
        if PACK_URL in request.url:
            problems.append(f"failed {request.url}")

    page.on("response", on_response)
    page.on("requestfailed", on_failed)
    return problems


def wait_until_idle(comfy: ComfyUI, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        queue = comfy.get_json("/queue")
        if not queue["queue_running"] and not queue["queue_pending"]:
            return
        time.sleep(0.1)
    raise AssertionError(f"ComfyUI's queue did not empty within {timeout:g} s")


class Shots:
    """Where a screenshot goes: the README's pictures come from the bundled frontend in the classic
    canvas, and the node ones also from today's frontend in Nodes 2.0 ("-nodes2"); the rest stay in the
    test's temporary folder."""

    def __init__(self, tmp_path: Path, frontend: str, nodes2: bool) -> None:
        self.docs = Path(os.environ[SCREENSHOTS_ENV]) if os.environ.get(SCREENSHOTS_ENV) else None
        self.tmp_path = tmp_path
        self.setup = (frontend, nodes2)
        self.suffix = f"-{frontend}{'-nodes2' if nodes2 else '-classic'}"

    def path(self, name: str) -> Path:
        if self.docs is not None and self.setup == ("bundled", False):
            return self.docs / f"{name}.png"
        if self.docs is not None and self.setup == ("current", True) and name.startswith("node-"):
            return self.docs / f"{name}-nodes2.png"
        return self.tmp_path / f"{name}{self.suffix}.png"


def frontend_args(frontend: str) -> tuple[str, ...]:
    if frontend == "bundled":
        return ()
    root = os.environ.get(FRONTEND_ROOT_ENV)
    if not root:
        pytest.skip(f"set {FRONTEND_ROOT_ENV} to an unzipped comfyui-frontend-package's static folder (e.g. 1.58.1)")
    return ("--front-end-root", root)


# Nodes 2.0 is a released option from frontend 1.3x on; 1.27.10 has only an unreleased developer flag for it
# (no node badges, no DOM widgets), so the bundled frontend is checked in the classic canvas only.
SETUPS = [("bundled", False), ("current", False), ("current", True)]

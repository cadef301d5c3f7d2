"""ComfyUI on a rented GPU box, reached in a real browser by the name of the provider's proxy (issue #25).

A cloud user starts ComfyUI with `--listen 0.0.0.0` and opens it as `abc123-8188.proxy.runpod.net` or
the like. Here Chromium maps a made-up name of that shape to this machine (`--host-resolver-rules`), so
every request the page sends carries that name as Host and Origin, exactly as through a proxy:

- on a ComfyUI listening on every interface, the whole settings panel works under that name (save a key,
  test the connection on the emulator, read the ledger, clear the key), and a run shows its badge and
  status on the node;
- on a ComfyUI listening on loopback only (the default, a desktop), the same name is what a DNS-rebinding
  page would send: the panel shows the refusal with what to do, and no key is written.

Same environment and skips as tests/test_browser.py, whose helpers drive the panel and the node here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests
from comfy_harness import ComfyUI
from test_browser import (
    APP,
    CHROMIUM,
    CHROMIUM_ARGS,
    KEY,
    MASKED,
    RECORD_CANVAS_TEXT,
    Shots,
    _skip_reason,
    comfy_env,
    frontend_args,
    node_flow,
    open_runflow_settings,
    prepare,
    run_connection_test,
    save_key,
    wait_for,
    wait_for_text,
    watch_page,
)

pytestmark = pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or "")

PROXY_NAME = "abc123-8188.proxy.example-gpu.net"
EVERY_INTERFACE = ("--listen", "0.0.0.0")
# ComfyUI's own Origin check resolves the Host name of every request that carries an Origin (module scripts,
# POSTs), blocking its event loop meanwhile. A real proxy name resolves at once; the made-up one fails, and
# a resolver that drops a query now and then costs 5 s each time: glibc gives up after 1 s instead.
QUICK_DNS_FAILURE = {"RES_OPTIONS": "timeout:1 attempts:1"}


def browser_resolving_the_proxy_name(playwright: Any) -> tuple[Any, Any]:
    """Chromium resolving PROXY_NAME to this machine (nothing else does), and a page in it."""
    browser = playwright.chromium.launch(
        executable_path=str(CHROMIUM), args=[*CHROMIUM_ARGS, f"--host-resolver-rules=MAP {PROXY_NAME} 127.0.0.1"]
    )
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.add_init_script(RECORD_CANVAS_TEXT)
    return browser, page


def record_pack_requests(page: Any) -> list[tuple[str, int]]:
    """(url, status) of every answer from the pack's routes, to see which host they went to and how they ended."""
    answers: list[tuple[str, int]] = []

    def on_response(response: Any) -> None:
        if "/runflow/" in response.url:
            answers.append((response.url, response.status))

    page.on("response", on_response)
    return answers


def is_key_save(response: Any) -> bool:
    return bool(response.url.endswith("/runflow/key") and response.request.method == "POST")


def load(page: Any, comfy: ComfyUI) -> None:
    page.goto(f"http://{PROXY_NAME}:{comfy.port}/", timeout=120_000)
    page.wait_for_function(f"() => {APP}?.graph && window.LiteGraph", timeout=60_000)
    assert page.evaluate("location.host") == f"{PROXY_NAME}:{comfy.port}"


def spend_line(page: Any) -> str:
    page.wait_for_function("!document.querySelector('.runflow-spend').textContent.includes('…')")
    return str(page.inner_text(".runflow-spend"))


def panel_by_proxy_name(page: Any, comfy: ComfyUI) -> None:
    """Save a key, test the connection on the emulator, read the ledger, clear the key: all under the proxy name."""
    dialog = open_runflow_settings(page)
    wait_for_text(page, ".runflow-key-status", "No key set")
    assert "This session: 0 paid runs" in spend_line(page)
    save_key(page, KEY)
    assert comfy.get_json("/runflow/key") == {"configured": True, "masked": MASKED, "source": "file"}
    page.select_option(".runflow-mode-select", "emulator")
    wait_for(lambda: comfy.get_json("/runflow/mode")["mode"] == "emulator", "the service switch to reach the server")
    emulated = run_connection_test(page)
    assert "Connected to offline emulator" in emulated and "Balance: $" in emulated, emulated
    page.click(".runflow-key-clear")
    wait_for_text(page, ".runflow-key-status", "No key set")
    assert comfy.get_json("/runflow/key")["configured"] is False
    page.keyboard.press("Escape")
    dialog.wait_for(state="hidden")


@pytest.mark.parametrize("frontend", ["bundled", "current"])
def test_the_whole_panel_and_a_run_through_a_proxy_name(tmp_path: Path, frontend: str) -> None:
    from playwright.sync_api import sync_playwright

    base = tmp_path / "comfy"
    env = {**comfy_env(base), **QUICK_DNS_FAILURE}
    with ComfyUI(env=env, base_dir=base, extra_args=(*EVERY_INTERFACE, *frontend_args(frontend))) as comfy:
        prepare(comfy, nodes2=False)
        with sync_playwright() as playwright:
            browser, page = browser_resolving_the_proxy_name(playwright)
            try:
                problems = watch_page(page)
                answers = record_pack_requests(page)
                load(page, comfy)
                panel_by_proxy_name(page, comfy)
                node_flow(page, comfy, Shots(tmp_path, f"{frontend}-proxy-name", False), nodes2=False)
                open_runflow_settings(page)  # the ledger now holds the emulator run
                assert "All time: 1 paid runs" in spend_line(page), spend_line(page)
            finally:
                browser.close()
    assert problems == [], problems
    assert answers and all(url.startswith(f"http://{PROXY_NAME}:") for url, _ in answers), answers
    assert [answer for answer in answers if answer[1] >= 400] == []


def test_a_loopback_only_comfyui_refuses_the_same_name_as_dns_rebinding(tmp_path: Path) -> None:
    """ComfyUI's default listen address: a page under a foreign name is what a rebinding attack looks like."""
    from playwright.sync_api import sync_playwright

    base = tmp_path / "comfy"
    with ComfyUI(env={**comfy_env(base), **QUICK_DNS_FAILURE}, base_dir=base) as comfy:
        prepare(comfy, nodes2=False)
        with sync_playwright() as playwright:
            browser, page = browser_resolving_the_proxy_name(playwright)
            try:
                answers = record_pack_requests(page)
                load(page, comfy)
                open_runflow_settings(page)
                for where in (".runflow-key-message", ".runflow-spend"):
                    wait_for_text(page, where, "DNS rebinding")
                    assert "RUNFLOW_ALLOWED_HOSTS" in page.inner_text(where)
                page.evaluate("document.querySelector('.runflow-key-message').textContent = ''")
                page.fill(".runflow-key-input", KEY)
                with page.expect_response(is_key_save) as save:
                    page.click(".runflow-key-save")
                assert save.value.status == 403
                wait_for_text(page, ".runflow-key-message", "DNS rebinding")
            finally:
                browser.close()
        assert answers and {status for _, status in answers} == {403}, answers
        assert not (comfy.user_dir / "runflow" / "api_key").exists()
        direct = requests.get(f"{comfy.url}/runflow/key", headers={"Host": f"{PROXY_NAME}:{comfy.port}"}, timeout=10)
        assert direct.status_code == 403 and direct.json()["error"]["reason"] == "forbidden_host"
        assert comfy.get_json("/runflow/key")["configured"] is False  # by loopback, the panel's routes answer

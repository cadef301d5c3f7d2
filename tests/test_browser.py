"""The web extension in a real ComfyUI, driven through its real frontend in Chromium.

One scenario, in order, because each step builds on the last: set the key in Settings > Runflow, clear
it, set it again, see the fleet's shared store (a real password-protected redis-server named by
RUNFLOW_SHARED_STORE) shown masked and connected, save and clear the callback secret, test the connection
(the real service cannot be reached from here, so in emulator mode too), then build LoadImage -> Runflow
Product Isolation -> Save Image and run it in emulator mode, watching the node's price badge and status
strip, and run one of the pack's templates through the frontend. Afterwards it checks that the key, the
callback secret and the Redis password went nowhere they must not: ComfyUI's settings, the workflow
(graph, browser storage, user files), the page, the saved PNG, the server log.

The scenario runs on the frontend ComfyUI bundles (1.27.10 with ComfyUI 0.3.64) and on today's frontend
(COMFYUI_FRONTEND_ROOT: the `static` folder of an unzipped comfyui-frontend-package wheel, e.g. 1.58.1,
served with --front-end-root), each in the classic canvas and with Modern Node Design (Nodes 2.0,
setting Comfy.VueNodes.Enabled), where nodes are DOM and nothing drawn on the canvas shows.

The same panel and a run are also driven through a cloud provider's proxy name (issue #25, the last
section), with the same helpers.

Needs COMFYUI_DIR (plus COMFYUI_PYTHON / COMFYUI_PYTHONPATH as tests/comfy_harness.py describes) and
Debian's chromium; skips otherwise. Screenshots go to the test's temporary folder, or to the folder named
by RUNFLOW_SCREENSHOTS (RUNFLOW_SCREENSHOTS=docs refreshes the README's pictures: the classic ones from
the bundled frontend, the "-nodes2" ones from today's frontend in Nodes 2.0).
"""

from __future__ import annotations

import json
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from browser_support import (
    APP,
    CHROMIUM,
    CHROMIUM_ARGS,
    PHOTO,
    SETUPS,
    Shots,
    comfy_env,
    frontend_args,
    prepare,
    skip_reason,
    wait_until_idle,
    watch_page,
)
from comfy_harness import ComfyUI, appended_since_0_1_0
from PIL import Image
from redis_support import RedisServer, redis_server_binary

KEY = "rf_live_BROWSERKEY00001234"
MASKED = "rf_live_…1234"
CALLBACK_SECRET = "whsec_BROWSERSECRET00005678"
SECRET_MASKED = "whsec_…5678"
REDIS_PASSWORD = "BrowserRedisPass0000"
TEAM_BUDGET = "50"
# What must never leave the server's own files and environment, whole or in part.
SECRET_PARTS = (KEY, "BROWSERKEY0000", CALLBACK_SECRET, "BROWSERSECRET0000", REDIS_PASSWORD)
API = "(window.comfyAPI?.api?.api ?? window.app.api)"
BADGE = "1 image · free (emulator)"
TEMPLATE = "runflow_composite_on_background"




pytestmark = pytest.mark.skipif(skip_reason() is not None, reason=skip_reason() or "")

# Every string the page draws on the canvas, so the test can see the badge and status it cannot query.
RECORD_CANVAS_TEXT = """
(() => {
  const drawn = (window.__runflowDrawn = new Set());
  const fillText = CanvasRenderingContext2D.prototype.fillText;
  CanvasRenderingContext2D.prototype.fillText = function (text, ...rest) {
    if (drawn.size < 5000) drawn.add(String(text));
    return fillText.call(this, text, ...rest);
  };
})();
"""

BUILD_GRAPH = f"""
(nodes2) => {{
  const app = {APP};
  const LG = window.LiteGraph;
  app.graph.clear();
  const add = (type, pos) => {{
    const node = LG.createNode(type);
    node.pos = pos;
    app.graph.add(node);
    return node;
  }};
  const load = add("LoadImage", [40, 140]);
  load.widgets.find((w) => w.name === "image").value = "{PHOTO}";
  const iso = add("RunflowProductIsolation", [400, 140]);
  const save = add("SaveImage", [820, 140]);
  load.connect(0, iso, iso.findInputSlot("image"));
  iso.connect(iso.findOutputSlot("rgba"), save, 0);
  // Not connected to an output, so never executed: only its badge, which follows the upstream batch size.
  const empty = add("EmptyImage", [40, 520]);
  // Right below the node, title to bottom: the node's status must stay inside its own area, not cover this.
  // Nodes 2.0 sizes a node by its content, preview included, whatever its canvas size: lower there.
  const below = add("EmptyImage", [400, 140 + iso.size[1] + LG.NODE_TITLE_HEIGHT + (nodes2 ? 320 : 4)]);
  const preview = add("RunflowProductIsolation", [820, 560]);
  empty.widgets.find((w) => w.name === "batch_size").value = 2;
  empty.connect(0, preview, preview.findInputSlot("image"));
  app.canvas.ds.scale = 1;
  app.canvas.ds.offset = [0, 0];
  app.graph.setDirtyCanvas(true, true);
  const value = (name) => iso.widgets.find((w) => w.name === name).value;
  return {{
    iso: iso.id, empty: empty.id, below: below.id, concurrency: value("concurrency"), spend_limit: value("spend_limit"),
  }};
}}
"""








def open_runflow_settings(page: Any) -> Any:
    page.evaluate(f"{APP}.extensionManager.command.execute('Comfy.ShowSettingsDialog')")
    # The category is an "option" of a list in 1.27 and a "button" in today's frontend.
    category = page.get_by_role("option", name="Runflow", exact=True)
    category.or_(page.get_by_role("button", name="Runflow", exact=True)).first.click()
    dialog = page.locator("[role=dialog]").filter(has=page.locator(".runflow-key-field"))
    dialog.wait_for()
    return dialog


def save_key(page: Any, key: str) -> None:
    page.fill(".runflow-key-input", key)
    page.click(".runflow-key-save")
    page.wait_for_function(
        "(masked) => document.querySelector('.runflow-key-status').textContent.includes(masked)", arg=MASKED
    )
    assert page.input_value(".runflow-key-input") == ""


def run_connection_test(page: Any) -> str:
    page.evaluate("document.querySelector('.runflow-test-result').removeAttribute('data-ok')")
    page.click(".runflow-test-button")
    page.wait_for_selector(".runflow-test-result[data-ok]", timeout=60_000)
    return str(page.inner_text(".runflow-test-result"))


# The earlier toasts would cover the picture of the fleet settings (PrimeVue marks its toast root so in both frontends).
HIDE_TOASTS = ".p-toast, [data-pc-name='toast'], [data-toast-kind] { visibility: hidden !important; }"


def wait_for_text(page: Any, selector: str, text: str) -> None:
    page.wait_for_function(
        "([selector, text]) => document.querySelector(selector)?.textContent.includes(text)", arg=[selector, text]
    )


def shared_store_shown(page: Any, redis: RedisServer) -> None:
    """The fleet item: the address without its password, connected, and the fleet's spend of the budget."""
    page.wait_for_selector(".runflow-shared-store[data-tone]")
    text = str(page.inner_text(".runflow-shared-store"))
    assert page.get_attribute(".runflow-shared-store", "data-tone") == "ok", text
    assert f"redis://127.0.0.1:{redis.port}/0 (password set): connected" in text, text
    assert "Today (UTC), whole fleet: $0.00 of $50.00 spent" in text, text
    assert page.locator(".runflow-shared-store input, .runflow-shared-store select").count() == 0, "read-only"


def page_text(page: Any) -> str:
    """The page as markup, plus what its inputs hold (a typed value is not in the markup)."""
    values = page.evaluate("[...document.querySelectorAll('input, textarea')].map((e) => e.value)")
    return str(page.evaluate("document.documentElement.outerHTML")) + json.dumps(values)


def save_callback_secret(page: Any, comfy: ComfyUI) -> None:
    """Saved through the field: 0600 on the server, masked everywhere else, callbacks still off (no public URL)."""
    wait_for_text(page, ".runflow-callback-secret-status", "No callback secret set")
    wait_for_text(page, ".runflow-callback-secret-note", "RUNFLOW_PUBLIC_URL")
    page.fill(".runflow-callback-secret-input", CALLBACK_SECRET)
    page.click(".runflow-callback-secret-save")
    wait_for_text(page, ".runflow-callback-secret-status", f"Saved on the server: {SECRET_MASKED}")
    assert page.input_value(".runflow-callback-secret-input") == ""
    secret_file = comfy.user_dir / "runflow" / "callback_secret"
    assert secret_file.read_text() == CALLBACK_SECRET
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    status = comfy.get_json("/runflow/callback-secret")
    assert (status["masked"], status["source"], status["active"]) == (SECRET_MASKED, "file", False), status
    wait_for_text(page, ".runflow-callback-secret-note", "Callbacks are off: set RUNFLOW_PUBLIC_URL")
    assert_no_secret("GET /settings", comfy.session.get(f"{comfy.url}/settings", timeout=10).text)
    assert_no_secret("the page", page_text(page))
    assert_no_secret("the workflow", page.evaluate(f"JSON.stringify({APP}.graph.serialize())"))
    assert_no_secret("the browser's storage", browser_storage(page))


def clear_callback_secret(page: Any, comfy: ComfyUI) -> None:
    page.click(".runflow-callback-secret-clear")
    wait_for_text(page, ".runflow-callback-secret-status", "No callback secret set")
    assert not (comfy.user_dir / "runflow" / "callback_secret").exists()
    assert comfy.get_json("/runflow/callback-secret")["configured"] is False


def settings_flow(page: Any, comfy: ComfyUI, shots: Shots, redis: RedisServer) -> None:
    dialog = open_runflow_settings(page)
    page.wait_for_function("document.querySelector('.runflow-key-status').textContent.includes('No key set')")

    save_key(page, KEY)
    assert comfy.get_json("/runflow/key") == {"configured": True, "masked": MASKED, "source": "file"}
    page.click(".runflow-key-clear")
    page.wait_for_function("document.querySelector('.runflow-key-status').textContent.includes('No key set')")
    assert comfy.get_json("/runflow/key")["configured"] is False
    save_key(page, KEY)
    shared_store_shown(page, redis)
    save_callback_secret(page, comfy)

    # The fake key cannot reach the real service from here; the answer must still name a reason.
    real = run_connection_test(page)
    assert real.startswith("✗"), real

    page.select_option(".runflow-mode-select", "emulator")
    wait_for(lambda: comfy.get_json("/runflow/mode")["mode"] == "emulator", "the service switch to reach the server")
    dialog.screenshot(path=str(shots.path("settings-panel")))

    emulated = run_connection_test(page)
    assert "Connected to offline emulator" in emulated, emulated
    assert "Balance: $" in emulated and "runs:create" in emulated, emulated
    # The toast's summary on its own (the inline result has a "✓ " in front); 1.27 and 1.5x style toasts apart.
    page.get_by_text("Connected to offline emulator", exact=True).first.wait_for()
    page.screenshot(path=str(shots.path("connection-test")))
    page.locator(".runflow-shared-store").scroll_into_view_if_needed()
    dialog.screenshot(path=str(shots.path("settings-fleet")), style=HIDE_TOASTS)
    clear_callback_secret(page, comfy)
    page.keyboard.press("Escape")
    dialog.wait_for(state="hidden")


def canvas_clip(page: Any) -> dict[str, float]:
    """The graph's top left, down to the viewport's bottom: the isolation node whole, with its preview."""
    box = page.locator("canvas#graph-canvas").bounding_box()
    height = page.viewport_size["height"] - box["y"] - 60
    return {"x": box["x"], "y": box["y"] + 60, "width": 1240, "height": min(height, box["height"] - 60)}


def badge_shown(page: Any, text: str, *, nodes2: bool) -> None:
    """The frontend itself shows `text` on a node (our badge, a title, a label): drawn on the canvas
    (classic; for the badge, from `node.badges`), or rendered as DOM by the Vue node (Nodes 2.0), outside
    the pack's own status strip."""
    if nodes2:
        page.wait_for_function(
            "(text) => [...document.querySelectorAll('*')].some((e) => e.children.length === 0 &&"
            " e.textContent.trim() === text && !e.closest('.runflow-status'))",
            arg=text,
        )
    else:
        page.wait_for_function("(text) => window.__runflowDrawn.has(text)", arg=text)


def strip_text(page: Any, node_id: int) -> str:
    return str(page.evaluate(f"{APP}.graph.getNodeById({node_id}).runflow.strip.element.innerText"))


def node_flow(page: Any, comfy: ComfyUI, shots: Shots, *, nodes2: bool) -> None:
    for setting, value in (("Runflow.DefaultConcurrency", 3), ("Runflow.DefaultSpendLimit", 2.5)):
        page.evaluate(f"{APP}.extensionManager.setting.set('{setting}', {value})")
    page.wait_for_function(f"() => {APP}.graph.nodes.length > 0")  # the start-up workflow, before ours
    built = page.evaluate(BUILD_GRAPH, nodes2)
    assert (built["concurrency"], built["spend_limit"]) == (3, 2.5)  # the settings, applied by nodeCreated
    node = f"{APP}.graph.getNodeById({built['iso']})"
    badge_shown(page, BADGE, nodes2=nodes2)
    badge_shown(page, "2 images · free (emulator)", nodes2=nodes2)
    page.evaluate(f"{APP}.graph.getNodeById({built['empty']}).widgets.find((w) => w.name === 'batch_size').value = 3")
    badge_shown(page, "3 images · free (emulator)", nodes2=nodes2)  # the badge follows the graph
    strip = f"{node}.runflow.strip.element"
    assert page.evaluate(f"{strip}.isConnected && {strip}.offsetHeight > 0"), "the status strip is not on screen"
    serialized = page.evaluate(f"{APP}.graph.serialize().nodes.find((n) => n.id == {built['iso']}).widgets_values")
    # the strip is never saved; metadata and outputs (appended after 0.1.0) come last
    appended = [spec[1]["default"] for spec in appended_since_0_1_0().values()]  # from the declaration
    assert serialized == ["auto", "2K", "", "transparent", False, 2.5, 3, *appended], serialized

    page.evaluate(f"{APP}.queuePrompt(0, 1)")
    # The strip's text is read in the same frame that sees it running: on a loaded machine the 1 s run can
    # end before a later read (or the screenshot) gets its turn.
    running = page.wait_for_function(
        f"() => {strip}.dataset.tone === 'running' && {strip}.innerText", polling="raf", timeout=60_000
    )
    running_text = str(running.json_value())
    page.screenshot(path=str(shots.path("node-running")), clip=canvas_clip(page), style=HIDE_TOASTS)
    assert "/1 done" in running_text and "emulator" in running_text, running_text

    page.wait_for_function(f"() => {node}.runflow.summary && {strip}.dataset.tone === 'done'", timeout=120_000)
    after = strip_text(page, built["iso"])
    assert "Last run: 1 image" in after and "free (emulator)" in after, after
    page.screenshot(path=str(shots.path("node-after-run")), clip=canvas_clip(page), style=HIDE_TOASTS)
    if not nodes2:
        check_status_inside_node(page, built)
    summary = page.evaluate(f"{node}.runflow.summary")
    assert summary["images"] == 1 and summary["emulator"] is True, summary
    wait_until_idle(comfy)  # our node reports before Save Image downstream has written its PNG


NODE_AREA = f"""
(ids) => {{
  const graph = {APP}.graph;
  const [iso, below] = [graph.getNodeById(ids.iso), graph.getNodeById(ids.below)];
  const place = (widget) =>
    widget && {{ name: widget.name, top: widget.last_y, end: widget.last_y + (widget.computedHeight ?? 0) }};
  const strip = iso.widgets.findIndex((widget) => widget.name === "runflow_status");
  return {{
    bottom: iso.pos[1] + iso.size[1],
    belowTop: below.pos[1] - window.LiteGraph.NODE_TITLE_HEIGHT,
    strip: place(iso.widgets[strip]),
    after: iso.widgets.slice(strip + 1).map(place),
    previewImages: iso.imgs?.length ?? 0,
    height: iso.size[1],
  }};
}}
"""


def check_status_inside_node(page: Any, built: dict[str, Any]) -> None:
    """After a run, the node shows its own strip and then the newest cut-out (ComfyUI's canvas image preview,
    the only widget allowed after the strip), both inside the node's area, in the room the extension kept
    for the preview: the node has not grown over the one below (ComfyUI's progress text once did)."""
    area = page.evaluate(NODE_AREA, built)
    assert area["strip"] is not None and area["strip"]["end"] <= area["height"] + 1, area
    assert area["previewImages"] >= 1, f"no cut-out was shown on the node while it ran: {area}"
    assert [widget["name"] for widget in area["after"]] == ["$$canvas-image-preview"], area
    preview = area["after"][0]
    assert area["strip"]["end"] <= preview["top"] + 1 and preview["end"] <= area["height"] + 1, area
    assert area["bottom"] <= area["belowTop"], f"the isolation node now covers the node below it: {area}"


def template_flow(page: Any, comfy: ComfyUI, shots: Shots) -> None:
    """One of the pack's templates, loaded by the frontend as a user would open it, runs unchanged."""
    templates = comfy.get_json("/api/workflow_templates")
    assert TEMPLATE in templates.get("runflow-product-isolation", []), templates
    workflow = requests.get(f"{comfy.url}/api/workflow_templates/runflow-product-isolation/{TEMPLATE}.json", timeout=10)
    workflow.raise_for_status()
    before = {entry for entry in comfy.get_json("/history")}
    page.evaluate(f"(workflow) => {APP}.loadGraphData(workflow)", workflow.json())
    page.evaluate(f"{APP}.queuePrompt(0, 1)")
    wait_until_idle(comfy, timeout=120)
    new = [entry for prompt_id, entry in comfy.get_json("/history").items() if prompt_id not in before]
    assert len(new) == 1 and new[0]["status"]["status_str"] == "success", new
    page.evaluate(f"{APP}.canvas.ds.offset[1] += 40; {APP}.graph.setDirtyCanvas(true, true)")  # clear of the tabs
    page.wait_for_timeout(500)  # the Save Image previews
    # The README's picture shows the product working: the settings steps' toasts (an unreachable real
    # service, by design of the scenario) are not part of it.
    page.screenshot(path=str(shots.path("graph")), style=HIDE_TOASTS)


def wait_for(condition: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:g} s for {what}")
        time.sleep(0.1)




def assert_no_secret(where: str, text: str | bytes) -> None:
    data = text.encode("utf-8", "replace") if isinstance(text, str) else text
    for part in SECRET_PARTS:
        assert part.encode() not in data, f"a credential ({part}) leaked into {where}"


def browser_storage(page: Any) -> str:
    return str(page.evaluate("JSON.stringify({local: {...localStorage}, session: {...sessionStorage}})"))


def check_nothing_leaked(page: Any, comfy: ComfyUI) -> None:
    workflow = page.evaluate(f"JSON.stringify({APP}.graph.serialize())")
    page.evaluate(f"{API}.storeUserData('workflows/runflow-browser-test.json', {APP}.graph.serialize())")
    assert_no_secret("the workflow", workflow)
    assert_no_secret("the browser's storage", browser_storage(page))
    assert_no_secret("the page", page_text(page))
    assert_no_secret("GET /settings", comfy.session.get(f"{comfy.url}/settings", timeout=10).text)

    key_file = comfy.user_dir / "runflow" / "api_key"
    assert key_file.read_text() == KEY
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert (comfy.user_dir / "default" / "workflows" / "runflow-browser-test.json").exists()
    for folder in (comfy.user_dir, comfy.output_dir, comfy.base_dir / "temp"):
        for path in folder.rglob("*"):
            if path.is_file() and path != key_file:
                assert_no_secret(str(path), path.read_bytes())

    pngs = list(comfy.output_dir.rglob("*.png"))
    assert pngs, "Save Image wrote no PNG"
    for png in pngs:
        with Image.open(png) as image:
            assert {"prompt", "workflow"} <= set(image.text), image.text.keys()
            assert_no_secret(f"the metadata of {png.name}", json.dumps(image.text))

    log = comfy.log_text()
    assert MASKED in log and SECRET_MASKED in log  # the routes log the masked forms: the log was captured
    assert_no_secret("the server log", log)


def check_foreign_requests_refused(comfy: ComfyUI) -> None:
    before = (comfy.user_dir / "runflow" / "api_key").read_text()
    for path in ("/runflow/key", "/api/runflow/key"):
        answer = requests.post(
            f"{comfy.url}{path}", json={"key": "rf_live_EVILKEY000000000000"},
            headers={"Origin": "http://evil.example"}, timeout=10,
        )  # fmt: skip
        assert answer.status_code == 403, (path, answer.status_code, answer.text)
    form = requests.post(f"{comfy.url}/runflow/key", data={"key": "rf_live_EVILKEY000000000000"}, timeout=10)
    assert form.status_code == 415
    assert (comfy.user_dir / "runflow" / "api_key").read_text() == before








@pytest.fixture
def fleet_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A real redis-server with a password, so the test can see the password kept out of everything."""
    binary = redis_server_binary()
    if binary is None:
        pytest.fail("No redis-server found: run ./run.sh test (the test extra ships one), or install redis-server.")
    workdir = tmp_path / "redis"
    workdir.mkdir()
    server = RedisServer(binary, workdir, password=REDIS_PASSWORD)
    server.start()
    yield server
    server.kill()


@pytest.mark.parametrize(
    ("frontend", "nodes2"), SETUPS, ids=[f"{fe}-{'nodes2' if vue else 'classic'}" for fe, vue in SETUPS]
)
def test_settings_key_connection_and_node_in_a_real_browser(
    tmp_path: Path, frontend: str, nodes2: bool, fleet_redis: RedisServer
) -> None:
    from playwright.sync_api import sync_playwright

    base = tmp_path / "comfy"
    shots = Shots(tmp_path, frontend, nodes2)
    fleet = {"RUNFLOW_SHARED_STORE": fleet_redis.url, "RUNFLOW_TEAM_BUDGET": TEAM_BUDGET}
    with ComfyUI(env={**comfy_env(base), **fleet}, base_dir=base, extra_args=frontend_args(frontend)) as comfy:
        prepare(comfy, nodes2=nodes2)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                page.add_init_script(RECORD_CANVAS_TEXT)
                problems = watch_page(page)
                page.goto(comfy.url)
                page.wait_for_function(f"() => {APP}?.graph && window.LiteGraph", timeout=60_000)
                assert page.evaluate(f"{APP}.extensionManager.setting.get('Comfy.VueNodes.Enabled')") is nodes2
                settings_flow(page, comfy, shots, fleet_redis)
                node_flow(page, comfy, shots, nodes2=nodes2)
                check_nothing_leaked(page, comfy)
                template_flow(page, comfy, shots)
            finally:
                browser.close()
        assert problems == [], problems
        check_foreign_requests_refused(comfy)


@pytest.mark.parametrize(
    ("frontend", "nodes2"), SETUPS, ids=[f"{fe}-{'nodes2' if vue else 'classic'}" for fe, vue in SETUPS]
)
def test_the_pack_speaks_the_users_language(tmp_path: Path, frontend: str, nodes2: bool) -> None:
    """With ComfyUI's language set to Simplified Chinese, the frontend shows the node's translated name
    and input labels (locales/zh/nodeDefs.json) and the extension its badge and strip in Chinese."""
    from playwright.sync_api import sync_playwright

    base = tmp_path / "comfy"
    with ComfyUI(env=comfy_env(base), base_dir=base, extra_args=frontend_args(frontend)) as comfy:
        prepare(comfy, nodes2=nodes2)
        comfy.post_json("/settings/Comfy.Locale", "zh").raise_for_status()
        comfy.post_json("/runflow/mode", {"mode": "emulator"}).raise_for_status()
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                page.add_init_script(RECORD_CANVAS_TEXT)
                page.goto(comfy.url)
                page.wait_for_function(
                    "() => window.LiteGraph?.registered_node_types?.RunflowProductIsolation", timeout=60_000
                )
                # The start-up (default) workflow must be in before ours replaces it, or it replaces ours.
                page.wait_for_function(f"() => {APP}.graph.nodes.length > 0", timeout=60_000)
                built = page.evaluate(BUILD_GRAPH, nodes2)
                # What the frontend translates itself (title, input label) and what the extension does.
                for text in ("Runflow 产品抠图", "宽高比", "1 张图像 · 免费（模拟器）"):
                    badge_shown(page, text, nodes2=nodes2)
                strip = f"{APP}.graph.getNodeById({built['iso']}).runflow.strip.element"
                page.wait_for_function(f"() => {strip}.innerText.includes('尚未运行')")
                page.screenshot(path=str(tmp_path / "zh.png"))
            finally:
                browser.close()


# -- ComfyUI on a rented GPU box, reached by the name of the provider's proxy (issue #25) ------------------
#
# A cloud user starts ComfyUI with `--listen 0.0.0.0` and opens it as `abc123-8188.proxy.runpod.net` or
# the like. Here Chromium maps a made-up name of that shape to this machine (`--host-resolver-rules`), so
# every request the page sends carries that name as Host and Origin, exactly as through a proxy:
#
# - on a ComfyUI listening on every interface, the whole settings panel works under that name (save a key,
#   test the connection on the emulator, read the ledger, clear the key), and a run shows its badge and
#   status on the node;
# - on a ComfyUI listening on loopback only (the default, a desktop), the same name is what a DNS-rebinding
#   page would send: the panel shows the refusal with what to do, and no key is written.

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

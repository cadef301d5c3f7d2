"""The pack inside a real ComfyUI: it loads, its nodes are listed, and every example workflow runs.

Runs only when COMFYUI_DIR points at a ComfyUI checkout (COMFYUI_PYTHON / COMFYUI_PYTHONPATH pick its
interpreter and extra import paths); the harness's interpreter check runs always. ComfyUI talks to the
pack's in-process emulator, so nothing is paid and no network is used. A recognisable fake key is put in
ComfyUI's environment to prove that it never reaches a saved PNG or the prompt history.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pillow_heif
import pytest
from comfy_harness import (
    COMFYUI_DIR_ENV,
    COMFYUI_PYTHON_ENV,
    NODES_ADDED_SINCE_0_1_0,
    PACK_DIR,
    ComfyUI,
    ComfyUIUnavailable,
    emulator_env,
    node_contract,
    promised_object_info,
    ui_to_api,
)
from PIL import Image

FAKE_KEY = "rf_live_SECRETSECRET1234"
NODE_IDS = {"RunflowProductIsolation", "RunflowProductIsolationFromURL", "RunflowStageImage", *NODES_ADDED_SINCE_0_1_0}
WORKFLOWS = sorted((PACK_DIR / "example_workflows").glob("*.json"))
# What each example saves: SaveImage filename_prefix -> (PNG mode, size, batch size).
EXPECTED_SAVES = {
    "runflow_isolate_transparent_png": {"runflow/isolated": ("RGBA", None, 1)},
    "runflow_batch_white_background": {"runflow/white": ("RGB", (1024, 1024), 2)},
    "runflow_composite_on_background": {
        "runflow/composite": ("RGB", (1024, 768), 1),
        "runflow/joined": ("RGBA", (1024, 768), 1),
    },
    # Issue #37: input_mask, the product in place on the photo (mug.jpg is 900 x 900).
    "runflow_keep_product_change_background": {
        "runflow/in_place": ("RGB", (900, 900), 1),
        "runflow/cutout_in_place": ("RGBA", (900, 900), 1),
    },
    # Marketplace files are JPEGs of each preset's size (checked apart below): Amazon, Instagram portrait, Pinterest.
    "runflow_marketplace_files": {"runflow/sneaker": ("RGB", None, 3)},
}
MARKETPLACE_SIZES = {"amazon": (2000, 2000), "instagram-portrait": (1080, 1350), "pinterest": (1000, 1500)}


@pytest.fixture(scope="module")
def comfy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComfyUI]:
    """A real ComfyUI with the pack. Without COMFYUI_DIR these tests skip, saying so. With COMFYUI_DIR
    set but an interpreter that cannot run ComfyUI they *fail*, naming COMFYUI_PYTHON: whoever set
    COMFYUI_DIR asked for these tests, and a skip would let a misconfigured CI pass without running them."""
    if not os.environ.get(COMFYUI_DIR_ENV):
        pytest.skip("set COMFYUI_DIR to a ComfyUI checkout to run the real-ComfyUI tests")
    state = tmp_path_factory.mktemp("runflow-state")
    server = ComfyUI(
        env={
            "RUNFLOW_MODE": "emulator",
            "RUNFLOW_EMULATOR_LATENCY": "0.3",
            "RUNFLOW_DATA_DIR": str(state / "data"),
            "RUNFLOW_CACHE_DIR": str(state / "cache"),
            "RUNFLOW_KEY_FILE": str(state / "api_key"),
            "RUNFLOW_API_KEY": FAKE_KEY,
        }
    )
    for sample in (PACK_DIR / "examples").iterdir():
        if sample.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp"):
            server.input_dir.mkdir(parents=True, exist_ok=True)
            shutil.copy(sample, server.input_dir / sample.name)
    yield from server.serve()


@pytest.fixture(scope="module")
def object_info(comfy: ComfyUI) -> dict[str, Any]:
    return comfy.object_info()


def test_comfyui_loads_the_pack_and_lists_its_nodes(comfy: ComfyUI, object_info: dict[str, Any]) -> None:
    assert set(object_info) >= NODE_IDS, comfy.log_text()[-3000:]
    failed = [line for line in comfy.log_text().splitlines() if "IMPORT FAILED" in line]
    assert not [line for line in failed if comfy.pack_folder_name in line], failed
    node = object_info["RunflowProductIsolation"]
    assert node["display_name"] == "Runflow Product Isolation" and node["category"] == "Runflow"
    assert node["output_name"] == ["image", "mask", "rgba", "run_info", "input_mask"]
    assert not node.get("api_node")
    assert comfy.get_json("/runflow/price")["per_image"] == "0.27", "__init__ did not register the routes"
    templates = comfy.get_json("/api/workflow_templates")
    assert sorted(templates.get("runflow-product-isolation", [])) == [path.stem for path in WORKFLOWS]


def test_the_v3_nodes_keep_the_0_1_0_contract_plus_the_appended_inputs(
    comfy: ComfyUI, object_info: dict[str, Any]
) -> None:
    """The nodes come from the V3 schema (a dropdown is spelled "COMBO" only there) and promise what
    0.1.0 did: ids, input names and order, choices, defaults, limits, outputs and texts
    (tests/fixtures/object_info_0.1.0.json, recorded from this ComfyUI before the move), plus the
    `metadata` and `outputs` inputs appended to the isolation nodes, and nothing else."""
    for node_id, promised in promised_object_info().items():
        assert node_contract(object_info[node_id]) == node_contract(promised), node_id
    assert object_info["RunflowProductIsolation"]["input"]["required"]["aspect_ratio"][0] == "COMBO", "not V3"
    assert object_info["RunflowProductIsolation"]["input"]["optional"]["outputs"][0] == "COMBO", "not V3"
    assert "no V3 node API" not in comfy.log_text()


def test_comfyui_serves_the_translations_and_the_help_pages(comfy: ComfyUI, object_info: dict[str, Any]) -> None:
    """GET /i18n merges locales/ (what the frontend translates nodes and settings from), and the help
    panel fetches /extensions/<folder of python_module>/docs/<NodeId>.md."""
    i18n = comfy.get_json("/i18n")
    assert i18n["zh"]["nodeDefs"]["RunflowProductIsolation"]["display_name"] == "Runflow 产品抠图"
    assert i18n["ja"]["settings"]["Runflow_ApiKey"]["name"] == "API キー"
    assert i18n["ja"]["runflow"]["key"]["save"] == "保存" and i18n["en"]["settingsCategories"]["Runflow"] == "Runflow"
    folder = object_info["RunflowProductIsolation"]["python_module"].split(".", 1)[1]
    for node_id in NODE_IDS:
        for path in (f"{node_id}.md", f"{node_id}/zh.md", f"{node_id}/ja.md"):
            page = comfy.session.get(f"{comfy.url}/extensions/{folder}/docs/{path}", timeout=10)
            assert page.status_code == 200 and page.text.startswith("# "), (path, page.status_code)
    image = comfy.session.get(f"{comfy.url}/extensions/{folder}/docs/images/isolation-example.jpg", timeout=10)
    assert image.status_code == 200 and image.headers["Content-Type"] == "image/jpeg"


@pytest.mark.parametrize("path", WORKFLOWS, ids=[path.stem for path in WORKFLOWS])
def test_example_workflow_runs_and_saves_without_the_key(
    comfy: ComfyUI, object_info: dict[str, Any], path: Path
) -> None:
    workflow = json.loads(path.read_text(encoding="utf-8"))
    entry = comfy.run_workflow(workflow, timeout=180, object_info=object_info)
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"], indent=1)[-3000:]
    saved: dict[str, list[Path]] = {}
    for file in comfy.output_files(entry):
        if file.parent.name == "runflow":
            saved.setdefault(f"runflow/{file.name.rsplit('_', 2)[0]}", []).append(file)
    expected = EXPECTED_SAVES[path.stem]
    assert set(saved) == set(expected)
    for prefix, (mode, size, count) in expected.items():
        assert len(saved[prefix]) == count
        for file in saved[prefix]:
            with Image.open(file) as image:
                assert image.mode == mode, f"{file.name}: {image.mode}"
                if size:
                    assert image.size == size
                if mode == "RGBA":
                    low, high = image.getchannel("A").getextrema()
                    assert low == 0 and high == 255, "a transparent background and an opaque product"
                else:
                    darkest = min(low for low, _ in image.getextrema())
                    assert darkest < 128, f"{file.name} shows no product"
                if image.format == "JPEG":  # a marketplace file: its preset's size, white at the corner
                    assert image.size == MARKETPLACE_SIZES[file.name.rsplit("_", 2)[1]]
                    assert image.getpixel((0, 0)) == (255, 255, 255)
                    continue
                text = json.dumps(dict(image.text))
            assert "workflow" in image.text and "prompt" in image.text
            assert FAKE_KEY not in text and FAKE_KEY[-8:] not in text
    history = json.dumps(comfy.get_json("/history"))
    assert FAKE_KEY not in history and FAKE_KEY[-8:] not in history
    assert FAKE_KEY not in json.dumps(workflow)
    assert FAKE_KEY not in comfy.log_text() and FAKE_KEY[-8:] not in comfy.log_text()


def test_a_second_execution_is_served_from_the_cache(comfy: ComfyUI, object_info: dict[str, Any]) -> None:
    """Changing a widget that is not part of the result's identity (concurrency) makes ComfyUI execute
    the node again instead of reusing its in-memory output; the pack's cache must then answer."""
    path = PACK_DIR / "example_workflows" / "runflow_isolate_transparent_png.json"
    workflow = json.loads(path.read_text(encoding="utf-8"))
    node = next(node for node in workflow["nodes"] if node["type"] == "RunflowProductIsolation")
    summaries = []
    for concurrency in (7, 6):
        node["widgets_values"][-1] = concurrency
        entry = comfy.run_workflow(workflow, timeout=120, object_info=object_info)
        assert entry["status"]["status_str"] == "success"
        summaries.extend(entry["outputs"][str(node["id"])]["runflow"])
    assert summaries[-1]["cached"] == 1 and summaries[-1]["paid_runs"] == 0
    assert summaries[-1]["emulator"] is True and summaries[-1]["cost"] == "0.00"


def test_a_nan_spend_limit_is_refused_by_the_v3_node_before_any_run(
    comfy: ComfyUI, object_info: dict[str, Any]
) -> None:
    """NaN passes ComfyUI's range check and its JSON parser (infinity does not pass the range check); the
    node refuses it before anything is paid."""
    path = PACK_DIR / "example_workflows" / "runflow_isolate_transparent_png.json"
    workflow = json.loads(path.read_text(encoding="utf-8"))
    prompt = ui_to_api(workflow, object_info)
    node_id = next(key for key, node in prompt.items() if node["class_type"] == "RunflowProductIsolation")
    prompt[node_id]["inputs"]["spend_limit"] = float("nan")
    prompt[node_id]["inputs"]["force_rerun"] = True  # a cached result would cost nothing anyway
    runs_before = comfy.get_json("/runflow/ledger")["all_runs"]
    body = json.dumps({"prompt": prompt, "client_id": "runflow-tests"})  # NaN/Infinity literals, as JS can send
    queued = comfy.session.post(f"{comfy.url}/prompt", data=body, headers={"Content-Type": "application/json"},
                                timeout=30)
    assert queued.ok, queued.text
    entry = comfy.wait_history(str(queued.json()["prompt_id"]), timeout=120)
    assert entry["status"]["status_str"] == "error"
    errors = json.dumps(entry["status"]["messages"])
    assert "Input 'spend_limit'" in errors and "finite number" in errors, errors[-2000:]
    assert comfy.get_json("/runflow/ledger")["all_runs"] == runs_before


def created_runs(journal: Path) -> list[str]:
    """Run ids the pack's journal holds: a run Runflow has created (and would bill) and not yet collected."""
    runs = []
    for path in journal.glob("*.json"):
        try:
            run_id = json.loads(path.read_text(encoding="utf-8")).get("run_id")
        except (OSError, ValueError):
            continue  # being replaced right now
        if run_id:
            runs.append(run_id)
    return runs


def test_cancel_interrupts_a_v3_node_at_once_and_the_next_run_collects_the_paid_run(tmp_path: Path) -> None:
    """Through the V3 node in a real ComfyUI: Cancel (POST /interrupt) while the run is at Runflow ends the
    prompt as interrupted within a second, and queueing again resumes that run instead of paying again."""
    if not os.environ.get(COMFYUI_DIR_ENV):
        pytest.skip("set COMFYUI_DIR to a ComfyUI checkout to run the real-ComfyUI tests")
    data = tmp_path / "data"
    env = {"RUNFLOW_MODE": "emulator", "RUNFLOW_EMULATOR_LATENCY": "6", "RUNFLOW_DATA_DIR": str(data),
           "RUNFLOW_CACHE_DIR": str(tmp_path / "cache"), "RUNFLOW_KEY_FILE": str(tmp_path / "no_key")}  # fmt: skip
    workflow = json.loads((PACK_DIR / "example_workflows" / "runflow_isolate_transparent_png.json").read_text())
    with ComfyUI(env=env) as server:
        server.input_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy(PACK_DIR / "examples" / "sneaker.jpg", server.input_dir / "sneaker.jpg")
        info = server.object_info()
        prompt = ui_to_api(workflow, info)
        prompt_id = server.queue_prompt(prompt)
        entry, seconds = server.cancel_once(prompt_id, lambda: bool(created_runs(data / "journal")))
        assert entry["status"]["status_str"] == "error"
        assert any(message[0] == "execution_interrupted" for message in entry["status"]["messages"]), entry
        assert seconds < 1.5, f"Cancel took {seconds:.2f} s"
        [run_id] = created_runs(data / "journal")

        again = server.wait_history(server.queue_prompt(prompt), timeout=60)
        assert again["status"]["status_str"] == "success"
        node = next(node for node in workflow["nodes"] if node["type"] == "RunflowProductIsolation")
        [summary] = again["outputs"][str(node["id"])]["runflow"]
        assert (summary["resumed"], summary["paid_runs"], summary["images"]) == (1, 1, 1), summary
        assert created_runs(data / "journal") == [], f"run {run_id} was not collected"


def test_outputs_all_and_metadata_through_a_v3_node(tmp_path: Path) -> None:
    """A real ComfyUI talking to an emulator of this test whose runs return 3 images: `outputs` = all
    saves all 3, run_info (shown by ComfyUI's PreviewAny) names input and output of each, the create
    carries the user's metadata with ComfyUI's node and prompt ids, and bad metadata is refused by
    ComfyUI's own validation when queued, before any request."""
    if not os.environ.get(COMFYUI_DIR_ENV):
        pytest.skip("set COMFYUI_DIR to a ComfyUI checkout to run the real-ComfyUI tests")
    from runflow_api import __version__
    from runflow_api.emulator import Emulator

    key = "rf_live_emulator_all_outputs"
    with Emulator(api_key=key, latency=0.3, port=0) as emu:
        emu.faults.output_count = 3
        with ComfyUI(env=emulator_env(emu.base_url, key, tmp_path)) as server:
            server.input_dir.mkdir(parents=True, exist_ok=True)
            shutil.copy(PACK_DIR / "examples" / "sneaker.jpg", server.input_dir / "sneaker.jpg")

            def prompt(metadata: str) -> dict[str, Any]:
                isolation = {"image": ["1", 0], "aspect_ratio": "1:1", "resolution": "1K", "metadata": metadata,
                             "outputs": "all"}  # fmt: skip
                return {
                    "1": {"class_type": "LoadImage", "inputs": {"image": "sneaker.jpg"}},
                    "2": {"class_type": "RunflowProductIsolation", "inputs": isolation},
                    "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 2], "filename_prefix": "runflow/all"}},
                    "4": {"class_type": "PreviewAny", "inputs": {"source": ["2", 3]}},
                }

            prompt_id = server.queue_prompt(prompt('{"sku": "SNK-1", "campaign": "spring"}'))
            entry = server.wait_history(prompt_id, timeout=120)
            assert entry["status"]["status_str"] == "success", json.dumps(entry["status"], indent=1)[-3000:]
            saved = [file for file in server.output_files(entry) if file.parent.name == "runflow"]
            assert len(saved) == 3
            sizes = set()
            for file in saved:
                with Image.open(file) as image:
                    assert image.mode == "RGBA"
                    sizes.add(image.size)
            assert sizes == {(1024, 1024)}
            info = [json.loads(line) for line in entry["outputs"]["4"]["text"][0].splitlines()]
            assert [(line["index"], line["input"], line["output"], line["outputs"]) for line in info] == [
                (0, 0, 1, 3), (1, 0, 2, 3), (2, 0, 3, 3),
            ]  # fmt: skip
            [run] = emu.runs.values()
            assert run.metadata == {"pack": "runflow-product-isolation", "pack_version": __version__,
                                    "source": "comfyui", "comfyui_node_id": "2", "comfyui_prompt_id": prompt_id,
                                    "sku": "SNK-1", "campaign": "spring"}  # fmt: skip
            assert entry["outputs"]["2"]["runflow"][0]["images"] == 1

            requests_before = emu.stats["requests"]
            with pytest.raises(RuntimeError) as refused:
                server.queue_prompt(prompt('{"sku": 12}'))
            assert "input 'metadata'" in str(refused.value) and "must be a string" in str(refused.value)
            assert emu.stats["requests"] == requests_before, "refused when queued, before any request"
            assert key not in server.log_text()


# -- only the outputs the graph connects are built (issue #24) ---------------------------------------------
# ComfyUI hands the V3 node its prompt and id as hidden inputs; the node reports what it built in its ui
# payload (`outputs_built`). The outputs in use are compared, pixel for pixel as saved, with a run where all
# three are connected; that run also proves that connecting another output makes ComfyUI run the node
# again (its fingerprint carries the links) instead of answering from its cache with a stand-in.


def linked_prompt(saves: dict[str, list[Any]]) -> dict[str, Any]:
    """sneaker.jpg -> isolation (1K 1:1) -> one SaveImage per entry (prefix -> the image to save; ["3", 0]
    is the mask through MaskToImage)."""
    graph: dict[str, Any] = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "sneaker.jpg"}},
        "2": {
            "class_type": "RunflowProductIsolation",
            "inputs": {"image": ["1", 0], "aspect_ratio": "1:1", "resolution": "1K"},
        },  # fmt: skip
    }
    if ["3", 0] in saves.values():
        graph["3"] = {"class_type": "MaskToImage", "inputs": {"mask": ["2", 1]}}
    for number, (prefix, image) in enumerate(saves.items(), 10):
        graph[str(number)] = {"class_type": "SaveImage", "inputs": {"images": image, "filename_prefix": prefix}}
    return graph


def run_linked(comfy: ComfyUI, saves: dict[str, list[Any]]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The node's ui summary, and each saved image's pixels by prefix."""
    entry = comfy.wait_history(comfy.queue_prompt(linked_prompt(saves)), timeout=180)
    assert entry["status"]["status_str"] == "success", json.dumps(entry["status"], indent=1)[-3000:]
    saved = {}
    for file in comfy.output_files(entry):
        with Image.open(file) as image:
            saved[file.name.rsplit("_", 2)[0]] = np.asarray(image)
    return entry["outputs"]["2"]["runflow"][0], saved


def test_an_unused_rgba_is_not_built_and_the_outputs_in_use_are_right(comfy: ComfyUI) -> None:
    image_and_mask = {"image_a": ["2", 0], "mask_a": ["3", 0]}
    summary, used = run_linked(comfy, image_and_mask)
    assert summary["outputs_built"] == ["image", "mask"], "the V3 node saw its prompt: rgba was left out"

    summary, everything = run_linked(comfy, {"image_b": ["2", 0], "mask_b": ["3", 0], "rgba_b": ["2", 2]})
    assert summary["outputs_built"] == ["image", "mask", "rgba"], "a newly connected rgba made ComfyUI run it again"
    assert summary["cached"] == 1 and summary["paid_runs"] == 0, "the result itself came from the pack's cache"
    assert everything["rgba_b"].shape == (1024, 1024, 4), "the real rgba, not a cached 1x1 stand-in"
    assert np.array_equal(used["image_a"], everything["image_b"])
    assert np.array_equal(used["mask_a"], everything["mask_b"])
    assert used["image_a"].shape == (1024, 1024, 3) and 0 < used["mask_a"].mean() < 255

    summary, _ = run_linked(comfy, {"rgba_c": ["2", 2]})
    assert summary["outputs_built"] == ["rgba"]


# -- the harness refuses an interpreter that cannot run ComfyUI, before starting it ----------------------


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A real interpreter with nothing installed: what COMFYUI_PYTHON unset gives when the test venv
    lacks ComfyUI's dependencies."""
    venv = tmp_path_factory.mktemp("bare-venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    return str(venv / "bin" / "python")


@pytest.fixture
def fake_checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder that passes for a ComfyUI checkout; its main.py leaves a mark if anyone ever runs it."""
    checkout = tmp_path / "ComfyUI"
    checkout.mkdir()
    (checkout / "main.py").write_text("open('STARTED', 'w').close()\n")
    monkeypatch.setenv(COMFYUI_DIR_ENV, str(checkout))
    return checkout


def test_an_interpreter_without_comfyuis_modules_is_named_before_comfyui_starts(
    bare_python: str, fake_checkout: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(COMFYUI_PYTHON_ENV, bare_python)
    server = ComfyUI()
    with pytest.raises(ComfyUIUnavailable) as caught:
        server.start()
    message = str(caught.value)
    assert COMFYUI_PYTHON_ENV in message and bare_python in message
    assert "torch" in message and "aiohttp" in message and "yaml" in message
    assert not (fake_checkout / "STARTED").exists(), "ComfyUI was started anyway"
    assert not server.base_dir.exists(), "the temporary base directory was left behind"


def test_an_unset_comfyui_python_falls_back_to_this_python_and_says_so(
    bare_python: str, fake_checkout: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reported failure: COMFYUI_DIR set, COMFYUI_PYTHON not, and the tests' Python lacks ComfyUI's
    modules (here a bare interpreter stands in for the tests' own)."""
    monkeypatch.delenv(COMFYUI_PYTHON_ENV, raising=False)
    monkeypatch.setattr(sys, "executable", bare_python)
    with pytest.raises(ComfyUIUnavailable) as caught:
        ComfyUI().start()
    assert f"Set {COMFYUI_PYTHON_ENV} (it is unset, so the tests' own Python was used)" in str(caught.value)
    assert not (fake_checkout / "STARTED").exists()


def test_a_comfyui_python_that_does_not_exist_is_named(
    fake_checkout: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "no-such-python"
    monkeypatch.setenv(COMFYUI_PYTHON_ENV, str(missing))
    with pytest.raises(ComfyUIUnavailable) as caught:
        ComfyUI().start()
    assert f"{missing} cannot be run" in str(caught.value) and COMFYUI_PYTHON_ENV in str(caught.value)
    assert not (fake_checkout / "STARTED").exists()


def test_load_photo_lists_uploads_and_reads_a_heic(comfy: ComfyUI, object_info: dict[str, Any]) -> None:
    """Runflow Load Photo in a real ComfyUI (issue #32): its dropdown lists the input folder's photos and
    carries the upload button; ComfyUI's upload route takes a HEIC; the node reads it when pillow-heif is
    installed in ComfyUI's Python, and otherwise fails naming the install command, before any run."""
    spec = object_info["RunflowLoadPhoto"]["input"]["required"]["image"]
    assert spec[0] == "COMBO" and spec[1].get("image_upload") is True, spec
    assert "sneaker.jpg" in spec[1]["options"]
    flat = Image.new("RGB", (64, 48), (200, 60, 50))
    heic = io.BytesIO()
    pillow_heif.from_pillow(flat).save(heic, quality=95)
    uploaded = comfy.session.post(f"{comfy.url}/upload/image", files={"image": ("IMG_0001.HEIC", heic.getvalue())},
                                  data={"overwrite": "true"}, timeout=30)
    assert uploaded.ok, uploaded.text
    name = uploaded.json()["name"]
    assert name in comfy.object_info()["RunflowLoadPhoto"]["input"]["required"]["image"][1]["options"]
    prompt = {"1": {"class_type": "RunflowLoadPhoto", "inputs": {"image": name}},
              "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "runflow/heic"}}}
    entry = comfy.wait_history(comfy.queue_prompt(prompt), timeout=120)
    env = {**os.environ, "PYTHONPATH": comfy.pythonpath} if comfy.pythonpath else None  # as the server has it
    has_heif = subprocess.run([comfy.python, "-c", "import pillow_heif"], env=env, capture_output=True).returncode == 0
    if has_heif:
        assert entry["status"]["status_str"] == "success", json.dumps(entry["status"])[-2000:]
        [saved] = comfy.output_files(entry)
        with Image.open(saved) as image:
            assert image.size == (64, 48)
    else:
        assert entry["status"]["status_str"] == "error"
        assert "pip install pillow-heif" in json.dumps(entry["status"]["messages"])


def test_the_nodes_stay_listed_and_run_with_api_nodes_disabled(
    tmp_path: Path, object_info: dict[str, Any]
) -> None:
    """`--disable-api-nodes` is for Comfy.org's own billed nodes; the Runflow nodes are not API nodes
    (they never get the user's Comfy.org token) and carry no native price badge, so the flag leaves them
    listed and runnable. The flag did take effect: ComfyUI's own API nodes, listed without it, are gone."""
    assert [name for name, entry in object_info.items() if entry.get("api_node")], "no API nodes to compare with"
    with ComfyUI(env={"RUNFLOW_MODE": "emulator", "RUNFLOW_EMULATOR_LATENCY": "0.1",
                      "RUNFLOW_DATA_DIR": str(tmp_path / "data"), "RUNFLOW_CACHE_DIR": str(tmp_path / "cache"),
                      "RUNFLOW_KEY_FILE": str(tmp_path / "api_key")},
                 extra_args=("--disable-api-nodes",)) as comfy:  # fmt: skip
        listed = comfy.object_info()
        assert not [name for name, entry in listed.items() if entry.get("api_node")]
        for node_id in NODE_IDS:
            assert not listed[node_id].get("api_node") and not listed[node_id].get("price_badge"), node_id
        shutil.copy(PACK_DIR / "examples" / "sneaker.jpg", comfy.input_dir / "sneaker.jpg")
        workflow = json.loads((PACK_DIR / "example_workflows" / "runflow_isolate_transparent_png.json").read_text())
        entry = comfy.run_workflow(workflow, timeout=180, object_info=listed)
        assert entry["status"]["status_str"] == "success", json.dumps(entry["status"], indent=1)[-3000:]
        assert comfy.output_files(entry), "nothing saved"

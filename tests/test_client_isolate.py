"""The engine's main path against the emulator: stage, create, wait, download, decode; every output shape
and terminal status; URL inputs; "auto" aspect; TLS on loopback."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal

import numpy as np
import pytest
import trustme
from PIL import Image
from support import product_photo

from runflow_api import RunFailed, RunflowClient
from runflow_api.product_isolation import ASPECT_RATIOS, canvas_size


def test_isolate_returns_rgba_on_requested_canvas(emulator_factory, client_for):
    emu = emulator_factory(cheap=False)
    client = client_for(emu)
    result = client.isolate(product_photo(1), aspect_ratio="4:5", resolution="1K")
    assert result.image.mode == "RGBA"
    assert result.image.size == canvas_size("4:5", "1K")
    assert result.run_id and result.output_url.startswith(emu.base_url)
    assert result.cost == Decimal("0.27")
    assert result.cached is False and result.resumed is False
    alpha = np.asarray(result.image)[..., 3]
    width, height = result.image.size
    assert alpha[height // 2, width // 2] > 200, "the product centre should be opaque"
    assert alpha[2, 2] < 30, "the canvas corner should be transparent"
    assert emu.stats["asset_uploads"] == 1 and emu.stats["uploads"] == 1 and emu.stats["confirmations"] == 1
    assert emu.stats["creates"] == 1 and emu.stats["downloads"] == 1


def test_opaque_input_is_sent_as_jpeg_and_alpha_input_as_png(emu, client_for):
    client = client_for(emu)
    client.isolate(product_photo(2), resolution="1K")
    rgba = np.dstack([product_photo(3), np.full(product_photo(3).shape[:2], 128, np.uint8)])
    client.isolate(rgba, resolution="1K")
    client.isolate(product_photo(4), resolution="1K", lossless=True)
    mimes = [asset["mime_type"] for asset in emu.assets.values()]
    assert mimes == ["image/jpeg", "image/png", "image/png"]


@pytest.mark.parametrize(
    ("width", "height", "expected"),
    [(1000, 1000, "1:1"), (1920, 1080, "16:9"), (1080, 1920, "9:16"), (2100, 900, "21:9"), (800, 1000, "4:5"),
     (1000, 1500, "2:3"), (3000, 1000, "21:9")],
)
def test_auto_aspect_picks_nearest_ratio_in_log_space(emu, client_for, width, height, expected):
    client = client_for(emu)
    image = Image.new("RGB", (width // 10, height // 10), (200, 30, 30))
    result = client.isolate(image, aspect_ratio="auto", resolution="1K")
    assert result.aspect_ratio == expected
    assert result.image.size == canvas_size(expected, "1K")


@pytest.mark.parametrize("shape", ["outputs", "image_urls", "image_str", "image_list", "image_obj", "url",
                                   "output_url"])
def test_every_output_shape_is_read(emu, client_for, shape):
    emu.faults.output_shape = shape
    result = client_for(emu).isolate(product_photo(), resolution="1K", aspect_ratio="16:9")
    assert result.image.size == canvas_size("16:9", "1K")


def test_succeeded_without_urls_names_the_run(emu, client_for):
    emu.faults.output_shape = "empty"
    with pytest.raises(RunFailed) as caught:
        client_for(emu).isolate(product_photo(), resolution="1K")
    assert caught.value.run_id and caught.value.run_id in str(caught.value)
    assert "no image URL" in str(caught.value)


@pytest.mark.parametrize("status", ["failed", "canceled", "cancelled", "errored"])
def test_unsuccessful_terminal_statuses_raise_with_failure_fields(emu, client_for, status):
    emu.faults.run_outcome = status
    with pytest.raises(RunFailed) as caught:
        client_for(emu).isolate(product_photo(), resolution="1K")
    error = caught.value
    assert error.status == status
    assert error.run_id in str(error)
    assert "not billed" in str(error)
    if status == "failed":
        assert error.failure_code and error.failure_code in str(error)


def test_partial_succeeded_counts_as_success(emu, client_for):
    emu.faults.run_outcome = "partial_succeeded"
    result = client_for(emu).isolate(product_photo(), resolution="1K")
    assert result.image.size == canvas_size("1:1", "1K")


@pytest.mark.parametrize("status", [200, 201, 202])
def test_any_2xx_create_answer_is_accepted(emu, client_for, status):
    emu.faults.create_status = status
    assert client_for(emu).isolate(product_photo(), resolution="1K").run_id


def test_https_url_input_uploads_nothing(emu, client_for):
    client = client_for(emu)
    staged = client.stage(product_photo(5))
    uploads = emu.stats["uploads"]
    result = client.isolate(staged.url, aspect_ratio="3:2", resolution="1K")
    assert emu.stats["uploads"] == uploads
    assert result.image.size == canvas_size("3:2", "1K")


def test_all_ratio_and_resolution_values_reach_the_service(emu, client_for):
    client = client_for(emu)
    outcomes = client.isolate_many(
        [product_photo(seed) for seed in range(len(ASPECT_RATIOS))], aspect_ratio="1:1", resolution="1K"
    )
    assert all(not isinstance(o, Exception) for o in outcomes)
    for ratio in ASPECT_RATIOS:
        assert client.isolate(product_photo(), aspect_ratio=ratio, resolution="1K").image.size == canvas_size(
            ratio, "1K"
        )


def test_tls_on_loopback(emulator_factory, tmp_path):
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert_file, key_file, ca_file = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    ca.cert_pem.write_to_path(str(ca_file))
    emu = emulator_factory(tls_cert=str(cert_file), tls_key=str(key_file))
    assert emu.base_url.startswith("https://")
    from support import EMULATOR_KEY, FAST_POLL, FAST_RETRY

    with RunflowClient(EMULATOR_KEY, emu.base_url, verify=str(ca_file), retry=FAST_RETRY, poll=FAST_POLL) as client:
        result = client.isolate(product_photo(), resolution="1K")
    assert result.output_url.startswith("https://")
    assert result.image.size == (1024, 1024)


def test_untrusted_certificate_is_a_clear_network_error(emulator_factory, tmp_path):
    from support import EMULATOR_KEY, FAST_RETRY

    from runflow_api import NetworkError

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "c.pem"))
    cert.private_key_pem.write_to_path(str(tmp_path / "k.pem"))
    emu = emulator_factory(tls_cert=str(tmp_path / "c.pem"), tls_key=str(tmp_path / "k.pem"))
    with RunflowClient(EMULATOR_KEY, emu.base_url, retry=FAST_RETRY) as client, pytest.raises(NetworkError) as caught:
        client.isolate(product_photo(), resolution="1K")
    assert "TLS" in str(caught.value)
    assert emu.stats["creates"] == 0


def test_importing_the_engine_loads_neither_torch_nor_comfyui():
    code = (
        "import sys; from runflow_api import RunflowClient; import runflow_api.emulator; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'comfy', 'folder_paths', 'server')]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(("shape", "ratio"), [((1, 100_000, 3), "21:9"), ((70_000, 2, 3), "9:16")])
def test_very_long_images_run_instead_of_failing_as_a_bug(emu, client_for, shape, ratio):
    result = client_for(emu).isolate(np.full(shape, 128, np.uint8), aspect_ratio="auto", resolution="1K")
    assert result.aspect_ratio == ratio and emu.stats["creates"] == 1

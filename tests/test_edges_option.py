"""The `edges` option everywhere (library, CLI, nodes with real torch tensors) against a real emulator:
`clean` changes the colours of soft edge pixels and nothing else, and it is applied on the way out, so
the cache keeps what the service returned and switching `edges` is a free cache hit, never a new run.
The emulator's real matte (cheap=False) has soft edges for it to clean."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from node_support import PACK, bound_to, run_node
from PIL import Image
from support import EMULATOR_KEY, product_photo

from runflow_api import InputRejected, RunflowCancelled
from runflow_api.catalogue.cli import main
from runflow_api.pictures.edges import decontaminate
from runflow_api.pictures.post_processing import PostProcessing


@pytest.fixture
def soft(emulator_factory):
    return emulator_factory(cheap=False)


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image)


def soft_band(rgba: np.ndarray) -> np.ndarray:
    return (rgba[..., 3] > 0) & (rgba[..., 3] < 255)


def assert_cleaned(cleaned: np.ndarray, returned: np.ndarray) -> None:
    """`cleaned` is `returned` decontaminated: same alpha and solid pixels, new colours on the edges."""
    band = soft_band(returned)
    assert band.sum() > 100, "the emulator's matte has soft edges to clean"
    assert np.array_equal(cleaned, decontaminate(returned))
    assert np.array_equal(cleaned[..., 3], returned[..., 3])
    assert np.array_equal(cleaned[~band], returned[~band])
    assert (cleaned[band] != returned[band]).any(axis=1).mean() > 0.3


# -- library ---------------------------------------------------------------------------------------------


def test_switching_edges_is_a_cache_hit_and_the_cache_keeps_what_was_returned(soft, client_for):
    client = client_for(soft)
    returned = client.isolate(product_photo(), resolution="1K")
    cleaned = client.isolate(product_photo(), resolution="1K", edges="clean")
    again = client.isolate(product_photo(), resolution="1K")
    assert soft.stats["creates"] == 1 and cleaned.cached and again.cached
    assert cleaned.cache_key == returned.cache_key, "edges is not part of the cache key (nor the Idempotency-Key)"
    assert_cleaned(pixels(cleaned.image), pixels(returned.image))
    assert np.array_equal(pixels(again.image), pixels(returned.image)), "the cache still holds the service's pixels"
    assert cleaned.image_bytes == b"" and returned.image_bytes, "the service's bytes are not these pixels any more"
    [run] = soft.runs.values()
    assert set(run.input) == {"image_url", "aspect_ratio", "resolution"}, "nothing of edges in the create body"


def test_clean_first_then_as_returned_is_also_free(soft, client_for, tmp_path):
    client_for(soft).isolate(product_photo(2), resolution="1K", edges="clean")
    fresh = client_for(soft, memory_cache=False)  # the disk cache alone, as a new process would
    returned = fresh.isolate(product_photo(2), resolution="1K")
    assert returned.cached and soft.stats["creates"] == 1
    assert soft_band(pixels(returned.image)).any() and returned.image_bytes


def test_isolate_many_cleans_every_image_of_every_run(soft, client_for):
    soft.faults.output_count = 2
    client = client_for(soft)
    returned = client.isolate_many([product_photo(3), product_photo(4)], resolution="1K", outputs="all")
    cleaned = client.isolate_many([product_photo(3), product_photo(4)], resolution="1K", outputs="all",
                                  edges="clean")
    assert soft.stats["creates"] == 2
    for before, after in zip(returned, cleaned, strict=True):
        assert len(after.images) == 2 and after.image is after.images[0]
        for image_before, image_after in zip(before.images, after.images, strict=True):
            assert_cleaned(pixels(image_after), pixels(image_before))


def test_cancel_is_heard_while_edges_are_cleaned_and_the_results_stay_cached(soft, client_for):
    """The runs are done (and cached) when Cancel comes; the next call gets them free."""
    done = []
    client = client_for(soft)
    photos = [product_photo(8), product_photo(9)]
    with pytest.raises(RunflowCancelled, match="while cleaning edges"):
        client.isolate_many(photos, resolution="1K", edges="clean", should_cancel=lambda: len(done) == 2,
                            on_progress=lambda event: done.append(event) if event.kind == "done" else None)
    again = client.isolate_many(photos, resolution="1K", edges="clean")
    assert all(result.cached for result in again) and soft.stats["creates"] == 2


def test_isolate_stream_cleans_too(soft, client_for):
    client = client_for(soft)
    returned = client.isolate(product_photo(5), resolution="1K")
    [(index, cleaned)] = list(client.isolate_stream([product_photo(5)], resolution="1K", edges="clean"))
    assert index == 0 and cleaned.cached and soft.stats["creates"] == 1
    assert_cleaned(pixels(cleaned.image), pixels(returned.image))


@pytest.mark.parametrize("value", ["Clean", "", None, "as-returned"])
def test_a_bad_edges_value_is_refused_before_anything_is_sent(emu, client_for, value):
    client = client_for(emu)
    with pytest.raises(InputRejected, match="edges must be one of 'as returned', 'clean'"):
        client.isolate_many([product_photo()], resolution="1K", edges=value)
    with pytest.raises(InputRejected, match="edges must be one of"):
        client.isolate_stream([product_photo()], resolution="1K", edges=value)
    assert emu.stats["requests"] == 0


def test_edges_is_a_post_processing_option_never_an_isolation_parameter():
    post, rest = PostProcessing.split({"edges": "clean", "background": "#fff", "resolution": "1K"})
    assert post.edges == "clean" and rest == {"resolution": "1K"}
    assert PostProcessing().edges == "as returned"
    with pytest.raises(InputRejected, match="edges must be one of"):
        PostProcessing(edges="soft")


# -- command line ----------------------------------------------------------------------------------------


def test_cli_edges_clean_writes_clean_files_from_the_cache(soft, monkeypatch, tmp_path):
    monkeypatch.setenv("RUNFLOW_API_BASE", soft.base_url)
    monkeypatch.setenv("RUNFLOW_API_KEY", EMULATOR_KEY)
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(product_photo(6)).save(photos / "a.png")
    common = [str(photos), "--resolution", "1K", "-q"]
    assert main(["isolate", *common, "--out", str(tmp_path / "as-returned")]) == 0
    assert main(["isolate", *common, "--out", str(tmp_path / "clean"), "--edges", "clean"]) == 0
    assert soft.stats["creates"] == 1, "the second command is served from the cache"
    returned = pixels(Image.open(tmp_path / "as-returned" / "a.png"))
    assert_cleaned(pixels(Image.open(tmp_path / "clean" / "a.png")), returned)
    assert main(["isolate", *common, "--out", str(tmp_path / "white"), "--edges", "clean", "--background", "white",
                 "--format", "webp"]) == 0
    on_white = np.asarray(Image.open(tmp_path / "white" / "a.webp").convert("RGB")).astype(int)
    assert soft.stats["creates"] == 1
    cleaned = decontaminate(returned)
    alpha = cleaned[..., 3:4] / 255.0
    expected = cleaned[..., :3] * alpha + 255 * (1 - alpha)
    assert np.abs(on_white - expected).mean() < 1.5  # webp quality 92


def test_cli_refuses_an_unknown_edges_value(tmp_path, capsys):
    with pytest.raises(SystemExit) as caught:
        main(["isolate", str(tmp_path), "--out", str(tmp_path / "o"), "--edges", "smooth"])
    assert caught.value.code == 2 and "--edges" in capsys.readouterr().err


# -- nodes, with real torch tensors ----------------------------------------------------------------------


def test_nodes_clean_image_and_rgba_keep_the_mask_and_hit_the_cache(soft, monkeypatch, tmp_path):
    monkeypatch.setattr(PACK.node_machinery.execution, "client_factory", bound_to(soft, tmp_path))
    PACK.runflow_api.money.recent.shared_recent_results().clear()
    photo = torch.from_numpy(product_photo(7)).float().div(255).unsqueeze(0)
    image, mask, rgba, _, _ = run_node(photo)
    clean_image, clean_mask, clean_rgba, info, _ = run_node(photo, edges="clean")
    on_black, black_mask, _, _, _ = run_node(photo, edges="clean", background="#000000")
    assert soft.stats["creates"] == 1 and '"cached": true' in info
    assert torch.equal(clean_mask, mask) and torch.equal(black_mask, mask)
    assert torch.equal(clean_rgba[..., 3], rgba[..., 3])
    returned = (rgba[0] * 255).round().to(torch.uint8).numpy()
    cleaned = (clean_rgba[0] * 255).round().to(torch.uint8).numpy()
    assert_cleaned(cleaned, returned)
    assert torch.equal(clean_image, clean_rgba[..., :3]), "transparent: `image` is the cleaned RGB"
    expected = torch.from_numpy(cleaned[..., :3] * (cleaned[..., 3:4] / 255.0)).float() / 255
    assert torch.allclose(on_black[0], expected, atol=1 / 255 + 1e-6), "a colour: the cleaned cut-out composited"
    assert not torch.equal(clean_image, image)

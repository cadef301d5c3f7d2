"""Colour profiles: a tagged photo is converted to sRGB before it is hashed and uploaded, an untagged one
is left byte for byte as it was (its cache key too), and every file written says it is sRGB.

The Display P3 and Adobe RGB profiles are built by the tests from the spaces' primaries
(`colour_science.icc_profile`), and the colours are checked in CIE Lab worked out from the spaces'
definitions, not through LittleCMS.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from colour_science import delta_e76, icc_profile, lab
from golden_support import GOLDEN, SERVICE_ID, golden_photo
from PIL import Image, ImageCms
from support import EMULATOR_KEY

from runflow_api import ImageURL
from runflow_api.catalogue import folders as catalogue
from runflow_api.catalogue.cli import main
from runflow_api.pictures import colour, images
from runflow_api.service.assets import stage_bytes

BACKGROUND = (238, 238, 232)
# (space, the product's colour in that space's numbers): a saturated red and a brick red from an iPhone,
# a green and an orange from a studio's Adobe RGB export (the cases of the issue).
CASES = [("display-p3", (235, 30, 35)), ("display-p3", (200, 60, 50)),
         ("adobe-rgb", (60, 180, 75)), ("adobe-rgb", (240, 140, 30))]
MAX_DELTA_E = 3.0


def product_shot(rgb: tuple[int, int, int], size: tuple[int, int] = (160, 120)) -> Image.Image:
    """A flat product on a light background: the colour to measure fills the middle."""
    width, height = size
    pixels = np.empty((height, width, 3), np.uint8)
    pixels[:] = BACKGROUND
    pixels[height // 5: height - height // 5, width // 4: width - width // 4] = rgb
    return Image.fromarray(pixels)


def tagged(image: Image.Image, space: str) -> Image.Image:
    image.info["icc_profile"] = icc_profile(space)
    return image


def srgb_reference(rgb: tuple[int, int, int], space: str) -> np.ndarray:
    """The colour a colour-managed viewer shows for `rgb` in `space`, as sRGB numbers (LittleCMS, the
    same conversion a photo editor's "convert to sRGB" makes; clipped where sRGB cannot show it)."""
    return np.asarray(images.in_srgb(tagged(Image.new("RGB", (1, 1), rgb), space)))[0, 0]


def product_colour(path: Path) -> np.ndarray:
    """The median colour of the fully opaque pixels of an isolated result."""
    pixels = np.asarray(Image.open(path).convert("RGBA"))
    opaque = pixels[pixels[:, :, 3] == 255][:, :3]
    assert len(opaque) > 100, f"{path.name}: no product left to measure"
    return np.median(opaque, axis=0)


def _file(image: Image.Image, path: Path, **options: object) -> Path:
    image.save(path, icc_profile=image.info.get("icc_profile"), **options)
    return path


def test_the_test_profiles_mean_what_their_spaces_define() -> None:
    """In gamut, LittleCMS's conversion through the built profiles lands on the colour the definitions
    give (so the ΔE below measures the pack, not a wrong test profile)."""
    for space, rgb in (("display-p3", (200, 60, 50)), ("adobe-rgb", (120, 150, 90))):
        converted = srgb_reference(rgb, space)
        assert delta_e76(lab(converted), lab(rgb, space)) < 1.0, (space, rgb, converted)
        assert delta_e76(lab(rgb), lab(rgb, space)) > 5.0  # and reading the numbers as sRGB is visibly off


@pytest.mark.parametrize("space", ["display-p3", "adobe-rgb"])
def test_a_tagged_photo_is_read_in_srgb_alpha_kept(space: str) -> None:
    rgba = Image.new("RGBA", (4, 4), (200, 60, 50, 128))
    pixels = images.to_array(tagged(rgba, space))
    assert tuple(pixels[0, 0, :3]) == tuple(srgb_reference((200, 60, 50), space))
    assert pixels[0, 0, 3] == 128


def test_an_untagged_or_srgb_tagged_photo_keeps_its_exact_pixels(tmp_path: Path) -> None:
    photo = Image.fromarray(golden_photo())
    plain = _file(photo, tmp_path / "plain.png")
    srgb = _file(photo.copy(), tmp_path / "srgb.png")
    srgb_tagged = Image.open(srgb)
    srgb_tagged.info["icc_profile"] = colour.srgb_icc()
    for source in (plain, srgb_tagged, tagged(photo.copy(), "srgb")):
        assert np.array_equal(images.to_array(source), golden_photo())


def test_cache_keys_untagged_unchanged_tagged_are_their_srgb_conversion(emu, client_for, tmp_path: Path) -> None:
    """Golden-style: an untagged file (PNG, and the same pixels as a PIL image) keeps the key recorded
    from 0.1.0, and so does one tagged with an sRGB profile; a P3-tagged file's key is the key of its
    sRGB conversion, a new key (its old results were the wrong colours)."""
    client = client_for(emu, service_id=SERVICE_ID)
    recorded = GOLDEN["cache_keys"]["resolution_2K"]
    photo = Image.fromarray(golden_photo())
    untagged = _file(photo, tmp_path / "untagged.png")
    srgb_file = tmp_path / "srgb.png"
    photo.save(srgb_file, icc_profile=icc_profile("srgb", "sRGB IEC61966-2.1"))

    def key(image: object) -> str:
        return client.isolate(image, aspect_ratio="1:1", resolution="2K").cache_key

    assert key(untagged) == key(photo) == key(srgb_file) == recorded
    p3_file = tmp_path / "p3.png"
    photo.save(p3_file, icc_profile=icc_profile("display-p3"))
    converted = images.to_array(Image.open(p3_file))
    assert not np.array_equal(converted, golden_photo())
    assert key(p3_file) == key(converted) != recorded


@pytest.fixture
def full_emulator(emulator_factory, monkeypatch):
    emu = emulator_factory(cheap=False)  # a real isolation, so the product's colour can be measured
    monkeypatch.setenv("RUNFLOW_API_BASE", emu.base_url)
    monkeypatch.setenv("RUNFLOW_API_KEY", EMULATOR_KEY)
    return emu


def test_p3_and_adobe_rgb_photos_come_back_in_their_colours(full_emulator, tmp_path: Path, capsys) -> None:
    """The issue's check, as a user runs it: JPEGs tagged Display P3 and Adobe RGB through the CLI against
    the emulator come back within ΔE76 3 of their sRGB conversion, and the outputs are tagged sRGB."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for number, (space, rgb) in enumerate(CASES):
        _file(tagged(product_shot(rgb), space), photos / f"{number}-{space}.jpg", quality=97, subsampling=0)
    out = tmp_path / "out"
    assert main(["isolate", str(photos), "--out", str(out), "--resolution", "1K", "-q"]) == 0
    measured = {}
    for number, (space, rgb) in enumerate(CASES):
        result = out / f"{number}-{space}.png"
        assert Image.open(result).info.get("icc_profile") == colour.srgb_icc()
        measured[(space, rgb)] = delta_e76(lab(product_colour(result)), lab(srgb_reference(rgb, space)))
    print("ΔE76 against the sRGB conversion:", {f"{s} {c}": round(e, 2) for (s, c), e in measured.items()})
    assert max(measured.values()) <= MAX_DELTA_E, measured


def test_a_url_input_sends_the_original_bytes_and_the_emulator_honours_their_profile(
    full_emulator, client_for, tmp_path: Path
) -> None:
    """A URL input is not re-encoded: the service gets the photo's own bytes, profile included, and is
    assumed to honour the profile (docs/RUNFLOW-API.md); the emulator does, so the colour comes back."""
    space, rgb = CASES[0]
    buffer = io.BytesIO()
    tagged(product_shot(rgb), space).save(buffer, format="JPEG", quality=97, subsampling=0,
                                          icc_profile=icc_profile(space))
    client = client_for(full_emulator)
    staged = stage_bytes(client._engine.transport, buffer.getvalue(), mime_type="image/jpeg", filename="p3.jpg")
    result = client.isolate(ImageURL(staged.url), aspect_ratio="1:1", resolution="1K")
    target = tmp_path / "from-url.png"
    result.image.save(target)
    assert delta_e76(lab(product_colour(target)), lab(srgb_reference(rgb, space))) <= MAX_DELTA_E
    assert result.cache_key == client.isolate(images.to_array(buffer.getvalue()), aspect_ratio="1:1",
                                              resolution="1K").cache_key  # keyed by the sRGB pixels


def test_every_written_format_is_tagged_srgb(tmp_path: Path) -> None:
    image = Image.new("RGBA", (8, 8), (10, 200, 30, 255))
    for fmt in catalogue.OUTPUT_FORMATS:
        target = tmp_path / f"x.{fmt}"
        catalogue.write_atomically(image, target, fmt)
        assert Image.open(target).info.get("icc_profile") == colour.srgb_icc(), fmt
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    tagged_png = colour.tag_png(buffer.getvalue())
    reopened = Image.open(io.BytesIO(tagged_png))
    assert reopened.info["icc_profile"] == colour.srgb_icc()
    assert np.array_equal(np.asarray(reopened), np.asarray(image))  # only a chunk was added
    assert colour.tag_png(tagged_png) == tagged_png  # a PNG that says its colours is left alone


def test_a_profile_that_cannot_be_used_is_ignored() -> None:
    """A profile that cannot be read, or whose colour space does not fit the photo, is ignored (the photo
    is read as it was before profiles were applied) rather than refused."""
    broken = Image.new("RGB", (2, 2), (200, 60, 50))
    broken.info["icc_profile"] = b"not a profile at all"
    assert tuple(images.to_array(broken)[0, 0]) == (200, 60, 50)
    lab_profile = ImageCms.createProfile("LAB")
    odd = Image.new("RGB", (2, 2), (200, 60, 50))
    odd.info["icc_profile"] = ImageCms.ImageCmsProfile(lab_profile).tobytes()
    assert tuple(images.to_array(odd)[0, 0]) == (200, 60, 50)

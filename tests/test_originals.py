"""Original bytes as the upload: which files go up as they are, which are re-encoded, and that what the
emulator stored is byte for byte the file (or, for the others, exactly our re-encode of the pixels).

Every file here is written by the test with Pillow (or by hand where Pillow cannot write the variant),
and every upload is read back from the emulator over HTTP through the run's own input URL.
"""

from __future__ import annotations

import io
import json
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image, ImageCms, PngImagePlugin
from support import EMULATOR_KEY, product_photo

from runflow_api.catalogue.cli import main
from runflow_api.errors import InputRejected
from runflow_api.pictures import images, originals

ORIENTATION = 0x0112


def _rgb() -> Image.Image:
    return Image.fromarray(product_photo(5))


def _rgba() -> Image.Image:
    pixels = product_photo(6)
    alpha = np.where(pixels[:, :, 0] > 200, 0, 255).astype(np.uint8)  # the light background see-through
    return Image.fromarray(np.dstack([pixels, alpha]))


def _encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _exif(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    return exif.tobytes()


def _png_chunk(tag: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + tag + payload + struct.pack(">I", zlib.crc32(tag + payload))


def _png_rgb16() -> bytes:
    """An 8-bit-looking photo stored at 16 bits per channel, which Pillow cannot write itself."""
    wide = product_photo(7).astype(">u2") * 257 + 3  # low bytes that an 8-bit reader rounds or drops
    height, width = wide.shape[:2]
    rows = b"".join(b"\0" + row.tobytes() for row in wide)
    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + b"".join(
        (_png_chunk(b"IHDR", header), _png_chunk(b"IDAT", zlib.compress(rows)), _png_chunk(b"IEND", b""))
    )


def _riff_chunk(tag: bytes, payload: bytes) -> bytes:
    return tag + struct.pack("<I", len(payload)) + payload + (b"\0" if len(payload) % 2 else b"")


def _webp_one_frame_animation() -> bytes:
    """A WebP declared as an animation (VP8X flag, ANIM, one ANMF frame), as some exporters write them."""
    image = _rgb()
    width, height = image.size
    frame = _encoded(image, "WEBP")[12:]  # the plain file's VP8 chunk

    def u24(value: int) -> bytes:
        return value.to_bytes(3, "little")

    body = b"WEBP" + b"".join((
        _riff_chunk(b"VP8X", bytes([0x02, 0, 0, 0]) + u24(width - 1) + u24(height - 1)),
        _riff_chunk(b"ANIM", bytes(6)),
        _riff_chunk(b"ANMF", u24(0) + u24(0) + u24(width - 1) + u24(height - 1) + u24(100) + b"\0" + frame),
    ))
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _png_with(tag: bytes, payload: bytes) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add(tag, payload)
    return _encoded(_rgb(), "PNG", pnginfo=info)


SRGB_PROFILE = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()

AS_THEY_ARE: dict[str, tuple[Callable[[], bytes], str]] = {
    "photo.jpg": (lambda: _encoded(_rgb(), "JPEG", quality=90), "image/jpeg"),
    "upright-exif.jpg": (lambda: _encoded(_rgb(), "JPEG", exif=_exif(1)), "image/jpeg"),
    "photo.png": (lambda: _encoded(_rgb(), "PNG"), "image/png"),
    "cut-out.png": (lambda: _encoded(_rgba(), "PNG"), "image/png"),
    "photo.webp": (lambda: _encoded(_rgb(), "WEBP", quality=85), "image/webp"),
    "cut-out.webp": (lambda: _encoded(_rgba(), "WEBP", lossless=True), "image/webp"),
    "named-wrong.png": (lambda: _encoded(_rgb(), "JPEG"), "image/jpeg"),  # the content decides, not the name
}

RE_ENCODED: dict[str, tuple[Callable[[], bytes], str]] = {
    "rotated.jpg": (lambda: _encoded(_rgb(), "JPEG", exif=_exif(6)), "EXIF orientation is 6"),
    "mirrored.png": (lambda: _encoded(_rgb(), "PNG", exif=_exif(2)), "EXIF orientation is 2"),
    "rotated.webp": (lambda: _encoded(_rgb(), "WEBP", exif=_exif(8)), "EXIF orientation is 8"),
    "cmyk.jpg": (lambda: _encoded(_rgb().convert("CMYK"), "JPEG"), "colour mode is CMYK"),
    "grey.jpg": (lambda: _encoded(_rgb().convert("L"), "JPEG"), "colour mode is L"),
    "deep.png": (_png_rgb16, "16 bits per channel"),
    "deep-grey.png": (lambda: _encoded(Image.fromarray(product_photo(8)[:, :, 0].astype(np.uint16) * 257), "PNG"),
                      "colour mode is I;16"),
    "palette.png": (lambda: _encoded(_rgb().convert("P"), "PNG"), "colour mode is P"),
    "grey-alpha.png": (lambda: _encoded(_rgba().convert("LA"), "PNG"), "colour mode is LA"),
    "colour-key.png": (lambda: _encoded(_rgb(), "PNG", transparency=(225, 225, 225)), "tRNS colour key"),
    "srgb-profile.jpg": (lambda: _encoded(_rgb(), "JPEG", icc_profile=SRGB_PROFILE), "icc_profile"),
    "profile.png": (lambda: _encoded(_rgb(), "PNG", icc_profile=SRGB_PROFILE), "icc_profile"),
    "profile.webp": (lambda: _encoded(_rgb(), "WEBP", icc_profile=SRGB_PROFILE), "icc_profile"),
    "gamma.png": (lambda: _png_with(b"gAMA", struct.pack(">I", 45455)), "gamma"),
    "chroma.png": (lambda: _png_with(b"cHRM", struct.pack(">8I", *([31270, 32900] * 4))), "chromaticity"),
    "animated.png": (lambda: _encoded(_rgb(), "PNG", save_all=True, append_images=[_rgb().rotate(180)]),
                     "animated"),
    "animated.webp": (lambda: _encoded(_rgb(), "WEBP", save_all=True, append_images=[_rgb().rotate(180)]),
                      "animated"),
    "one-frame-animation.webp": (_webp_one_frame_animation, "animated"),
    "photo.gif": (lambda: _encoded(_rgb(), "GIF"), "it is GIF"),
    "photo.tiff": (lambda: _encoded(_rgb(), "TIFF"), "it is TIFF"),
}


def _write(folder: Path, name: str, make: Callable[[], bytes]) -> Path:
    path = folder / name
    path.write_bytes(make())
    return path


# -- which files qualify ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(AS_THEY_ARE))
def test_plain_files_are_their_own_upload_with_the_same_pixels(tmp_path: Path, name: str) -> None:
    make, mime = AS_THEY_ARE[name]
    path = _write(tmp_path, name, make)
    array, upload = originals.read(path, name="image 0")
    assert upload is not None and upload.data == path.read_bytes() and upload.mime_type == mime
    assert np.array_equal(array, images.to_array(path)), "the cache key's pixels are what they always were"


@pytest.mark.parametrize("name", sorted(RE_ENCODED))
def test_files_another_reader_may_see_otherwise_are_re_encoded(tmp_path: Path, name: str) -> None:
    make, reason = RE_ENCODED[name]
    path = _write(tmp_path, name, make)
    array, upload = originals.read(str(path), name="image 0")
    assert upload is None
    assert np.array_equal(array, images.to_array(path))
    with Image.open(path) as image:
        assert reason in (originals.refusal(image, path.read_bytes()) or "")


def test_a_broken_file_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "cut-short.jpg"
    whole = _encoded(_rgb(), "JPEG")
    path.write_bytes(whole[: len(whole) // 2])  # the header is whole: the pixels are cut short
    with pytest.raises(InputRejected, match="cut-short.jpg"):
        originals.read(path, name="image 3")


# -- what the service receives ---------------------------------------------------------------------------


def _uploaded(emu, run_id: str) -> tuple[bytes, str]:
    """The bytes and type the emulator serves for a run's input (the run's own signed input URL)."""
    answer = requests.get(emu.runs[run_id].input["image_url"], timeout=10)
    answer.raise_for_status()
    return answer.content, answer.headers["Content-Type"]


def test_the_catalogue_uploads_plain_files_byte_for_byte_and_rotated_ones_upright(
    emu, client_for, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    plain = {name: _write(folder, name, AS_THEY_ARE[name][0]) for name in ("photo.jpg", "cut-out.png", "photo.webp")}
    redone = {name: _write(folder, name, RE_ENCODED[name][0]) for name in ("rotated.jpg", "cmyk.jpg")}
    monkeypatch.setenv("RUNFLOW_API_BASE", emu.base_url)
    monkeypatch.setenv("RUNFLOW_API_KEY", EMULATOR_KEY)
    report = tmp_path / "report.json"
    assert main(["isolate", str(folder), "--out", str(tmp_path / "out"), "--resolution", "1K", "-q",
                 "--report", str(report)]) == 0
    run_ids = {Path(row["input"]).name: row["run_id"] for row in json.loads(report.read_text())["items"]}
    for name, path in plain.items():
        data, mime = _uploaded(emu, run_ids[name])
        assert data == path.read_bytes(), f"{name} went up as it is"
        assert mime == AS_THEY_ARE[name][1]
    for name, path in redone.items():
        data, mime = _uploaded(emu, run_ids[name])
        assert data == images.encode_for_upload(images.to_array(path)).data and mime == "image/jpeg"
    upright = Image.open(io.BytesIO(_uploaded(emu, run_ids["rotated.jpg"])[0]))
    assert upright.size == Image.open(redone["rotated.jpg"]).size[::-1], "stored landscape, sent portrait"
    # The cache key is still the pixels: the same photos as arrays are the stored results, not new runs.
    client = client_for(emu)  # the same cache and journal directories as the command
    again = client.isolate_many([images.to_array(p) for p in (*plain.values(), *redone.values())], resolution="1K",
                                aspect_ratio="auto")
    assert all(result.cached for result in again) and emu.stats["creates"] == 5

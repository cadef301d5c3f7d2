"""images.py: every input kind and mode, every refusal, upload encoding, output decoding, alpha maths,
colour parsing. Real arrays, PIL images, encoded bytes and files; nothing is mocked."""

from __future__ import annotations

import io
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, JpegImagePlugin

from runflow_api.errors import InputRejected, OutputRejected
from runflow_api.pictures import backgrounds, images, result_images


def smooth_rgb(height: int = 96, width: int = 128) -> np.ndarray:
    """A photo-like smooth gradient: what JPEG is meant for."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    r = 40 + 180 * xs / width
    g = 60 + 150 * ys / height
    b = 128 + 60 * np.sin(xs / 17) * np.cos(ys / 13)
    return np.dstack([r, g, b]).round().astype(np.uint8)


def encoded(image: Image.Image, fmt: str = "PNG", **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A tiny, valid-looking PNG whose IHDR claims width x height (CRC fixed), pixels absent."""
    data = bytearray(encoded(Image.new("L", (1, 1))))
    data[16:20] = width.to_bytes(4, "big")
    data[20:24] = height.to_bytes(4, "big")
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")
    return bytes(data)


def rejected(call: object, *fragments: str, kind: type[Exception] = InputRejected) -> str:
    assert callable(call)
    with pytest.raises(kind) as info:
        call()
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


# -- to_array: PIL images --------------------------------------------------------------------------------


def test_pil_rgb_and_rgba_keep_their_pixels() -> None:
    rgb = smooth_rgb()
    out = images.to_array(Image.fromarray(rgb))
    assert out.dtype == np.uint8 and out.shape == (96, 128, 3) and out.flags.c_contiguous
    np.testing.assert_array_equal(out, rgb)
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 77, np.uint8)])
    np.testing.assert_array_equal(images.to_array(Image.fromarray(rgba, "RGBA")), rgba)


@pytest.mark.parametrize(
    ("mode", "channels"),
    [("L", 3), ("1", 3), ("LA", 4), ("CMYK", 3), ("YCbCr", 3), ("RGBa", 4), ("PA", 4), ("F", 3)],
)
def test_pil_modes_become_rgb_or_rgba(mode: str, channels: int) -> None:
    out = images.to_array(Image.fromarray(smooth_rgb()).convert(mode))
    assert out.shape == (96, 128, channels) and out.dtype == np.uint8


def test_grey_is_replicated_into_three_equal_channels() -> None:
    grey = np.arange(256, dtype=np.uint8).reshape(16, 16)
    out = images.to_array(Image.fromarray(grey, "L"))
    for channel in range(3):
        np.testing.assert_array_equal(out[:, :, channel], grey)


def test_palette_with_transparency_keeps_it_and_without_becomes_rgb() -> None:
    palette = Image.fromarray(smooth_rgb()).convert("P")
    assert images.to_array(palette).shape[2] == 3
    palette.info["transparency"] = int(np.asarray(palette)[0, 0])
    out = images.to_array(palette)
    assert out.shape[2] == 4 and out[0, 0, 3] == 0 and images.has_alpha(out)


def test_sixteen_bit_grey_is_scaled_not_clipped() -> None:
    values = np.array([[0, 257, 32896, 65535]], np.uint16)
    for image in (Image.fromarray(values), Image.fromarray(values.astype(np.int32), "I")):
        out = images.to_array(image)
        np.testing.assert_array_equal(out[0, :, 0], [0, 1, 128, 255])


def test_sixteen_bit_png_file_roundtrip(tmp_path: Path) -> None:
    path = tmp_path / "deep.png"
    Image.fromarray(np.full((4, 4), 40000, np.uint16)).save(path)
    assert images.to_array(path)[0, 0, 0] == round(40000 / 257)


# -- to_array: numpy arrays -----------------------------------------------------------------------------


def test_uint8_shapes() -> None:
    rgb = smooth_rgb()
    assert images.to_array(rgb) is rgb  # already normalised: no copy
    grey = rgb[:, :, 0].copy()
    for arr in (grey, grey[:, :, None]):
        out = images.to_array(arr)
        assert out.shape == (96, 128, 3)
        np.testing.assert_array_equal(out[:, :, 2], grey)
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 9, np.uint8)])
    np.testing.assert_array_equal(images.to_array(rgba), rgba)


def test_non_contiguous_array_is_made_contiguous() -> None:
    view = smooth_rgb()[:, ::2]
    out = images.to_array(view)
    assert out.flags.c_contiguous and not view.flags.c_contiguous
    np.testing.assert_array_equal(out, view)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_float_arrays_are_rounded_to_nearest(dtype: type) -> None:
    arr = np.array([[0.0, 0.5, 1.0, 0.2]], dtype)
    out = images.to_array(arr)
    np.testing.assert_array_equal(out[0, :, 1], [0, 128, 255, round(float(dtype(0.2)) * 255)])


def test_float_input_is_not_modified() -> None:
    arr = np.full((4, 4, 3), 0.25, np.float32)
    images.to_array(arr)
    assert float(arr.max()) == 0.25


def test_tiny_float_overshoot_is_clipped() -> None:
    arr = np.array([[[-0.005, 1.005, 0.5]]], np.float32)
    np.testing.assert_array_equal(images.to_array(arr)[0, 0], [0, 255, 128])


def test_float_out_of_range_names_the_range() -> None:
    arr = np.linspace(0, 255, 48, dtype=np.float32).reshape(4, 4, 3)
    rejected(lambda: images.to_array(arr, name="frame 2"), "frame 2", "0 to 255", "0..1")
    rejected(lambda: images.to_array(np.full((2, 2), -0.5)), "-0.5")


@pytest.mark.parametrize(("bad", "fragment"), [(np.nan, "NaN"), (np.inf, "infinite"), (-np.inf, "infinite")])
def test_non_finite_floats_are_refused(bad: float, fragment: str) -> None:
    arr = np.full((8, 8, 3), 0.5, np.float32)
    arr[3, 4, 1] = bad
    rejected(lambda: images.to_array(arr, name="photo"), "photo", fragment)


@pytest.mark.parametrize("dtype", [np.int64, np.uint16, np.bool_, np.complex64])
def test_wrong_dtype_is_refused(dtype: type) -> None:
    arr = np.zeros((4, 4, 3), dtype)
    rejected(lambda: images.to_array(arr), f"dtype {np.dtype(dtype)}", "uint8")


def test_wrong_ndim_is_refused() -> None:
    rejected(lambda: images.to_array(np.zeros(12, np.uint8)), "1 dimensions")
    rejected(lambda: images.to_array(np.zeros((2, 4, 4, 3), np.uint8)), "4 dimensions", "batch")


@pytest.mark.parametrize("channels", [2, 5])
def test_wrong_channel_count_is_refused(channels: int) -> None:
    rejected(lambda: images.to_array(np.zeros((4, 4, channels), np.uint8), name="img"), f"has {channels} channels")


def test_zero_size_is_refused() -> None:
    rejected(lambda: images.to_array(np.zeros((512, 0, 3), np.uint8)), "is 0x512")
    rejected(lambda: images.to_array(Image.new("RGB", (0, 7))), "is 0x7")


def test_too_many_pixels_is_refused_without_allocating() -> None:
    huge = np.broadcast_to(np.uint8(0), (8193, 8192))
    rejected(lambda: images.to_array(huge), "8192x8193", "over the limit")


def test_unsupported_type_is_refused() -> None:
    rejected(lambda: images.to_array([[1, 2], [3, 4]]), "is a list")  # type: ignore[arg-type]


# -- to_array: bytes and files --------------------------------------------------------------------------


def test_encoded_bytes_of_every_buffer_kind() -> None:
    rgb = smooth_rgb()
    data = encoded(Image.fromarray(rgb))
    for source in (data, bytearray(data), memoryview(data)):
        np.testing.assert_array_equal(images.to_array(source), rgb)


def test_jpeg_and_webp_bytes() -> None:
    rgb = smooth_rgb()
    for fmt in ("JPEG", "WEBP"):
        out = images.to_array(encoded(Image.fromarray(rgb), fmt, quality=95))
        assert out.shape == rgb.shape
        assert np.abs(out.astype(int) - rgb).mean() < 3


def test_exif_orientation_is_honoured_for_bytes_and_files(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, displayed rotated 90° clockwise
    data = encoded(Image.new("RGB", (40, 20), "red"), "JPEG", exif=exif)
    path = tmp_path / "phone.jpg"
    path.write_bytes(data)
    assert images.to_array(data).shape == (40, 20, 3)
    assert images.to_array(path).shape == (40, 20, 3)
    assert images.to_array(str(path)).shape == (40, 20, 3)


def test_files_by_path_and_str(tmp_path: Path) -> None:
    rgba = np.dstack([smooth_rgb(), np.full((96, 128), 200, np.uint8)])
    path = tmp_path / "cut.png"
    Image.fromarray(rgba, "RGBA").save(path)
    np.testing.assert_array_equal(images.to_array(path), rgba)
    np.testing.assert_array_equal(images.to_array(str(path)), rgba)


def test_empty_and_non_image_bytes_are_refused() -> None:
    rejected(lambda: images.to_array(b"", name="upload"), "upload", "empty")
    rejected(lambda: images.to_array(b"<html>not a picture</html>"), "is not an image Pillow can read")


def test_truncated_image_is_refused() -> None:
    data = encoded(Image.fromarray(smooth_rgb()))
    rejected(lambda: images.to_array(data[: len(data) // 2]), "could not be decoded", "truncated")


def test_missing_directory_and_unreadable_files(tmp_path: Path) -> None:
    missing = tmp_path / "nope.png"
    rejected(lambda: images.to_array(missing), "file not found", str(missing))
    rejected(lambda: images.to_array(tmp_path), "is a directory")
    text = tmp_path / "notes.png"
    text.write_text("just text")
    rejected(lambda: images.to_array(text), str(text), "is not an image Pillow can read")


def test_file_claiming_a_huge_canvas_is_refused_from_its_header(tmp_path: Path) -> None:
    path = tmp_path / "huge.png"
    Image.new("1", (9000, 9000)).save(path)  # 81 Mpx, a few KB on disk, under Pillow's own limit
    assert path.stat().st_size < 100_000
    rejected(lambda: images.to_array(path), "9000x9000", "over the limit")


def test_decompression_bomb_header_is_refused() -> None:
    message = rejected(lambda: images.to_array(png_claiming(100_000, 100_000)), "decompression bomb")
    assert "truncated" not in message


def test_pillow_bomb_warning_becomes_an_error_only_inside(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 40x40 = 1600: warns (not errors) in Pillow
    data = encoded(Image.new("RGB", (40, 40)))
    filters_before = list(warnings.filters)
    rejected(lambda: images.to_array(data), "decompression bomb")
    assert warnings.filters == filters_before
    with pytest.warns(Image.DecompressionBombWarning):
        Image.open(io.BytesIO(data))


# -- has_alpha / encode_for_upload ----------------------------------------------------------------------


def test_has_alpha() -> None:
    rgb = smooth_rgb()
    opaque = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    assert not images.has_alpha(rgb)
    assert not images.has_alpha(opaque)
    opaque[5, 7, 3] = 254
    assert images.has_alpha(opaque)


def test_opaque_goes_as_full_chroma_jpeg_q95() -> None:
    rgb = smooth_rgb()
    upload = images.encode_for_upload(rgb)
    assert (upload.mime_type, upload.filename) == ("image/jpeg", "input.jpg")
    decoded = Image.open(io.BytesIO(upload.data))
    assert decoded.format == "JPEG" and decoded.size == (128, 96)
    assert JpegImagePlugin.get_sampling(decoded) == 0  # 4:4:4, no chroma subsampling
    assert np.abs(np.asarray(decoded).astype(int) - rgb).mean() < 2


def test_fully_opaque_rgba_goes_as_rgb_jpeg() -> None:
    rgb = smooth_rgb()
    upload = images.encode_for_upload(np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)]))
    assert upload.mime_type == "image/jpeg"
    assert Image.open(io.BytesIO(upload.data)).mode == "RGB"


def test_alpha_goes_as_exact_png() -> None:
    rgba = np.dstack([smooth_rgb(), np.tile(np.arange(128, dtype=np.uint8), (96, 1))])
    upload = images.encode_for_upload(rgba)
    assert (upload.mime_type, upload.filename) == ("image/png", "input.png")
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(upload.data))), rgba)


def test_lossless_opaque_goes_as_exact_png() -> None:
    rgb = smooth_rgb()
    upload = images.encode_for_upload(rgb, lossless=True)
    assert upload.mime_type == "image/png"
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(upload.data))), rgb)


def test_encode_refuses_what_to_array_never_returns() -> None:
    with pytest.raises(ValueError, match="to_array"):
        images.encode_for_upload(np.zeros((4, 4), np.float32))


# -- pixel_digest ---------------------------------------------------------------------------------------


def test_digest_is_stable_and_sensitive() -> None:
    rgb = smooth_rgb()
    digest = images.pixel_digest(rgb)
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert images.pixel_digest(rgb.copy()) == digest
    changed = rgb.copy()
    changed[50, 60, 2] ^= 1
    assert images.pixel_digest(changed) != digest
    assert images.pixel_digest(rgb.reshape(128, 96, 3)) != digest  # same bytes, other shape
    assert images.pixel_digest(rgb.view(np.int8)) != digest  # same bytes, other dtype


def test_digest_of_a_view_matches_its_copy() -> None:
    view = smooth_rgb()[::2, 1:]
    assert images.pixel_digest(view) == images.pixel_digest(np.ascontiguousarray(view))


# -- decode_image ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("RGB", "RGB"), ("RGBA", "RGBA"), ("LA", "RGBA"), ("L", "RGB"), ("P", "RGB"), ("1", "RGB"), ("I;16", "RGB")],
)
def test_decode_modes(mode: str, expected: str) -> None:
    source = Image.fromarray(smooth_rgb()).convert("RGBA" if mode == "LA" else "RGB")
    if mode == "I;16":
        source = Image.fromarray(np.asarray(source.convert("L")).astype(np.uint16) * 257)
    else:
        source = source.convert(mode)
    out = result_images.decode_image(encoded(source), max_pixels=10**6)
    assert out.mode == expected and out.size == (128, 96)
    np.asarray(out)  # fully loaded: no lazy decoding left


def test_decode_palette_with_transparency_is_rgba() -> None:
    palette = Image.fromarray(smooth_rgb()).convert("P")
    out = result_images.decode_image(encoded(palette, transparency=int(np.asarray(palette)[0, 0])), max_pixels=10**6)
    assert out.mode == "RGBA" and out.getpixel((0, 0))[3] == 0


def test_decode_jpeg() -> None:
    out = result_images.decode_image(encoded(Image.fromarray(smooth_rgb()), "JPEG"), max_pixels=10**6)
    assert out.mode == "RGB" and out.size == (128, 96)


def test_decode_refusals_are_output_rejected() -> None:
    def decode(data: bytes, limit: int = 10**6) -> object:
        return lambda: result_images.decode_image(data, max_pixels=limit)

    rejected(decode(b""), "empty", kind=OutputRejected)
    rejected(decode(b'{"error": "nope"}'), "is not an image", kind=OutputRejected)
    data = encoded(Image.fromarray(smooth_rgb()))
    rejected(decode(data, limit=128 * 96 - 1), "128x96", "over the limit", kind=OutputRejected)
    rejected(decode(data[:-40]), "could not be decoded", kind=OutputRejected)
    rejected(decode(png_claiming(100_000, 100_000)), "decompression bomb", kind=OutputRejected)


def test_decode_checks_the_header_before_the_pixels() -> None:
    # 9000x9000 is under Pillow's own limit and the pixel data is absent: decoding would fail as
    # "truncated"; the size check must refuse it first.
    message = rejected(
        lambda: result_images.decode_image(png_claiming(9000, 9000), max_pixels=4096 * 4096),
        "9000x9000",
        "over the limit",
        kind=OutputRejected,
    )
    assert "truncated" not in message


def model_output(size: int) -> bytes:
    """A realistic result: the emulator's stand-in model isolating a photo (RGBA PNG, soft edges)."""
    from runflow_api.emulator import model

    photo = np.asarray(Image.fromarray(smooth_rgb(size, size)).resize((size, size)))
    return model.isolate(images.encode_for_upload(photo).data, (size, size))


FAST_PNGS = {
    "model RGBA": lambda: model_output(256),
    "RGB": lambda: encoded(Image.fromarray(smooth_rgb(97, 131))),
    "RGBA level 9": lambda: encoded(Image.fromarray(smooth_rgb()).convert("RGBA"), compress_level=9),
    "flat RGBA": lambda: encoded(Image.new("RGBA", (300, 200), (128, 128, 128, 255)), compress_level=1),
}


@pytest.mark.parametrize("name", FAST_PNGS)
def test_png_fast_path_gives_pillows_pixels(name: str) -> None:
    pytest.importorskip("pyspng")
    data = FAST_PNGS[name]()
    fast = result_images._decode_png_fast(data, max_pixels=10**7)
    assert fast is not None, "an 8-bit truecolour PNG must take the libspng path"
    expected = Image.open(io.BytesIO(data))
    assert fast.mode == expected.mode and fast.size == expected.size
    np.testing.assert_array_equal(np.asarray(fast), np.asarray(expected))
    out = result_images.decode_image(data, max_pixels=10**7)
    np.testing.assert_array_equal(np.asarray(out), np.asarray(expected))
    out.load()[0, 0] = (1, 2, 3, 4)[: len(out.getbands())]  # writable, like Pillow's own result
    assert out.getpixel((0, 0)) == (1, 2, 3, 4)[: len(out.getbands())]


def interlaced(data: bytes) -> bytes:
    """The same PNG with its IHDR interlace flag set (CRC fixed): enough for the header check."""
    patched = bytearray(data)
    patched[28] = 1
    patched[29:33] = zlib.crc32(bytes(patched[12:29])).to_bytes(4, "big")
    return bytes(patched)


def test_png_fast_path_leaves_other_pngs_to_pillow() -> None:
    rgb = Image.fromarray(smooth_rgb())
    others = {
        "tRNS": encoded(rgb, transparency=(40, 60, 128)),
        "16-bit": encoded(Image.fromarray(np.asarray(rgb.convert("L")).astype(np.uint16) * 257)),
        "palette": encoded(rgb.convert("P")),
        "grey": encoded(rgb.convert("L")),
        "interlaced": interlaced(encoded(rgb)),
        "JPEG": encoded(rgb, "JPEG"),
    }
    for name, data in others.items():
        assert result_images._decode_png_fast(data, max_pixels=10**7) is None, name
    assert result_images._decode_png_fast(encoded(rgb), max_pixels=128 * 96 - 1) is None  # over our limit


def test_png_fast_path_hands_damaged_data_to_pillow() -> None:
    data = model_output(128)
    for damaged in (data[: len(data) // 2], data[:60] + bytes([data[60] ^ 0xFF]) + data[61:]):
        assert result_images._decode_png_fast(damaged, max_pixels=10**7) is None
        rejected(lambda damaged=damaged: result_images.decode_image(damaged, max_pixels=10**7), "could not be decoded",
                 kind=OutputRejected)


# -- split_rgba / composite -----------------------------------------------------------------------------


def test_split_rgba_with_and_without_alpha() -> None:
    rgb = smooth_rgb()
    alpha8 = np.tile(np.array([0, 128, 255, 64], np.uint8), (96, 32))
    got_rgb, got_alpha = result_images.split_rgba(Image.fromarray(np.dstack([rgb, alpha8]), "RGBA"))
    np.testing.assert_array_equal(got_rgb, rgb)
    assert got_rgb.flags.c_contiguous and got_alpha.dtype == np.float32
    assert got_alpha[0, 0] == 0.0 and got_alpha[0, 2] == 1.0
    assert got_alpha[0, 1] == pytest.approx(128 / 255)
    plain_rgb, ones = result_images.split_rgba(Image.fromarray(rgb))
    np.testing.assert_array_equal(plain_rgb, rgb)
    assert ones.dtype == np.float32 and ones.shape == (96, 128) and bool((ones == 1).all())


def test_composite_math() -> None:
    rgb = np.full((300, 5, 3), (200, 100, 0), np.uint8)  # 300 rows: more than one block
    color = (0, 50, 255)
    alpha = np.zeros((300, 5), np.float32)
    alpha[100:200] = 1.0
    alpha[200:] = 0.5
    out = backgrounds.composite(rgb, alpha, color)
    assert out.dtype == np.uint8 and out.shape == (300, 5, 3)
    assert (out[:100] == color).all()
    assert (out[100:200] == (200, 100, 0)).all()
    midpoint = np.array([100, 75, 127.5])
    assert (np.abs(out[200:].astype(float) - midpoint) <= 1).all()


def test_split_alpha_levels_are_the_nearest_float32() -> None:
    levels = np.arange(256, dtype=np.uint8).reshape(16, 16)
    rgba = np.dstack([np.zeros((16, 16, 3), np.uint8), levels])
    _, alpha = result_images.split_rgba(Image.fromarray(rgba, "RGBA"))
    np.testing.assert_array_equal(alpha, (levels / 255.0).astype(np.float32))


def test_composite_rounds_to_nearest() -> None:
    rgb = np.array([[[255, 101, 3]]], np.uint8)
    out = backgrounds.composite(rgb, np.array([[0.5]], np.float32), (0, 0, 0))
    np.testing.assert_array_equal(out[0, 0], [128, 51, 2])  # 127.5, 50.5, 1.5 rounded half up


def test_composite_clips_alpha_and_checks_shapes() -> None:
    rgb = np.full((4, 4, 3), 10, np.uint8)
    out = backgrounds.composite(rgb, np.full((4, 4), 1.7), (250, 250, 250))
    assert (out == 10).all()
    with pytest.raises(ValueError, match="HxW"):
        backgrounds.composite(rgb, np.ones((4, 5), np.float32), (0, 0, 0))


# -- parse_color ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("#FF8000", (255, 128, 0)),
        ("#ff8000", (255, 128, 0)),
        ("ff8000", (255, 128, 0)),
        ("#f80", (255, 136, 0)),
        ("255,128,0", (255, 128, 0)),
        (" 12 , 34 , 56 ", (12, 34, 56)),
        ("white", (255, 255, 255)),
        ("Black", (0, 0, 0)),
        ("gray", (128, 128, 128)),
        ("grey", (128, 128, 128)),
        ("red", (255, 0, 0)),
        ("green", (0, 255, 0)),
        ("BLUE", (0, 0, 255)),
        ("transparent", None),
        ("none", None),
        ("", None),
        ("   ", None),
        (None, None),
    ],
)
def test_parse_color_forms(text: str | None, expected: tuple[int, int, int] | None) -> None:
    assert backgrounds.parse_color(text) == expected


@pytest.mark.parametrize("text", ["#12", "#12345g", "f80", "256,0,0", "1,2", "1,2,3,4", "-1,0,0", "purple", "²,1,1"])
def test_parse_color_rejects(text: str) -> None:
    rejected(lambda: backgrounds.parse_color(text), repr(text), "#RRGGBB", "R,G,B")


def test_parse_color_rejects_non_text() -> None:
    rejected(lambda: backgrounds.parse_color((1, 2, 3)), "must be text")  # type: ignore[arg-type]


@pytest.mark.parametrize("shape", [(1, 100_000, 3), (70_000, 2, 3), (65_501, 1, 3)])
def test_a_side_past_jpegs_limit_goes_as_png_with_exact_pixels(shape: tuple[int, int, int]) -> None:
    pixels = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    encoded = images.encode_for_upload(images.to_array(pixels))
    assert encoded.mime_type == "image/png"
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(encoded.data))), pixels)


@pytest.mark.parametrize("cut", [10, 100, 300])
def test_a_jpeg_cut_off_inside_its_header_is_refused_by_name(cut: int) -> None:
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(buffer, format="JPEG")
    with pytest.raises(InputRejected, match="photo.jpg: .*truncated or corrupt"):
        images.to_array(buffer.getvalue()[:cut], name="photo.jpg")

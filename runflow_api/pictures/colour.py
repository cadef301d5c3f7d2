"""Colour profiles: every input is seen in sRGB, every output says it is sRGB.

An iPhone photo is tagged Display P3 and a studio export often Adobe RGB. Their numbers mean other
colours than the same numbers in sRGB, which is what the service, ComfyUI and an untagged file are read
as: uploaded as they are, a P3 red came back 16 ΔE76 off. So an input with an embedded ICC profile is
converted to sRGB (LittleCMS through Pillow's ImageCms, relative colorimetric with black-point
compensation, as image editors convert) before its pixels are hashed for the cache key or uploaded, and
every file written is tagged with the sRGB profile, so a colour-managed viewer shows what was meant.

An untagged input is left exactly as it is (its pixels, so its cache key, do not change), and so is one
whose profile is sRGB in all but rounding (a camera's or Photoshop's own sRGB profile): `_is_srgb` tries
the transform on a grid of colours, and a profile that moves none by more than one level is not applied,
so those photos keep their keys too. A profile that cannot be read or applied is ignored with a warning:
the photo is read as it always was, rather than refused.

Cost, measured on a 12 MP (4032x3024) JPEG on a loaded 2-core machine: reading it takes about 300 ms of
CPU untagged and 640 ms tagged Display P3, so the conversion about doubles a tagged photo's read.
"""

from __future__ import annotations

import functools
import io
import logging
import struct
import zlib

import numpy as np
from PIL import Image, ImageCms

log = logging.getLogger("runflow_api")

_PROBE_STEPS = 9  # the probe grid: 9 levels per channel, 729 colours, corners of the cube included
_SRGB_TOLERANCE = 1  # levels a colour may move for a profile to count as sRGB
# ICC colour spaces (the header's data colour space, as Pillow reports it) -> the mode the transform reads.
_MODES_FOR_SPACE = {"RGB ": ("RGB", "RGBA"), "CMYK": ("CMYK",), "GRAY": ("L",)}
_PNG_COLOUR_CHUNKS = (b"iCCP", b"sRGB")


@functools.cache
def _srgb() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


@functools.cache
def srgb_icc() -> bytes:
    """The ICC bytes of LittleCMS's built-in sRGB profile (588 bytes): what every output is tagged with."""
    return _srgb().tobytes()


def embedded_profile(image: Image.Image) -> bytes | None:
    """The image's embedded ICC profile (JPEG APP2, PNG iCCP, WebP ICCP, TIFF, HEIC, AVIF), or None."""
    data = image.info.get("icc_profile")
    return bytes(data) if data else None


def needs_conversion(image: Image.Image) -> bool:
    """Whether `to_srgb` would change this image's colours: a profile that is not sRGB, in a mode it fits."""
    icc = embedded_profile(image)
    return icc is not None and _transform(icc, image.mode) is not None


def to_srgb(image: Image.Image) -> Image.Image:
    """`image` in sRGB: converted through its embedded profile, or itself when it has none (or an sRGB
    one, or one that does not fit its mode). Modes: RGB and RGBA (alpha kept) with an RGB profile, CMYK
    with a CMYK profile and L with a grey profile (both come out RGB). Other modes (palette, grey with
    alpha) are made RGB or RGBA first by the caller (`images.in_srgb`); Pillow's `convert` keeps the
    profile in `info` for that copy."""
    icc = embedded_profile(image)
    if icc is None:
        return image
    transform = _transform(icc, image.mode)
    if transform is None:
        return image
    converted = ImageCms.applyTransform(image, transform)
    assert converted is not None  # applyTransform returns None only when asked to work in place
    converted.info = {key: value for key, value in image.info.items() if key != "icc_profile"}
    return converted


def _output_mode(mode: str) -> str:
    return "RGBA" if mode == "RGBA" else "RGB"


@functools.lru_cache(maxsize=64)
def _transform(icc: bytes, mode: str) -> ImageCms.ImageCmsTransform | None:
    """The transform from this profile to sRGB for an image of `mode`, or None when there is nothing to
    apply: the profile is sRGB, does not fit the mode, or cannot be read (warned once per profile).
    Cached: a catalogue of iPhone photos carries the same profile thousands of times, and building a
    transform and probing it takes about a millisecond."""
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        space = profile.profile.xcolor_space
        if mode not in _MODES_FOR_SPACE.get(space, ()):
            if space not in _MODES_FOR_SPACE:
                log.warning("Ignoring an embedded colour profile for colour space %r, which is not handled.", space)
            return None
        transform = ImageCms.buildTransform(
            profile, _srgb(), mode, _output_mode(mode),
            renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC,
            # NOCACHE: LittleCMS's one-pixel cache is per transform, and this one is shared by decode threads.
            flags=ImageCms.Flags.BLACKPOINTCOMPENSATION | ImageCms.Flags.NOCACHE,
        )
        if mode in ("RGB", "RGBA") and _is_srgb(transform, mode):
            return None
        return transform
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError) as exc:
        log.warning("Ignoring an embedded colour profile that cannot be used (%s); the photo is read as sRGB.", exc)
        return None


def _is_srgb(transform: ImageCms.ImageCmsTransform, mode: str) -> bool:
    """Whether the transform leaves every colour of a grid over the RGB cube within one level."""
    levels = np.linspace(0, 255, _PROBE_STEPS).round().astype(np.uint8)
    grid = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), axis=-1).reshape(1, -1, 3)
    if mode == "RGBA":
        grid = np.concatenate([grid, np.full(grid.shape[:2] + (1,), 255, np.uint8)], axis=-1)
    probe = Image.fromarray(grid, mode)
    moved = np.asarray(ImageCms.applyTransform(probe, transform)).astype(np.int16) - grid
    return int(np.abs(moved).max()) <= _SRGB_TOLERANCE


def tag_png(data: bytes) -> bytes:
    """PNG bytes with the sRGB profile as an iCCP chunk right after IHDR, without re-encoding; bytes that
    carry a colour chunk already (iCCP or sRGB) or are not a PNG are returned as they are."""
    if not data.startswith(b"\x89PNG\r\n\x1a\n") or data[12:16] != b"IHDR" or _png_has_colour_chunk(data):
        return data
    body = b"sRGB\x00\x00" + zlib.compress(srgb_icc())  # profile name, separator, compression method 0
    chunk = struct.pack(">I", len(body)) + b"iCCP" + body + struct.pack(">I", zlib.crc32(b"iCCP" + body))
    end_of_ihdr = 8 + 8 + 13 + 4
    return data[:end_of_ihdr] + chunk + data[end_of_ihdr:]


def _png_has_colour_chunk(data: bytes) -> bool:
    offset = 8
    while offset + 8 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, offset)
        if kind in _PNG_COLOUR_CHUNKS:
            return True
        if kind == b"IDAT":
            return False
        offset += 12 + length
    return False

"""An input image as the engine's one kind of pixels, hashed for the cache key and encoded for the upload.

Everything here is pure numpy + Pillow (no torch, no ComfyUI) so the node, the CLI and the tests share one
definition of "an image". Inputs are normalised to one shape (C-contiguous uint8 HxWx3 or HxWx4) before
anything is hashed or uploaded: the cache key is a hash of those pixels, so two spellings of the same image
(a PIL image, its PNG bytes, the float tensor ComfyUI holds) must land on the same bytes, and anything that
cannot become such an array is refused here, before a single cent is spent.
"""

from __future__ import annotations

import hashlib
import io
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import InputRejected, RunflowError
from . import colour, formats

# 8192 x 8192. The model renders at most 4096 on the long side, so a bigger input only costs upload time
# (a JPEG of this size is already tens of MB, near the 50 MB upload cap) and memory on both ends.
MAX_INPUT_PIXELS = 8192 * 8192

JPEG_QUALITY = 95
# Measured on a photo-like 2048x2048 RGB (2 cores): level 1 takes 0.59 s for 7.0 MB, level 3 0.93 s for
# 6.8 MB, Pillow's default 6 2.6 s for 5.9 MB. At 4096x4096: 2.2 s / 27.5 MB vs 11 s / 23.3 MB. Level 1
# is 4-5x faster for ~18% more bytes, which upload in far less time than the difference.
PNG_COMPRESS_LEVEL = 1

ImageInput = Image.Image | np.ndarray | bytes | bytearray | memoryview | str | Path

_ACCEPTED_KINDS = "a PIL image, a uint8 or 0..1 float numpy array, encoded image bytes, or a file path"
_ACCEPTED_SHAPES = "HxW (grey), HxWx1, HxWx3 (RGB) or HxWx4 (RGBA)"
# Float inputs may overshoot 0..1 by rounding (resampling, colour maths); more than this is a real
# range error (e.g. 0..255 data stored as float) and silently clipping it would upload a white image.
_FLOAT_TOLERANCE = 0.01
# ComfyUI graphs: colour and sharpening nodes often overshoot by far more than rounding, and the nodes
# have always clipped that. 0..255 data stored as float still stands out (its maximum is far above 1.5).
GRAPH_FLOAT_TOLERANCE = 0.5
JPEG_MAX_SIDE = 65_500  # libjpeg's largest width or height

# `warnings.catch_warnings` swaps a process-wide filter list; two threads entering and leaving it out of
# order can leave the "error" filter installed for everyone. This lock keeps our own decodes in order.
_BOMB_GUARD_LOCK = threading.Lock()


@dataclass(frozen=True)
class EncodedImage:
    """An image ready for the asset upload: the bytes and how to label them."""

    data: bytes
    mime_type: str
    filename: str


# -- input ----------------------------------------------------------------------------------------------


def to_array(image: ImageInput, *, name: str = "image", float_tolerance: float = _FLOAT_TOLERANCE) -> np.ndarray:
    """Normalise any supported input to a C-contiguous uint8 array, HxWx3 (opaque) or HxWx4 (with alpha).

    `name` labels the input in error messages ("image 3 has 2 channels ..."), so a user with a batch can
    tell which item was refused. A valid C-contiguous uint8 array is returned as is, without a copy:
    callers must not modify it while a job that hashed it is still running. Float arrays may overshoot
    0..1 by `float_tolerance` (then clipped); beyond that they are refused as a range error.
    """
    if isinstance(image, Image.Image):
        return _array_from_pil(image, name)
    if isinstance(image, np.ndarray):
        return _array_from_numpy(image, name, float_tolerance)
    if isinstance(image, (bytes, bytearray, memoryview)):
        data = bytes(image)
        if not data:
            raise InputRejected(f"{name} is empty (0 bytes). Pass the bytes of a PNG, JPEG or WebP file.")
        return _array_from_pil(_open_input(io.BytesIO(data), name), name)
    if isinstance(image, (str, Path)):
        return _array_from_path(Path(image), name)
    raise InputRejected(f"{name} is a {type(image).__name__}; pass {_ACCEPTED_KINDS}.")


def _array_from_path(path: Path, name: str) -> np.ndarray:
    if not path.exists():
        raise InputRejected(f"{name}: file not found: {path}. Check the path (relative paths start at {Path.cwd()}).")
    if path.is_dir():
        raise InputRejected(f"{name}: {path} is a directory; pass one image file.")
    try:
        with path.open("rb") as handle:
            return _array_from_pil(_open_input(handle, name, source=str(path)), name)
    except PermissionError as exc:
        raise InputRejected(f"{name}: cannot read {path}: permission denied. Check the file's permissions.") from exc


def _open_input(handle: BinaryIO, name: str, *, source: str = "the data") -> Image.Image:
    """Decode an encoded input fully, EXIF orientation applied (phones store portraits rotated)."""

    def reject(problem: str) -> RunflowError:
        return InputRejected(
            f"{name}: {source} {problem}. Pass a photo (JPEG, PNG, WebP, HEIC, AVIF, TIFF...) of at most "
            "8192x8192 pixels (re-export or downscale it)."
        )

    if not formats.ensure_openers() and formats.is_heif(_peek(handle)):
        raise InputRejected(formats.heif_refusal(name, source))
    return ImageOps.exif_transpose(decode_guarded(handle, MAX_INPUT_PIXELS, reject))


def _peek(handle: BinaryIO, size: int = 64) -> bytes:
    """The first bytes of an input, the handle left where it was."""
    start = handle.tell()
    head = handle.read(size)
    handle.seek(start)
    return head


def decode_guarded(handle: BinaryIO, max_pixels: int, reject: Callable[[str], RunflowError]) -> Image.Image:
    """Open, size-check from the header, then load: a small file that claims a huge canvas is refused
    before Pillow allocates its pixels. Pillow's own decompression-bomb warning (Image.MAX_IMAGE_PIXELS)
    is turned into a refusal here only, without touching the process-wide warning filters."""
    try:
        with _BOMB_GUARD_LOCK, warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(handle)
    except UnidentifiedImageError as exc:
        raise reject("is not an image Pillow can read") from exc
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise reject(f"is refused as a possible decompression bomb ({exc})") from exc
    except (OSError, ValueError, SyntaxError) as exc:  # e.g. a JPEG cut off inside its header
        raise reject(f"could not be read ({exc}): it is truncated or corrupt") from exc
    width, height = image.size
    if width * height > max_pixels:
        raise reject(f"is {width}x{height} ({width * height:,} pixels), over the limit of {max_pixels:,}")
    try:
        image.load()
    except (OSError, ValueError, SyntaxError) as exc:
        raise reject(f"could not be decoded ({exc}): it is truncated or corrupt") from exc
    return image


def _array_from_pil(image: Image.Image, name: str) -> np.ndarray:
    width, height = image.size
    _check_size(width, height, name)
    return np.ascontiguousarray(np.asarray(in_srgb(image)))


def in_srgb(image: Image.Image) -> Image.Image:
    """`normalise_mode` with the embedded colour profile applied (`colour.to_srgb`): what every input
    becomes before it is hashed or uploaded. CMYK and grey with a profile of their own are converted
    straight to RGB; any other mode is made RGB(A) first. An untagged image is `normalise_mode`'s."""
    if image.mode in ("CMYK", "L") and colour.needs_conversion(image):
        return colour.to_srgb(image)
    return colour.to_srgb(normalise_mode(image))


def normalise_mode(image: Image.Image) -> Image.Image:
    """Any Pillow mode -> RGB or RGBA, keeping transparency wherever the source has it."""
    mode = image.mode
    if mode in ("RGB", "RGBA"):
        return image
    if mode.startswith("I"):
        # 16-bit greyscale (PNG/TIFF open as I;16 or I). Pillow's own convert("L") clips at 255 instead of
        # scaling, which turns a normal 16-bit scan into a white page, so scale 0..65535 -> 0..255 here.
        wide = np.clip(np.asarray(image).astype(np.int64), 0, 65535)
        grey = ((wide + 128) // 257).astype(np.uint8)
        return Image.fromarray(np.repeat(grey[:, :, None], 3, axis=2))
    if mode in ("LA", "La", "PA", "RGBa") or "transparency" in image.info:
        return image.convert("RGBA")
    # L, 1, P without transparency, CMYK, YCbCr, LAB, HSV, RGBX, F.
    return image.convert("RGB")


def _array_from_numpy(array: np.ndarray, name: str, float_tolerance: float = _FLOAT_TOLERANCE) -> np.ndarray:
    if array.ndim not in (2, 3):
        hint = " It looks like a batch: pass one image at a time." if array.ndim == 4 else ""
        raise InputRejected(f"{name} has {array.ndim} dimensions (shape {array.shape}); pass {_ACCEPTED_SHAPES}.{hint}")
    height, width = array.shape[:2]
    channels = 1 if array.ndim == 2 else array.shape[2]
    if channels not in (1, 3, 4):
        raise InputRejected(f"{name} has {channels} channels (shape {array.shape}); pass {_ACCEPTED_SHAPES}.")
    _check_size(width, height, name)
    if array.dtype == np.uint8:
        pixels = array
    elif np.issubdtype(array.dtype, np.floating):
        pixels = _float_to_uint8(array, name, float_tolerance)
    else:
        raise InputRejected(f"{name} has dtype {array.dtype}; pass uint8 (0..255) or float32/float64 scaled to 0..1.")
    if channels == 1:
        pixels = np.repeat(pixels.reshape(height, width, 1), 3, axis=2)
    return np.ascontiguousarray(pixels)


def _float_to_uint8(array: np.ndarray, name: str, tolerance: float) -> np.ndarray:
    """0..1 floats -> uint8, rounding to nearest. min/max first (no full-size temporaries) because that
    also reveals NaN and inf, which compare as neither in nor out of range."""
    low, high = float(array.min()), float(array.max())
    if np.isnan(low) or np.isnan(high):
        raise InputRejected(f"{name} contains NaN values. Fix the node that produced it (often a division by 0).")
    if np.isinf(low) or np.isinf(high):
        raise InputRejected(f"{name} contains infinite values. Fix the node that produced it.")
    if low < -tolerance or high > 1 + tolerance:
        raise InputRejected(
            f"{name} is a float array with values from {low:.4g} to {high:.4g}; floats must be in 0..1. "
            "Divide 0..255 data by 255, or pass it as uint8."
        )
    scaled = array.astype(np.float32)  # a copy we own, so the in-place steps below never touch the input
    np.clip(scaled, 0.0, 1.0, out=scaled)
    scaled *= 255.0
    scaled += 0.5
    return scaled.astype(np.uint8)


def _check_size(width: int, height: int, name: str) -> None:
    if width == 0 or height == 0:
        raise InputRejected(f"{name} is {width}x{height}: it has no pixels. Check the node or file that produced it.")
    if width * height > MAX_INPUT_PIXELS:
        raise InputRejected(
            f"{name} is {width}x{height} ({width * height:,} pixels), over the limit of {MAX_INPUT_PIXELS:,} "
            "(8192x8192). The model renders at most 4096 on the long side: downscale it first."
        )


# -- upload ---------------------------------------------------------------------------------------------


def has_alpha(arr: np.ndarray) -> bool:
    """True when the array has an alpha channel that actually hides something: a fully opaque RGBA
    array is uploaded as JPEG, like RGB."""
    return arr.ndim == 3 and arr.shape[2] == 4 and int(arr[:, :, 3].min()) < 255


def encode_for_upload(arr: np.ndarray, *, lossless: bool = False) -> EncodedImage:
    """Encode a `to_array` result for the asset upload.

    A side longer than JPEG's limit (65,500 px: a panorama strip, a 1-pixel-high tensor) goes as PNG,
    which has no such limit, rather than failing inside the encoder.

    Opaque images go as JPEG q95 without chroma subsampling (edges of the product keep full colour
    resolution): on a 4096² photo 0.13 s and 4 MB, against 2.2 s and 27.5 MB for PNG level 1, and
    visually lossless. Alpha cannot go through JPEG, and `lossless` asks for exact pixels, so those go as
    PNG at a fast compression level. `optimize=False`: Huffman optimisation takes 2.5x the time for ~6%.
    """
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise ValueError(f"encode_for_upload needs a to_array() result (uint8 HxWx3/4), got {arr.dtype} {arr.shape}")
    if arr.shape[2] == 4 and not has_alpha(arr):
        arr = arr[:, :, :3]
    buffer = io.BytesIO()
    image = Image.fromarray(np.ascontiguousarray(arr))
    if arr.shape[2] == 4 or lossless or max(arr.shape[:2]) > JPEG_MAX_SIDE:
        image.save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
        return EncodedImage(buffer.getvalue(), "image/png", "input.png")
    image.save(buffer, format="JPEG", quality=JPEG_QUALITY, subsampling=0, optimize=False)
    return EncodedImage(buffer.getvalue(), "image/jpeg", "input.jpg")


def pixel_digest(arr: np.ndarray) -> str:
    """sha256 of shape, dtype and raw pixels: the image part of the cache key. Shape is included so that
    the same bytes read as 100x300 and 300x100 do not collide; hashing a memoryview avoids a copy."""
    contiguous = np.ascontiguousarray(arr)
    digest = hashlib.sha256(f"pixels:{contiguous.shape}:{contiguous.dtype.str}\n".encode())
    digest.update(contiguous.data.cast("B"))
    return digest.hexdigest()

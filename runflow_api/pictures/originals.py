"""A file's own bytes as the upload, when the service would read them exactly as we did.

Re-encoding a photo that is already a JPEG, PNG or WebP costs CPU (about 0.1 s for a 2K JPEG q95, 0.6 s
for a 2K PNG) and, for JPEG, a second generation of compression loss. When the file is one the service
reads as is, its original bytes go up instead. The cache key is still the decoded pixels
(`images.pixel_digest`), so the same photo as a file, a PIL image or a tensor is one result.

That holds only while the service's decoder sees the pixels we hashed, so anything another reader may
interpret differently is re-encoded from our pixels (the upload then carries exactly those pixels, and no
metadata): an EXIF orientation other than 1 (we rotate upright), CMYK or greyscale, more than 8 bits per
channel, a palette or grey+alpha PNG, an RGB PNG with a tRNS colour key, an animation (we read frame
one), and any colour management (an ICC profile, PNG gAMA/cHRM): a service that honours it would see
other colours than our pixels, and one that ignores it other colours than a viewer shows. Our pixels of
a photo with a profile are already converted to sRGB (`colour.py`), so the upload carries the colours
the photo shows.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
from PIL import ExifTags, Image, ImageFile

from ..errors import InputRejected
from ..product_isolation import MAX_UPLOAD_BYTES
from . import images, result_images

# Pillow format -> (MIME type, filename) of the upload: the formats Runflow's asset upload accepts.
UPLOAD_FORMATS = {
    "JPEG": ("image/jpeg", "input.jpg"),
    "PNG": ("image/png", "input.png"),
    "WEBP": ("image/webp", "input.webp"),
}
_PLAIN_MODES = ("RGB", "RGBA")
# Pillow's `info` keys for an embedded ICC profile (JPEG APP2, PNG iCCP, WebP ICCP) and PNG gAMA / cHRM.
_COLOUR_MANAGEMENT = ("icc_profile", "gamma", "chromaticity")
_WEBP_ANIMATION_FLAG = 0x02  # in the VP8X chunk's flags byte


def read(image: Any, *, name: str, data: bytes | None = None) -> tuple[np.ndarray, images.EncodedImage | None]:
    """The input's pixels (as `images.to_array` reads them) and, for a file whose bytes can be uploaded as
    they are, those bytes; None means "encode the pixels". Only paths qualify: other inputs have no
    original bytes worth keeping (tensors, arrays) or are a script's in-memory data. The pixels are
    decoded from the very bytes uploaded, so a file rewritten meanwhile cannot split key and upload.
    `data` is the file's bytes when the caller has read them already (`file_bytes`)."""
    if not isinstance(image, (str, Path)):
        return images.to_array(image, name=name), None
    if data is None:
        data = file_bytes(image)
    if data is None:
        return images.to_array(image, name=name), None
    try:
        array = images.to_array(data, name=name)
    except InputRejected:
        return images.to_array(image, name=name), None  # read again only for the message naming the file
    return array, as_upload(data)


def file_bytes(image: Any) -> bytes | None:
    """A path input's bytes when it could be uploaded as it is (at most 50 MiB); None for anything else,
    which then takes the ordinary path and its messages (missing file, directory, permission)."""
    if not isinstance(image, (str, Path)):
        return None
    path = Path(image)
    try:
        if not path.is_file() or not 0 < path.stat().st_size <= MAX_UPLOAD_BYTES:
            return None
        return path.read_bytes()
    except OSError:
        return None


def as_upload(data: bytes) -> images.EncodedImage | None:
    """`data` labelled for the asset upload, or None when it must be re-encoded (`refusal` says why).
    The pixels are decoded (and size-checked) by the caller first; this reads the header (and a PNG's
    pixels once more: its EXIF may follow them), far cheaper than a PNG encode."""
    with Image.open(io.BytesIO(data)) as image:
        if refusal(image, data) is not None:
            return None
        mime_type, filename = UPLOAD_FORMATS[str(image.format)]
    return images.EncodedImage(data, mime_type, filename)


def refusal(image: ImageFile.ImageFile, data: bytes) -> str | None:
    """Why the original bytes of `image` (opened from `data`) are not uploaded as they are, or None."""
    if image.format not in UPLOAD_FORMATS:
        return f"it is {image.format}, not JPEG, PNG or WebP"
    if len(data) > MAX_UPLOAD_BYTES:
        return "it is over the 50 MiB upload limit"
    if image.mode not in _PLAIN_MODES:
        return f"its colour mode is {image.mode}; we convert it to RGB(A), another reader may convert it otherwise"
    header = result_images.png_header(data) if image.format == "PNG" else None
    if header is not None and header.depth != 8:
        return f"it has {header.depth} bits per channel; we read 8"
    if _is_animated(image, data):
        return "it is animated; we read the first frame"
    managed = [key for key in _COLOUR_MANAGEMENT if image.info.get(key)]
    if managed:
        return f"it carries colour management ({', '.join(managed)})"
    if "transparency" in image.info:
        return "it has a tRNS colour key, which we turn into alpha"
    orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
    if orientation != 1:
        return f"its EXIF orientation is {orientation}; we rotate it upright"
    return None


def _is_animated(image: ImageFile.ImageFile, data: bytes) -> bool:
    """More than one frame, or declared as an animation (APNG, WebP with the VP8X animation flag) even
    with one frame: a reader may composite such a frame onto its canvas in its own way."""
    if getattr(image, "n_frames", 1) != 1 or image.get_format_mimetype() == "image/apng":
        return True
    return image.format == "WEBP" and data[12:16] == b"VP8X" and bool(data[20] & _WEBP_ANIMATION_FLAG)

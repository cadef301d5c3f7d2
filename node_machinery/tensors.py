"""ComfyUI's IMAGE/MASK tensors to and from the engine's uint8 arrays and PIL results.

The only module of the node layer that shapes tensors; torch is imported here and in nothing the
engine (`runflow_api`) uses.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from ..runflow_api.errors import InputRejected
from ..runflow_api.pictures import backgrounds, images
from ..runflow_api.pictures.post_processing import PostProcessing


def tensor_to_arrays(image: torch.Tensor) -> list[np.ndarray]:
    """ComfyUI IMAGE [B, H, W, C] float 0..1 -> one uint8 HxWxC array per batch item.

    Each item goes through the library's own input checks (NaN, infinities, 0..255 floats, size), so
    a broken upstream node is refused here, before anything is uploaded or paid, as a script's array
    would be; only the overshoot a graph may clip is wider (images.GRAPH_FLOAT_TOLERANCE)."""
    if image.ndim != 4:
        raise InputRejected(f"Expected an IMAGE batch shaped [B, H, W, C], got shape {tuple(image.shape)}.")
    if image.shape[0] == 0:
        raise InputRejected("The image batch is empty: connect at least one image.")
    count = image.shape[0]
    # One item at a time: a whole-batch float copy of 16 2K images is 800 MB.
    return [
        images.to_array(
            item.to("cpu", torch.float32).numpy(),
            name=f"image {index + 1} of {count} (input 'image')",
            float_tolerance=images.GRAPH_FLOAT_TOLERANCE,
        )
        for index, item in enumerate(image.detach())
    ]


# The isolation nodes' tensor outputs, by slot: (image RGB, mask, rgba). Slot 3 (run_info) is text.
IMAGE_SLOT, MASK_SLOT, RGBA_SLOT = 0, 1, 2
TENSOR_SLOTS = frozenset({IMAGE_SLOT, MASK_SLOT, RGBA_SLOT})
SLOT_NAMES = {IMAGE_SLOT: "image", MASK_SLOT: "mask", RGBA_SLOT: "rgba"}
# Channels per pixel of each output; the mask has none (a [B, H, W] tensor).
CHANNELS: dict[int, int | None] = {IMAGE_SLOT: 3, MASK_SLOT: None, RGBA_SLOT: 4}


def stand_in(slot: int) -> torch.Tensor:
    """What an output nothing is connected to holds: one black (or fully transparent) pixel, shaped as
    the output's kind, so that code reading the node's outputs by position still gets a valid tensor."""
    channels = CHANNELS[slot]
    return torch.zeros((1, 1, 1) if channels is None else (1, 1, 1, channels))


def assemble_outputs(
    pictures: list[Image.Image | None],
    post: PostProcessing,
    build: frozenset[int] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(image RGB, mask 1 = product, rgba) as float32 CPU batches, built for the slots in `build` (None:
    all three); the others are `stand_in`s. Each picture is drawn with `post`'s rendering options as it
    is converted (`PostProcessing.draw`: clean edges, a margin...; only the steps that change alpha when
    `mask` is the one output built), and `image` is composited onto `post`'s background colour.

    Each output is allocated once, uninitialised (its pages are committed as they are written), and
    each decoded picture is converted straight into its place. `pictures` is consumed: every entry is
    set to None once converted, so a caller holding no other reference frees each decoded image before
    the next is converted. A 4K batch then peaks at its outputs plus one picture, not at its outputs
    plus every decoded image and their float copies.

    Results of different sizes (e.g. "auto" aspect over mixed photos) are letterboxed, centred, onto
    the largest width and height of the batch, in the same pass: padding is the background colour in
    `image` (black when transparent), 0 in `mask` and fully transparent in `rgba`.
    """
    wanted = TENSOR_SLOTS if build is None else TENSOR_SLOTS & build
    color, alpha_only = post.color, not wanted & {IMAGE_SLOT, RGBA_SLOT}
    sizes = [(picture.height, picture.width) for picture in pictures if picture is not None]
    if len(sizes) != len(pictures):
        raise ValueError("assemble_outputs needs every picture (a consumed list cannot be assembled twice)")
    height, width = max(h for h, _ in sizes), max(w for _, w in sizes)
    outputs = {slot: _allocate(len(pictures), height, width, CHANNELS[slot]) for slot in wanted}
    for index, (h, w) in enumerate(sizes):
        picture, pictures[index] = pictures[index], None
        assert picture is not None  # checked above
        pixels = post.draw(_pixels(picture), alpha_only=alpha_only)
        del picture  # the caller's list no longer holds it: the decoded image is freed here
        top, left = (height - h) // 2, (width - w) // 2
        window = (slice(top, top + h), slice(left, left + w))
        if (h, w) != (height, width):
            _pad(outputs, index, color)
        _convert(pixels, {slot: out[index][window] for slot, out in outputs.items()}, color)
    image, mask, rgba = (
        torch.from_numpy(outputs[slot]) if slot in outputs else stand_in(slot)
        for slot in (IMAGE_SLOT, MASK_SLOT, RGBA_SLOT)
    )
    return image, mask, rgba


def _allocate(count: int, height: int, width: int, channels: int | None) -> np.ndarray:
    return np.empty((count, height, width) if channels is None else (count, height, width, channels), np.float32)


def _pixels(picture: Image.Image) -> np.ndarray:
    """The decoded picture as uint8 HxWx3 or HxWx4 (the engine decodes to RGB or RGBA already)."""
    return np.asarray(picture if picture.mode in ("RGB", "RGBA") else picture.convert("RGBA"))


def _pad(outputs: dict[int, np.ndarray], index: int, color: tuple[int, int, int] | None) -> None:
    """Fill item `index` with its padding before a smaller picture is written over its centre."""
    for slot, out in outputs.items():
        out[index] = np.asarray(color, np.float32) / 255 if slot == IMAGE_SLOT and color is not None else 0.0


def _convert(pixels: np.ndarray, windows: dict[int, np.ndarray], color: tuple[int, int, int] | None) -> None:
    """One picture into its window of each output being built: every value the correctly rounded k/255
    of its 8-bit source (the composite rounded to 8 bits first, as the model's RGB is)."""
    rgb = pixels[..., :3]
    alpha = pixels[..., 3] if pixels.shape[2] == 4 else None
    if RGBA_SLOT in windows and alpha is not None:
        _to_unit(pixels, out=windows[RGBA_SLOT])  # one pass over all four channels
    elif RGBA_SLOT in windows:
        _to_unit(rgb, out=windows[RGBA_SLOT][..., :3])
        windows[RGBA_SLOT][..., 3] = 1.0
    if MASK_SLOT in windows:
        _alpha_to_unit(alpha, out=windows[MASK_SLOT])
    if IMAGE_SLOT in windows:
        if color is None:
            _to_unit(rgb, out=windows[IMAGE_SLOT])
        else:
            unit_alpha = np.empty(rgb.shape[:2], np.float32)
            _alpha_to_unit(alpha, out=unit_alpha)
            _to_unit(backgrounds.composite(rgb, unit_alpha, color), out=windows[IMAGE_SLOT])


def _alpha_to_unit(alpha: np.ndarray | None, *, out: np.ndarray) -> None:
    """An alpha channel in 0..1; a picture without one is opaque (everything is foreground)."""
    if alpha is None:
        out[...] = 1.0
    else:
        _to_unit(alpha, out=out)


def _to_unit(pixels: np.ndarray, *, out: np.ndarray) -> None:
    """uint8 -> float32 in 0..1 written straight into the batch: the same correctly rounded k/255 as
    `astype(np.float32) / 255`, without its two full-size float temporaries (192 MB per 4K image)."""
    np.divide(pixels, np.float32(255), out=out, dtype=np.float32)

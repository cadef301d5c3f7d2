"""ComfyUI's IMAGE/MASK tensors to and from the engine's uint8 arrays and PIL results.

The only module of the node layer that shapes tensors; torch is imported here and in nothing the
engine (`runflow_api`) uses.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..runflow_api import backgrounds, images, result_images
from ..runflow_api.errors import InputRejected
from ..runflow_api.result_types import IsolationResult


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


def assemble_outputs(
    results: Sequence[IsolationResult], color: tuple[int, int, int] | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(image RGB, mask 1 = product, rgba) as float32 CPU batches.

    Results of different sizes (e.g. "auto" aspect over mixed photos) are letterboxed, centred, onto
    the largest width and height of the batch: padding is the background colour in `image` (black when
    transparent), 0 in `mask` and fully transparent in `rgba`.
    """
    height = max(result.image.height for result in results)
    width = max(result.image.width for result in results)
    count = len(results)
    rgb_out = np.zeros((count, height, width, 3), np.float32)
    if color is not None:
        rgb_out[:] = np.asarray(color, np.float32) / 255
    mask_out = np.zeros((count, height, width), np.float32)
    rgba_out = np.zeros((count, height, width, 4), np.float32)
    for index, result in enumerate(results):
        rgb, alpha = result_images.split_rgba(result.image)
        h, w = alpha.shape
        top, left = (height - h) // 2, (width - w) // 2
        window = (index, slice(top, top + h), slice(left, left + w))
        rgba = rgba_out[window]
        _to_unit(rgb, out=rgba[..., :3])
        rgba[..., 3] = alpha
        mask_out[window] = alpha
        if color is None:
            rgb_out[window] = rgba[..., :3]
        else:
            _to_unit(backgrounds.composite(rgb, alpha, color), out=rgb_out[window])
    return torch.from_numpy(rgb_out), torch.from_numpy(mask_out), torch.from_numpy(rgba_out)


def _to_unit(pixels: np.ndarray, *, out: np.ndarray) -> None:
    """uint8 -> float32 in 0..1 written straight into the batch: the same correctly rounded k/255 as
    `astype(np.float32) / 255`, without its two full-size float temporaries (192 MB per 4K image)."""
    np.divide(pixels, np.float32(255), out=out, dtype=np.float32)

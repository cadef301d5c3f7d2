"""The isolation nodes' `input_mask` output: each result's matte on its input photo's own canvas.

The service re-frames the product, so `mask` lines up with the result, not with the photo; an inpainting,
relighting or Join Image with Alpha graph needs the product where it is in the photo. Each result is
placed on its input by `placement.place_on_input` (from the pixels; no paid run). Built only when the
output is connected (`linked_outputs`), since placing costs about 0.1 s of CPU per 2K photo.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..runflow_api.client import RunflowClient
from ..runflow_api.pictures.placement import place_on_input
from ..runflow_api.pictures.result_types import IsolationResult

INPUT_MASK_SLOT = 4  # after image, mask, rgba and run_info: appended, so saved workflows keep their links


def place_results(client: RunflowClient, items: Sequence[Any], shown: Sequence[IsolationResult]) -> list[np.ndarray]:
    """One HxW float32 mask (1 = product) per output item, at the size of the input it came from. A result
    that cannot be placed gives an empty mask, and its `unplaced` QA flag shows in run_info. The image
    node's inputs are its arrays already; a URL input is downloaded again (free), once per input."""
    masks = []
    pixels, read_index = None, -1
    for result in shown:  # in input order, each input's images together: one input's pixels held at a time
        if result.index != read_index:
            read_index = result.index
            pixels = client.read_input(items[read_index], name=f"image {read_index + 1} of {len(items)}")
        assert pixels is not None
        placement = place_on_input(pixels, result)
        masks.append(placement.mask if placement.mask is not None else np.zeros(pixels.shape[:2], np.float32))
    return masks


def assemble_input_masks(masks: list[np.ndarray]) -> torch.Tensor:
    """The masks as one MASK batch [B, H, W]. Inputs of different sizes cannot share one tensor: like the
    other outputs, each is letterboxed, centred, onto the batch's largest width and height, padding 0
    (crop it back with the input's own size, or run such photos one at a time)."""
    height, width = max(mask.shape[0] for mask in masks), max(mask.shape[1] for mask in masks)
    batch = np.zeros((len(masks), height, width), np.float32)
    for index, mask in enumerate(masks):
        top, left = (height - mask.shape[0]) // 2, (width - mask.shape[1]) // 2
        batch[index, top : top + mask.shape[0], left : left + mask.shape[1]] = mask
    return torch.from_numpy(batch)

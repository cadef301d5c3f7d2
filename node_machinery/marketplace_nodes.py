"""What the marketplace nodes do: Runflow Marketplace Image renders a preset's canvas from the isolation
node's outputs (free: no run is made), Runflow Save Marketplace File writes it in the preset's file format
within its cap into ComfyUI's output folder and checks the bytes as written.

The engine is `runflow_api.marketplace_*` (the CLI's `--formats` uses the same); this module only turns
ComfyUI's tensors into RGBA arrays and back, and names the node inputs in its refusals. ComfyUI's own
Save Image writes PNG only, and a marketplace wants a JPEG within a cap, so the save node encodes itself.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..runflow_api.errors import InputRejected
from ..runflow_api.pictures import marketplace_checks, marketplace_encode, marketplace_presets
from ..runflow_api.pictures.marketplace_checks import PlacedProduct
from ..runflow_api.pictures.marketplace_presets import Preset
from ..runflow_api.pictures.marketplace_render import Product, covered_on_canvas, render_with_canvas
from .spec import NodeResult
from .tensors import tensor_to_arrays

CUSTOM = "custom"  # the preset choice that reads the custom_preset input
PRESET_CHOICES: tuple[str, ...] = (*marketplace_presets.builtin(), CUSTOM)
DEFAULT_PREFIX = "runflow"


def preset_of(preset: str, custom_preset: str) -> Preset:
    """The chosen preset: a shipped one by name, or with 'custom' the preset string of `custom_preset`."""
    if preset == CUSTOM:
        if not custom_preset.strip():
            raise InputRejected("Input 'preset' is 'custom' but 'custom_preset' is empty: give a preset string "
                                "such as 1200x1500,fill=0.8,bg=#f5f5f5,jpeg,cap=3MB, or choose a shipped preset.")
        return marketplace_presets.parse_custom(custom_preset, where="input 'custom_preset'")
    shipped = marketplace_presets.builtin()
    if preset not in shipped:
        raise InputRejected(f"Input 'preset' is {preset!r}, which is no preset: choose one of "
                            f"{', '.join(PRESET_CHOICES)}.")
    return shipped[preset]


def _mask_items(mask: torch.Tensor, count: int) -> list[np.ndarray]:
    """ComfyUI MASK [B, H, W] (or [H, W]) float 0..1 -> one uint8 array per image (a single mask serves all)."""
    values = mask.detach().to("cpu", torch.float32)
    if values.ndim == 2:
        values = values.unsqueeze(0)
    if values.ndim != 3 or values.shape[0] not in (1, count):
        raise InputRejected(f"Input 'mask' is shaped {tuple(mask.shape)}: connect the isolation node's mask "
                            f"output (one mask per image, [B, H, W] with B = {count}).")
    array = np.clip(np.nan_to_num(values.numpy()) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return [array[index if array.shape[0] == count else 0] for index in range(count)]


def rgba_items(image: torch.Tensor, mask: torch.Tensor | None) -> list[np.ndarray]:
    """The isolation node's outputs as straight-alpha RGBA arrays: `rgba` as it is, or `image` + `mask`."""
    arrays = tensor_to_arrays(image)
    if mask is None:
        if any(array.shape[2] != 4 for array in arrays):
            raise InputRejected("Input 'image' has no alpha and 'mask' is not connected: connect the isolation "
                                "node's rgba output to 'image', or its image and mask outputs to both.")
        return arrays
    items = []
    for array, alpha in zip(arrays, _mask_items(mask, len(arrays)), strict=True):
        if alpha.shape != array.shape[:2]:
            raise InputRejected(f"Input 'mask' is {alpha.shape[1]}x{alpha.shape[0]} but 'image' is "
                                f"{array.shape[1]}x{array.shape[0]}: connect the same isolation node's image "
                                "and mask outputs.")
        items.append(np.dstack([array[..., :3], alpha]))
    return items


def _to_tensor(pictures: list[np.ndarray]) -> torch.Tensor:
    """Same-sized uint8 arrays (HxWx3, or HxW masks) -> one float 0..1 batch."""
    return torch.from_numpy(np.stack(pictures).astype(np.float32) / 255.0)


def marketplace_image(image: torch.Tensor, preset: str, mask: torch.Tensor | None, custom_preset: str, edges: str,
                      *, unique_id: str | None = None) -> NodeResult:
    """Runflow Marketplace Image: each image of the batch on the preset's canvas, at its exact size."""
    chosen = preset_of(preset, custom_preset)
    canvases, masks, reports = [], [], []
    for index, rgba in enumerate(rgba_items(image, mask)):
        product = Product.of(rgba, edges=edges, presets=[chosen])
        rendering, canvas = render_with_canvas(product, chosen)  # with the flags a save will find
        placed = rendering.product
        full = np.zeros((chosen.height, chosen.width), np.uint8)
        height, width = placed.alpha.shape
        full[placed.top:placed.top + height, placed.left:placed.left + width] = placed.alpha
        canvases.append(np.asarray(canvas))
        masks.append(full)
        reports.append(json.dumps({"index": index, **rendering.report()}))
    return NodeResult((_to_tensor(canvases), _to_tensor(masks), "\n".join(reports)))


def output_directory() -> Path:
    """ComfyUI's output folder (`folder_paths`); outside ComfyUI (scripts, tests) RUNFLOW_OUTPUT_DIR or
    ./output."""
    try:
        import folder_paths

        return Path(folder_paths.get_output_directory())
    except ImportError:
        return Path(os.environ.get("RUNFLOW_OUTPUT_DIR", "output"))


def _free_name(folder: Path, stem: str, extension: str) -> Path:
    """`<stem>_00001.jpg`, the first number not taken (as ComfyUI's Save Image counts)."""
    number = 1
    while (folder / f"{stem}_{number:05d}{extension}").exists():
        number += 1
    return folder / f"{stem}_{number:05d}{extension}"


def _safe_prefix(prefix: str) -> tuple[Path, str]:
    """The subfolder and the file stem of `filename_prefix`; refused when it would leave the output folder."""
    text = (prefix or DEFAULT_PREFIX).strip().replace("\\", "/")
    parts = [part for part in text.split("/") if part not in ("", ".")]
    if not parts or ".." in parts or ":" in text:
        raise InputRejected(f"Input 'filename_prefix' is {prefix!r}: give a name, optionally below subfolders "
                            "of ComfyUI's output folder (e.g. shop/sneaker), without '..'.")
    return Path(*parts[:-1]), parts[-1]


def save_marketplace_file(image: torch.Tensor, preset: str, mask: torch.Tensor | None, custom_preset: str,
                          filename_prefix: str, *, unique_id: str | None = None) -> NodeResult:
    """Runflow Save Marketplace File: each image as the preset's file, `<prefix>_<preset>_00001.jpg`."""
    chosen = preset_of(preset, custom_preset)
    subfolder, stem = _safe_prefix(filename_prefix)
    base = output_directory()
    folder = base / subfolder
    pictures = tensor_to_arrays(image)
    alphas = _mask_items(mask, len(pictures)) if mask is not None else [None] * len(pictures)
    shown: list[dict[str, Any]] = []
    reports = []
    for index, (picture, alpha) in enumerate(zip(pictures, alphas, strict=True)):
        rgb = picture[..., :3]
        covered = None
        if alpha is None or alpha.shape != rgb.shape[:2]:  # the product is what is not the background
            alpha = (rgb != np.array(chosen.background, np.uint8)).any(axis=2).astype(np.uint8) * 255
        else:  # the preset's shadow is drawn from the product's matte alone: drawn again, it says where it is
            covered = covered_on_canvas(alpha, chosen)
        canvas = Image.fromarray(np.ascontiguousarray(rgb), "RGB")
        encoded = marketplace_encode.encode(canvas, chosen.format, chosen.cap)
        flags, measured = marketplace_checks.check(encoded.data, chosen, PlacedProduct.from_canvas_mask(alpha),
                                                   covered=covered)
        folder.mkdir(parents=True, exist_ok=True)
        target = _free_name(folder, f"{stem}_{chosen.name}", chosen.extension)
        target.write_bytes(encoded.data)
        entry = {"index": index, "file": target.name, "preset": chosen.name, "flags": flags,
                 "quality": encoded.quality, **measured.as_dict()}
        reports.append(json.dumps(entry))
        shown.append({"filename": target.name, "subfolder": subfolder.as_posix() if subfolder.parts else "",
                      "type": "output", "flags": flags})
    ui = {"images": [{key: item[key] for key in ("filename", "subfolder", "type")} for item in shown],
          "runflow_marketplace": [{"file": item["filename"], "preset": chosen.name, "flags": item["flags"]}
                                  for item in shown]}
    return NodeResult(("\n".join(reports),), ui=ui)

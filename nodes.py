"""The pack's nodes: ids, names, inputs, outputs, what runs them, and how ComfyUI gets them.

This is where a reader finds the nodes. Node ids, input names, their order and their defaults are saved
in users' workflows: they never change, and a new input is appended (with a default) to the end of a
node's `inputs`. That one line here is the whole declaration change: the V3 schema and the classic V1
class (both in `node_machinery/`), the defaults the run functions receive and the tests all read these
tuples. The texts are English; the browser shows translations of them from `locales/` (keyed by the node
id and input name).

How ComfyUI gets them: with its versioned V3 API (`comfy_api.v0_0_2`, ComfyUI 0.3.48 and later) through
`comfy_entrypoint_for`; otherwise (an older ComfyUI, plain Python) as the classic classes of
`NODE_CLASS_MAPPINGS`. `v3_api()` says which one this process gets; the pack's `__init__.py` offers it.
What the nodes do when they run lives in `node_machinery/execution.py`.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from types import ModuleType
from typing import Any

from .node_machinery import execution, marketplace_nodes, photo_loading
from .node_machinery.classic import classic_class
from .node_machinery.spec import InputDef, NodeDef, NodeResult, OutputDef, rendering_input
from .runflow_api.flow import run_metadata
from .runflow_api.pictures.edges import EDGE_MODES, EDGES_CLEAN
from .runflow_api.pictures.marketplace_presets import CUSTOM_HELP
from .runflow_api.product_isolation import ASPECT_RATIOS, AUTO_ASPECT, PRICE_PER_IMAGE, RESOLUTIONS

log = logging.getLogger("runflow")

CATEGORY = "Runflow"

_ASPECT_TOOLTIP = "Width:height of the output canvas; the model crops and frames the product to it. "


RESOLUTION = InputDef(
    "resolution",
    "COMBO",
    "Long side of the output: 1K = 1024 px, 2K = 2048 px, 4K = 4096 px. "
    f"Same price for all: ${PRICE_PER_IMAGE} per image.",
    choices=tuple(RESOLUTIONS),
    default="2K",
)


# The optional inputs both isolation nodes share, in widget order: a new one is appended here, with a default.
# A rendering option (post_processing.PostProcessing) is declared there once; here it only takes its place.
ISOLATION_OPTIONS: tuple[InputDef, ...] = (
    InputDef(
        "prompt",
        "STRING",
        "Optional: what to isolate, in a short phrase (e.g. 'the left shoe'). Empty isolates the main product.",
        optional=True,
        default="",
        multiline=True,
    ),
    rendering_input("background"),
    InputDef(
        "force_rerun",
        "BOOLEAN",
        f"Pay for fresh runs (${PRICE_PER_IMAGE} each) even when identical results are cached. Off: an image "
        "already isolated with the same settings costs nothing.",
        optional=True,
        default=False,
    ),
    InputDef(
        "spend_limit",
        "FLOAT",
        "Most dollars one execution may spend on new runs; 0 = no limit. Checked before anything starts "
        "(cached and resumed images are free); over the limit, nothing runs. Applies at list price in "
        "emulator mode too, so you can try it for free.",
        optional=True,
        default=0.0,
        minimum=0.0,
        maximum=100000.0,
        step=1.0,
        round=0.01,
    ),
    InputDef(
        "concurrency",
        "INT",
        "How many images of a batch are in flight at Runflow at once.",
        optional=True,
        default=8,
        minimum=1,
        maximum=32,
    ),
    # Issue #11: appended after 0.1.0's inputs, so saved workflows (which lack them) get the defaults.
    InputDef(
        run_metadata.METADATA_INPUT,
        "STRING",
        'Optional: your own labels for these runs in Runflow\'s dashboard, as a JSON object of strings, e.g. '
        '{"sku": "A-123", "campaign": "spring"}. Never put a key or password here: it is saved in the workflow.',
        optional=True,
        default="",
        multiline=True,
    ),
    rendering_input("outputs"),
    # Issue #22: appended last; saved workflows get 'as returned', the pixels they always had.
    rendering_input("edges"),
    # Issue #34: saved workflows get 0, the model's own framing.
    rendering_input("margin"),
    # Issue #36: saved workflows get 'none' (no shadow); strength and softness only matter with a shadow.
    rendering_input("shadow"),
    rendering_input("shadow_strength"),
    rendering_input("shadow_softness"),
)

ISOLATION_OUTPUTS: tuple[OutputDef, ...] = (
    OutputDef(
        "image",
        "IMAGE",
        "The isolated product, RGB (3 channels). background 'transparent': the model's RGB as returned; a "
        "colour: composited onto it. Results of different sizes are letterboxed, centred, to the batch's "
        "largest width and height (padding in the background colour, black when transparent).",
    ),
    OutputDef(
        "mask",
        "MASK",
        "Product mask: 1 = product, 0 = background (alpha polarity, like ComfyUI's remove-background nodes). "
        "LoadImage's mask is the opposite: put InvertMask before JoinImageWithAlpha. Padding is 0.",
    ),
    OutputDef(
        "rgba",
        "IMAGE",
        "RGB + alpha (4 channels, alpha = mask): connect to Save Image for a transparent PNG. Many nodes "
        "expect 3 channels: use `image` for them. Padding is fully transparent.",
    ),
    OutputDef(
        "run_info",
        "STRING",
        "One JSON object per line, per image in batch order: index, run_id, output_url, cost (dollars charged "
        "by this execution; 0.00 when cached or in emulator mode), cached, resumed, aspect_ratio, resolution, "
        "width, height, service.",
    ),
    # Issue #37: appended last, so saved workflows keep their links; built only when connected.
    # Issue #37: appended after 0.1.0's outputs, so saved workflows keep their links.
    OutputDef(
        "input_mask",
        "MASK",
        "The product mask on the INPUT photo's canvas: its size, the product where it is in the photo (1 = "
        "product), for inpainting, relighting or Join Image with Alpha on the original. Found from the pixels (no "
        "paid run); all 0 when the product cannot be found (run_info flags it 'unplaced'). Inputs of different "
        "sizes are letterboxed, centred, to the batch's largest width and height (padding 0).",
    ),
)

def _isolation_node(node_id: str, display_name: str, description: str, source: InputDef, aspect: InputDef,
                    run: Callable[..., NodeResult]) -> NodeDef:  # fmt: skip
    """An isolation node: its own source input and aspect choices, then what both share, in this order."""
    return NodeDef(
        node_id=node_id,
        display_name=display_name,
        description=description,
        category=CATEGORY,
        inputs=(source, aspect, RESOLUTION, *ISOLATION_OPTIONS),
        outputs=ISOLATION_OUTPUTS,
        run=run,
        function="isolate",
        fingerprint=execution.isolation_fingerprint,
        validate=execution.isolation_validate,
        # Issue #24: the prompt tells which outputs are connected, so only those are built.
        hidden=("unique_id", "prompt"),
    )


PRODUCT_ISOLATION = _isolation_node(
    "RunflowProductIsolation",
    "Runflow Product Isolation",
    f"Isolates the product in each photo with Runflow's hosted model (${PRICE_PER_IMAGE} per image), "
    "cropped and framed to an aspect ratio. Each image of a batch is its own run, up to `concurrency` at "
    "once (default 8: a batch of 16 runs in two waves); results are cached, so "
    "the same image with the same settings is never paid for twice. Works offline and free in emulator "
    "mode. The API key is never a widget: set it in Settings > Runflow or RUNFLOW_API_KEY.",
    InputDef("image", "IMAGE", "Product photo(s). Each image of a batch is its own run; results come back in order."),
    InputDef(
        "aspect_ratio",
        "COMBO",
        _ASPECT_TOOLTIP + "'auto' picks the ratio nearest to each photo's own.",
        choices=(AUTO_ASPECT, *ASPECT_RATIOS),
        default=AUTO_ASPECT,
    ),
    execution.isolate_images,
)

PRODUCT_ISOLATION_FROM_URL = _isolation_node(
    "RunflowProductIsolationFromURL",
    "Runflow Product Isolation (URL)",
    "Like Runflow Product Isolation, for images already online: one https image URL per line, each "
    f"line a run (${PRICE_PER_IMAGE} per image). Each image is read once to key the cache by its "
    "pixels, so a re-signed URL of the same image costs nothing. Connect Runflow Stage Image's url "
    "output, or type URLs.",
    InputDef(
        "image_urls",
        "STRING",
        "https image URL(s), one per line; each line is one image of the output batch.",
        default="",
        multiline=True,
    ),
    InputDef(
        "aspect_ratio",
        "COMBO",
        _ASPECT_TOOLTIP + "'auto' picks the ratio nearest to each image's own (each image is read once anyway).",
        # 'auto' came later to this node, appended so every saved value keeps its place.
        choices=(*ASPECT_RATIOS, AUTO_ASPECT),
        default=ASPECT_RATIOS[0],
    ),
    execution.isolate_urls,
)

STAGE_IMAGE = NodeDef(
    node_id="RunflowStageImage",
    display_name="Runflow Stage Image",
    description=(
        "Uploads each image of a batch to Runflow (free) and returns its hosted https URL, one per line, "
        "to pass to nodes that take image URLs. The URLs are signed and short-lived: use them in the same "
        "queue run."
    ),
    category=CATEGORY,
    inputs=(
        InputDef("image", "IMAGE", "Image(s) to upload; each batch item gets its own URL."),
        InputDef(
            "lossless",
            "BOOLEAN",
            "Upload PNG instead of JPEG quality 95 (images with transparency are always PNG).",
            optional=True,
            default=False,
        ),
    ),
    outputs=(
        OutputDef(
            "url", "STRING", "Hosted https URL of each image, one per line in batch order (signed, short-lived)."
        ),
    ),
    run=execution.stage_images,
    function="stage",
)

# Issue #32: ComfyUI's LoadImage drops a photo's colour profile and cannot read HEIC; this one reads the
# file as the engine does. Added after 0.1.0, so no saved workflow of 0.1.0 holds it.
LOAD_PHOTO = NodeDef(
    node_id="RunflowLoadPhoto",
    display_name="Runflow Load Photo",
    description=(
        "Loads a photo from ComfyUI's input folder, like Load Image, but as a seller's photo should be read: "
        "iPhone HEIC/HEIF and AVIF too, turned upright by its EXIF orientation, and its colour profile "
        "(an iPhone's Display P3, a studio's Adobe RGB) converted to sRGB, so the product keeps its colours. "
        "Load Image drops the profile: a P3 red then comes out visibly off. The same pixels as the command "
        "line reads, so the same photo is never paid for twice."
    ),
    category=CATEGORY,
    inputs=(
        InputDef(
            "image",
            "COMBO",
            "A photo in ComfyUI's input folder (JPEG, PNG, WebP, HEIC, AVIF, TIFF...); the upload button puts one "
            "there. HEIC needs pillow-heif (pip install pillow-heif).",
            choices_from=photo_loading.input_photos,
            image_upload=True,
        ),
    ),
    outputs=(
        OutputDef("image", "IMAGE", "The photo, RGB in sRGB, upright (its alpha goes to `mask`)."),
        OutputDef(
            "mask",
            "MASK",
            "The photo's own transparency, with Load Image's polarity: 1 where the photo is transparent, 0 where "
            "it is opaque; all 0 for a photo without alpha. (The isolation nodes' mask is the opposite: 1 = "
            "product.)",
        ),
    ),
    run=photo_loading.load_photo,
    function="load_photo",
    fingerprint=photo_loading.photo_fingerprint,
    validate=photo_loading.photo_validate,
)

MARKETPLACE_PRESET = InputDef(
    "preset",
    "COMBO",
    "The marketplace's image: canvas, background, product fill, file format and size cap (see "
    "'python -m runflow_api formats' for the table and sources). 'custom' reads custom_preset.",
    choices=marketplace_nodes.PRESET_CHOICES,
    default=marketplace_nodes.PRESET_CHOICES[0],
)
MARKETPLACE_MASK = InputDef(
    "mask",
    "MASK",
    "Optional: the product's mask (the isolation node's mask output, with its image output in 'image').",
    optional=True,
)
CUSTOM_PRESET = InputDef(
    "custom_preset",
    "STRING",
    "With preset 'custom': your own preset. " + CUSTOM_HELP,
    optional=True,
    default="",
)

# Issue #35: marketplace files from the isolation node's outputs. New nodes: nothing saved before names them.
MARKETPLACE_IMAGE = NodeDef(
    node_id="RunflowMarketplaceImage",
    display_name="Runflow Marketplace Image",
    description=(
        "Places the isolated product on a marketplace's canvas at its exact size: cropped to the product, "
        "scaled to the preset's fill, centred, on its exact background colour. Free: it renders from the "
        "isolation node's outputs, so one paid run gives every marketplace's image. Connect the isolation "
        "node's rgba output (or image and mask), then Runflow Save Marketplace File."
    ),
    category=CATEGORY,
    inputs=(
        InputDef("image", "IMAGE", "The isolation node's rgba output (or its image output, with 'mask')."),
        MARKETPLACE_PRESET,
        MARKETPLACE_MASK,
        CUSTOM_PRESET,
        InputDef(
            "edges",
            "COMBO",
            "'clean' (default) gives soft edges the product's own colour, so no trace of the old background "
            "shows on the new one; 'as returned' keeps the model's pixels.",
            optional=True,
            choices=EDGE_MODES,
            default=EDGES_CLEAN,
        ),
    ),
    outputs=(
        OutputDef("image", "IMAGE", "The preset's canvas (RGB, its exact width and height), one per input image."),
        OutputDef("mask", "MASK", "Where the product is on the canvas (1 = product): connect it to Runflow Save "
                  "Marketplace File so its checks know the product's extent."),
        OutputDef("report", "STRING", "One JSON object per image: the preset, its compliance flags as its file "
                  "would be written, fill, bytes, JPEG quality, scale."),
    ),
    run=marketplace_nodes.marketplace_image,
    function="render",
)

SAVE_MARKETPLACE_FILE = NodeDef(
    node_id="RunflowSaveMarketplaceFile",
    display_name="Runflow Save Marketplace File",
    description=(
        "Writes each image as the preset's file (JPEG for the marketplaces, within the preset's size cap, "
        "the background exact) into ComfyUI's output folder as <prefix>_<preset>_00001.jpg, and checks the "
        "bytes as written: size, format, cap, background, fill, cut off. Failed checks are shown as flags "
        "on the node; the file is still written. ComfyUI's Save Image writes PNG only."
    ),
    category=CATEGORY,
    inputs=(
        InputDef("image", "IMAGE", "Runflow Marketplace Image's image output."),
        MARKETPLACE_PRESET,
        InputDef("mask", "MASK", "Runflow Marketplace Image's mask output: the product's extent for the checks "
                 "(without it, every pixel not the background colour counts as product).", optional=True),
        CUSTOM_PRESET,
        InputDef("filename_prefix", "STRING", "File name start, optionally below subfolders (shop/sneaker); the "
                 "preset's name and a number follow.", optional=True, default=marketplace_nodes.DEFAULT_PREFIX),
    ),
    outputs=(
        OutputDef("report", "STRING", "One JSON object per file written: its name, the preset, its compliance "
                  "flags and measurements."),
    ),
    run=marketplace_nodes.save_marketplace_file,
    function="save",
    output_node=True,
)

# Nodes added since 0.1.0 follow the 0.1.0 ones, in the order they were added (saved workflows name nodes by id).
NODES: tuple[NodeDef, ...] = (PRODUCT_ISOLATION, PRODUCT_ISOLATION_FROM_URL, STAGE_IMAGE, LOAD_PHOTO, MARKETPLACE_IMAGE,
                              SAVE_MARKETPLACE_FILE)


# -- how ComfyUI gets them ------------------------------------------------------------------------------

V3_API = "comfy_api.v0_0_2"
V3_MINIMUM_COMFYUI = "0.3.48"

NODE_CLASS_MAPPINGS: dict[str, type] = {node.node_id: classic_class(node) for node in NODES}
NODE_DISPLAY_NAME_MAPPINGS: dict[str, str] = {node.node_id: node.display_name for node in NODES}

RunflowProductIsolation = NODE_CLASS_MAPPINGS["RunflowProductIsolation"]
RunflowProductIsolationFromURL = NODE_CLASS_MAPPINGS["RunflowProductIsolationFromURL"]
RunflowStageImage = NODE_CLASS_MAPPINGS["RunflowStageImage"]
RunflowLoadPhoto = NODE_CLASS_MAPPINGS["RunflowLoadPhoto"]
RunflowMarketplaceImage = NODE_CLASS_MAPPINGS["RunflowMarketplaceImage"]
RunflowSaveMarketplaceFile = NODE_CLASS_MAPPINGS["RunflowSaveMarketplaceFile"]


def _comfyui_version() -> str | None:
    """The running ComfyUI's version, or None outside ComfyUI."""
    try:
        return str(importlib.import_module("comfyui_version").__version__)
    except (ImportError, AttributeError):
        return None


def v3_api() -> ModuleType | None:
    """ComfyUI's versioned V3 API, or None when there is none (outside ComfyUI, or older than 0.3.48).

    Inside a ComfyUI without it, one log line says which version is needed; the nodes then load
    through the classic API, unchanged for the user."""
    try:
        return importlib.import_module(V3_API)
    except ImportError as exc:
        version = _comfyui_version()
        if version is not None:
            log.warning(
                "Runflow: ComfyUI %s has no V3 node API (%s, from ComfyUI %s); the Runflow nodes load "
                "through the classic API instead (%s). Update ComfyUI to %s or later.",
                version, V3_API, V3_MINIMUM_COMFYUI, exc, V3_MINIMUM_COMFYUI,
            )  # fmt: skip
        return None


def comfy_entrypoint_for(api: ModuleType) -> Any:
    """The V3 entry point ComfyUI's loader calls, built on `api` (comfy_api.v0_0_2)."""
    from .node_machinery.v3 import entrypoint

    return entrypoint(api, NODES)

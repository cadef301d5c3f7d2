"""Rendering options: what is made of a stored result. They never reach the service nor the cache key.

A background colour to composite onto, which of a run's images to output, clean edges, a margin around
the product, a shadow under it: each changes only what is made of a result already paid for, so changing
one costs nothing (the cached run serves every value). That is why they are kept apart from
`product_isolation.IsolationParams`, which carries every option that is sent or keyed (a new option there
changes what users pay for; one here never does).

Each option is declared once, as a field of `PostProcessing` (`rendering_field`): its default, its check,
its choices or range, its CLI flag and help, the node input's English tooltip, and, for an option that
changes pixels, the step that draws it. The client's entry points, the CLI's flags, the nodes' inputs,
the node and library renderers and the CLI's record of what made each output all read this declaration.
See docs/CHANGING.md.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import Field, dataclass, field, fields, replace
from typing import Any

import numpy as np
from PIL import Image

from ..errors import InputRejected
from ..product_isolation import option_names
from . import backgrounds, margins, shadows
from .edges import EDGE_MODES, EDGES_AS_RETURNED, EDGES_CLEAN, check_edges, decontaminate
from .result_types import OUTPUT_MODES, IsolationResult, check_outputs_mode

TRANSPARENT = "transparent"

# A step that draws an option onto a result's pixels: (HxWx3 or HxWx4 uint8, every option) -> pixels. It gets
# every option, not only its own, because a step may depend on others: a margin frames the product together
# with its shadow, and the shadow is drawn with its strength and softness.
Draw = Callable[[np.ndarray, "PostProcessing"], np.ndarray]


@dataclass(frozen=True)
class Rendering:
    """How one field of `PostProcessing` is checked, offered and applied; kept in the field's metadata.

    `check(value)`: the value as kept, or InputRejected naming the option and what to do.
    `tooltip`: the node input's English text (locales/en/nodeDefs.json is generated from it; the other
    languages translate it there). `cli_help`: the CLI's `--name` help; None when the command line has no
    such flag (`outputs`: a catalogue saves every image a run returns).
    `choices` make the node input a dropdown and the flag a choice; `minimum`/`maximum`/`step` bound a
    number input. `draw`: the step that changes the pixels when the value is not the default, run in
    declaration order on the straight-alpha RGBA of each image, given every option (`Draw`);
    `colour_only` when it leaves alpha as it is (so a node building only its `mask` skips it).
    `background` is not a draw step: it is composited last, and only into the outputs that have no alpha."""

    check: Callable[[Any], Any]
    tooltip: str
    cli_help: str | None
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None
    draw: Draw | None = None
    colour_only: bool = False


def rendering_field(default: Any, **how: Any) -> Any:
    """A field of `PostProcessing` with its default and its declaration (`Rendering`'s arguments)."""
    return field(default=default, metadata={"rendering": Rendering(**how)})


def _clean_edges(pixels: np.ndarray, options: PostProcessing) -> np.ndarray:
    return decontaminate(pixels) if options.edges == EDGES_CLEAN and pixels.shape[2] == 4 else pixels


def _frame(pixels: np.ndarray, options: PostProcessing) -> np.ndarray:
    """The margin, with the product and the shadow that will be drawn under it framed together."""
    return margins.apply_margin(pixels, options.margin, options.shadow_options)


def _shadow(pixels: np.ndarray, options: PostProcessing) -> np.ndarray:
    """The shadow under the product; an image without alpha has no matte to cast one from."""
    return shadows.add_shadow(pixels, options.shadow_options) if pixels.shape[2] == 4 else pixels


def _background(text: str) -> str:
    backgrounds.parse_color(text)
    return text


@dataclass(frozen=True)
class PostProcessing:
    """Every rendering option, checked. The nodes' inputs, the library's keywords and the CLI's flags."""

    background: str = rendering_field(
        TRANSPARENT, check=_background,
        tooltip="'transparent' keeps the model's RGB as returned in the `image` output (use `mask` or `rgba` for "
        "the cut-out). A colour ('#ffffff', '#fff', '255,255,255', white, black, gray) composites the `image` "
        "output onto it. `mask` and `rgba` are the same either way.",
        cli_help="'transparent' (RGBA output) or a colour: #ffffff, white, 255,255,255; free to change: outputs "
        "are re-rendered from stored results",
    )
    outputs: str = rendering_field(
        "first", check=check_outputs_mode, choices=OUTPUT_MODES, cli_help=None,
        tooltip="first: one image per input (the run's first). all: every image each run returns, in input "
        "order; run_info's 'input' and 'output' say which input each came from.",
    )
    edges: str = rendering_field(
        EDGES_AS_RETURNED, check=check_edges, choices=EDGE_MODES, draw=_clean_edges, colour_only=True,
        tooltip="'clean' gives partly transparent edges (hair, fur, fabric, motion blur) the product's own colour "
        "instead of the old background's, so no halo shows on a new background; alpha and `mask` are unchanged. "
        "Applies to `image` and `rgba`. Keep 'as returned' for glass and see-through products. Switching is "
        "free: the result comes from the cache.",
        cli_help="'clean' gives soft edges (hair, fur, fabric) the product's own colour instead of the old "
        "background's; free to change: outputs are re-rendered from stored results",
    )
    margin: float = rendering_field(
        0, check=margins.check_margin, minimum=0, maximum=margins.MARGIN_MAX, step=1, draw=_frame,
        tooltip="Percent of the canvas kept empty around the product (0-40; 0 keeps the model's framing). A "
        "product reaching further is scaled down and centred; the canvas keeps its size. Free to change: the "
        "result comes from the cache.",
        cli_help="percent of the canvas kept empty around the product, 0-40 (the product shrinks, centred; "
        "the canvas keeps its size); free to change",
    )
    # Issue #36: drawn after the margin (which frames product and shadow together), before the background.
    shadow: str = rendering_field(
        shadows.SHADOW_NONE, check=shadows.check_shadow, choices=shadows.SHADOW_MODES, draw=_shadow,
        tooltip="A shadow drawn from the cut-out, free (from the cache). contact: a soft shadow on the ground under "
        "the product's base. drop: its silhouette cast down and to the right. In `rgba`, `mask` and a transparent "
        "`image` it is semi-transparent black; on a background colour it darkens that colour. The product's own "
        "pixels are unchanged.",
        cli_help="none, contact (a soft shadow on the ground under the product) or drop (its silhouette cast "
        "down and to the right); semi-transparent in RGBA outputs; free to change",
    )
    shadow_strength: float = rendering_field(
        shadows.DEFAULT_STRENGTH, check=shadows.check_shadow_strength, minimum=0, maximum=1, step=0.05,
        tooltip="The shadow's opacity where it is darkest: 0 draws nothing, 1 is black there. Free to change.",
        cli_help="the shadow's opacity where it is darkest, 0-1; free to change",
    )
    shadow_softness: float = rendering_field(
        shadows.DEFAULT_SOFTNESS, check=shadows.check_shadow_softness, minimum=0, maximum=1, step=0.05,
        tooltip="0 is a crisp shadow, 1 a very diffuse one; it scales with the product's size. Free to change.",
        cli_help="0 crisp to 1 very diffuse, relative to the product's size; free to change",
    )

    def __post_init__(self) -> None:
        for item, how in rendering_fields():
            object.__setattr__(self, item.name, how.check(getattr(self, item.name)))

    @classmethod
    def of(cls, rendering: PostProcessing | None = None, **options: Any) -> PostProcessing:
        """`rendering` with `options` applied (or the defaults with them)."""
        unknown = sorted(set(options) - set(rendering_names()))
        if unknown:
            raise InputRejected(f"Unknown rendering option(s) {', '.join(unknown)}. The options are: "
                                f"{', '.join(rendering_names())}.")
        return replace(rendering or cls(), **options)

    @classmethod
    def split(cls, inputs: Mapping[str, Any]) -> tuple[PostProcessing, dict[str, Any]]:
        """(these options, the rest) from a node's inputs or a call's keywords: the rest are for
        `IsolationParams`, which refuses any name neither declares."""
        names = set(rendering_names())
        post = cls(**{name: value for name, value in inputs.items() if name in names})
        return post, {name: value for name, value in inputs.items() if name not in names}

    @property
    def shadow_options(self) -> shadows.ShadowOptions:
        """The shadow to draw, for `shadows.add_shadow` and the framers (`margins.apply_margin`)."""
        return shadows.ShadowOptions(self.shadow, self.shadow_strength, self.shadow_softness)

    @property
    def color(self) -> tuple[int, int, int] | None:
        """The background as RGB, or None to keep the transparency."""
        return backgrounds.parse_color(self.background)

    def changes_pixels(self, *, alpha_only: bool = False) -> bool:
        """Whether a draw step runs (with `alpha_only`: one that changes alpha, i.e. the mask)."""
        return any(item.default != getattr(self, item.name) for item, how in rendering_fields()
                   if how.draw is not None and not (alpha_only and how.colour_only))

    def draw(self, pixels: np.ndarray, *, alpha_only: bool = False) -> np.ndarray:
        """`pixels` (HxWx3 or HxWx4 uint8, straight alpha) with every draw step whose option is not at its
        default, in declaration order; the same array when none is. With `alpha_only`, only the steps
        that change alpha (for a node that builds nothing but its mask)."""
        for item, how in rendering_fields():
            value = getattr(self, item.name)
            if how.draw is not None and value != item.default and not (alpha_only and how.colour_only):
                pixels = how.draw(pixels, self)
        return pixels

    def render_image(self, image: Image.Image) -> Image.Image:
        """One image as these options make it: drawn, then composited on the background when there is one
        (RGB), else RGBA as drawn. The library's results and the CLI's files are this."""
        if not self.changes_pixels() and self.color is None:
            return image
        pixels = self.draw(np.asarray(image if image.mode in ("RGB", "RGBA") else image.convert("RGBA")))
        if self.color is None or pixels.shape[2] == 3:
            return Image.fromarray(pixels)
        alpha = pixels[..., 3].astype(np.float32) / 255
        return Image.fromarray(backgrounds.composite(pixels[..., :3], alpha, self.color))

    def render_result(self, result: IsolationResult) -> IsolationResult:
        """A copy of `result` as asked: its first image or every one (`outputs`), each rendered. The bytes
        as the service sent them are kept only when no pixel changed, so a saver copies them as they are;
        the cached result is never altered."""
        shaped = result.only_first() if self.outputs == "first" else result
        if not self.changes_pixels() and self.color is None:
            return shaped
        rendered = [self.render_image(image) for image in shaped.images]
        return replace(shaped, image=rendered[0], images=rendered, image_bytes=b"", images_bytes=[])

    def record(self) -> dict[str, Any]:
        """Every option's value by name: what a CLI output records as the options that made it."""
        return {name: getattr(self, name) for name in rendering_names()}


def rendering_fields() -> list[tuple[Field[Any], Rendering]]:
    """The fields of `PostProcessing` with their declarations, in declaration order."""
    return [(item, item.metadata["rendering"]) for item in fields(PostProcessing)]


def rendering_names() -> tuple[str, ...]:
    return tuple(item.name for item in fields(PostProcessing))


def command_line_names() -> tuple[str, ...]:
    """The rendering options the CLI has a flag for (`cli_help` set), in declaration order."""
    return tuple(item.name for item, how in rendering_fields() if how.cli_help is not None)


def split_options(options: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A call's keywords as (isolation options, rendering options), by the two declarations; a name that
    neither declares is refused here, naming both lists, before anything is read or spent."""
    rendering = set(rendering_names())
    unknown = sorted(set(options) - rendering - set(option_names()))
    if unknown:
        raise InputRejected(
            f"Unknown option(s) {', '.join(unknown)}. Isolation options (sent, paid): {', '.join(option_names())}; "
            f"rendering options (local, free): {', '.join(rendering_names())}."
        )
    return ({name: value for name, value in options.items() if name not in rendering},
            {name: value for name, value in options.items() if name in rendering})

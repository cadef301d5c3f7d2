"""Options applied to a result after it is produced: they never reach the service nor the cache key.

A background colour to composite onto, which of a run's images to output, or clean edges changes only what
is made of a stored result. Changing one therefore costs nothing: the cached run serves every value. That is why
they are kept apart from `product_isolation.IsolationParams`, which carries every option that is sent or
keyed (a new option there changes what users pay for; one here never does). See docs/CHANGING.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from .backgrounds import parse_color
from .edges import EDGES_AS_RETURNED, check_edges
from .result_types import check_outputs_mode

TRANSPARENT = "transparent"


@dataclass(frozen=True)
class PostProcessing:
    """`background`: "transparent" or a colour the `image` output is composited onto (nodes, CLI).
    `outputs`: "first" (one image per input) or "all" (every image each run returns).
    `edges`: "as returned" or "clean" (soft edges get the product's own colour: edges.decontaminate)."""

    background: str = TRANSPARENT
    outputs: str = "first"
    edges: str = EDGES_AS_RETURNED

    def __post_init__(self) -> None:
        parse_color(self.background)
        check_outputs_mode(self.outputs)
        check_edges(self.edges)

    @property
    def color(self) -> tuple[int, int, int] | None:
        """The background as RGB, or None to keep the transparency."""
        return parse_color(self.background)

    @classmethod
    def split(cls, inputs: Mapping[str, Any]) -> tuple[PostProcessing, dict[str, Any]]:
        """(these options, the rest) from a node's inputs: the rest are `IsolationParams` options."""
        names = {item.name for item in fields(cls)}
        post = cls(**{name: value for name, value in inputs.items() if name in names})
        return post, {name: value for name, value in inputs.items() if name not in names}

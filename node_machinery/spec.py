"""The vocabulary of the node declaration: an input, an output, a node. Pure data, no ComfyUI, no torch.

The three nodes are declared once (the top-level `nodes.py`) in these terms, and both of ComfyUI's node
APIs are rendered from that one declaration: the V3 schema (`v3.py`, what ComfyUI 0.3.48+ loads) and the classic
V1 dictionaries (`classic.py`, for an older ComfyUI, for plain Python and for the tests). Two hand-kept
copies of the same node would drift apart, and node ids, input names, widget order and defaults are
saved in users' workflows: they may never drift.

`InputDef.classic()` renders exactly the V1 option dictionaries the pack shipped with 0.1.0 (pinned by
tests/fixtures/object_info_0.1.0.json), so a ComfyUI on the classic API sees the same node as before.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..runflow_api.errors import InputRejected
from ..runflow_api.pictures.post_processing import rendering_fields

# The input kinds the pack uses. COMBO is a dropdown of `choices`; every other kind is ComfyUI's own type name.
WIDGET_KINDS = frozenset({"STRING", "BOOLEAN", "INT", "FLOAT", "COMBO"})
SOCKET_KINDS = frozenset({"IMAGE", "MASK"})


# The hidden inputs a node may ask ComfyUI for, by their V3 name (an `io.Hidden` member), and the keyword
# its run function receives them by, which is also their name in a classic node's INPUT_TYPES. The prompt
# is `graph` there: a classic hidden input shares one keyword space with the visible inputs, and the
# isolation nodes have a `prompt` widget.
HIDDEN_KEYWORDS: dict[str, str] = {"unique_id": "unique_id", "prompt": "graph"}


@dataclass(frozen=True)
class InputDef:
    """One node input. Only the fields a kind uses are set; `None` means "not said" and is left out."""

    name: str
    kind: str
    tooltip: str
    optional: bool = False
    default: Any = None
    choices: tuple[str, ...] = ()
    multiline: bool | None = None
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None
    round: float | None = None
    # A COMBO whose choices are read when ComfyUI asks for the node (the files of a folder), not fixed.
    choices_from: Callable[[], tuple[str, ...]] | None = None
    image_upload: bool = False  # an upload button under the dropdown, as LoadImage has

    def __post_init__(self) -> None:
        if self.kind not in WIDGET_KINDS | SOCKET_KINDS:
            raise ValueError(f"input {self.name!r}: unknown kind {self.kind!r}")
        if (self.kind == "COMBO") != (bool(self.choices) != (self.choices_from is not None)):
            raise ValueError(f"input {self.name!r}: COMBO needs either choices or choices_from, nothing else does")
        if self.optional and self.default is None and self.is_widget:
            raise ValueError(f"optional input {self.name!r} needs a default, so saved workflows without it load")

    @property
    def is_widget(self) -> bool:
        """Shown as a widget, so its value sits in a saved workflow's positional `widgets_values`."""
        return self.kind in WIDGET_KINDS

    def options(self) -> dict[str, Any]:
        """The option dictionary both APIs share (V1 spells it out, V3 takes the same as arguments)."""
        said = {
            "default": self.default,
            "multiline": self.multiline,
            "min": self.minimum,
            "max": self.maximum,
            "step": self.step,
            "round": self.round,
        }
        return {key: value for key, value in said.items() if value is not None} | {"tooltip": self.tooltip}

    def check_number(self, value: Any) -> None:
        """Refuse a number input that is not finite or outside its declared range. NaN passes ComfyUI's
        own range check (every comparison with it is false) and its JSON parser, and a NaN spend_limit
        would switch the spend guard off; a hand-edited workflow or a script can send any of these."""
        if self.kind not in ("INT", "FLOAT") or value is None:
            return
        number = value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
        low = -math.inf if self.minimum is None else self.minimum
        high = math.inf if self.maximum is None else self.maximum
        if number is None or not math.isfinite(number) or not low <= number <= high:
            raise InputRejected(
                f"Input '{self.name}' is {value!r}: it must be a finite number from {low:g} to {high:g}. "
                "Set the widget again (a workflow edited by hand or by a script may carry NaN or infinity)."
            )

    def current_choices(self) -> tuple[str, ...]:
        """A COMBO's choices now: the fixed ones, or those `choices_from` reads."""
        return self.choices_from() if self.choices_from is not None else self.choices

    def classic(self) -> tuple[Any, dict[str, Any]]:
        """The V1 `INPUT_TYPES` entry: a combo is its list of choices, anything else its type name."""
        upload = {"image_upload": True} if self.image_upload else {}
        return (list(self.current_choices()) if self.kind == "COMBO" else self.kind), self.options() | upload


# A widget's kind by its default's type, for inputs declared elsewhere (a rendering option).
_KIND_OF_DEFAULT: dict[type, str] = {bool: "BOOLEAN", int: "INT", float: "FLOAT", str: "STRING"}


def rendering_input(name: str) -> InputDef:
    """A rendering option's node input, read from its one declaration (`post_processing.PostProcessing`):
    its default, its choices (a dropdown) or range, its English tooltip. Optional, as every input appended
    since 0.1.0 is; where it goes among a node's inputs is the node's declaration (`nodes.py`)."""
    for item, how in rendering_fields():
        if item.name == name:
            kind = "COMBO" if how.choices else _KIND_OF_DEFAULT[type(item.default)]
            return InputDef(name, kind, how.tooltip, optional=True, default=item.default, choices=how.choices,
                            minimum=how.minimum, maximum=how.maximum, step=how.step)
    raise ValueError(f"{name!r} is not a rendering option (post_processing.PostProcessing)")


@dataclass(frozen=True)
class OutputDef:
    """One node output; `name` is what the user sees on the socket (V1 RETURN_NAMES)."""

    name: str
    kind: str
    tooltip: str


@dataclass(frozen=True)
class NodeResult:
    """What a node's run returns, whichever API called it: the outputs in declared order and the
    optional `ui` payload the web extension reads in `onExecuted`."""

    outputs: tuple[Any, ...]
    ui: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class NodeDef:
    """One node: its permanent id, what the user reads, its inputs and outputs, and what runs it.

    `run(**inputs, unique_id=..., ...)` receives every declared input, optional ones filled with their
    declared default (`bind`), so defaults live here only, and the `hidden` inputs by their
    `HIDDEN_KEYWORDS` keyword (None when the executor gives none). `fingerprint` and `validate` are ComfyUI's
    re-execution and pre-queue checks, written once as classmethod bodies (`cls` first) for both APIs.
    """

    node_id: str
    display_name: str
    description: str
    category: str
    inputs: tuple[InputDef, ...]
    outputs: tuple[OutputDef, ...]
    run: Callable[..., NodeResult]
    function: str
    fingerprint: Callable[..., Any] | None = None
    validate: Callable[..., bool | str] | None = None
    hidden: tuple[str, ...] = field(default=("unique_id",))
    output_node: bool = False  # writes files or shows a result of its own: ComfyUI runs it with no consumer

    def __post_init__(self) -> None:
        names = [spec.name for spec in self.inputs]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.node_id}: duplicate input names")
        if set(names) & set(self.hidden_inputs.values()):
            raise ValueError(f"{self.node_id}: a hidden input's keyword is also a visible input's name")
        seen_optional = False
        for spec in self.inputs:
            if seen_optional and not spec.optional:
                raise ValueError(f"{self.node_id}: required input {spec.name!r} after an optional one")
            seen_optional = seen_optional or spec.optional

    @property
    def hidden_inputs(self) -> dict[str, str]:
        """Each hidden input's V3 name -> the keyword `run` receives it by, in `hidden` order."""
        return {name: HIDDEN_KEYWORDS[name] for name in self.hidden}

    @property
    def widget_order(self) -> list[str]:
        """The order of `widgets_values` in a saved workflow: append only, never insert."""
        return [spec.name for spec in self.inputs if spec.is_widget]

    def bind(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """Every declared input by name: positional values in declared order, then keywords, then the
        declared defaults of the optional inputs left out. An unknown or missing input is a TypeError,
        as for any Python call; a number input that is not finite or out of range is InputRejected
        (`InputDef.check_number`), before the node runs anything."""
        names = [spec.name for spec in self.inputs]
        if len(args) > len(names):
            raise TypeError(f"{self.node_id} takes {len(names)} inputs, {len(args)} given")
        bound = dict(zip(names, args, strict=False))
        for name, value in kwargs.items():
            if name not in names:
                raise TypeError(f"{self.node_id} has no input {name!r}")
            if name in bound:
                raise TypeError(f"{self.node_id}: input {name!r} given twice")
            bound[name] = value
        for spec in self.inputs:
            if spec.name not in bound:
                if not spec.optional:
                    raise TypeError(f"{self.node_id}: required input {spec.name!r} missing")
                bound[spec.name] = spec.default
            spec.check_number(bound[spec.name])
        return bound

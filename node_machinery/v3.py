"""The V3 node classes (`io.ComfyNode`), generated from the declaration, and `comfy_entrypoint`.

Built only when ComfyUI's versioned V3 API imports (`comfy_api.v0_0_2`, ComfyUI 0.3.48 and later):
ComfyUI recommends a numbered version over `comfy_api.latest`, which may change without warning. The
classes render the same node as the classic ones: same ids, input names and order, defaults and
outputs (tests/fixtures/object_info_0.1.0.json pins them); ComfyUI spells a dropdown as
`["COMBO", {"options": [...]}]` for V3 nodes where V1 wrote the list itself, which every frontend
reads the same way. Their `execute` is a coroutine (asynchronous.py); the classic nodes stay synchronous.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from .asynchronous import off_loop
from .spec import InputDef, NodeDef, NodeResult


def _input(io: ModuleType, spec: InputDef) -> Any:
    """One declared input as a V3 input object. Options that were never said stay unsaid (None), so
    the V1 view ComfyUI derives from the schema carries the same keys as the classic node."""
    common: dict[str, Any] = {"optional": spec.optional, "tooltip": spec.tooltip}
    if spec.kind == "IMAGE":
        return io.Image.Input(spec.name, **common)
    if spec.kind == "MASK":
        return io.Mask.Input(spec.name, **common)
    if spec.kind == "COMBO":
        upload_types = getattr(io, "UploadType", None)  # in every V3 API seen; guarded all the same
        upload = {"upload": upload_types.image} if spec.image_upload and upload_types is not None else {}
        return io.Combo.Input(spec.name, options=list(spec.current_choices()), default=spec.default, **upload,
                              **common)
    if spec.kind == "STRING":
        return io.String.Input(spec.name, default=spec.default, multiline=spec.multiline, **common)
    if spec.kind == "BOOLEAN":
        return io.Boolean.Input(spec.name, default=spec.default, **common)
    if spec.kind == "INT":
        return io.Int.Input(
            spec.name, default=spec.default, min=spec.minimum, max=spec.maximum, step=spec.step, **common
        )
    return io.Float.Input(
        spec.name, default=spec.default, min=spec.minimum, max=spec.maximum, step=spec.step, round=spec.round,
        **common,
    )  # fmt: skip


def _output(io: ModuleType, kind: str) -> Any:
    return {"IMAGE": io.Image, "MASK": io.Mask, "STRING": io.String}[kind].Output


def schema(io: ModuleType, node: NodeDef) -> Any:
    """The node's `io.Schema`. Output ids get an `out_` prefix: V3 wants ids unique across inputs and
    outputs, and `image` is both; the socket names users see are the display names, unchanged."""
    return io.Schema(
        node_id=node.node_id,
        display_name=node.display_name,
        category=node.category,
        description=node.description,
        inputs=[_input(io, spec) for spec in node.inputs],
        outputs=[
            _output(io, output.kind)(id=f"out_{output.name}", display_name=output.name, tooltip=output.tooltip)
            for output in node.outputs
        ],
        hidden=[io.Hidden[name] for name in node.hidden],
        **({"is_output_node": True} if node.output_node else {}),
    )


def v3_class(io: ModuleType, node: NodeDef) -> type:
    """An `io.ComfyNode` subclass for `node`: define_schema, execute, fingerprint_inputs, validate_inputs."""

    def define_schema(cls: type) -> Any:
        return schema(io, node)

    async def execute(cls: Any, **inputs: Any) -> Any:
        # A coroutine, so ComfyUI runs the other Runflow nodes of the graph while this one waits.
        hidden = {keyword: getattr(cls.hidden, name) for name, keyword in node.hidden_inputs.items()}
        result: NodeResult = await off_loop(lambda: node.run(**node.bind((), inputs), **hidden))
        return io.NodeOutput(*result.outputs, ui=dict(result.ui) if result.ui is not None else None)

    attributes: dict[str, Any] = {
        "__doc__": node.description,
        "__module__": __name__,
        "NODE": node,
        "define_schema": classmethod(define_schema),
        "execute": classmethod(execute),
    }
    if node.fingerprint is not None:
        attributes["fingerprint_inputs"] = classmethod(node.fingerprint)
    if node.validate is not None:
        attributes["validate_inputs"] = classmethod(node.validate)
    return type(node.node_id, (io.ComfyNode,), attributes)


def entrypoint(api: ModuleType, nodes: tuple[NodeDef, ...]) -> Any:
    """`comfy_entrypoint` for ComfyUI's loader: a coroutine returning the pack's ComfyExtension."""
    classes = [v3_class(api.io, node) for node in nodes]

    class RunflowExtension(api.ComfyExtension):  # type: ignore[name-defined]
        async def get_node_list(self) -> list[type]:
            return list(classes)

    async def comfy_entrypoint() -> Any:
        return RunflowExtension()

    return comfy_entrypoint

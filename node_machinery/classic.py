"""The classic (V1) node classes, generated from the declaration.

ComfyUI 0.3.48 and later load the V3 classes (`v3.py`). These serve everything else: a ComfyUI older
than the V3 API, plain Python (tests, benchmarks, scripts) and anyone who imports the pack outside
ComfyUI. They render exactly the `INPUT_TYPES` the pack shipped with 0.1.0, so an old ComfyUI sees
the same nodes as before, and they call the same run functions as the V3 classes.
"""

from __future__ import annotations

from typing import Any

from .spec import NodeDef, NodeResult


def _input_types(node: NodeDef) -> dict[str, Any]:
    sections: dict[str, Any] = {"required": {}}
    for spec in node.inputs:
        sections.setdefault("optional" if spec.optional else "required", {})[spec.name] = spec.classic()
    sections["hidden"] = {keyword: name.upper() for name, keyword in node.hidden_inputs.items()}
    return sections


def _as_classic(result: NodeResult) -> dict[str, Any] | tuple[Any, ...]:
    return {"ui": dict(result.ui), "result": result.outputs} if result.ui is not None else result.outputs


def classic_class(node: NodeDef) -> type:
    """A V1 node class for `node`: INPUT_TYPES, RETURN_*, FUNCTION, IS_CHANGED and VALIDATE_INPUTS."""

    def input_types(cls: type) -> dict[str, Any]:
        return _input_types(node)

    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        hidden = {keyword: kwargs.pop(keyword, None) for keyword in node.hidden_inputs.values()}
        return _as_classic(node.run(**node.bind(args, kwargs), **hidden))

    attributes: dict[str, Any] = {
        "__doc__": node.description,
        "__module__": __name__,
        "NODE": node,
        "DESCRIPTION": node.description,
        "CATEGORY": node.category,
        "RETURN_TYPES": tuple(output.kind for output in node.outputs),
        "RETURN_NAMES": tuple(output.name for output in node.outputs),
        "OUTPUT_TOOLTIPS": tuple(output.tooltip for output in node.outputs),
        "FUNCTION": node.function,
        "INPUT_TYPES": classmethod(input_types),
        node.function: call,
    }
    if node.output_node:
        attributes["OUTPUT_NODE"] = True
    if node.fingerprint is not None:
        attributes["IS_CHANGED"] = classmethod(node.fingerprint)
    if node.validate is not None:
        attributes["VALIDATE_INPUTS"] = classmethod(node.validate)
    return type(node.node_id, (), attributes)

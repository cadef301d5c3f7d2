"""Which output sockets of a node the graph uses, so that a 4K batch builds only the tensors it needs.

A 4K IMAGE batch of 8 is 1.5 GiB, its MASK 0.5 GiB and its RGBA 2 GiB: building all three when only
`image` is connected costs four times the memory. ComfyUI hands a node the prompt it runs (hidden input
PROMPT: `{node_id: {"class_type", "inputs"}}`, a link being `[source node id, output slot]`) and the
node's own id (UNIQUE_ID); the slots that some input links to are the ones to build.

ComfyUI caches a node's outputs by its inputs and fingerprint, not by what is connected downstream.
Connecting `rgba` after a run that left it out must not be answered from that cache with a stand-in,
so the fingerprint carries the linked slots too. The fingerprint gets no hidden PROMPT, so it reads the
prompt ComfyUI is running from its queue (`running_prompt`). Outputs are left out only when both views
agree (`slots_to_build`); whenever either cannot tell (another executor, a node created by a node
expansion, which the prompt does not list), every output is built, as before.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any


def linked_slots(prompt: Any, unique_id: Any) -> frozenset[int] | None:
    """The output slots of node `unique_id` that some node of `prompt` links to; None when it cannot
    be told (no prompt, no id, or a node the prompt does not list, e.g. one made by a node expansion,
    whose id ComfyUI writes as "<expanding node>.<call>.<graph>.<id>").

    Nodes inside a subgraph are flattened by the frontend into ids such as "12:3", and their links
    name those ids: they are found like any other. Ids are compared as text, since a prompt written by
    a script may spell them as numbers."""
    if not isinstance(prompt, Mapping) or unique_id is None or str(unique_id) == "":
        return None
    node_id = str(unique_id)
    if node_id not in {str(key) for key in prompt}:
        return None
    slots = set()
    for node in prompt.values():
        inputs = node.get("inputs") if isinstance(node, Mapping) else None
        if not isinstance(inputs, Mapping):
            continue
        for value in inputs.values():
            if _is_link(value) and str(value[0]) == node_id:
                slots.add(int(value[1]))
    return frozenset(slots)


def _is_link(value: Any) -> bool:
    """ComfyUI's test for a link: a two-item list whose second item is the slot number."""
    return (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and isinstance(value[0], (str, int))
        and isinstance(value[1], int)
        and not isinstance(value[1], bool)
    )


def running_prompt(prompt_id: str | None) -> Mapping[str, Any] | None:
    """The prompt ComfyUI's queue is running under `prompt_id`, or None (outside ComfyUI, another
    executor, or a queue whose items are not shaped `(number, prompt_id, prompt, ...)`)."""
    if not prompt_id:
        return None
    try:
        queue = importlib.import_module("server").PromptServer.instance.prompt_queue
        running, _ = queue.get_current_queue_volatile()
    except (ImportError, AttributeError, TypeError, ValueError):
        return None
    for item in running:
        if isinstance(item, (list, tuple)) and len(item) > 2 and item[1] == prompt_id:
            return item[2] if isinstance(item[2], Mapping) else None
    return None


def slots_to_build(prompt: Any, unique_id: Any, prompt_id: str | None) -> frozenset[int] | None:
    """The slots an executing node must build, or None for all of them: the hidden PROMPT's view, kept
    only when the running prompt (what the fingerprint saw) says the same."""
    seen = linked_slots(prompt, unique_id)
    if seen is None or linked_slots(running_prompt(prompt_id), unique_id) != seen:
        return None
    return seen

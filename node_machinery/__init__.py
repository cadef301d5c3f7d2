"""The machinery behind the pack's nodes (declared in the top-level `nodes.py`); no HTTP of its own.

One declaration, two renderings: the V3 schema through ComfyUI's versioned API (ComfyUI 0.3.48 and
later) and the classic V1 classes for an older ComfyUI and for plain Python. Modules, one job each:
`spec` (the declaration's vocabulary), `execution` (what a node does when it runs), `tensors`
(IMAGE/MASK <-> arrays), `linked_outputs` (which outputs the graph uses), `memory_budget` (refuse a batch
that cannot fit), `feedback` (progress bar, status line, Cancel), `asynchronous` (the V3 nodes' work off
ComfyUI's event loop), `classic` and `v3` (the two renderings), `locales` (the English translation
source, derived from the declaration).
"""

"""The machine's load around a measurement. This machine is shared, so a benchmark prints its load next
to its timings: a wall time means little without it."""

from __future__ import annotations

import os


def load_window(before: tuple[float, float, float]) -> dict[str, list[float]]:
    """The 1/5/15-minute load averages taken before a measurement and now, rounded for a report."""
    return {"before": [round(x, 2) for x in before], "after": [round(x, 2) for x in os.getloadavg()]}

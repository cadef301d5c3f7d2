"""A local Runflow over real HTTP: the asset upload, runs of `runflow/product-isolation` with a stand-in
model, billing, idempotency, and every fault and response variant the contract (docs/RUNFLOW-API.md) lists.

    from runflow_api.emulator import Emulator, Faults
    with Emulator(api_key="rf_live_emulator", latency=0.5) as emu:
        ...  # point a client at emu.base_url; read emu.stats; flip emu.faults
"""

from .app import Emulator
from .faults import Faults

__all__ = ["Emulator", "Faults"]

"""Every way the book runs the dynamics of its network, in one place, named by one registry.

=================  =====  ==================================================================
name               kind   what it runs
=================  =====  ==================================================================
``reference``      gd     one GD step in (gamma, rho) coordinates, written plainly for one
                          network (:mod:`.reference`; chapter 3 shows it; the tests hold the
                          fast engines to it)
``weights``        gd     GD on the weights, O(m n d) a step, any data (:mod:`.weights`)
``coefficients``   gd     GD on the signal-noise coefficients, O(m n^2) a step, two-patch data
                          (:mod:`.coefficients`, compiled CPU kernel :mod:`.coefficient_kernel`)
``gram``           gd     the same on the patch basis, any data: each patch of each sample a
                          basis vector, O(m (n P)^2) a step (:mod:`.coefficients`; chapter 6)
``flow``           flow   the gradient flow dW/dt = -grad L by an embedded Runge-Kutta pair,
                          each network its own step size, on either basis (:mod:`.flow`,
                          compiled CPU kernel :mod:`.flow_kernel`)
=================  =====  ==================================================================

:func:`prunebook.train` dispatches the GD engines, :func:`prunebook.flow` the flow. Every engine
returns a :class:`prunebook.result.TrainResult`; :mod:`.guard` is the finiteness guard the torch
GD paths share, :mod:`.segments` runs GD in segments recorded at different spacings.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

__all__ = ["Engine", "ENGINES", "GD_ENGINES", "engine_module"]


@dataclass(frozen=True)
class Engine:
    name: str
    kind: str  #: "gd" (a step size and a number of steps) or "flow" (a time horizon and a tolerance)
    module: str  #: the module under prunebook.engines that runs it
    summary: str

    def load(self) -> ModuleType:
        return importlib.import_module(f"prunebook.engines.{self.module}")


ENGINES: dict[str, Engine] = {e.name: e for e in (
    Engine("reference", "gd", "reference", "one GD step in (gamma, rho) coordinates, plainly, one network"),
    Engine("weights", "gd", "weights", "GD on the weights, any data"),
    Engine("coefficients", "gd", "coefficients", "GD on the signal-noise coefficients, two-patch data"),
    Engine("gram", "gd", "coefficients", "GD on the patch basis, any data"),
    Engine("flow", "flow", "flow", "the gradient flow, embedded Runge-Kutta pair, per-network step size"),
)}

#: the batched GD engines ``prunebook.train`` runs
GD_ENGINES = ("weights", "coefficients", "gram")


def engine_module(name: str) -> ModuleType:
    """The module that runs the engine called ``name``."""
    if name not in ENGINES:
        raise ValueError(f"engine: must be one of {tuple(ENGINES)}, got {name!r}")
    return ENGINES[name].load()

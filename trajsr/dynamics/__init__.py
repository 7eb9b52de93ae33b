"""Dynamics families as Keras 3 layers: each rolls a latent state over the fine steps of a gap.

Every family answers ``layer(initial_state, step_inputs) -> hidden`` with ``initial_state``
(batch, ``state_size``) and ``step_inputs``/``hidden`` (batch, steps, ·). Time runs in units of the
kept-frame spacing, so one fine step is 1/S.
"""
from .hamiltonian import HamiltonianDynamics, leapfrog
from .ode import ODEDynamics, dormand_prince, rk4
from .recurrent import RecurrentDynamics

FAMILIES = {"lstm": RecurrentDynamics, "rnn": RecurrentDynamics, "ode": ODEDynamics, "hnn": HamiltonianDynamics}


def make_dynamics(family: str, units: int, **options):
    """A dynamics layer by family name: ``"lstm"``, ``"rnn"``, ``"ode"`` or ``"hnn"``."""
    if family in ("lstm", "rnn"):
        return RecurrentDynamics(units, cell=family, name="dynamics")
    if family == "ode":
        return ODEDynamics(units, solver=options.get("solver", "rk4"), name="dynamics")
    if family == "hnn":
        return HamiltonianDynamics(units, name="dynamics")
    raise ValueError(f"unknown dynamics family {family!r}; choose from {', '.join(FAMILIES)}")


__all__ = ["make_dynamics", "RecurrentDynamics", "ODEDynamics", "HamiltonianDynamics", "leapfrog", "rk4",
           "dormand_prince"]

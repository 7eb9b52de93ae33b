"""Dynamics families, shared by the interpolators (latent rollouts) and the propagator (physical steps).

Each family is one file here with both ways of rolling it; the registry below maps names to
families, and the CLI, :func:`trajsr.interpolation.build_model` and the propagator's builder read it.
To add a family: write ``dynamics/<name>.py`` with a latent layer and a :class:`PropagatorStep`
subclass, and add one ``register_family`` line here. TensorFlow is imported when a family's classes
are first used, not by listing them.
"""
from .registry import FAMILIES, Family, get_family, load_all, make_dynamics, make_step, register_family

register_family(Family("lstm", "trajsr.dynamics.recurrent:RecurrentDynamics", "trajsr.dynamics.recurrent:RecurrentStep",
                       summary="LSTM cell (the seed paper's best)"))
register_family(Family("rnn", "trajsr.dynamics.recurrent:RecurrentDynamics", "trajsr.dynamics.recurrent:RecurrentStep",
                       summary="plain RNN cell"))
register_family(Family("ode", "trajsr.dynamics.ode:ODEDynamics", "trajsr.dynamics.ode:ODEStep", options=("solver",),
                       summary="neural ODE (RK4, or Dormand-Prince with adjoint gradients)"))
register_family(Family("hnn", "trajsr.dynamics.hamiltonian:HamiltonianDynamics",
                       "trajsr.dynamics.hamiltonian:HamiltonianStep", summary="Hamiltonian network (leapfrog)"))

_LAZY = {"PropagatorStep": "step", "RecurrentDynamics": "recurrent", "RecurrentStep": "recurrent",
         "ODEDynamics": "ode", "ODEStep": "ode", "HamiltonianDynamics": "hamiltonian",
         "HamiltonianStep": "hamiltonian", "rk4": "integrators", "dormand_prince": "integrators",
         "leapfrog": "integrators", "gradient": "integrators"}


def __getattr__(name):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'trajsr.dynamics' has no attribute {name!r}")


__all__ = ["FAMILIES", "Family", "register_family", "get_family", "load_all", "make_dynamics", "make_step",
           *_LAZY]

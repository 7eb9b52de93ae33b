"""The family registry: one name -> one :class:`Family`, read by both rooms and the CLI.

A family is one file of :mod:`trajsr.dynamics` holding a *latent* layer (rolled across a gap by the
interpolators' encoder–decoder) and a *physical* :class:`~trajsr.dynamics.step.PropagatorStep` subclass
(rolled on (x, v) by the propagator). Adding a family is that file plus one :func:`register_family` line.
Classes may be given as ``"module:Class"`` strings, so that listing the families (``trajsr --help``)
does not import TensorFlow.
"""
from __future__ import annotations

import dataclasses
import importlib


@dataclasses.dataclass(frozen=True)
class Family:
    """A dynamics family.

    Attributes
    ----------
    name : str
        Registry key (``"lstm"``, ``"ode"``, ...); interpolator names are ``name`` and ``"bi" + name``.
    latent_class : type or str
        Keras layer ``latent(width, family=name, **options)``; ``layer(state, step_inputs) -> hidden``.
    step_class : type or str
        :class:`~trajsr.dynamics.step.PropagatorStep` subclass for the physical step on (x, v).
    options : tuple of str
        Keyword options the latent layer takes (for example ``("solver",)``).
    summary : str
        One line for ``--help``.
    """

    name: str
    latent_class: type | str
    step_class: type | str
    options: tuple = ()
    summary: str = ""

    @property
    def latent(self) -> type:
        return _resolve(self.latent_class)

    @property
    def step(self) -> type:
        return _resolve(self.step_class)


def _resolve(cls):
    if isinstance(cls, str):
        module, _, name = cls.partition(":")
        return getattr(importlib.import_module(module), name)
    return cls


FAMILIES: dict[str, Family] = {}


def register_family(family: Family) -> Family:
    """Add ``family`` to the registry (replacing one of the same name) and return it."""
    FAMILIES[family.name] = family
    return family


def get_family(name: str) -> Family:
    """The registered family ``name``; ``ValueError`` naming the choices if there is none."""
    if name not in FAMILIES:
        raise ValueError(f"unknown dynamics family {name!r}; choose from {', '.join(FAMILIES)}")
    return FAMILIES[name]


def load_all() -> None:
    """Import every family's classes (so that Keras can deserialise their layers)."""
    for family in FAMILIES.values():
        family.latent, family.step


def make_dynamics(family: str, width: int, **options):
    """The latent dynamics layer of ``family`` (named ``"dynamics"``), given only the options it takes."""
    fam = get_family(family)
    return fam.latent(width, family=family, name="dynamics",
                      **{k: v for k, v in options.items() if k in fam.options})


def make_step(family: str, **config):
    """The physical :class:`~trajsr.dynamics.step.PropagatorStep` of ``family``."""
    return get_family(family).step(family=family, **config)

"""Interpolator names, read from the family registry: ``"bi" + family`` (rolled from both ends and
blended) and ``family`` (one way), plus ``seqbilstm``. No TensorFlow import here."""
from __future__ import annotations

from ..dynamics.registry import FAMILIES

#: the plain Bidirectional(LSTM) sequence model, the one interpolator that is not a rolled family
SEQUENCE_MODEL = "seqbilstm"


def model_names() -> list:
    """Interpolator names: ``"bi" + family`` and ``family`` for every registered family, and ``seqbilstm``."""
    return [name for family in FAMILIES for name in ("bi" + family, family)] + [SEQUENCE_MODEL]


def resolve(model: str) -> tuple:
    """(family, bidirectional) of an interpolator name; ``ValueError`` naming the choices."""
    if model == SEQUENCE_MODEL:
        return "sequence", True
    if model in FAMILIES:
        return model, False
    if model.startswith("bi") and model[2:] in FAMILIES:
        return model[2:], True
    raise ValueError(f"unknown model {model!r}; choose from {', '.join(model_names())}")

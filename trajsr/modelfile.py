"""Load a trajsr ``.keras`` file: ``safe_mode=True`` (no pickled code), one clear error otherwise.

The caller imports the module that registers its layers first (the interpolation or propagation room).
"""
from __future__ import annotations

import zipfile
from pathlib import Path

from .errors import TrajsrError


def load_model(path):
    """A ``keras.Model`` from ``path``; :class:`TrajsrError` naming the file if it is not a loadable model."""
    import keras

    from .dynamics import load_all
    load_all()  # registers every family's layers with Keras
    path = Path(path)
    if not path.exists():
        raise TrajsrError(f"{path}: no such model file")
    if path.suffix != ".keras":
        raise TrajsrError(f"{path}: not a .keras model file")
    if not zipfile.is_zipfile(path):
        raise TrajsrError(f"{path}: not a .keras model (truncated or corrupt: no zip archive)")
    try:
        return keras.saving.load_model(path, safe_mode=True)
    except Exception as err:
        message = " ".join(str(err).split())
        raise TrajsrError(f"{path}: cannot load as a trajsr .keras model: "
                          f"{message if len(message) <= 300 else message[:297] + '...'}") from None

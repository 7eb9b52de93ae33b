"""Load a trajsr ``.keras`` file: ``safe_mode=True`` (no pickled code), one clear error otherwise.

The caller imports the module that registers its layers first (the interpolation or propagation room).
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

from .errors import TrajsrError
from .io.atomic import check_writable


#: what a trajsr model file holds, by the name of its characteristic layer
KINDS = {"gap_interpolator": ("interpolate", "a super-resolution model (trajsr upsample --model)"),
         "unroll": ("propagate", "a propagator (trajsr propagate --model)")}


def _config(path) -> dict:
    """The model's Keras config (``config.json`` in the ``.keras`` zip), read without loading the model."""
    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read("config.json"))


def model_kind(path) -> str:
    """``"interpolate"``, ``"propagate"`` or ``"keras"`` (any other model), read from the file's
    config without loading it."""
    config = _config(path)
    names = {layer.get("config", {}).get("name") for layer in config.get("config", {}).get("layers", [])}
    return next((kind for name, (kind, _) in KINDS.items() if name in names), "keras")


def molecule(path) -> tuple[list, list]:
    """The element symbols and the reference geometry (N × 3, nm) a trajsr model was trained on, read from
    the file's config without loading it (no TensorFlow)."""
    try:
        config = _config(path)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError):
        raise TrajsrError(f"{path}: not a readable .keras model: truncated or corrupt") from None
    found = {}

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("elements", "reference") and isinstance(value, list) and key not in found:
                    found[key] = value
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
    walk(config)
    if set(found) != {"elements", "reference"} or len(found["elements"]) != len(found["reference"]):
        raise TrajsrError(f"{path}: holds no molecule (elements and reference geometry): not a trajsr model")
    return found["elements"], found["reference"]


def is_propagator(path) -> bool:
    """Whether ``path`` is an existing propagator ``.keras`` file (read from its config; False when it is
    unreadable, so that the loader's own error names the problem)."""
    if not (str(path).endswith(".keras") and Path(path).exists()):
        return False
    try:
        return model_kind(path) == "propagate"
    except Exception:
        return False


def load_model(path, expect: str | None = None):
    """A ``keras.Model`` from ``path``; :class:`TrajsrError` naming the file if it is not a loadable
    model, or not of the ``expect``-ed kind (``"interpolate"`` or ``"propagate"``)."""
    import keras

    from .dynamics import load_all
    load_all()  # registers every family's layers with Keras
    path = Path(path)
    if not path.exists():
        raise TrajsrError(f"{path}: no such model file")
    if path.suffix != ".keras":
        raise TrajsrError(f"{path}: not a .keras model file")
    try:
        kind = model_kind(path)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError):
        raise TrajsrError(f"{path}: not a readable .keras model: truncated or corrupt") from None
    if expect is not None and kind != expect:
        what = next((text for k, text in KINDS.values() if k == kind), "a plain Keras model, not made by trajsr")
        wanted = next(text for k, text in KINDS.values() if k == expect)
        raise TrajsrError(f"{path}: is {what}; this needs {wanted}")
    try:
        return keras.saving.load_model(path, safe_mode=True, compile=False)  # inference only
    except Exception as err:
        message = " ".join(str(err).split())
        raise TrajsrError(f"{path}: cannot load as a trajsr .keras model: "
                          f"{message if len(message) <= 300 else message[:297] + '...'}") from None


def check_output(output, force: bool):
    """The output path of a model (``.keras``), refused before any work if it exists or cannot be written."""
    if output is None:
        return None
    output = check_writable(output, force)
    if output.suffix != ".keras":
        raise TrajsrError(f"{output}: models are saved as .keras files")
    return output

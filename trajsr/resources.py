"""Where the shipped reference data and trained models are: the checkout's ``datasets/`` and
``models/`` folders (editable install), else the copies a regular ``pip install .`` puts in
``<prefix>/share/trajsr/`` (``[options.data_files]`` in setup.cfg)."""
from __future__ import annotations

import sys
import sysconfig
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[1]


def shipped_folder(name: str) -> Path:
    """The folder ``name`` (``"datasets"`` or ``"models"``) of shipped files."""
    here = CHECKOUT / name
    if here.is_dir() and any(here.iterdir()):
        return here
    for prefix in (sysconfig.get_path("data"), sys.prefix, sys.base_prefix):
        installed = Path(prefix) / "share" / "trajsr" / name
        if installed.is_dir():
            return installed
    return here

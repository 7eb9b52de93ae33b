"""The model card: the JSON file ``NAME.json`` beside every ``NAME.keras``, saying what it was trained on,
with which settings and command, and how it does on held-out trajectories.

One format, one writer: ``trajsr train`` (:func:`write_card`, both tasks), ``trajsr adapt``,
``models/recipe.py``, ``models/calibrate.py`` and the bench scripts that add their figures to a shipped card
(:func:`update_card`) all write through :func:`save_card`: JSON, indent 2, written atomically, each section
with the command that produced it. The evaluation a card holds is made by
:func:`trajsr.interpolation.card.evaluate`."""
from __future__ import annotations

import contextlib
import json
import os
import platform
import shlex
import sys
from pathlib import Path

from .io.atomic import atomic_path

#: the units of a card's figures, named in every card
UNITS = {"mae": "Å", "dt_fs": "fs", "temperature_K": "K", "seconds": "s"}


def write_card(path, *, metadata: dict, settings: dict, evaluation: dict | None, evaluated_on: str,
               force: bool = False) -> Path:
    """Write the card (JSON) to ``path``: data, settings, training record, evaluation, command, machine."""
    card = dict(model=settings.get("model"), task=settings.get("task"), factor=settings.get("factor"),
                elements=metadata.get("elements"), dt_fs=metadata.get("dt_fs"), settings=settings,
                training=metadata.get("training"), evaluated_on=evaluated_on, evaluation=evaluation,
                units=UNITS, command=command_line(), machine=machine())
    save_card(path, card, force)
    return Path(path)


#: the command ``trajsr.cli.main`` is running (program first), while it runs: see :func:`command_line`
_running: list[str] | None = None


@contextlib.contextmanager
def running(command: list[str]):
    """Inside, :func:`command_line` names ``command`` (a list of words, program first): ``trajsr.cli.main``
    runs each subcommand in it, so a card records ``trajsr ARGS`` also when ``main`` is called from Python."""
    global _running
    before, _running = _running, [str(word) for word in command]
    try:
        yield
    finally:
        _running = before


def command_line(script: str | None = None, argv: list | None = None) -> str:
    """The command that produced this process's results, shell-quoted so it can be pasted again.

    ``trajsr ARGS`` while the CLI runs (:func:`running`); for a script, ``python SCRIPT ARGS`` with
    ``script`` as the reader types it from the repository root (``bench/speed.py``) and ``argv`` its
    arguments (default ``sys.argv[1:]``); else this interpreter's own ``sys.argv`` (the CLI never gets
    here: ``trajsr.cli.main`` runs every subcommand inside :func:`running`)."""
    if script is None and _running is not None:
        return shlex.join(_running)
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    return shlex.join(["python", script, *argv] if script is not None else [sys.argv[0], *argv])


def recorded_paths(paths) -> list[str]:
    """Input files as a card records them: relative to the current folder when they lie below it (so a card
    shipped with a repository names no folder of the machine it was made on), else as given."""
    here = Path.cwd().resolve()
    out = []
    for path in paths:
        absolute = Path(str(path)).resolve()
        out.append(str(absolute.relative_to(here)) if absolute.is_relative_to(here) else str(path))
    return out


def machine() -> str:
    """What a card's timings were measured on: architecture, cores, Python."""
    return (f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_implementation()} "
            f"{platform.python_version()}")


def read_card(path) -> dict:
    """The card at ``path`` (``NAME.json``, or the ``NAME.keras`` it describes)."""
    return json.loads(card_path(path).read_text())


def update_card(path, sections: dict, *, command: str | None = None, new: bool = False) -> dict:
    """Add or replace top-level ``sections`` of the card at ``path`` and write it back atomically.

    Parameters
    ----------
    path : path
        The card ``NAME.json`` (or the ``NAME.keras`` it describes).
    sections : dict
        Entries to set; the card's other entries are kept (e.g. a propagator's shooting figures when its
        rollout figures are re-measured).
    command : str, optional
        The command that produced ``sections``: recorded in each section that is a dict, or, for a
        ``new`` card, as the card's own ``command``.
    new : bool
        Start from an empty card instead of the one at ``path`` (which is then replaced).

    Returns
    -------
    dict
        The card as written.
    """
    path = card_path(path)
    card = {} if new or not path.exists() else read_card(path)
    stamped = command is not None and not new
    card.update({key: {**value, "command": command} if stamped and isinstance(value, dict) else value
                 for key, value in sections.items()})
    if new and command is not None:
        card["command"] = command
    save_card(path, card, force=True)
    return card


def save_card(path, card: dict, force: bool = False) -> None:
    """Write ``card`` to ``path`` (JSON, indent 2) atomically, with the figures' units unless it names its own;
    an existing file is replaced only with ``force``."""
    card.setdefault("units", UNITS)
    with atomic_path(path, force) as tmp:
        Path(tmp).write_text(json.dumps(card, indent=2, default=float, ensure_ascii=False) + "\n")


def card_path(model_path) -> Path:
    """``m.keras`` -> ``m.json`` (a ``.json`` path as it is)."""
    return Path(model_path).with_suffix(".json")

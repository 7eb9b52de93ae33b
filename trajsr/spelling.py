"""Public arguments renamed so that a name has one meaning and carries its unit (``temperature_K``, as
ASE spells it; ``md_steps``, not one of the other "steps"), their earlier spelling still accepted: one rule
for every renamed argument."""
from __future__ import annotations

from .errors import TrajsrError


def renamed(name: str, value, earlier: str, earlier_value, default=None):
    """The value given for argument ``name`` or for ``earlier``, its earlier spelling (one of them, not
    both: two values for one argument would make one of them silently lost); ``default`` when neither."""
    if value is not None and earlier_value is not None:
        raise TrajsrError(f"{name}={value!r} and {earlier}={earlier_value!r} (its earlier spelling) are the same "
                          "argument: give one")
    if value is not None:
        return value
    return default if earlier_value is None else earlier_value

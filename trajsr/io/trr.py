"""Velocities in GROMACS ``.trr`` files. mdtraj's public TRR API reads and writes positions only; its
private ``_read``/``_write`` (the calls its public methods make, with velocities switched on) are
used here and nowhere else, so a change in mdtraj touches this one file."""
from __future__ import annotations

import numpy as np

from ..errors import TrajsrError


def read_velocities(path, n_frames):
    """Velocities (nm/ps) of every frame, or None if the file stores none."""
    from mdtraj.formats import TRRTrajectoryFile
    with TRRTrajectoryFile(str(path)) as f:
        try:
            velocities = f._read(n_frames, None, get_velocities=True, get_forces=False)[5]
        except Exception:  # frames without velocities
            return None
    return None if velocities is None else np.asarray(velocities, np.float64)


def write_with_velocities(handle, xyz, time, step, box, velocities):
    """Append frames (nm, ps, nm/ps) with velocities to an open ``TRRTrajectoryFile``."""
    n = len(xyz)
    box = box if box is not None else np.tile(np.eye(3), (n, 1, 1))
    try:
        handle._write(np.asarray(xyz, np.float32), np.asarray(time, np.float32), np.asarray(step, np.int32),
                      np.asarray(box, np.float32), np.zeros(n, np.float32), np.asarray(velocities, np.float32), None)
    except Exception as err:
        raise TrajsrError(f"cannot write trr velocities ({err})") from None

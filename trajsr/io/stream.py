"""Read and write trajectories chunk by chunk, so memory does not grow with trajectory length.

Which formats stream is the format table's business (:mod:`.formats`): a format without a chunked
reader is read whole and handed out in slices; one without a chunked writer is gathered and written
at the end. Writes go to a temporary file beside the target that replaces it only when everything
succeeded.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import TrajsrError
from ..trajectory import Trajectory, concatenate
from . import check_readable, finish_reading, load, save
from .atomic import TemporaryOutput
from .formats import format_for_reading, format_for_writing, warn_if_lossy


def iter_chunks(path, top=None, dt_fs=None, chunk: int = 5000):
    """Yield consecutive :class:`Trajectory` chunks of ``chunk`` frames (nm, ps) from ``path``."""
    path = check_readable(path)
    fmt = format_for_reading(path, top)
    if fmt.read_chunks is None:
        whole = load(path, top=top, dt_fs=dt_fs)
        for lo in range(0, whole.n_frames, chunk):
            yield whole[lo: lo + chunk].replace(first_frame=lo)
        return
    n, last = 0, None
    for part in fmt.read_chunks(path, top, chunk):
        part = finish_reading(part, path, top, dt_fs, first_frame=n, previous=last)  # the seam before it too
        yield part
        n, last = n + part.n_frames, part.positions[-1]
    if n == 0:
        raise TrajsrError(f"{path}: no frames")


class ChunkWriter:
    """Append :class:`Trajectory` chunks to one file; ``close()`` moves it into place.

    Use as a context manager: on an exception the temporary file is removed and the target is untouched.
    """

    def __init__(self, path, force: bool = False):
        self.path, self.force = Path(path), force
        self.format = format_for_writing(self.path)
        warn_if_lossy(self.path)
        self.output = TemporaryOutput(self.path, force)
        self.appender = self.format.open_appender(self.output.tmp) if self.format.open_appender else None
        self.gathered, self.n_frames = [], 0

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def write(self, traj: Trajectory) -> None:
        if traj.n_frames == 0:
            return
        if self.appender is None:
            self.gathered.append(traj)
        else:
            self.appender.append(traj)
        self.n_frames += traj.n_frames

    def close(self) -> Path:
        if self.n_frames == 0:
            self.abort()
            raise TrajsrError(f"{self.path}: nothing to write")
        if self.appender is None:
            self.output.discard()
            save(concatenate(self.gathered).replace(source=str(self.path)), self.path, force=self.force)
            return self.path
        self.appender.close()
        self.output.commit()
        return self.path

    def abort(self) -> None:
        if self.appender is not None:
            self.appender.close()
        self.output.discard()

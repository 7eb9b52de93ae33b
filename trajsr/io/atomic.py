"""Write files all-or-nothing, and never overwrite silently.

Output goes first to ``NAME.trajsr-partial-PID.SUFFIX`` beside the target and is renamed into place
only when complete. The CLI turns SIGTERM into a clean exit, which removes the partial file; one left
by a killed run (SIGKILL) is removed by the next run writing the same output.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

from ..errors import TrajsrError
from .formats import suffix_of

PARTIAL = ".trajsr-partial-"


def check_writable(path, force: bool = False) -> Path:
    """Refuse, before any work, an output that exists (unless ``force``) or cannot be created."""
    path = Path(path)
    if path.is_dir():
        raise TrajsrError(f"{path}: is a directory; give a file name")
    if path.exists() and not force:
        raise TrajsrError(f"{path}: file exists; use --force to overwrite it")
    if not path.parent.is_dir():
        raise TrajsrError(f"{path}: directory {path.parent} does not exist")
    probe = _partial_name(path)
    try:
        with open(probe, "wb"):
            pass
        os.unlink(probe)
    except OSError as err:
        raise TrajsrError(f"{path}: cannot write here ({err.strerror or err})") from None
    return path


def _partial_name(path: Path) -> Path:
    stem, suffix = _split(path)
    return path.with_name(f"{stem}{PARTIAL}{os.getpid()}{suffix}")


def _split(path: Path) -> tuple[str, str]:
    """A file name's stem and its format suffix (:func:`.formats.suffix_of`: ``.pdb.gz`` whole), which the
    format writers dispatch on."""
    n = len(suffix_of(path))
    return (path.name[:-n], path.name[-n:]) if n else (path.name, "")


def remove_stale_partials(path: Path) -> None:
    """Delete partial files of ``path`` left by runs that no longer exist."""
    stem, suffix = _split(path)
    for stale in path.parent.glob(f"{stem}{PARTIAL}*{suffix}"):
        pid = stale.name[len(stem) + len(PARTIAL):len(stale.name) - len(suffix)]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            with contextlib.suppress(OSError):
                stale.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class TemporaryOutput:
    """A partial file beside ``path``; :meth:`commit` moves it into place, :meth:`discard` removes it."""

    def __init__(self, path, force: bool = False):
        self.path = check_writable(path, force)
        remove_stale_partials(self.path)
        self.tmp = _partial_name(self.path)
        if self.tmp.exists():
            self.tmp.unlink()

    def commit(self) -> Path:
        os.replace(self.tmp, self.path)
        return self.path

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            self.tmp.unlink()


@contextlib.contextmanager
def atomic_path(path, force: bool = False):
    """Yield a temporary path beside ``path``; move it into place only if the block succeeds.

    The temporary name keeps the suffix, so format writers that dispatch on it still work. On any
    error (and on SIGTERM in the CLI) the temporary file is removed: no half-written output is left.
    """
    out = TemporaryOutput(path, force)
    try:
        yield str(out.tmp)
        if not out.tmp.exists():
            raise TrajsrError(f"{out.path}: nothing was written")
        out.commit()
    finally:
        out.discard()

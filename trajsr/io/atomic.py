"""Write files all-or-nothing, and never overwrite silently."""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from ..errors import TrajsrError


def check_writable(path, force: bool = False) -> Path:
    """Refuse to overwrite an existing file unless ``force``."""
    path = Path(path)
    if path.exists() and not force:
        raise TrajsrError(f"{path}: file exists; pass --force (force=True) to overwrite it")
    if not path.parent.exists():
        raise TrajsrError(f"{path}: directory {path.parent} does not exist")
    return path


@contextlib.contextmanager
def atomic_path(path, force: bool = False):
    """Yield a temporary path beside ``path``; move it into place only if the block succeeds.

    The temporary name keeps the suffix, so format writers that dispatch on it still work. On any
    error the temporary file is removed: no half-written output is ever left behind.
    """
    path = check_writable(path, force)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    os.unlink(tmp)  # some writers (mdtraj) refuse to open an existing file
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)

"""Atomic file writes: a crash leaves either the old file or the new one, never half of one."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path
from typing import Callable, IO

import numpy as np

__all__ = ["atomic_write", "atomic_savez", "atomic_write_text"]


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> Path:
    """Call ``write(file)`` on a temp file beside ``path``, fsync it, then rename over ``path``.

    ``os.replace`` is atomic on POSIX when both names are on one file system,
    which is why the temp file lives in the destination directory.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)      # mkstemp makes 0600; give the file the usual permissions
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
            raise OSError(err.errno, "no space left on the device (or over quota) to write this file; "
                                     "free some space or write elsewhere", str(path)) from None
        raise
    return path


def atomic_savez(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> Path:
    """``np.savez`` (uncompressed) of ``arrays`` to ``path``, atomically."""
    return atomic_write(path, lambda f: np.savez(f, **arrays))


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")))

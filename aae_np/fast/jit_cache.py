"""Numba's on-disk cache, kept honest across modules.

Numba keys a cached function to its own source file only. ``pool._share`` compiles in
``kernels.adam_flat`` and ``openblas.gemm_part``; edit one of those (a student trying a change to
Adam, say) and the pool would go on running the old machine code from its cache, while the same
kernel called directly runs the new one. ``drop_if_stale`` deletes a module's cache files when a
module it compiles in is newer than them, so that Numba compiles it again. (It sees the in-tree
``__pycache__`` only, where Numba caches a package it can write to.)
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["drop_if_stale"]


def drop_if_stale(module_file: str | os.PathLike, *depends_on: str) -> bool:
    """Delete ``module_file``'s Numba cache files (``__pycache__/<stem>.*.nbi`` / ``.nbc``) if one
    of ``depends_on`` (file names beside it) was modified after the oldest of them; True if it
    deleted them."""
    module = Path(module_file)
    caches = [*module.parent.glob(f"__pycache__/{module.stem}.*.nbi"),
              *module.parent.glob(f"__pycache__/{module.stem}.*.nbc")]
    try:
        stale = bool(caches) and max((module.parent / d).stat().st_mtime for d in depends_on) > min(
            c.stat().st_mtime for c in caches)
    except OSError:                 # a file went away meanwhile (another process cleaning up)
        return False
    for cache in caches if stale else ():
        cache.unlink(missing_ok=True)
    return stale

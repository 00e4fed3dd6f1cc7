"""Numba's on-disk cache, kept honest across modules.

Numba keys a cached function to its own source file only. ``pool._share`` compiles in
``kernels.adam_flat`` and ``openblas.gemm_part``; edit one of those (a student trying a change to
Adam, say) and the pool would go on running the old machine code from its cache, while the same
kernel called directly runs the new one. ``drop_if_stale`` deletes a module's cache files when a
module it compiles in is newer than them, so that Numba compiles it again. (It sees the in-tree
``__pycache__`` only, where Numba caches a package it can write to.)

``cache_ok`` makes sure Numba has somewhere to cache before the first kernel is compiled: an
install the user cannot write to, run without a writable home (a container, a service account,
a locked-down lab image), would otherwise stop every entry point with Numba's "cannot cache
function ...: no locator available". Then the cache goes to a folder of the user's in the
temporary directory, or, if none can be written, kernels compile at each start without a cache;
either is said once on stderr.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

__all__ = ["drop_if_stale", "cache_ok", "writable"]

_decided: list[bool] = []          # cache_ok's answer, once per process


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


def writable(folder: Path) -> bool:
    """Can this process create ``folder`` and a file in it (Numba's own test)?"""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
        return True
    except OSError:
        return False


def cache_ok() -> bool:
    """True if Numba can cache the package's kernels on disk (beside the package, in
    ``$NUMBA_CACHE_DIR``, in the user's cache folder, or in a folder made here in the temporary
    directory, which is then set as Numba's cache folder); False if it cannot cache anywhere
    (then compile with ``cache=False``). Decided once; call before the first ``@njit(cache=True)``."""
    if _decided:
        return _decided[0]
    from numba.core import config
    from numba.misc.appdirs import AppDirs

    package = Path(__file__).resolve().parents[1]
    ok = bool(config.CACHE_DIR) or writable(package / "fast" / "__pycache__") or writable(
        Path(AppDirs(appname="numba", appauthor=False).user_cache_dir))
    if not ok:
        user = os.getuid() if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")
        folder = Path(tempfile.gettempdir()) / f"aae_np-numba-cache-{user}"
        ok = writable(folder)
        if ok:
            config.CACHE_DIR = str(folder)
        print(f"aae_np: cannot write beside the package ({package}) or to a cache folder in your home; "
              + (f"Numba's compiled kernels are cached in {folder}" if ok else
                 "Numba's kernels are compiled at each start (set NUMBA_CACHE_DIR to a writable folder to cache them)"),
              file=sys.stderr)
    _decided.append(ok)
    return ok

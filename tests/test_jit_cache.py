"""jit_cache.drop_if_stale: a module's Numba cache goes when a module it compiles in is newer."""

from __future__ import annotations

import os

from aae_np.fast import jit_cache


def _module_with_cache(tmp_path):
    (tmp_path / "__pycache__").mkdir()
    for name in ("user.py", "callee.py", "other.py"):
        (tmp_path / name).write_text("")
    caches = [tmp_path / "__pycache__" / f"user.f-10.py311.{end}" for end in ("nbi", "1.nbc", "2.nbc")]
    keep = tmp_path / "__pycache__" / "other.g-3.py311.nbi"         # another module's cache
    for path in (*caches, keep):
        path.write_bytes(b"")
    return caches, keep


def test_a_callee_edited_after_the_cache_drops_it(tmp_path):
    caches, keep = _module_with_cache(tmp_path)
    old = (tmp_path / "callee.py").stat().st_mtime
    for path in caches:
        os.utime(path, (old - 10, old - 10))
    assert jit_cache.drop_if_stale(tmp_path / "user.py", "callee.py") is True
    assert not any(path.exists() for path in caches) and keep.exists()


def test_a_cache_newer_than_its_callees_stays(tmp_path):
    caches, keep = _module_with_cache(tmp_path)
    old = (tmp_path / "callee.py").stat().st_mtime
    for name in ("callee.py", "other.py"):
        os.utime(tmp_path / name, (old - 10, old - 10))
    assert jit_cache.drop_if_stale(tmp_path / "user.py", "callee.py", "other.py") is False
    assert all(path.exists() for path in caches) and keep.exists()


def test_no_cache_yet_is_not_stale(tmp_path):
    (tmp_path / "user.py").write_text("")
    (tmp_path / "callee.py").write_text("")
    assert jit_cache.drop_if_stale(tmp_path / "user.py", "callee.py") is False

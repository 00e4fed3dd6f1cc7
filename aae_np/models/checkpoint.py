"""The model file format: one ``.npz`` with the config as JSON, the kind of model and every
parameter under its qualified name, written atomically. No pickle is ever loaded.

A checkpoint is a model file with extra arrays (the trainer's state and every optimizer's);
``aae_np.models.load_model`` rebuilds whichever model a file holds.
"""

from __future__ import annotations

import json
import os
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from aae_np.files import atomic_savez

__all__ = ["FORMAT_VERSION", "write_model_file", "read_model_arrays", "model_kind", "NOT_A_MODEL"]

FORMAT_VERSION = 1
NOT_A_MODEL = "was it written by AAE.save / aae-np train?"


def write_model_file(path: str | os.PathLike, kind: str, config: dict[str, Any], params: dict[str, np.ndarray],
                     state: dict[str, np.ndarray] | None = None, extra: dict[str, np.ndarray] | None = None) -> Path:
    """Write config (JSON), kind, parameters (``param/NAME``) and state arrays (``state/NAME``,
    e.g. BatchNorm's running statistics) to one ``.npz``, atomically (temp file + rename)."""
    arrays = {"__config__": np.array(json.dumps(config)), "__format__": np.array(FORMAT_VERSION),
              "__kind__": np.array(kind)}
    arrays.update({f"param/{k}": v for k, v in params.items()})
    arrays.update({f"state/{k}": v for k, v in (state or {}).items()})
    arrays.update(extra or {})
    return atomic_savez(path, arrays)


def read_model_arrays(path: str | os.PathLike, only: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """Every array (or those named in ``only``) of a model file, checked to be one."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"model file {path} does not exist; train one with `aae-np train --out DIR`")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not a readable aae_np model file (not an .npz archive); {NOT_A_MODEL}")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files if only is None or k in only}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        raise ValueError(f"{path} is not a readable aae_np model file ({err}); {NOT_A_MODEL}") from err
    if "__config__" not in arrays:
        raise ValueError(f"{path} is not a readable aae_np model file (no config inside); {NOT_A_MODEL}")
    arrays.pop("__format__", None)
    return arrays


def model_kind(path: str | os.PathLike) -> str:
    """"aae" or "variant": which class wrote the model file (or checkpoint) at ``path``.

    Reads only the config and kind entries of the archive, not the parameters."""
    return str(read_model_arrays(path, only=("__config__", "__kind__")).get("__kind__", "aae"))

"""Your own data: an ``.npz``, an ``.npy``, a folder of PNG images or an IDX folder, read,
checked, scaled and described, so a model can say later what it was trained on.

``load_user_data(path, image_shape, scale)`` returns a ``UserData``: the four arrays the
trainer and the reports read (``x_train``, ``y_train``, ``x_test``, ``y_test``; labels may be
None), with its ``name``, ``image_shape`` (None: the rows are not images), ``scaling`` and a
``fingerprint`` of the training rows. ``UserData.record()`` is what ``model.npz`` keeps of it.

Formats (``docs/your-data.md``):

- ``.npz``: ``x`` (N, D) or (N, H, W), optional ``y`` (N,) integer labels, optional ``x_test``
  and ``y_test``;
- ``.npy``: one array, as ``x``;
- a folder of ``.png`` files (read as grey levels / 255, all of one size), or a folder of class
  subfolders of them (the subfolder, in sorted order, is the label);
- a folder with the four MNIST-format IDX files; MNIST and Fashion-MNIST are told apart by
  their content (``identify_idx``), whatever ``--dataset`` says.

Without ``x_test`` the last tenth of the rows is held out as the test split. Values must lie in
[0, 1]: ``scale="minmax"`` maps each feature's training range to [0, 1], ``"minmax-all"`` one
range for all features (images); test rows beyond the training range are clipped.
"""

from __future__ import annotations

import hashlib
import math
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from aae_np.data import MnistData, find_files, labelled_as, load_mnist
from aae_np.train.inputs import check_labels, check_rows

__all__ = ["UserData", "load_user_data", "from_arrays", "identify_idx", "parse_image_shape", "SCALES",
           "HELD_OUT_FRACTION", "idx_data", "apply_scaling"]

SCALES = ("minmax", "minmax-all")
HELD_OUT_FRACTION = 0.1
NPZ_KEYS = ("x", "y", "x_test", "y_test")


@dataclass
class UserData:
    """The arrays a run reads (``x_*`` (N, D) float32 in [0, 1]; ``y_*`` (N,) int64 or None) and
    what a model file records about them."""

    x_train: np.ndarray
    y_train: np.ndarray | None
    x_test: np.ndarray
    y_test: np.ndarray | None
    name: str
    source: str
    image_shape: tuple[int, int] | None
    scaling: dict[str, Any] = field(default_factory=lambda: {"kind": "none"})
    fingerprint: str = ""
    notes: list[str] = field(default_factory=list)      # what was done to the data, said once

    @property
    def features(self) -> int:
        return int(self.x_train.shape[1])

    def describe(self) -> str:
        what = "images" if self.image_shape else "rows"
        shape = f"{self.image_shape[0]}x{self.image_shape[1]}" if self.image_shape else f"{self.features}-feature"
        labels = "" if self.y_train is not None else ", no labels"
        return f"{len(self.x_train):,} {shape} {what} of {self.name}{labels}"

    def record(self) -> dict[str, Any]:
        """What ``model.npz`` keeps (JSON): name, source, shape, image shape, scaling, fingerprint."""
        return {"name": self.name, "source": self.source, "features": self.features,
                "rows": len(self.x_train), "test_rows": len(self.x_test), "labels": self.y_train is not None,
                "image_shape": list(self.image_shape) if self.image_shape else None,
                "scaling": self.scaling, "fingerprint": self.fingerprint}


def fingerprint(x: np.ndarray) -> str:
    """16 hex digits of the SHA-256 of the rows as float32 (and their shape)."""
    a = np.ascontiguousarray(x, dtype=np.float32)
    return hashlib.sha256(repr(a.shape).encode() + a.tobytes()).hexdigest()[:16]


def parse_image_shape(text: str | None) -> tuple[int, int] | None | str:
    """``"H,W"`` -> (H, W); ``"none"`` -> None (not images); None -> "infer" (square rows are)."""
    if text is None:
        return "infer"
    if text.strip().lower() == "none":
        return None
    try:
        h, w = (int(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"--image-shape {text!r}: expected H,W such as 28,28 (or none)") from None
    if h < 1 or w < 1:
        raise ValueError(f"--image-shape {text!r}: H and W must be positive")
    return h, w


def identify_idx(data: MnistData) -> str | None:
    """"mnist" or "fashion-mnist" from the files' content: the first ten labels of either split
    (which a subset from row 0 keeps), else the share of black pixels (handwritten strokes leave
    ~80 % of MNIST's pixels at 0, clothing ~50 % of Fashion-MNIST's); None when neither decides
    (random pixels, another dataset)."""
    name = labelled_as(data)
    if name is not None:
        return name
    black = float((data.x_train[:1000] == 0).mean()) if len(data.x_train) else 0.0
    return "mnist" if 0.7 <= black <= 0.9 else "fashion-mnist" if 0.35 <= black <= 0.6 else None


# ----------------------------------------------------------------------------- reading

def _read_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except ValueError as err:       # object arrays need pickle, which is never loaded
        raise ValueError(f"{path}: cannot read it without pickle ({err}); save plain numeric arrays "
                         "with np.savez(path, x=x, y=y)") from None
    except (OSError, EOFError, zipfile.BadZipFile) as err:
        raise ValueError(f"{path}: not a readable .npz ({err}); write it with np.savez(path, x=x, y=y)") from None
    if "x" not in arrays:
        raise ValueError(f"{path} holds arrays {', '.join(arrays) or 'none'} but no 'x'; save the data under the "
                         "name x: np.savez(path, x=x[, y=labels, x_test=..., y_test=...])")
    unknown = sorted(set(arrays) - set(NPZ_KEYS))
    if unknown:
        raise ValueError(f"{path}: unknown arrays {', '.join(unknown)}; it may hold only {', '.join(NPZ_KEYS)}")
    if "y_test" in arrays and "x_test" not in arrays:
        raise ValueError(f"{path} has y_test but no x_test; add x_test or drop y_test")
    return arrays


def _read_png_folder(folder: Path) -> dict[str, np.ndarray]:
    from PIL import Image

    files = sorted(folder.glob("*.png"))
    classes = sorted(d for d in folder.iterdir() if d.is_dir() and any(d.glob("*.png"))) if not files else []
    labelled = [(f, k) for k, d in enumerate(classes) for f in sorted(d.glob("*.png"))]
    pairs = [(f, -1) for f in files] or labelled
    if not pairs:
        raise ValueError(f"{folder} holds no .png files (nor class subfolders of them); put the images there, "
                         "or pass an .npz / .npy file")
    images, size = [], None
    for f, _ in pairs:
        try:
            with Image.open(f) as im:
                a = np.asarray(im.convert("L"), dtype=np.float32) / 255
        except OSError as err:
            raise ValueError(f"{f}: not a readable PNG ({err}); remove it or replace it") from None
        if size is not None and a.shape != size:
            raise ValueError(f"{f} is {a.shape[0]}x{a.shape[1]} pixels but {pairs[0][0].name} is "
                             f"{size[0]}x{size[1]}; resize the images to one size")
        size = a.shape
        images.append(a)
    out = {"x": np.stack(images)}
    if labelled:
        out["y"] = np.array([k for _, k in pairs], np.int64)
    return out


def _flatten(x: np.ndarray, where: str) -> tuple[np.ndarray, tuple[int, int] | None]:
    """(N, D) as it is; (N, H, W) -> (N, H*W) and (H, W)."""
    if x.ndim == 3:
        return x.reshape(len(x), -1), (int(x.shape[1]), int(x.shape[2]))
    if x.ndim == 4:
        raise ValueError(f"{where} has shape {x.shape}: colour images are not supported; convert them to grey "
                         "levels (e.g. x.mean(axis=-1)) or flatten them to (N, features)")
    return x, None


# ----------------------------------------------------------------------------- building

def _scaling(x: np.ndarray, scale: str | None) -> dict[str, Any]:
    if scale is None:
        return {"kind": "none"}
    if scale not in SCALES:
        raise ValueError(f"--scale {scale!r}: choose one of {', '.join(SCALES)}")
    low, high = (x.min(0), x.max(0)) if scale == "minmax" else (x.min(keepdims=True), x.max(keepdims=True))
    return {"kind": scale, "low": np.asarray(low, np.float64).ravel().tolist(),
            "high": np.asarray(high, np.float64).ravel().tolist()}


def apply_scaling(x: np.ndarray, scaling: dict[str, Any]) -> tuple[np.ndarray, int]:
    """``x`` mapped by a recorded scaling (low -> 0, high -> 1; a constant feature to 0) and clipped
    to [0, 1]; returns it and the number of values that were clipped."""
    if scaling.get("kind", "none") == "none":
        return x, 0
    low, high = np.asarray(scaling["low"], np.float64), np.asarray(scaling["high"], np.float64)
    span = np.where(high > low, high - low, 1.0)
    y = (x - low) / span
    clipped = int(((y < 0) | (y > 1)).sum())
    return np.clip(y, 0, 1).astype(np.float32), clipped


def _check_range(x: np.ndarray, where: str) -> None:
    low, high = float(x.min()), float(x.max())
    if low < 0 or high > 1:
        raise ValueError(f"{where} holds values in [{low:.4g}, {high:.4g}], outside [0, 1] (the decoder's outputs "
                         "are in [0, 1] and its loss compares them with x); pass --scale minmax to map each "
                         "feature's range to [0, 1], or --scale minmax-all for one range over all features "
                         "(images)")


def from_arrays(arrays: dict[str, np.ndarray], name: str, source: str, image_shape: Any = "infer",
                scale: str | None = None, scaling: dict[str, Any] | None = None) -> UserData:
    """A checked ``UserData`` from ``x`` [, ``y``, ``x_test``, ``y_test``]. ``image_shape``: (H, W),
    None (not images) or "infer" (a 3-D x's, else square rows). ``scale`` learns a scaling on the
    training rows; ``scaling`` applies a recorded one instead (a trained model's)."""
    notes: list[str] = []
    where = f"{source}: x"
    x = check_rows(_flatten(np.asarray(arrays["x"]), where)[0], None, where, unit_range=False)
    shape_from_3d = _flatten(np.asarray(arrays["x"]), where)[1]
    y = None if arrays.get("y") is None else check_labels(arrays["y"], len(x), None, f"{source}: y")
    if arrays.get("x_test") is not None:
        width = int(np.prod(np.shape(arrays["x_test"])[1:]))
        if width != x.shape[1]:
            raise ValueError(f"{source}: x_test has {width} features per row but x has {x.shape[1]}; both must "
                             "hold the same features")
        x_test = check_rows(_flatten(np.asarray(arrays["x_test"]), f"{source}: x_test")[0], x.shape[1],
                            f"{source}: x_test", unit_range=False)
        y_test = None if arrays.get("y_test") is None else check_labels(arrays["y_test"], len(x_test), None,
                                                                        f"{source}: y_test")
        x_train, y_train = x, y
    else:
        if len(x) < 2:
            raise ValueError(f"{where} has 1 row: a test split needs at least one more; add rows or an x_test")
        held = max(1, int(round(HELD_OUT_FRACTION * len(x))))
        x_train, x_test = x[:-held], x[-held:]
        y_train, y_test = (None, None) if y is None else (y[:-held], y[-held:])
        notes.append(f"no x_test in {source}: its last {held:,} rows are held out as the test split")
    raw_print = fingerprint(x_train)
    if scaling is not None and len(scaling.get("low", [0])) not in (1, x.shape[1]):
        raise ValueError(f"{source} has {x.shape[1]} features per row, but the model was trained on rows of "
                         f"{len(scaling['low'])}; pass data of the same features, or leave out the data options "
                         "to use its own")
    if scaling is None:
        scaling = _scaling(x_train, scale)
    x_train, _ = apply_scaling(x_train, scaling)
    x_test, clipped = apply_scaling(x_test, scaling)
    if clipped:
        notes.append(f"{clipped:,} test values outside the training range were clipped to [0, 1]")
    _check_range(x_train, where)
    _check_range(x_test, f"{source}: x_test")
    if image_shape == "infer":
        side = math.isqrt(x.shape[1])
        image_shape = shape_from_3d or ((side, side) if side * side == x.shape[1] else None)
    if image_shape is not None and image_shape[0] * image_shape[1] != x.shape[1]:
        raise ValueError(f"--image-shape {image_shape[0]},{image_shape[1]} is {image_shape[0] * image_shape[1]} pixels "
                         f"but the rows of {source} have {x.shape[1]} features; give H,W with H*W = {x.shape[1]}")
    return UserData(x_train, y_train, x_test, y_test, name, source, image_shape, scaling, raw_print, notes)


def idx_data(data: MnistData, source: str, dataset: str | None = None, image_shape: Any = "infer",
             scale: str | None = None, scaling: dict[str, Any] | None = None) -> UserData:
    """``UserData`` of an IDX folder's four arrays, named by their content (``identify_idx``);
    ``dataset`` is the name the user gave, used when the content does not decide."""
    name = identify_idx(data) or dataset or "mnist"
    out = from_arrays({"x": data.x_train, "y": data.y_train, "x_test": data.x_test, "y_test": data.y_test},
                      name, source, (28, 28) if image_shape == "infer" else image_shape, scale, scaling)
    if dataset and dataset != name:
        out.notes.append(f"{source} holds {name} (told by its content), not {dataset}: it is called {name}")
    return out


def load_user_data(path: str | Path, image_shape: Any = "infer", scale: str | None = None,
                   scaling: dict[str, Any] | None = None, dataset: str | None = None) -> UserData:
    """Read, check and scale the data at ``path`` (see the module docstring for the formats)."""
    path = Path(path).expanduser()
    if not path.exists():
        raise ValueError(f"--data {path}: no such file or folder")
    source = str(path.resolve())
    if path.is_dir() and all(find_files(path).values()):
        return idx_data(load_mnist(path), source, dataset, image_shape, scale, scaling)
    if path.is_dir():
        arrays = _read_png_folder(path)
    elif path.suffix == ".npz":
        arrays = _read_npz(path)
    elif path.suffix == ".npy":
        try:
            arrays = {"x": np.load(path, allow_pickle=False)}
        except (ValueError, OSError, EOFError) as err:
            raise ValueError(f"{path}: not a readable .npy of numbers ({err}); write it with np.save") from None
    else:
        raise ValueError(f"--data {path}: expected an .npz, an .npy, or a folder of .png images")
    return from_arrays(arrays, path.stem if path.is_file() else path.name, source, image_shape, scale, scaling)

"""What a trainer checks before its first step, so no input fails a run after it started.

``check_rows``    the training (or held-out) array: numeric, 2-D, the model's width, not empty,
                  finite, in [0, 1] (the decoder ends in a sigmoid; its loss compares with x)
``check_labels``  class labels: one integer per row, in 0..n_classes-1
``batch_bounds``  the ``[start, stop)`` rows of each mini-batch of an epoch; a last batch of one
                  row joins the batch before it, since BatchNorm's batch statistics need two rows

Each message names the argument, what was found and what to do.
"""

from __future__ import annotations

import numpy as np

__all__ = ["check_rows", "check_labels", "batch_bounds", "RESCALE_HINT"]

RESCALE_HINT = ("rescale each feature to [0, 1] first: (x - x.min(0)) / (x.max(0) - x.min(0)), "
                "scikit-learn's MinMaxScaler, or aae-np's --scale minmax")


def check_rows(x: np.ndarray, input_dim: int | None, where: str = "x_train", dtype: str = "float32",
               unit_range: bool = True) -> np.ndarray:
    """``x`` as a C-contiguous ``dtype`` array of shape (N, input_dim), N >= 1, after checking it.

    ``input_dim`` None accepts any width. Raises ValueError naming ``where`` for: a non-numeric
    dtype (strings, objects, complex, bool), not 2-D, a width other than ``input_dim``, no rows,
    NaN or inf (the first rows that hold them are listed), values outside [0, 1] (with the range
    found) when ``unit_range``."""
    a = np.asarray(x)
    if a.dtype == bool or not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        complex_ = " (Complex data not supported)" if np.issubdtype(a.dtype, np.complexfloating) else ""
        raise ValueError(f"{where} has dtype {a.dtype}; it must hold real numbers (float or int){complex_}. "
                         "Convert it, e.g. x.astype('float32'), after removing non-numeric columns")
    if a.ndim != 2:
        fix = ("reshape it to (N, features), e.g. x.reshape(len(x), -1)" if a.ndim > 2 else
               "a single row is x.reshape(1, -1), a single feature x.reshape(-1, 1)")
        raise ValueError(f"{where} must be 2-D (rows, features), got shape {a.shape}. Reshape your data: {fix}")
    if input_dim is not None and a.shape[1] != input_dim:
        raise ValueError(f"{where} has {a.shape[1]} features per row but the model takes {input_dim}; "
                         f"build the model with input_dim={a.shape[1]}, or pass data of {input_dim} features")
    if len(a) == 0 or a.shape[1] == 0:       # worded as scikit-learn's check_array words it
        what = "sample(s)" if len(a) == 0 else "feature(s)"
        raise ValueError(f"{where} is empty: 0 {what} (shape={a.shape}) while a minimum of 1 is required; "
                         "pass at least one row of at least one feature")
    a = np.ascontiguousarray(a, dtype=dtype)
    finite = np.isfinite(a).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        rows = ", ".join(str(i) for i in bad[:5]) + (", ..." if len(bad) > 5 else "")
        raise ValueError(f"{where} has NaN or inf in {len(bad):,} of {len(a):,} rows (rows {rows}); "
                         "drop or fill those rows before training: x[np.isfinite(x).all(axis=1)]")
    if unit_range:
        low, high = float(a.min()), float(a.max())
        if low < 0 or high > 1:
            raise ValueError(f"{where} holds values in [{low:.4g}, {high:.4g}], but the model's decoder "
                             f"outputs [0, 1] and its loss compares with x; {RESCALE_HINT}")
    return a


def check_labels(y: np.ndarray, n: int, n_classes: int | None = None, where: str = "y_train") -> np.ndarray:
    """``y`` as int64 (n,) after checking: integers (floats that are whole numbers pass), one per
    row, in 0..n_classes-1 (only >= 0 when ``n_classes`` is None)."""
    a = np.asarray(y)
    if a.ndim != 1 or len(a) != n:
        raise ValueError(f"{where} must hold one label per row, shape ({n},), got shape {a.shape}")
    if not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)) or a.dtype == bool:
        raise ValueError(f"{where} has dtype {a.dtype}; labels must be integers 0, 1, 2, ... "
                         "(map names to numbers first, e.g. np.unique(y, return_inverse=True)[1])")
    if np.issubdtype(a.dtype, np.floating) and not (np.isfinite(a).all() and (a == np.round(a)).all()):
        raise ValueError(f"{where} holds non-integer values (e.g. {a[a != np.round(a)][:1]}); labels must be "
                         "whole numbers 0, 1, 2, ...")
    a = a.astype(np.int64)
    if n and (a.min() < 0 or (n_classes is not None and a.max() >= n_classes)):
        allowed = "labels start at 0" if n_classes is None else f"this model's labels are 0..{n_classes - 1}"
        raise ValueError(f"{where} holds labels in {int(a.min())}..{int(a.max())}, but {allowed}; renumber them "
                         "0, 1, 2, ... (np.unique(y, return_inverse=True)[1] does)")
    return a


def batch_bounds(n: int, batch_size: int) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` covering rows 0..n-1 in mini-batches of ``batch_size``, except that a
    last batch of one row is merged into the one before it (which then holds batch_size + 1 rows):
    a BatchNorm layer cannot train on one row, and dropping it would skip a row every epoch."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    starts = list(range(0, n, batch_size))
    if batch_size > 1 and len(starts) > 1 and n - starts[-1] == 1:       # batch_size 1: every batch is one row
        starts.pop()
    return [(s, e) for s, e in zip(starts, starts[1:] + [n])]

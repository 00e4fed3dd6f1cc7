"""Finite-difference gradient checks: the proof behind every backward pass.

A hand-written gradient is trusted only when it agrees with central
differences,

    df/dx_i  ~=  (f(x + h e_i) - f(x - h e_i)) / (2h),

whose error is O(h^2) from truncation plus O(eps * |f| / h) from rounding.
In float64 (eps ~ 1e-16) with h = 1e-5 both are far below the 1e-7 relative
error we demand; in float32 (eps ~ 1e-7) the rounding term alone is ~1e-2,
so checks here always run in float64.

The agreement is measured per element as

    rel = |a - b| / max(1e-8, |a| + |b|)

(the floor keeps elements where both gradients are ~0 from dividing by
zero), and a report names the worst element of every tensor.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from typing import Callable, Iterator, Mapping

import numpy as np

from aae_np.nn.base import Layer

__all__ = [
    "numerical_gradient",
    "numerical_gradient_array",
    "rel_error",
    "TensorCheck",
    "GradReport",
    "check_layer",
    "check_loss",
    "check_params",
]

DEFAULT_TOL = 1e-7


def _central_differences(name: str, x: np.ndarray, h: float,
                          difference: Callable[[Callable[[float], None]], float]) -> np.ndarray:
    """The loop both estimators share: nudge one element of ``x`` by +h and -h, restore it.

    ``difference(evaluate)`` is called once per element; ``evaluate(sign)`` sets the element
    to ``old + sign * h`` and returns what the caller's function gives there. Every element
    is restored exactly, even if the function raises.
    """
    if not isinstance(x, np.ndarray) or x.dtype != np.float64:
        raise ValueError(
            f"{name}: x must be a float64 array (float32 rounding swamps the difference), "
            f"got {getattr(x, 'dtype', type(x).__name__)}")
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        old = x[idx]

        def at(sign: float) -> None:
            x[idx] = old + sign * h

        try:
            grad[idx] = difference(at) / (2 * h)
        finally:
            x[idx] = old
    return grad


def numerical_gradient(f: Callable[[np.ndarray], float], x: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """Central-difference gradient of the scalar ``f`` at ``x`` (any shape).

    ``x`` is perturbed **in place** one element at a time (so ``f`` may read
    it through a reference, e.g. a layer's weight) and every element is
    restored exactly before returning, even if ``f`` raises.
    """
    def difference(at: Callable[[float], None]) -> float:
        at(+1)
        f_plus = float(f(x))
        at(-1)
        return f_plus - float(f(x))                      # f(x + h) - f(x - h)

    return _central_differences("numerical_gradient", x, h, difference)


def numerical_gradient_array(f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, dout: np.ndarray,
                             h: float = 1e-5) -> np.ndarray:
    """Central-difference gradient of ``L = sum(f(x) * dout)`` for an array-valued ``f``.

    Same estimate as ``numerical_gradient`` on that scalar, but the outputs are
    differenced *before* they are summed: ``sum((f(x+h) - f(x-h)) * dout) / 2h``.
    Output elements that ``x_i`` does not touch are bitwise equal in both
    evaluations and cancel exactly, so the rounding error comes only from the
    elements that do change. This is what lets a layer check reach 1e-10
    where the scalar form stalls near eps * |L| / h.
    """
    def difference(at: Callable[[float], None]) -> float:
        at(+1)
        out_plus = np.array(f(x), dtype=np.float64)      # copy: f may return a view of x
        at(-1)
        out_minus = np.array(f(x), dtype=np.float64)
        return math.fsum(((out_plus - out_minus) * dout).ravel())

    return _central_differences("numerical_gradient_array", x, h, difference)


def _rel_elementwise(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"rel_error: shapes differ, {a.shape} vs {b.shape}")
    return np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))


def rel_error(a: np.ndarray, b: np.ndarray) -> float:
    """``max_i |a_i - b_i| / max(1e-8, |a_i| + |b_i|)``; 0.0 for empty arrays."""
    r = _rel_elementwise(a, b)
    return float(r.max()) if r.size else 0.0


@dataclass(frozen=True)
class TensorCheck:
    """Result for one tensor: the worst element and both gradients there."""

    name: str
    shape: tuple[int, ...]
    max_rel_error: float
    worst_index: tuple[int, ...]
    analytic: float
    numeric: float
    max_abs_error: float = 0.0      # max_i |a_i - b_i|: tells a real error from noise on a ~0 entry

    @classmethod
    def compare(cls, name: str, analytic: np.ndarray, numeric: np.ndarray, atol: float = 0.0) -> "TensorCheck":
        """``atol`` > 0: elements whose absolute difference is at most ``atol`` count as agreeing
        (relative error 0). For entries near 0 the finite difference's rounding noise,
        about eps |f| / h, dominates the relative error; ``atol`` set just above that noise
        keeps such entries from failing a correct gradient (see ``check_params``)."""
        analytic = np.asarray(analytic, np.float64)
        r = _rel_elementwise(analytic, numeric)
        if atol > 0:
            r = np.where(np.abs(analytic - np.asarray(numeric, np.float64)) <= atol, 0.0, r)
        if r.size == 0:
            return cls(name, analytic.shape, 0.0, (), 0.0, 0.0)
        worst = np.unravel_index(int(np.argmax(r)), r.shape)
        worst = tuple(int(i) for i in worst)
        return cls(name, analytic.shape, float(r[worst]), worst,
                   float(analytic[worst]), float(numeric[worst]),
                   float(np.max(np.abs(analytic - numeric))))

    def passed(self, tol: float = DEFAULT_TOL) -> bool:
        return self.max_rel_error < tol


class GradReport(Mapping[str, TensorCheck]):
    """Per-tensor checks, readable as a dict (``report["W"].max_rel_error``) or printed."""

    def __init__(self, title: str, checks: Mapping[str, TensorCheck], tol: float = DEFAULT_TOL) -> None:
        self.title = title
        self.checks = dict(checks)
        self.tol = tol

    def __getitem__(self, key: str) -> TensorCheck:
        return self.checks[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.checks)

    def __len__(self) -> int:
        return len(self.checks)

    @property
    def max_rel_error(self) -> float:
        return max((c.max_rel_error for c in self.checks.values()), default=0.0)

    @property
    def worst(self) -> TensorCheck | None:
        return max(self.checks.values(), key=lambda c: c.max_rel_error, default=None)

    def passed(self, tol: float | None = None) -> bool:
        return self.max_rel_error < (self.tol if tol is None else tol)

    def failures(self, tol: float | None = None) -> list[TensorCheck]:
        tol = self.tol if tol is None else tol
        return [c for c in self.checks.values() if not c.passed(tol)]

    def __str__(self) -> str:
        head = f"gradient check: {self.title}  (float64 central differences, pass if rel error < {self.tol:.0e})"
        rows = [head,
                f"  {'tensor':<22}{'shape':<14}{'max rel err':>12}  {'worst at':<12}"
                f"{'analytic':>13}{'numeric':>13}  verdict"]
        for c in self.checks.values():
            verdict = "ok" if c.passed(self.tol) else "WRONG"
            rows.append(f"  {c.name:<22}{str(c.shape):<14}{c.max_rel_error:>12.2e}  {str(c.worst_index):<12}"
                        f"{c.analytic:>13.5e}{c.numeric:>13.5e}  {verdict}")
        rows.append("  => " + ("PASS" if self.passed() else
                               "FAIL: " + ", ".join(c.name for c in self.failures())))
        return "\n".join(rows)

    def __repr__(self) -> str:
        return f"<GradReport {self.title!r}: max rel error {self.max_rel_error:.2e}>"


def check_params(f: Callable[[], float], params: Mapping[str, np.ndarray],
                 analytic: Mapping[str, np.ndarray], h: float = 1e-5,
                 title: str = "parameters", tol: float = DEFAULT_TOL, atol: float = 0.0) -> GradReport:
    """Check ``analytic[name]`` against the numeric gradient of ``f()`` w.r.t. ``params[name]``.

    ``atol``: see ``TensorCheck.compare``; with f of order 1 and h = 1e-5 the rounding noise
    is about 1e-11, so ``atol=1e-10`` forgives only that noise on near-zero entries.

    ``f`` takes no argument: it reads the parameters through references, and
    each ``params[name]`` is perturbed in place (and restored). This is the
    general form used for layers, losses and whole-model training phases.
    """
    checks = {}
    for name, p in params.items():
        if name not in analytic:
            raise ValueError(f"check_params: no analytic gradient for {name!r}")
        numeric = numerical_gradient(lambda _x: f(), p, h)
        checks[name] = TensorCheck.compare(name, analytic[name], numeric, atol)
    return GradReport(title + (f", |difference| <= {atol:.0e} agrees" if atol > 0 else ""), checks, tol)


def check_layer(layer: Layer, x: np.ndarray, dout: np.ndarray | None = None, h: float = 1e-5,
                rng: np.random.Generator | int | None = 0, tol: float = DEFAULT_TOL,
                atol: float = 0.0) -> GradReport:
    """Check a layer's ``backward`` against finite differences of its ``forward``.

    Uses only the layer contract: ``forward``, ``backward``, ``params``,
    ``grads``, ``zero_grad`` (and ``astype`` to work on a float64 copy, so
    the caller's layer is never touched). The scalar is
    ``L = sum(forward(x) * dout)``, whose gradient w.r.t. the output is
    exactly ``dout`` (random normal if not given).

    Choosing ``h``: the estimate's error is about h^2 |f'''| / 6 (truncation)
    plus eps |y| / h (rounding). Where the layer is linear in what is
    perturbed (Dense in x, W and b) truncation is zero and a large ``h`` such
    as 1e-3 is best; for curved activations the default 1e-5 balances both.

    Returns a report with ``"x"`` and one entry per parameter (``"W"``, ``"b"``;
    ``"0.W"``... for a Sequential). ``atol``: as for ``check_params`` (entries that are 0 up to
    rounding, e.g. a dW column whose products cancel exactly).
    """
    layer = layer.astype(np.float64)
    x = np.array(x, dtype=np.float64)
    out = layer.forward(x)
    if dout is None:
        dout = np.random.default_rng(rng).standard_normal(out.shape)
    dout = np.array(dout, dtype=np.float64)
    if dout.shape != out.shape:
        raise ValueError(f"check_layer: dout has shape {dout.shape}, the layer's output is {out.shape}")
    layer.zero_grad()
    analytic = {"x": layer.backward(dout)}
    analytic.update({k: v.copy() for k, v in layer.grads.items()})

    checks = {}
    for name, p in {"x": x, **layer.params}.items():
        numeric = numerical_gradient_array(lambda _p: layer.forward(x), p, dout, h)
        checks[name] = TensorCheck.compare(name, analytic[name], numeric, atol)
    return GradReport(repr(layer) + (f", |difference| <= {atol:.0e} agrees" if atol > 0 else ""), checks, tol)


def check_loss(loss_fn: Callable[..., tuple[float, np.ndarray]], *args: np.ndarray, h: float = 1e-5,
               tol: float = DEFAULT_TOL) -> GradReport:
    """Check a loss's returned gradient against finite differences of its value.

    ``loss_fn(*args)`` returns ``(value, dL/d args[0])``. Floating arguments
    are converted to float64 copies; integer ones (labels) are passed as is.
    The report's key is the name of the loss's first parameter (``"pred"``...).
    """
    args = [np.array(a, dtype=np.float64) if np.issubdtype(np.asarray(a).dtype, np.floating) else a
            for a in args]
    _, grad = loss_fn(*args)
    try:
        name = next(iter(inspect.signature(loss_fn).parameters))
    except (StopIteration, ValueError, TypeError):
        name = "arg0"
    return check_params(lambda: loss_fn(*args)[0], {name: args[0]}, {name: grad}, h,
                        title=getattr(loss_fn, "__name__", "loss"), tol=tol)

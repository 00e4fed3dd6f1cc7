"""How an exercise is graded: run the student's function on its trials, compare every output
with the expected one, and name the first mistake found (``diagnose``).

The exercises themselves, and ``check``, are in ``exercises.py``.
"""

from __future__ import annotations

import itertools
import math
import traceback
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from aae_np.nn.gradcheck import TensorCheck, rel_error

__all__ = ["TOL", "CheckResult", "Trial", "Exercise", "diagnose", "grade"]

TOL = 1e-6


@dataclass
class CheckResult:
    """What ``check`` found. ``status``: "pass", "fail", "not implemented" or "error" (it raised).

    ``diagnosis`` is a short key of the first problem found ("transposed", "sign", "factor",
    "shape", "not finite", "crashed", or an exercise's own mistake such as "missing_relu_mask").
    """

    exercise: str
    status: str
    message: str
    diagnosis: str | None = None
    max_rel_error: float = math.nan

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    def __repr__(self) -> str:
        return f"CheckResult({self.exercise!r}, {self.status!r}, diagnosis={self.diagnosis!r})"


@dataclass
class Trial:
    """One call of the student's function: inputs, the true outputs, and named wrong answers."""

    args: dict[str, np.ndarray]
    want: tuple[Any, ...]
    against: str                                   # what ``want`` is, for the verdict
    mistakes: dict[str, tuple[tuple[Any, ...], str]] = field(default_factory=dict)
    note: str = ""                                 # shown when this trial fails


@dataclass(frozen=True)
class Exercise:
    name: str
    signature: str
    outputs: dict[str, str]                        # output name -> its shape in symbols
    trials: Callable[[], list[Trial]]
    symbols: dict[str, int]                        # sizes a constant factor may be made of
    factor_notes: dict[str, str] = field(default_factory=dict)
    # an exercise whose answer is a procedure, not a function of arrays (the training loop): its own
    # checker, fn -> CheckResult, replaces the trials
    checker: Callable[[Callable[..., Any]], "CheckResult"] | None = None


# ----------------------------------------------------------------------------- diagnosis
def _close(a: Any, b: Any) -> bool:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return a.shape == b.shape and bool(np.isfinite(a).all()) and rel_error(a, b) < TOL


def _name_factor(c: float, symbols: dict[str, int]) -> str | None:
    """``|c|`` as 2^a * prod(symbol^e), exponents in {-1, 0, 1}, fewest terms first: "N*D/2"."""
    names = ["2", *symbols]
    values = [2, *symbols.values()]
    found = []
    for exps in itertools.product((-1, 0, 1), repeat=len(names)):
        if math.isclose(abs(c), math.prod(v ** e for v, e in zip(values, exps)), rel_tol=1e-6):
            found.append((sum(e != 0 for e in exps), exps))
    if not found:
        return None
    exps = min(found)[1]
    top = "*".join(n for n, e in zip(names, exps) if e > 0) or "1"
    bottom = "*".join(n for n, e in zip(names, exps) if e < 0)
    return top + (f"/{bottom}" if bottom else "")


def diagnose(got: Any, want: Any, symbols: dict[str, int] | None = None,
             mistakes: dict[str, tuple[Any, str]] | None = None,
             factor_notes: dict[str, str] | None = None) -> tuple[str | None, str]:
    """Compare one array with the truth; ``(None, "ok")`` or ``(key, explanation)``.

    Checks in order: shape (transposed? same numbers reshaped?), NaN/inf, agreement within
    ``TOL``, the named ``mistakes`` (key -> (array, explanation)), then a constant factor
    (sign, N, 1/N, 2...) built from ``symbols``, explained by ``factor_notes["N"]``... if given.
    """
    symbols, mistakes, factor_notes = symbols or {}, mistakes or {}, factor_notes or {}
    try:
        got = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        return "type", f"is a {type(got).__name__}, not an array of numbers"
    want = np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        if want.ndim == 2 and got.shape == want.T.shape:
            key, why = diagnose(got.T, want, symbols, mistakes, factor_notes)
            head = f"transposed: shape {got.shape} instead of {want.shape}"
            return "transposed", (f"{head}, and its transpose is exactly right. Check the order of the "
                                  "product (e.g. x.T @ dout, not dout.T @ x)." if key is None
                                  else f"{head}; transposed back, it is still wrong: {why}")
        if got.ndim == 0:                                   # a plain number where an array belongs
            return "shape", (f"a single number where an array of shape {want.shape} belongs: sum over the "
                             "batch only, .sum(axis=0), which keeps the other axes" +
                             (" (for one output unit that is an array of shape (1,))." if want.size == 1
                              else "; a sum without axis adds up every element."))
        if got.size == want.size and _close(got.reshape(want.shape), want):
            return "shape", (f"right numbers, wrong shape: expected {want.shape}, got {got.shape} "
                             "(keepdims=True? a (N, 1) column where a flat vector belongs?)")
        axis = " (summed over the wrong axis? axis=0 runs over the batch)" if got.ndim == want.ndim == 1 else ""
        return "shape", f"expected shape {want.shape}, got {got.shape}{axis}"
    if not np.isfinite(got).all():
        where = f" (first at {np.argwhere(~np.isfinite(got))[0].tolist()})" if got.ndim else ""
        return "not finite", f"contains NaN or inf{where}: something overflowed or divided by zero."
    if rel_error(got, want) < TOL:
        return None, "ok"
    for key, (wrong, why) in mistakes.items():
        if _close(got, wrong):
            return key, why
    c = float(np.sum(got * want) / np.sum(want * want)) if np.any(want) else math.nan
    factor = _name_factor(c, symbols) if math.isfinite(c) and abs(c) > 1e-12 else None
    if want.size == 1 and factor is None:                   # any two numbers differ by "a factor"
        return "wrong values", (f"a single number, {float(got.ravel()[0]):.6g} instead of "
                                f"{float(want.ravel()[0]):.6g}; one number shows no pattern, so check the "
                                "formula term by term.")
    if math.isfinite(c) and abs(c) > 1e-12 and _close(got, c * want):
        if factor == "1":
            return "sign", ("sign-flipped: -1 times the right values in every element "
                            "(a step along it goes uphill).")
        size = (f"the values are {abs(c):.6g} = {factor} times the right ones" if factor
                else f"the values are {abs(c):.6g} times the right ones (no simple factor)")
        note = f" {factor_notes[factor]}" if factor in factor_notes else ""
        return ("sign+factor" if c < 0 else "factor"), (
            f"a constant factor: {size}" + (", and the sign is flipped" if c < 0 else "") + "." + note)
    return "wrong values", ("no simple pattern (not a transpose, a sign flip or a constant factor): "
                            "the elements are off by different amounts.")


def _student_line(err: BaseException, fn: Callable[..., Any]) -> str:
    code = getattr(fn, "__code__", None)
    frames = [f for f in traceback.extract_tb(err.__traceback__)
              if code is not None and f.filename == code.co_filename]
    return f" at the line `{frames[-1].line}`" if frames and frames[-1].line else ""


# Arguments a function may change while it runs, as long as it leaves them as it found them
# (numerical_gradient nudges x in place; whether it put x back is checked by its values).
_MAY_NUDGE = {"numerical_gradient": ("x",)}


def _written_inputs(ex: Exercise, trial: Trial, args: list[Any]) -> list[str]:
    """Names of the array arguments the student's call wrote into (it had copies of them)."""
    allowed = _MAY_NUDGE.get(ex.name, ())
    return [name for (name, given), seen in zip(trial.args.items(), args)
            if isinstance(given, np.ndarray) and name not in allowed
            and not np.array_equal(given, seen, equal_nan=True)]


def _in_place_verdict(ex: Exercise, names: list[str]) -> CheckResult:
    which = ", ".join(f"`{n}`" for n in names)
    return CheckResult(ex.name, "fail", (
        f"{ex.name}: FAIL, the values are right but your function wrote into its argument{'s' * (len(names) > 1)} "
        f"{which} in place, so the caller's array{'s' * (len(names) > 1)} changed. {ex.name} must be pure: "
        "read its inputs, return new arrays. `m *= beta1`, `m += ...`, `dout[x <= 0] = 0` or `param -= ...` "
        "write into the array the caller passed (and will use again); `m = beta1 * m + ...` makes a new one."),
        "modified_input")


def _call(ex: Exercise, fn: Callable[..., Any], trial: Trial,
          args: list[Any] | None = None) -> tuple[Any, CheckResult | None]:
    """The student's outputs as a tuple, or the verdict if it raised or returned the wrong thing.

    ``args``, if given, are the copies the call receives (so the caller can see what it wrote)."""
    if args is None:
        args = [a.copy() if isinstance(a, np.ndarray) else a for a in trial.args.values()]
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = fn(*args)
    except NotImplementedError:
        return None, CheckResult(ex.name, "not implemented", f"{ex.name}: not implemented yet (the stub "
                                 "still raises NotImplementedError): write the function, run its cell, "
                                 "then check again.", "not implemented")
    except Exception as err:                        # the student's bug: reported, never re-raised
        hint = (" A shape error inside your function usually means a product in the wrong order or a "
                "missing .T: write each array's shape next to it." if isinstance(err, ValueError) and
                any(w in str(err) for w in ("shape", "dimension", "broadcast")) else "")
        if isinstance(err, NameError):
            hint = (" A name your function uses is not defined where it runs. In the notebook: run the cell "
                    "that defines it (or import it) before this check. The capstone and the grader read the "
                    "SAVED notebook 02: its first cell, the top-level imports, defs, classes and constants of "
                    "every cell, and the exercise cells; a name set any other way (inside a loop, by a "
                    "computation) does not reach them.")
        return None, CheckResult(ex.name, "error", f"{ex.name}: ERROR, your function raised "
                                 f"{type(err).__name__}: {err}{_student_line(err, fn)}.{hint}", "crashed")
    single = len(ex.outputs) == 1
    if out is None:
        what = "None (a missing `return`?)"
    elif not single and not (isinstance(out, (tuple, list)) and len(out) == len(ex.outputs)):
        what = f"{len(out)} values" if isinstance(out, (tuple, list)) else f"a {type(out).__name__}"
    else:
        return ((out,) if single else tuple(out)), None
    return None, CheckResult(ex.name, "fail", f"{ex.name}: FAIL, expected it to return "
                             f"{ex.signature.split('-> ')[1]}, got {what}.", "returned")


def grade(ex: Exercise, fn: Callable[..., Any]) -> CheckResult:
    if ex.checker is not None:
        return ex.checker(fn)
    worst = 0.0
    for trial in ex.trials():
        args = [a.copy() if isinstance(a, np.ndarray) else a for a in trial.args.values()]
        out, verdict = _call(ex, fn, trial, args)
        if verdict is not None:
            return verdict
        lines, first = [], None
        for i, key in enumerate(ex.outputs):
            mistakes = {k: (m[i], why) for k, (m, why) in trial.mistakes.items()}
            diag, why = diagnose(out[i], trial.want[i], ex.symbols, mistakes, ex.factor_notes)
            got, want = np.asarray(out[i]), np.asarray(trial.want[i], np.float64)
            if diag in ("type", "shape", "transposed", "not finite"):
                worst, stats = math.inf, (f"{np.size(got) - np.isfinite(got).sum()} of {np.size(got)} values "
                                          "are NaN or inf" if diag == "not finite"
                                          else f"shape {got.shape}, expected {want.shape}")
            else:
                tc = TensorCheck.compare(key, got, want)
                worst = max(worst, tc.max_rel_error)
                stats = f"max rel error {tc.max_rel_error:.1e}" + ("" if diag is None else (
                    f", worst at {list(tc.worst_index)}: yours {tc.analytic:.6g}, expected {tc.numeric:.6g}"))
            lines.append(f"  {key:<8} {ex.outputs[key]:<14} {stats}  {'ok' if diag is None else 'WRONG'}")
            if diag is not None:
                lines.append(f"    -> {why}")
                named = first in trial.mistakes
                first = diag if first is None or (diag in trial.mistakes and not named) else first
        if first is not None:
            msg = "\n".join([f"{ex.name}: FAIL (compared with {trial.against})", *lines]
                            + ([f"  Note: {trial.note}"] if trial.note else []))
            return CheckResult(ex.name, "fail", msg, first, worst)
        written = _written_inputs(ex, trial, args)
        if written:
            return _in_place_verdict(ex, written)
    return CheckResult(ex.name, "pass", f"{ex.name}: PASS (max rel error {worst:.1e} < {TOL:.0e})", None, worst)



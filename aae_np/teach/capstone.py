"""The capstone (``notebooks/04_capstone_train_your_own.ipynb``): the student's own functions from
notebook 02, checked and handed over, and the mini-batches to train them on.

    from aae_np.teach import capstone
    mine = capstone.my_functions("02_gradient_check_exercises.ipynb")
    mine.dense_backward(x, W, dout)                 # the student's, and it passed its check
    for x_batch, z_prior in capstone.batches(x_train, 100, rng, latent_dim=5): ...

**How the student's functions get here.** The student writes each function in notebook 02, in
the cell tagged ``exercise-stub`` (the tag travels with the cell when it is edited, and it is
how the tests put the reference solutions in). ``my_functions`` reads the *saved* notebook,
runs its first code cell (the imports), the definitions of every other cell (top-level imports,
functions, classes and constants: a helper written in a cell of its own), and then every exercise
cell, in order, in one fresh namespace, and grades each function the capstone needs with its checker
(``aae_np.teach.exercises``). Nothing is copied by hand and nothing is re-typed: what passed in
notebook 02 is what trains here.

If a function is missing or does not pass, ``my_functions`` raises ``CapstoneNotReady``, whose
message lists each one with its verdict and says what to do; in Jupyter it shows as that message
alone, without a traceback. The reference solution stands in only when the caller opts in
(``fall_back_to_reference=True``), and each stand-in is announced.

``batches`` draws exactly what ``aae_np.train.trainer.Trainer`` draws for the phased schedule
(one permutation per epoch, one prior sample per batch, from one generator), so a student's
run and the package's run with the same seed see the same batches and the same prior samples.
"""

from __future__ import annotations

import ast
import json
import linecache
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Iterator

import numpy as np

from aae_np.models.priors import Gaussian
from aae_np.teach import solutions
from aae_np.teach.exercises import EXERCISES
from aae_np.teach.grading import CheckResult, grade

__all__ = ["NEEDED", "CapstoneNotReady", "my_functions", "exercise_cells", "helper_cells", "batches"]

# What the capstone calls, in the order notebook 02 asks for them: the gradient checker (used on
# the assembled model before training), the backward pieces, the losses, the two adversarial
# gradients (cross-checked against the assembled phases) and the update rule.
NEEDED = ("numerical_gradient", "rel_error", "dense_backward", "sigmoid_backward", "relu_backward", "mse_grad",
          "bce_with_logits", "discriminator_grad", "generator_grad", "adam_update")
STUB_TAG = "exercise-stub"
_LABEL = {"pass": "PASS", "fail": "FAIL", "error": "ERROR", "not implemented": "not implemented yet",
          "missing": "MISSING"}


class CapstoneNotReady(RuntimeError):
    """The capstone cannot train the student's AAE yet; the message says why and what to do.

    IPython shows an exception through its ``_render_traceback_`` when it has one: the notebook
    then stops at the cell with this message alone, not a stack of frames inside the package.
    """

    def _render_traceback_(self) -> list[str]:
        return str(self).splitlines()


def _source(cell: dict[str, Any]) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


# In a cell that is not an exercise cell, what the capstone runs: the lines that only define names
# (imports, functions, classes, constants), never a statement that computes, checks or trains.
_DEFINES = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _definitions(source: str, protected: set[str]) -> str:
    """The top-level imports, defs, classes and constant assignments of a cell's source ("" if it
    does not parse). A def of an exercise's name (in ``protected``) is left out: an exercise's
    function comes from its own cell."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return ""
    keep = []
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            if not any((a.asname or a.name).split(".")[0] in protected for a in node.names):
                keep.append(node)
        elif isinstance(node, _DEFINES) and node.name not in protected:
            keep.append(node)
        elif isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) for t in node.targets):
            try:
                ast.literal_eval(node.value)
            except (ValueError, TypeError, SyntaxError, RecursionError):
                continue
            keep.append(node)
    return ast.unparse(ast.Module(body=keep, type_ignores=[])) if keep else ""


def helper_cells(notebook: str | Path) -> list[str]:
    """What ``my_functions`` runs of every code cell of notebook 02 that is neither the first nor an
    exercise cell: its definitions only (``_definitions``), in notebook order."""
    cells = json.loads(Path(notebook).read_text(encoding="utf-8"))["cells"]
    code = [c for c in cells if isinstance(c, dict) and c.get("cell_type") == "code"][1:]
    protected = set(EXERCISES)
    out = [_definitions(_source(c), protected) for c in code if STUB_TAG not in c.get("metadata", {}).get("tags", [])]
    return [d for d in out if d]


def exercise_cells(notebook: str | Path) -> tuple[str, dict[str, str]]:
    """(the first code cell's source, {exercise name: its cell's source}) of a saved notebook 02.

    An exercise cell is a code cell tagged ``exercise-stub`` whose metadata names its exercise;
    if a name appears twice the later cell wins, as it would when the notebook runs top to bottom.
    """
    path = Path(notebook)
    if not path.is_file():
        raise CapstoneNotReady(
            f"Notebook 02 is not at {path.resolve()}.\nThe capstone reads your functions from the saved "
            "notebook 02. Open this notebook from the notebooks/ folder (where 02 is), or set "
            "EXERCISES_NOTEBOOK to the path of your copy of 02_gradient_check_exercises.ipynb.")
    try:
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise CapstoneNotReady(f"{path} could not be read as a notebook ({type(err).__name__}: {err}).\n"
                               "Open it in Jupyter, save it again (Ctrl+S), then rerun this cell.") from None
    code = [c for c in cells if isinstance(c, dict) and c.get("cell_type") == "code"]
    setup = _source(code[0]) if code else ""
    found = {}
    for cell in code:
        meta = cell.get("metadata", {})
        if STUB_TAG in meta.get("tags", []) and meta.get("exercise"):
            found[meta["exercise"]] = _source(cell)
    return setup, found


def _run_cell(source: str, label: str, namespace: dict[str, Any]) -> str | None:
    """Execute one cell's source in ``namespace``; the error as a sentence, or None.

    The source is registered with ``linecache`` under ``label``, so a checker that reports the
    line where the student's function raised can show it (as IPython does for its own cells)."""
    linecache.cache[label] = (len(source), None, source.splitlines(True), label)
    try:
        exec(compile(source, label, "exec"), namespace)           # noqa: S102 - the student's own cell
    except Exception as err:                                       # reported, never re-raised
        return f"the cell raised {type(err).__name__}: {err}"
    return None


def _collect(notebook: str | Path, names: tuple[str, ...]) -> dict[str, tuple[Callable | None, CheckResult]]:
    """Each name -> (the function notebook 02 defines, or None; its verdict)."""
    setup, cells = exercise_cells(notebook)
    namespace: dict[str, Any] = {"__name__": "notebook_02"}
    setup_error = _run_cell(setup, "<notebook 02: the imports cell>", namespace) if setup else None
    for i, helpers in enumerate(helper_cells(notebook)):      # helpers a student wrote in cells of their own
        _run_cell(helpers, f"<notebook 02: definitions of cell {i}>", namespace)
    cell_errors = {name: _run_cell(src, f"<notebook 02: exercise {name}>", namespace)
                   for name, src in cells.items()}
    out = {}
    for name in names:
        fn = namespace.get(name) if name in cells else None
        if name not in cells:
            why = (f"{name}: MISSING, no cell tagged '{STUB_TAG}' for it in notebook 02 (deleted, or "
                   "its code moved to a new cell, which has no tag). Put your function back into its "
                   "exercise cell, or give its new cell the metadata "
                   f'{{"exercise": "{name}", "tags": ["{STUB_TAG}"]}} (JupyterLab: the gear icon in the right '
                   "sidebar, Cell metadata).")
            out[name] = None, CheckResult(name, "missing", why, "missing")
        elif cell_errors[name] or not callable(fn):
            status = "error" if cell_errors[name] else "missing"
            why = cell_errors[name] or f"its cell does not define a function named {name}"
            extra = f" (the imports cell: {setup_error})" if setup_error else ""
            out[name] = None, CheckResult(name, status, f"{name}: {_LABEL[status]}, {why}{extra}.", status)
        else:
            out[name] = fn, grade(EXERCISES[name], fn)
    return out


def _age(path: Path) -> str:
    seconds = max(0.0, time.time() - path.stat().st_mtime)
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    return f"{seconds / 60:.0f} min ago" if seconds < 7200 else f"{seconds / 3600:.0f} h ago"


def my_functions(notebook: str | Path = "02_gradient_check_exercises.ipynb", names: tuple[str, ...] = NEEDED,
                 fall_back_to_reference: bool = False) -> SimpleNamespace:
    """The student's ``names`` from the saved ``notebook`` (02), each graded by its checker.

    Returns a namespace with one attribute per name and ``origin``, a dict name -> "yours" or
    "reference". Prints one line per function. Raises ``CapstoneNotReady`` if any is missing,
    failing or not written, unless ``fall_back_to_reference``: then the reference solution
    (``aae_np.teach.solutions``) stands in for each of those, and a line says so.
    """
    unknown = [n for n in names if n not in EXERCISES]
    if unknown:
        raise ValueError(f"not exercises of notebook 02: {unknown}; choose from {list(EXERCISES)}")
    path = Path(notebook)
    found = _collect(path, tuple(names))
    bad = {name: result for name, (_, result) in found.items() if not result.passed}
    if bad and not fall_back_to_reference:
        raise CapstoneNotReady(_not_ready_message(path, names, bad))
    print(f"Your functions, read from {path.name} (saved {_age(path)}) and checked again:")
    for name, (_, result) in found.items():
        print(f"  {name:<20} {_LABEL[result.status]}")
    chosen, origin = {}, {}
    for name, (fn, result) in found.items():
        if result.passed:
            chosen[name], origin[name] = fn, "yours"
        else:
            chosen[name], origin[name] = getattr(solutions, name), "reference"
            print(f"  -> the REFERENCE {name} stands in for yours ({_LABEL[result.status]}), as you asked")
    mine = sum(o == "yours" for o in origin.values())
    print(f"{mine} of {len(names)} functions are yours" + ("." if mine < len(names) else ": everything "
          "below that computes a gradient or an update is your code."))
    return SimpleNamespace(**chosen, origin=origin)


def _not_ready_message(path: Path, names: tuple[str, ...], bad: dict[str, CheckResult]) -> str:
    lines = [f"The capstone trains an AAE with your own functions from notebook 02 ({path.name}, saved "
             f"{_age(path)}), and {len(bad)} of the {len(names)} it needs {'is' if len(bad) == 1 else 'are'} "
             "not ready:"]
    for name, result in bad.items():
        lines.append(f"  {name:<20} {_LABEL[result.status]}")
        if result.status != "not implemented":
            lines += ["      " + line for line in result.message.splitlines()]
    lines += ["",
              f"What to do: finish {'it' if len(bad) == 1 else 'them'} in {path.name} until each check "
              "cell prints PASS, save that notebook (Ctrl+S: the capstone reads the saved file), and run "
              "this notebook again from the top.",
              "To train now anyway, set FALL_BACK_TO_REFERENCE = True in this cell: the reference "
              "solution (aae_np/teach/solutions.py) then stands in for each function listed here, and the "
              "AAE below is no longer all yours."]
    return "\n".join(lines)


def batches(x: np.ndarray, batch_size: int, rng: np.random.Generator,
            latent_dim: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """One epoch of mini-batches: ``(x_batch (B, D), z_prior (B, latent_dim))``, B = batch_size
    (the last batch may be smaller).

    Rows come in the order of one ``rng.permutation``; each batch's prior sample is drawn from
    N(0, I) right after it, in ``x``'s dtype. These are the draws ``Trainer.train_epoch`` makes
    for the phased schedule of a plain ``AAE`` (the discriminator phase's ``z_prior``; no posterior
    noise, no input dropout, one adversarial step), in the same order, so the same seed gives both
    the same batches and the same prior samples.
    """
    if x.ndim != 2 or batch_size < 1:
        raise ValueError(f"batches: x must be (N, D) and batch_size >= 1, got {x.shape}, {batch_size}")
    prior = Gaussian(latent_dim)
    order = rng.permutation(len(x))
    for start in range(0, len(x), batch_size):
        x_batch = x[order[start:start + batch_size]]
        yield x_batch, prior.sample(len(x_batch), rng, x.dtype)

"""The grader's verdicts, made in the grader's process from what a submission's kernel recorded.

``aae_np.teach.grade_kernel`` writes, for each graded function, the outputs of every call and a
fingerprint of its inputs; here each output is fed back to the course's own checker
(``grading.grade``) through ``Replay``, a stand-in function that answers a call with the
recorded output *only if* the recorded inputs are the checker's own (same fingerprint). So the
verdict is the one ``exercises.check`` would give the student's function, but made by code the
submission never ran in: printing "PASS", patching the checker or the trials inside the
notebook changes nothing here.

A function passes when it passes its checker **and** agrees with the reference solution on the
checker's inputs scaled by random factors the notebook never saw (``grade_kernel.perturb``): a
function that returns the checker's expected arrays without computing them fails that second
test. A function is **flagged** (and scores 0) when its cell imports or names the reference
solutions or the checkers, when it *is* a function of the package, or when it called a function
of ``aae_np`` other than the forward helpers the notebook offers (``ALLOWED``).

Exercise 12, the training loop, has a checker of its own in two halves (``loop.record`` and
``loop.judge``): the kernel recorded each phase call of the student's loop, on the notebook's
seeds and on seeds it never saw, and ``loop.judge`` trains the reference here and compares. Its
loop may call the model's phase functions and ``Optimizer`` (``LOOP_ALLOWED``); a loop that
calls the reference ``solutions.train_phased`` is flagged like any other.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import io
import json
import math
from collections import defaultdict, deque
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from aae_np.teach.grade_kernel import fingerprint, perturb
from aae_np.teach.grading import CheckResult, Trial, grade

__all__ = ["ALLOWED", "Verdict", "exercise_verdict", "question_verdict", "diagnosis_verdict", "capstone_verdict",
           "source_flags"]

# the package's functions a graded function may call: the forward helpers notebook 02 imports
ALLOWED = {"nn/activations.py:sigmoid", "nn/activations.py:softmax", "nn/batchnorm.py:batchnorm_forward"}
# names a graded cell has no business mentioning: the answers and the checkers
FORBIDDEN = {"solutions", "mine_or_reference", "EXERCISES", "my_functions", "fall_back_to_reference",
             "grade_kernel"}
# what Exercise 12's loop may call or import besides ALLOWED: the model's methods, the optimizers
LOOP_ALLOWED = {"nn/optim.py:", *(f"teach/loop.py:{m}" for m in ("params_of", "zero_grad", "reconstruction",
                                                                  "discriminator", "generator"))}
LOOP_IMPORTS = {"nn/optim.py:Optimizer", "nn/optim.py:Adam"}
MAX_BYTES = 64 * 2**20                              # a harvest file larger than this is not read


@dataclass
class Verdict:
    """One column of one student: 1 or 0, the message for the feedback file, and a flag if any."""

    score: int
    message: str
    flag: str = ""


def source_flags(source: str, allowed: set[str] = ALLOWED) -> list[str]:
    """What in a graded cell's source imports or names the reference solutions or the checkers
    (``allowed``: the package's functions it may import, as "file:name")."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            mod = (node.module or "") if isinstance(node, ast.ImportFrom) else ""
            names = [mod + "." + a.name if mod else a.name for a in node.names]
            for full in names:
                if full.startswith("aae_np.teach") or (full.startswith("aae_np.nn") and not any(
                        full.endswith("." + ok.split(":")[1]) for ok in allowed)):
                    found.add(f"imports {full}")
        elif isinstance(node, ast.Name) and node.id in FORBIDDEN:
            found.add(f"uses {node.id}")
        elif isinstance(node, ast.Attribute) and node.attr in FORBIDDEN | {"trials"}:
            found.add(f"uses .{node.attr}")
    return sorted(found)


def _load(folder: Path, stem: str) -> tuple[dict[str, Any], dict[str, np.ndarray]] | None:
    meta, npz = folder / f"{stem}.json", folder / f"{stem}.npz"
    if not meta.is_file() or meta.stat().st_size > MAX_BYTES or (npz.is_file() and npz.stat().st_size > MAX_BYTES):
        return None
    try:
        arrays = dict(np.load(npz, allow_pickle=False)) if npz.is_file() else {}
        return json.loads(meta.read_text(encoding="utf-8")), arrays
    except (OSError, ValueError):
        return None


def _exception(name: str, message: str) -> BaseException:
    cls = getattr(builtins, name, None)
    if not (isinstance(cls, type) and issubclass(cls, Exception)):
        cls = type(name, (Exception,), {})
    return cls(message)


class Replay:
    """Stands in for the student's function: answers a call with what the student's function
    returned for the same inputs (and leaves the array arguments as that call left them)."""

    def __init__(self, records: list[dict[str, Any]], arrays: dict[str, np.ndarray], tag: str) -> None:
        self.arrays, self.tag = arrays, tag
        self.queue: dict[str, deque] = defaultdict(deque)
        for i, rec in enumerate(records):
            self.queue[rec["fp"]].append((i, rec))

    def __call__(self, *args: Any) -> Any:
        fp = fingerprint(args)
        if not self.queue[fp]:
            raise _exception("NotRun", "the submission's kernel never completed this call (it stopped first, "
                             "or the notebook changed the checker's inputs)")
        i, rec = self.queue[fp].popleft()
        if "error" in rec:
            raise _exception(rec["error"]["type"], rec["error"]["message"])
        if "ret" not in rec:
            raise _exception("NotRun", "the call never returned")
        for k in rec.get("args_after", []):
            key = f"{self.tag}{i}_arg{k}"
            if key in self.arrays and isinstance(args[k], np.ndarray) and args[k].shape == self.arrays[key].shape:
                np.copyto(args[k], self.arrays[key], casting="unsafe")
        ret = rec["ret"]
        if ret["kind"] == "none":
            return None
        items = [self.arrays[f"{self.tag}{i}_ret{j}"] if t is None else type(t, (), {})()
                 for j, t in enumerate(ret["types"])]
        items = [a.item() if isinstance(a, np.ndarray) and a.ndim == 0 else a for a in items]
        return tuple(items) if ret["kind"] == "tuple" else items[0]


def _hidden_result(ex: Any, name: str, meta: dict[str, Any], arrays: dict[str, np.ndarray], seed: int) -> CheckResult:
    from aae_np.teach import solutions

    ref = getattr(solutions, name)
    trials = []
    for k, trial in enumerate(ex.trials()):
        args = perturb(trial.args, seed + k)
        want = ref(*[a.copy() if isinstance(a, np.ndarray) else a for a in args.values()])
        want = (want,) if len(ex.outputs) == 1 else tuple(want)
        trials.append(Trial(args, want, "the reference solution, on the checker's inputs scaled by random "
                                        "factors in [0.9, 1.1] that the notebook never saw"))
    return grade(replace(ex, trials=lambda: trials), Replay(meta.get("hidden", []), arrays, "h"))


def exercise_verdict(name: str, source: str | None, harvest: Path, seed: int, stopped: str) -> Verdict:
    """The verdict on exercise ``name``: its cell's ``source`` (None: no such cell) and its records."""
    from aae_np.teach import solutions
    from aae_np.teach.exercises import EXERCISES

    if source is None:
        return Verdict(0, f"{name}: MISSING, no exercise cell for it in the notebook.")
    loaded = _load(harvest, f"ex-{name}")
    if loaded is None:
        return Verdict(0, f"{name}: NOT RUN, {stopped or 'the notebook stopped before its cell ran'}.")
    meta, arrays = loaded
    if not meta.get("defined"):
        return Verdict(0, f"{name}: MISSING, its cell does not define a function named {name}.")
    ex = EXERCISES[name]
    if ex.checker is not None:
        return _loop_verdict(name, source, meta, seed)
    with contextlib.redirect_stdout(io.StringIO()):
        result = grade(ex, Replay(meta.get("public", []), arrays, "p"))
        if result.passed and hasattr(solutions, name):
            hidden = _hidden_result(ex, name, meta, arrays, seed)
            if not hidden.passed:
                result = CheckResult(name, "fail", f"{name}: FAIL, it passes the checker's own inputs but not "
                                     "others of the same kind, so it does not compute the gradient:\n"
                                     + hidden.message, hidden.diagnosis)
    flags = source_flags(source)
    if meta.get("fn_in_package"):
        flags.append(f"{name} is not written in the notebook (it is {meta.get('fn_file')})")
    flags += [f"calls the package's {c}" for c in meta.get("package_calls", []) if c not in ALLOWED]
    if flags:
        return Verdict(0, f"{result.message}\n  FLAGGED, scored 0: " + "; ".join(flags), "; ".join(flags))
    return Verdict(int(result.passed), result.message)


def _loop_verdict(name: str, source: str, meta: dict[str, Any], seed: int) -> Verdict:
    """Exercise 12: its records judged here, on the notebook's seeds and then on the unseen ones."""
    from aae_np.teach import loop

    with contextlib.redirect_stdout(io.StringIO()):
        result = loop.judge(meta.get("public"))
        if result.passed:
            hidden = loop.judge(meta.get("hidden"), *loop.unseen(seed))
            if not hidden.passed:
                result = replace(hidden, message=f"{name}: FAIL, it matches the reference on the notebook's model "
                                 "and batches but not on others it never saw:\n" + hidden.message)
    flags = source_flags(source, ALLOWED | LOOP_IMPORTS)
    if meta.get("fn_in_package"):
        flags.append(f"{name} is not written in the notebook (it is {meta.get('fn_file')})")
    flags += [f"calls the package's {c}" for c in meta.get("package_calls", [])
              if c not in ALLOWED and not any(c == ok or ok.endswith(":") and c.startswith(ok) for ok in LOOP_ALLOWED)]
    if flags:
        return Verdict(0, f"{result.message}\n  FLAGGED, scored 0: " + "; ".join(flags), "; ".join(flags))
    return Verdict(int(result.passed), result.message)


def question_verdict(name: str, harvest: Path, stopped: str) -> Verdict:
    from aae_np.teach import questions

    loaded = _load(harvest, f"q-{name}")
    if loaded is None:
        return Verdict(0, f"{name}: NOT RUN, {stopped or 'the notebook stopped before its cell ran'}.")
    meta = loaded[0]
    if "error" in meta:
        return Verdict(0, f"{name}: the answer could not be read ({meta['error']}).")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        right = questions.check(name, meta["value"] if meta.get("value") is not None else meta.get("repr"))
    return Verdict(int(bool(right)), out.getvalue().strip())


def diagnosis_verdict(name: str, answer: tuple[Any, Any] | None) -> Verdict:
    """Exercise 13, run ``name``: ``answer`` = (cause, fix) as the saved cell writes them (None: no cell)."""
    from aae_np.teach import diagnose

    if answer is None:
        return Verdict(0, f"run {name}: MISSING, no diagnosis cell for it in the notebook.")
    right, message = diagnose.verdict(name, *answer)
    return Verdict(int(bool(right)), message)


def _mlp(layers: list[tuple[np.ndarray, np.ndarray]], x: np.ndarray) -> np.ndarray:
    for i, (W, b) in enumerate(layers):
        x = x @ W + b
        if i < len(layers) - 1:
            x = np.maximum(x, 0)
    return x


def _falls_back(cells: list[str]) -> bool:
    """Whether a code cell sets ``FALL_BACK_TO_REFERENCE = True`` or passes ``fall_back_to_reference=True``."""
    for source in cells:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and node.value.value is True
                    and any(isinstance(t, ast.Name) and t.id == "FALL_BACK_TO_REFERENCE" for t in node.targets)):
                return True
            if (isinstance(node, ast.keyword) and node.arg == "fall_back_to_reference"
                    and isinstance(node.value, ast.Constant) and node.value.value is True):
                return True
    return False


def capstone_verdict(harvest: Path, cells: list[str], stopped: str) -> Verdict:
    """Held-out MSE of the capstone's trained AAE, recomputed here, against the mean image's.

    ``cells``: the sources of the notebook's code cells."""
    from aae_np.data import load
    from aae_np.nn.activations import sigmoid

    loaded = _load(harvest, "capstone")
    if loaded is None:
        return Verdict(0, f"capstone: NOT RUN TO THE END, {stopped or 'the notebook stopped before its end'}.")
    meta, arrays = loaded
    if "error" in meta:
        return Verdict(0, f"capstone: {meta['error']}.")
    stand_ins = [n for n, o in (meta.get("origin") or {}).items() if o != "yours"]
    flags = [f"trained with the reference {', '.join(stand_ins)}"] if stand_ins else []
    if _falls_back(cells):
        flags.append("FALL_BACK_TO_REFERENCE = True")
    try:
        nets = {net: [(arrays[f"{net}{i}_W"], arrays[f"{net}{i}_b"]) for i in range(meta[net])]
                for net in ("encoder", "decoder")}
        data = load(download_ok=False, progress=False)
        x_test, mean = data.x_test[:2000], data.x_train[:10000].mean(axis=0)
        with np.errstate(all="ignore"):
            mse = float(np.mean((sigmoid(_mlp(nets["decoder"], _mlp(nets["encoder"], x_test))) - x_test) ** 2))
    except Exception as err:                                          # noqa: BLE001 - odd shapes, no data
        return Verdict(0, f"capstone: the trained networks could not be evaluated ({type(err).__name__}: {err}).")
    base = float(np.mean((x_test - mean) ** 2))
    ok = math.isfinite(mse) and mse < base
    msg = (f"capstone: held-out MSE {mse:.4f} on 2,000 test images (recomputed by the grader), the mean "
           f"image {base:.4f}: " + ("your AAE learns." if ok else "it does not beat the mean image."))
    if flags:
        return Verdict(0, msg + "\n  FLAGGED, scored 0: " + "; ".join(flags), "; ".join(flags))
    return Verdict(int(ok), msg)

"""What ``aae-np grade`` runs *inside* a submission's kernel: it records, and decides nothing.

The grader (``aae_np.teach.gradebook``) executes a submitted notebook with nbclient and, after
each exercise cell, question cell and at the end, runs one hidden line that calls into this
module. Each call writes what the student's code produced into ``harvest/`` in the
submission's temporary folder:

* ``record_exercise``: the student's function called on the checker's own inputs (through the
  checker, so it is called exactly as the checker calls it) and on the same inputs scaled by a
  random factor the notebook never saw (``perturb``); for every call the return value, the
  array arguments as the call left them (for in-place updates), the exception if one was raised,
  a fingerprint of the inputs, and which functions of the ``aae_np`` package the student's code
  called directly (``sys.setprofile``);
* for an exercise with its own checker (Exercise 12, the training loop), the first half of that
  checker (``loop.record``: every phase call's loss and which networks changed), run on the
  notebook's seeds and on seeds derived from the grader's (``loop.unseen``), with the same time
  limit and record of the package's functions the student's code called;
* ``record_question``: the value the question cell hands to ``questions.check``;
* ``record_capstone``: the weights of the capstone's trained encoder and decoder.

Arrays go into ``.npz`` files and everything else into ``.json``: the grader reads them with
``allow_pickle=False``, so a file written here can carry numbers, never code. Nothing written
here is trusted: the grader recomputes every verdict from these numbers in its own process,
and a record whose inputs do not match the grader's own inputs counts as not run.
"""

from __future__ import annotations

import builtins
import hashlib
import importlib.util
import json
import numbers
import signal
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np

__all__ = ["perturb", "fingerprint", "record_exercise", "record_loop", "record_question", "record_capstone"]

PACKAGE = str(Path(__file__).resolve().parents[1])          # .../aae_np
_THIS = str(Path(__file__).resolve())


def perturb(args: dict[str, Any], seed: int) -> dict[str, Any]:
    """The inputs of one trial, each float array scaled elementwise by a factor in [0.9, 1.1].

    Masks (arrays of 0s and 1s), integers, scalars and callables are kept: they carry a
    structure (which unit was kept, which class is true) the scaling must not break. A zero
    stays zero, so a ReLU-kink input stays at the kink.
    """
    rng = np.random.default_rng(seed)
    out = {}
    for key, value in args.items():
        if (isinstance(value, np.ndarray) and value.ndim and value.dtype.kind == "f"
                and not np.isin(value, (0.0, 1.0)).all()):
            value = value * rng.uniform(0.9, 1.1, value.shape).astype(value.dtype)
        out[key] = value
    return out


def fingerprint(args: tuple[Any, ...]) -> str:
    """A hash of a call's inputs: the dtype, shape and bytes of each array, the repr of each number."""
    h = hashlib.sha256()
    for a in args:
        if isinstance(a, np.ndarray):
            h.update(f"{a.dtype}{a.shape}".encode())
            h.update(np.ascontiguousarray(a).tobytes())
        elif isinstance(a, (numbers.Number, str, bool)) or a is None:
            h.update(repr(a).encode())
        else:
            h.update(b"<callable>" if callable(a) else type(a).__name__.encode())
        h.update(b"|")
    return h.hexdigest()[:24]


class _Recorder:
    """Calls the student's ``fn`` with a time limit and writes down everything it did."""

    def __init__(self, fn: Callable[..., Any], tag: str, limit: float) -> None:
        self.fn, self.tag, self.limit = fn, tag, limit
        self.records: list[dict[str, Any]] = []
        self.arrays: dict[str, np.ndarray] = {}
        self.package_calls: set[str] = set()

    def _profile(self, allowed: set[Any]) -> Callable:
        def hook(frame, event, arg):                               # noqa: ARG001 - setprofile's signature
            if event != "call":
                return
            callee = frame.f_code.co_filename
            if not callee.startswith(PACKAGE) or callee == _THIS or frame.f_code in allowed:
                return
            caller = frame.f_back.f_code.co_filename if frame.f_back else ""
            if not caller.startswith(PACKAGE) or caller == _THIS:    # called by the student's code
                self.package_calls.add(f"{Path(callee).relative_to(PACKAGE).as_posix()}:{frame.f_code.co_name}")
        return hook

    def __call__(self, *args: Any) -> Any:
        i = len(self.records)
        rec: dict[str, Any] = {"fp": fingerprint(args)}
        self.records.append(rec)
        allowed = {a.__code__ for a in args if callable(a) and hasattr(a, "__code__")}

        def alarm(signum, frame):                                  # noqa: ARG001
            raise TimeoutError(f"the call took longer than {self.limit:g} s")

        old = signal.signal(signal.SIGALRM, alarm)
        signal.setitimer(signal.ITIMER_REAL, self.limit)
        sys.setprofile(self._profile(allowed))
        try:
            out = self.fn(*args)
        except BaseException as err:                                # recorded, then the checker sees it
            sys.setprofile(None)
            rec["error"] = {"type": type(err).__name__, "message": str(err)[:2000]}
            raise
        finally:
            sys.setprofile(None)
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
        rec["ret"] = self._store(out, f"{self.tag}{i}_ret")
        rec["args_after"] = [k for k, a in enumerate(args) if isinstance(a, np.ndarray)
                             and self._put(f"{self.tag}{i}_arg{k}", a)]
        return out

    def _put(self, key: str, value: Any) -> bool:
        try:
            arr = np.asarray(value)
        except Exception:                                           # noqa: BLE001 - any odd object
            return False
        if arr.dtype.kind not in "biufc":
            return False
        self.arrays[key] = arr
        return True

    def _store(self, out: Any, key: str) -> dict[str, Any]:
        if out is None:
            return {"kind": "none"}
        items, kind = (list(out), "tuple") if isinstance(out, (tuple, list)) else ([out], "single")
        types = [None if self._put(f"{key}{j}", v) else type(v).__name__ for j, v in enumerate(items)]
        return {"kind": kind, "types": types}


def _write(folder: Path, stem: str, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / f"{stem}.npz", **arrays)
    (folder / f"{stem}.json").write_text(json.dumps(meta), encoding="utf-8")


def _pristine(module: str) -> Any:
    """A private copy of ``aae_np.teach.<module>``: a notebook that replaced the trials, the checker
    or the loop's model in the package's own module does not change what is recorded here."""
    if module not in _PRISTINE:
        path = Path(PACKAGE) / "teach" / f"{module}.py"
        spec = importlib.util.spec_from_file_location(f"_aae_np_grade_{module}", path)
        copy = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = copy                    # its dataclasses look their module up there
        spec.loader.exec_module(copy)
        _PRISTINE[module] = copy
    return _PRISTINE[module]


_PRISTINE: dict[str, Any] = {}


def _pristine_exercises() -> dict[str, Any]:
    return _pristine("exercises").EXERCISES


def record_loop(fn: Callable[..., Any], meta: dict[str, Any], seed: int, limit: float) -> None:
    """Exercise 12: the loop's records on the notebook's seeds and on unseen ones, into ``meta``."""
    loop = _pristine("loop")
    public, hidden = _Recorder(fn, "p", limit), _Recorder(fn, "h", limit)
    meta["public"] = loop.record(public)
    meta["hidden"] = loop.record(hidden, *loop.unseen(seed)) if meta["public"]["status"] == "ran" else None
    meta["package_calls"] = sorted(public.package_calls | hidden.package_calls)


def record_exercise(namespace: dict[str, Any], name: str, folder: str, seed: int, limit: float = 10.0) -> None:
    """Call ``namespace[name]`` as its checker does and on unseen inputs; write ``ex-<name>.*``."""
    from aae_np.teach import solutions
    from aae_np.teach.exercises import EXERCISES
    from aae_np.teach.grading import grade

    fn = namespace.get(name)
    meta: dict[str, Any] = {"name": name, "defined": callable(fn)}
    arrays: dict[str, np.ndarray] = {}
    if callable(fn):
        code = getattr(fn, "__code__", None)
        meta["fn_file"] = code.co_filename if code is not None else f"<{type(fn).__name__}>"
        meta["fn_in_package"] = code is None or code.co_filename.startswith(PACKAGE)
    if callable(fn) and _pristine_exercises()[name].checker is not None:
        record_loop(fn, meta, seed, limit)
    elif callable(fn):
        public = _Recorder(fn, "p", limit)
        hidden = _Recorder(fn, "h", limit)
        ex, returned = _pristine_exercises()[name], True
        for trial in ex.trials():                                   # the calls the grader replays
            try:
                public(*[a.copy() if isinstance(a, np.ndarray) else a for a in trial.args.values()])
            except BaseException:                                   # noqa: BLE001 - recorded; the checker stops here
                returned = False
                break
        if returned:
            try:                                                    # any other call the checker makes
                grade(EXERCISES[name], public)
            except BaseException as err:                            # noqa: BLE001 - a KeyboardInterrupt too
                meta["aborted"] = f"{type(err).__name__}: {err}"
            for k, trial in enumerate(ex.trials() if hasattr(solutions, name) else []):
                try:                                                # inputs the notebook never saw
                    hidden(*[a.copy() if isinstance(a, np.ndarray) else a for a in perturb(trial.args, seed + k).values()])
                except BaseException:                               # noqa: BLE001 - recorded
                    pass
        for rec in (public, hidden):
            arrays.update(rec.arrays)
        meta.update(public=public.records, hidden=hidden.records,
                    package_calls=sorted(public.package_calls | hidden.package_calls))
    _write(Path(folder), f"ex-{name}", meta, arrays)


def record_question(namespace: dict[str, Any], name: str, expression: str, folder: str) -> None:
    """Evaluate the answer ``expression`` of question ``name`` in the notebook; write ``q-<name>.json``."""
    meta: dict[str, Any] = {"name": name}
    try:
        value = eval(expression, namespace)                        # noqa: S307 - the student's own answer
        meta["value"] = float(value) if isinstance(value, numbers.Real) else None
        meta["repr"] = builtins.repr(value)[:200]
    except Exception as err:                                        # noqa: BLE001 - reported
        meta["error"] = f"{type(err).__name__}: {err}"[:500]
    _write(Path(folder), f"q-{name}", meta, {})


def record_capstone(namespace: dict[str, Any], folder: str) -> None:
    """The capstone's trained ``nets["encoder"]`` and ``nets["decoder"]``, and which functions trained them."""
    meta: dict[str, Any] = {"recon_loss": str(namespace.get("RECON_LOSS", "mse"))}
    arrays: dict[str, np.ndarray] = {}
    nets, mine = namespace.get("nets"), namespace.get("mine")
    origin = getattr(mine, "origin", None)
    meta["origin"] = {str(k): str(v) for k, v in origin.items()} if isinstance(origin, dict) else None
    try:
        for net in ("encoder", "decoder"):
            meta[net] = len(nets[net])
            for i, (W, b) in enumerate(nets[net]):
                arrays[f"{net}{i}_W"], arrays[f"{net}{i}_b"] = np.asarray(W), np.asarray(b)
    except Exception as err:                                        # noqa: BLE001 - no usable nets
        meta["error"] = f"no trained networks in `nets` ({type(err).__name__}: {err})"[:500]
        arrays = {}
    _write(Path(folder), "capstone", meta, arrays)

"""Exercise 13: diagnose a broken run. Name the cause and a fix; the fix is rerun to show it helps.

    from aae_np.teach import diagnose
    diagnose.show("A")                                  # the run's curves (notebooks/broken_runs/)
    diagnose.check("A", cause="lr_too_high", fix="lower_lr_ae")

The three runs are ``aae_np.teach.broken_runs.RUNS``. Cause and fix are each one of a few named
choices (``CAUSES``, ``FIXES``), so an answer is data: ``verdict`` judges it without running
anything (the grader calls it in its own process). ``check`` prints that verdict, with a hint
naming what to look at in the curves when the answer is wrong, and then reruns one epoch of the
run on its small subset, as it was and with the named fix applied, and prints the number that
tells: for a right fix it improves (the discriminator's accuracy back toward 0.5, the clusters
in use, a reconstruction loss that stays finite and below where it started), for a wrong fix it
does not. ``AAE_NP_DIAGNOSE_RERUN=0`` skips the rerun (``aae-np grade`` sets it: the verdict
does not depend on it, and 30 submissions need not train 180 epochs).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from aae_np.teach import broken_runs

__all__ = ["CAUSES", "FIXES", "SOLUTIONS", "show", "verdict", "rerun", "check"]

CAUSES = {
    "discriminator_wins": "the discriminator learns much faster than the encoder learns to fool it",
    "clusters_collapse": "the encoder puts (almost) every image in the same few clusters",
    "lr_too_high": "a learning rate so high that the first steps overshoot",
    "too_few_epochs": "the run is healthy, only too short",
    "overfitting": "the model learns the training images by heart",
}
FIXES = {
    "lower_lr_ae": "lower the reconstruction's learning rate (lr_ae 0.3 -> 1e-3)",
    "lower_lr_d": "give the adversaries the preset's balance (lr_d 2e-4, lr_g 4e-4)",
    "cluster_batchnorm": "put BatchNorm after every layer of the clustering encoder (its cluster head too), as "
                         "the paper's clustering AAE does (a run without a cluster head is left as it was)",
    "smaller_batch": "halve the mini-batch (25 images)",
}
assert set(FIXES) == set(broken_runs.FIXES)
SOLUTIONS = {"A": ("lr_too_high", "lower_lr_ae"), "B": ("clusters_collapse", "cluster_batchnorm"),
             "C": ("discriminator_wins", "lower_lr_d")}

# what to look at in the curves, for a wrong cause
LOOK = {
    "A": "look at the first mini-batches of the reconstruction loss (log scale): where does it go, and where "
         "does the held-out MSE end, against the mean image's line? A loss that jumps by 1000x and then "
         "sits flat is not a short run: its steps overshot and the units it needs died.",
    "B": "look at the green line on the right: how many of the 10 clusters hold at least 2% of the images? "
         "The losses fall as in a healthy run; what is wrong is what the cluster head does with its 10 outputs.",
    "C": "look at the discriminator's accuracy and the generator's loss: where do they go as training goes on? "
         "In a healthy AAE the accuracy hovers near 0.5 (the dotted line) and neither loss runs away.",
}
# why a wrong fix cannot help, for a right cause
WHY_FIX = {
    "A": "the reconstruction's own steps are too big; only a smaller lr_ae makes them smaller.",
    "B": "every image's largest cluster logit is the same one from the first batches on; the learning rates do "
         "not change that, normalising the head's inputs (BatchNorm) spreads them over the clusters.",
    "C": "the discriminator outpaces the encoder; only the balance of the two adversaries' learning rates "
         "changes that.",
}


def _figure(name: str) -> Path:
    """The run's committed figure; recorded anew into a temporary folder if it is not there."""
    path = broken_runs.FOLDER / f"run_{name.lower()}.png"
    if path.is_file():
        return path
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="aae_np_broken_"))
    return broken_runs.plot(broken_runs.train(name), folder / path.name)


def _history(name: str) -> dict[str, Any]:
    path = broken_runs.FOLDER / f"run_{name.lower()}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else broken_runs.train(name)


def show(name: str) -> None:
    """Display run ``name``'s curves and print its numbers after each epoch."""
    from IPython.display import Image, display

    _known(name)
    display(Image(str(_figure(name))))
    h = _history(name)
    e = h["epoch"]
    print(f"run {name}: {h['epochs']} epochs of {h['steps_per_epoch']} mini-batches of {h['batch_size']} images "
          f"(the first {h['images']} MNIST training images); the mean image's held-out MSE {h['mean_image_mse']:.4f}")
    for k in range(h["epochs"]):
        part = slice(k * h["steps_per_epoch"], (k + 1) * h["steps_per_epoch"])
        numbers = {key: float(np.mean(h["batch"][key][part])) for key in ("recon_loss", "d_accuracy")}
        clusters = f"  clusters in use {e['clusters'][k]:>2} of 10" if "clusters" in e else ""
        print(f"  epoch {k + 1}: mean recon loss {numbers['recon_loss']:8.4f}  mean D accuracy "
              f"{numbers['d_accuracy']:.2f}  held-out MSE {e['test_mse'][k]:.4f}{clusters}")


def _known(name: str) -> None:
    if name not in SOLUTIONS:
        raise ValueError(f"no run {name!r}; the runs are {', '.join(SOLUTIONS)}")


def verdict(name: str, cause: Any, fix: Any) -> tuple[bool | None, str]:
    """(right, message) for run ``name``: right is None if unanswered, True only if both are right."""
    _known(name)
    if cause is Ellipsis and fix is Ellipsis:
        return None, f"run {name}: not answered yet (set cause and fix to one of the names printed above)."
    problems = [f"{what} {value!r} is not one of {', '.join(choices)}"
                for what, value, choices in (("cause", cause, CAUSES), ("fix", fix, FIXES))
                if not (isinstance(value, str) and value in choices)]
    if problems:
        return False, f"run {name}: " + "; ".join(problems) + " (write the name as a string, e.g. \"overfitting\")."
    want_cause, want_fix = SOLUTIONS[name]
    lines = [f"run {name}: cause {'right' if cause == want_cause else 'wrong'}, fix "
             f"{'right' if fix == want_fix else 'wrong'}."]
    if cause != want_cause:
        lines.append(f"  cause: not {cause} ({CAUSES[cause]}). Hint: {LOOK[name]}")
    if fix != want_fix:
        lines.append(f"  fix: {fix} ({FIXES[fix]}) does not act on what broke this run"
                     + (f": {WHY_FIX[name]}" if cause == want_cause else "; name the cause first."))
    return cause == want_cause and fix == want_fix, "\n".join(lines)


def _measure(name: str, h: dict[str, Any]) -> tuple[float, str, bool]:
    """(number, sentence, healthy) for the first epoch of history ``h`` of run ``name``."""
    b, steps = h["batch"], h["steps_per_epoch"]
    if name == "A":
        losses = np.asarray(b["recon_loss"][:steps])
        top, start, end = float(np.max(losses)), float(losses[0]), float(np.mean(losses[-steps // 4:]))
        ok = bool(np.all(np.isfinite(losses)) and top <= 1.5 * start and end < start)
        return top / start, (f"first mini-batch loss {start:.3g}, largest {top:.3g} ({top / start:.3g}x), last "
                             f"quarter's mean {end:.3g}"), ok
    if name == "B":
        used = int(h["epoch"]["clusters"][0])
        return float(used), f"{used} of 10 clusters in use", used >= 5
    accuracy = float(np.mean(b["d_accuracy"][steps // 2:steps]))
    return abs(accuracy - 0.5), f"D accuracy over the epoch's second half {accuracy:.2f}", abs(accuracy - 0.5) < 0.15


def rerun(name: str, fix: str) -> dict[str, Any]:
    """One epoch of run ``name`` as recorded and with ``fix``: the numbers that tell, and whether it helped."""
    _known(name)
    if fix not in FIXES:
        raise ValueError(f"no fix {fix!r}; the fixes are {', '.join(FIXES)}")
    before = _measure(name, broken_runs.train(name, epochs=1))
    after = _measure(name, broken_runs.train(name, fix, epochs=1))
    better = after[0] > before[0] if name == "B" else after[0] < before[0]
    return {"before": before[1], "after": after[1], "helped": bool(after[2] and better)}


def check(name: str, cause: Any = ..., fix: Any = ..., run_fix: bool = True) -> bool | None:
    """Print the verdict on run ``name``; then rerun one epoch with ``fix`` to show what it does."""
    right, message = verdict(name, cause, fix)
    print(message)
    if right is None or not run_fix or not (isinstance(fix, str) and fix in FIXES):
        return right
    if os.environ.get("AAE_NP_DIAGNOSE_RERUN", "1") == "0":
        print("  (the rerun of one epoch is skipped: AAE_NP_DIAGNOSE_RERUN=0)")
        return right
    from aae_np.data import DataError

    try:
        shown = rerun(name, fix)
    except DataError as err:
        print(f"  (the rerun needs MNIST, not found: {err})")
        return right
    print(f"  one epoch as recorded:  {shown['before']}\n  one epoch with {fix}: {shown['after']}\n  -> "
          + ("the fix helps." if shown["helped"] else "no better: this fix does not cure the run."))
    return right


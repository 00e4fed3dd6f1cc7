"""Exercise 12: write the phased training loop, checked loss by loss against the reference's.

The student gets a small float64 AAE seen as three *phase functions* and writes the loop that
trains it: per batch, the reconstruction phase, then the discriminator's, then the generator's,
each followed by its own optimizer's step (``aae_np.nn.optim.Optimizer``). The phase functions
behave as an autograd framework's ``loss.backward()`` does: each ADDS its gradients into
``model.grads`` (cleared only by ``model.zero_grad()``), and the generator's phase also adds
dL_G/dW_D into the discriminator's gradients, since L_G runs through D. What each optimizer owns,
and when the gradients are cleared, is the student's job.

``check_training_loop(fn)`` runs the student's ``fn(model, batches, rules)`` and the reference
(``solutions.train_phased``) on two copies of the model from the same seed, on the same batches.
Every phase call is recorded (its loss, whether the gradients it adds to were already non-zero,
which networks' weights changed before the next call), and the two records are compared in
order: the first call that differs is named (step, phase), with the likely mistake.

The checker is two halves, so a grader can run them in two processes: ``record(fn)`` runs the
student's loop and returns its record as plain data (JSON: the phase calls, or the error), and
``judge(record)`` trains the reference and makes the verdict. ``aae-np grade`` records in the
submission's kernel, on the notebook's seeds and on seeds it never saw (``unseen``), and judges
in its own process.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from aae_np.models.aae import AAE
from aae_np.nn.losses import bce_with_logits
from aae_np.nn.optim import Adam

__all__ = ["LoopModel", "RULES", "STEPS", "TRAINS", "loop_batches", "run_loop", "unseen", "record", "judge",
           "check_training_loop"]

# The update rule of each phase: the reconstruction learns fast; the adversarial pair with beta1 0.5.
RULES = {"reconstruction": Adam(lr=1e-2), "discriminator": Adam(lr=5e-3, betas=(0.5, 0.999)),
         "generator": Adam(lr=5e-3, betas=(0.5, 0.999))}
TRAINS = {"reconstruction": ("encoder", "decoder"), "discriminator": ("discriminator",), "generator": ("encoder",)}
ORDER = tuple(TRAINS)
STEPS = 4
LOSS_RTOL = 1e-9


@dataclass
class PhaseCall:
    """One call of a phase function, as the loop made it."""

    phase: str
    loss: float
    stale: tuple[str, ...]                            # networks whose gradients were non-zero on entry
    changed_after: tuple[str, ...] = field(default=())  # networks whose weights changed before the next call


class LoopModel:
    """A small AAE (12-8-2 encoder, 2-8-12 decoder, 2-8-1 discriminator, float64) as three phases.

    ``params`` and ``grads``: qualified name ("encoder.0.W", ...) -> array; an optimizer writes the
    weights in place. ``params_of("encoder", "decoder")`` selects networks. Each phase returns its
    loss and ADDS its gradients into ``grads``; ``zero_grad()`` clears them all.
    """

    def __init__(self, seed: int = 0) -> None:
        self._aae = AAE(input_dim=12, latent_dim=2, encoder_hidden=(8,), decoder_hidden=(8,),
                        discriminator_hidden=(8,), recon_loss="mse", dtype="float64", seed=seed, backend="numpy")
        self.params = dict(self._aae.params)
        self.grads = {name: np.zeros_like(p) for name, p in self.params.items()}
        self.calls: list[PhaseCall] = []
        self._seen = self._weights()

    def params_of(self, *nets: str) -> dict[str, np.ndarray]:
        unknown = set(nets) - set(TRAINS["reconstruction"] + TRAINS["discriminator"])
        if unknown:
            raise ValueError(f"params_of: no network {sorted(unknown)}; the networks are encoder, decoder, "
                             "discriminator")
        return {k: v for k, v in self.params.items() if k.split(".", 1)[0] in nets}

    def zero_grad(self) -> None:
        for g in self.grads.values():
            g[...] = 0.0

    def reconstruction(self, x: np.ndarray) -> float:
        """L_rec = mean((sigmoid(dec(enc(x))) - x)^2); adds into encoder.*, decoder.*"""
        return self._phase("reconstruction", x)

    def discriminator(self, x: np.ndarray, z_prior: np.ndarray) -> float:
        """L_D = 1/2 [BCE(D(z_prior), 1) + BCE(D(enc(x)), 0)]; adds into discriminator.* (enc(x) is a constant)."""
        return self._phase("discriminator", x, z_prior=z_prior)

    def generator(self, x: np.ndarray) -> float:
        """L_G = BCE(D(enc(x)), 1); adds into encoder.* AND discriminator.* (L_G runs through D)."""
        loss = self._phase("generator", x)
        disc = self._aae.nets["discriminator"]          # numpy backend: the layers themselves
        a = disc.forward(self._aae.encode(x))
        _, da = bce_with_logits(a, np.ones_like(a))
        disc.zero_grad()
        disc.backward(da, need_dx=False)                # dL_G/dW_D, what loss.backward() would leave there
        for name, g in self._aae.grads_of("discriminator").items():
            self.grads[name] += g
        disc.zero_grad()
        return loss

    # -- the record the checker reads ---------------------------------------------------
    def _weights(self) -> dict[str, np.ndarray]:
        return {name: p.copy() for name, p in self.params.items()}

    def _changed(self) -> tuple[str, ...]:
        now = self._weights()
        nets = {name.split(".", 1)[0] for name in now if not np.array_equal(now[name], self._seen[name])}
        self._seen = now
        return tuple(n for n in ("encoder", "decoder", "discriminator") if n in nets)

    def finish(self) -> None:
        """Close the record: which weights changed after the last phase call."""
        if self.calls:
            self.calls[-1].changed_after = self._changed()

    def _phase(self, phase: str, x: np.ndarray, **inputs: np.ndarray) -> float:
        if self.calls:
            self.calls[-1].changed_after = self._changed()
        else:
            self._changed()
        stale = tuple(n for n in TRAINS[phase] if any(np.any(g) for k, g in self.grads.items()
                                                       if k.split(".", 1)[0] == n))
        loss, grads = self._aae.phase_grads(phase, np.asarray(x, np.float64), **inputs)
        for name, g in grads.items():
            self.grads[name] += g
        self.calls.append(PhaseCall(phase, float(loss), stale))
        return float(loss)


def loop_batches(seed: int = 1, steps: int = STEPS, n: int = 16) -> list[tuple[np.ndarray, np.ndarray]]:
    """``steps`` batches ``(x (n, 12) in [0, 1], z_prior (n, 2) ~ N(0, I))``."""
    rng = np.random.default_rng(seed)
    return [(rng.uniform(0, 1, (n, 12)), rng.standard_normal((n, 2))) for _ in range(steps)]


def run_loop(fn: Callable, seed: int = 0, batch_seed: int = 1) -> LoopModel:
    """A fresh ``LoopModel`` (weights from ``seed``) trained by ``fn(model, batches, rules)`` on
    ``loop_batches(batch_seed)``; its record closed."""
    model = LoopModel(seed)
    fn(model, loop_batches(batch_seed), dict(RULES))
    model.finish()
    return model


def unseen(seed: int) -> tuple[int, int]:
    """(model seed, batch seed) derived from a grader's secret ``seed``: a run the notebook never saw."""
    return 2 + seed % 100_003, 100_007 + seed % 100_003


# ----------------------------------------------------------------------------- the checker
_WHY = {
    "phase_order": "the order per batch is reconstruction, discriminator, generator: the discriminator learns "
                   "to tell the codes of the freshly updated encoder from the prior, then the encoder learns to "
                   "fool that discriminator. Call the three phase functions in that order inside the loop over "
                   "batches.",
    "phase_missing": "every batch runs all three phases once, each followed by its optimizer's step.",
    "zero_grad_forgotten": "the phase functions ADD into model.grads (as loss.backward() does), so the "
                           "gradients of the previous phase (or batch) were still there and this phase's "
                           "step used their sum. Call model.zero_grad() before each phase.",
    "generator_updates_discriminator": "the generator's step changed the discriminator's weights. L_G runs "
                                       "through D, so the generator phase leaves dL_G/dW_D in model.grads; an "
                                       "optimizer that owns D's weights there helps the encoder fool D by "
                                       "making D worse. The generator's optimizer owns the encoder only.",
    "shared_optimizer": "a step changed a network this phase does not train: one optimizer is shared between "
                        "phases, so its Adam moments from another phase's gradients keep moving that phase's "
                        "networks (and the moments mix two games). Make one Optimizer per phase, each over the "
                        "parameters of the networks that phase trains.",
    "step_missing": "no weight changed after this phase: its optimizer's step is missing (or stepped before the "
                    "phase computed its gradients).",
    "wrong_parameters": "after this phase's step some network it trains did not change: its optimizer does not "
                        "own all of them (reconstruction: encoder and decoder; discriminator: the discriminator; "
                        "generator: the encoder).",
    "update_size": "the same phases in the same order, the same networks change, but by different amounts: use "
                   "rules[phase] for each phase's optimizer (its learning rate and betas), step each exactly "
                   "once per batch, and make the optimizers once, before the loop (made anew for each batch, "
                   "Adam's moments and step count start again).",
}


def _first_loss_difference(mine: list[PhaseCall], ref: list[PhaseCall]) -> str:
    for k, r in enumerate(ref):
        if k >= len(mine):
            return f"your loop stopped after {len(mine)} phase calls; the reference makes {len(ref)}"
        m = mine[k]
        if m.phase != r.phase or not np.isclose(m.loss, r.loss, rtol=LOSS_RTOL, atol=0):
            return (f"step {k // 3}, call {k % 3 + 1} of 3: yours {m.phase} loss {m.loss:.10g}, "
                    f"the reference's {r.phase} loss {r.loss:.10g}")
    return "none: every loss agrees" if len(mine) == len(ref) else f"your loop made {len(mine)} phase calls"


def _diagnose(mine: list[PhaseCall], ref: list[PhaseCall]) -> tuple[str, str] | None:
    """(mistake, where) at the first recorded call that differs from the reference's, or None."""
    for k, r in enumerate(ref):
        where = f"step {k // 3}, the {r.phase} phase"
        if k >= len(mine):
            return "phase_missing", f"{where}: your loop made no such call ({len(mine)} calls in all)"
        m = mine[k]
        if m.phase != r.phase:
            ran = [c.phase for c in mine[k - k % 3:k - k % 3 + 3]]
            key = "phase_order" if sorted(ran) == sorted(ORDER) else "phase_missing"
            return key, f"{where}: your loop ran {' -> '.join(ran)} for this batch"
        if m.stale:
            return "zero_grad_forgotten", f"{where}: it began with non-zero gradients in {', '.join(m.stale)}"
        if not np.isclose(m.loss, r.loss, rtol=LOSS_RTOL, atol=0):
            return "update_size", f"{where}: loss {m.loss:.10g}, the reference's {r.loss:.10g}"
        extra = sorted(set(m.changed_after) - set(r.changed_after))
        missing = sorted(set(r.changed_after) - set(m.changed_after))
        if extra:
            key = ("generator_updates_discriminator" if r.phase == "generator" and "discriminator" in extra
                   else "shared_optimizer")
            return key, f"{where}: its step changed {', '.join(extra)}"
        if missing:
            key = "step_missing" if not m.changed_after else "wrong_parameters"
            return key, f"{where}: {', '.join(missing)} did not change after it"
    if len(mine) > len(ref):
        return "phase_missing", f"after step {STEPS - 1}: your loop made {len(mine) - len(ref)} extra phase calls"
    return None


def record(fn: Callable, seed: int = 0, batch_seed: int = 1) -> dict:
    """Run the student's loop on a fresh model; its record as plain data (the checker's first half).

    ``{"status": "ran", "calls": [{"phase", "loss", "stale", "changed_after"}, ...]}``, or status
    ``"not implemented"``, or ``"error"`` with ``"error"`` (type: message) and ``"line"``."""
    try:
        with np.errstate(all="ignore"):
            mine = run_loop(fn, seed, batch_seed)
    except NotImplementedError:
        return {"status": "not implemented"}
    except Exception as err:                          # the student's bug: recorded, never re-raised
        code = getattr(fn, "__code__", None)
        frames = [f for f in traceback.extract_tb(err.__traceback__) if code and f.filename == code.co_filename]
        return {"status": "error", "error": f"{type(err).__name__}: {err}"[:2000],
                "line": frames[-1].line if frames and frames[-1].line else ""}
    return {"status": "ran", "calls": [{"phase": c.phase, "loss": c.loss, "stale": list(c.stale),
                                        "changed_after": list(c.changed_after)} for c in mine.calls]}


def _calls(rec: dict) -> list[PhaseCall]:
    return [PhaseCall(str(c["phase"]), float(c["loss"]), tuple(map(str, c["stale"])),
                      tuple(map(str, c["changed_after"]))) for c in rec["calls"]]


def judge(rec: dict, seed: int = 0, batch_seed: int = 1) -> "CheckResult":
    """The verdict on a ``record`` made with the same seeds: the reference is trained here."""
    from aae_np.teach import solutions
    from aae_np.teach.grading import CheckResult

    name = "train_phased"
    status = rec.get("status") if isinstance(rec, dict) else None
    if status == "not implemented":
        return CheckResult(name, "not implemented", f"{name}: not implemented yet (the stub still raises "
                           "NotImplementedError): write the loop, run its cell, then check again.", "not implemented")
    if status == "error":
        line = f" at the line `{rec['line']}`" if rec.get("line") else ""
        return CheckResult(name, "error", f"{name}: ERROR, your loop raised {rec.get('error')}{line}.", "crashed")
    try:
        mine = _calls(rec)
    except (KeyError, TypeError, ValueError):
        return CheckResult(name, "error", f"{name}: ERROR, the record of your loop could not be read.", "crashed")
    ref = run_loop(solutions.train_phased, seed, batch_seed)
    found = _diagnose(mine, ref.calls)
    first = _first_loss_difference(mine, ref.calls)
    if found is None:
        return CheckResult(name, "pass", f"{name}: PASS ({len(ref.calls)} phase calls over {STEPS} batches, every "
                           f"loss equal to the reference's to a relative {LOSS_RTOL:.0e}, the same networks "
                           "changed after each)", None, 0.0)
    key, where = found
    return CheckResult(name, "fail", f"{name}: FAIL\n  first loss that differs: {first}\n  first call that "
                       f"differs: {where}\n    -> {_WHY[key]}", key)


def check_training_loop(fn: Callable) -> "CheckResult":
    """Run ``fn(model, batches, rules)`` and the reference on the same model and batches; compare."""
    return judge(record(fn))

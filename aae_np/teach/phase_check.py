"""The full model's training phases against finite differences, robust to any seed.

Notebook 01, section 8, checks every parameter of every phase of a small float64 ``AAE``.
Done naively (any batch, a relative error per element) it fails on correct code for some
seeds, for two reasons this module removes:

* **ReLU kinks.** A central difference straddling a pre-activation u = 0 measures the average
  of the two slopes, not either of them. ``kink_free_batch`` draws the batch again until every
  ReLU input the phases evaluate is at least ``margin`` away from 0. A nudge of h = 1e-5 to one
  parameter moves a pre-activation by about h times an input of order 1, far below the margin
  of 1e-3, so no difference crosses a kink.
* **Tiny gradients.** With a loss of order 1 and h = 1e-5, rounding makes the finite
  difference noisy by about eps |L| / h = 1e-16 / 1e-5 = 1e-11. On an element whose gradient
  is 1e-8 that noise alone is a relative error of 1e-3. ``check_phases`` therefore counts an
  element as agreeing when the two gradients differ by at most ``atol`` = 1e-10 (ten times
  the noise); a real mistake is far larger than that.
"""

from __future__ import annotations

import numpy as np

from aae_np.nn.gradcheck import GradReport, check_params, numerical_gradient
from aae_np.nn.layers import ReLU, Sequential

__all__ = ["relu_inputs", "kink_distance", "kink_free_batch", "check_phases", "largest_gradients", "MARGIN", "ATOL"]

MARGIN = 1e-3
ATOL = 1e-10


def relu_inputs(net: Sequential, x: np.ndarray) -> list[np.ndarray]:
    """The input of every ReLU of ``net`` when it computes ``x`` (its pre-activations)."""
    found, out = [], np.asarray(x, np.float64)
    for layer in net.layers:
        if isinstance(layer, ReLU):
            found.append(out)
        out = layer.forward(out)
    return found


def kink_distance(model, x: np.ndarray, z_prior: np.ndarray) -> float:
    """Smallest |u| over the ReLU inputs the phases evaluate (encoder at x, decoder and
    discriminator at the codes, discriminator at the prior samples); inf if there is no ReLU."""
    z = model.nets["encoder"].forward(x)
    us = (relu_inputs(model.nets["encoder"], x) + relu_inputs(model.nets["decoder"], z)
          + relu_inputs(model.nets["discriminator"], z) + relu_inputs(model.nets["discriminator"], z_prior))
    return min((float(np.abs(u).min()) for u in us), default=np.inf)


def kink_free_batch(model, rng: np.random.Generator, n: int = 4, margin: float = MARGIN,
                    tries: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """A batch ``(x (n, input_dim), z_prior (n, latent_dim))`` whose ReLU inputs all have |u| >= margin."""
    cfg = model.config
    for _ in range(tries):
        x = rng.uniform(0.05, 0.95, (n, cfg.input_dim))
        z_prior = rng.standard_normal((n, cfg.latent_dim))
        if kink_distance(model, x, z_prior) >= margin:
            return x, z_prior
    raise RuntimeError(f"no batch with every ReLU input at least {margin} from 0 in {tries} draws")


def check_phases(model, x: np.ndarray, z_prior: np.ndarray, phases=None, tol: float = 1e-6,
                 atol: float = ATOL) -> dict[str, GradReport]:
    """Every parameter each phase trains, hand-written gradient vs. central differences."""
    reports = {}
    for phase in phases or model.phases:
        loss, grads = model.phase_grads(phase, x, z_prior=z_prior)
        analytic = {name: g.copy() for name, g in grads.items()}
        reports[phase] = check_params(lambda: model.phase_grads(phase, x, z_prior=z_prior)[0],
                                      {name: model.params[name] for name in analytic}, analytic,
                                      title=f"phase '{phase}', loss {loss:.4f}", tol=tol, atol=atol)
    return reports


def largest_gradients(model, x: np.ndarray, z_prior: np.ndarray, phases=None, tol: float = 1e-6,
                      atol: float = ATOL) -> list[dict]:
    """One row per (phase, parameter): where the hand-written gradient is LARGEST, both gradients
    there and their relative error; over the whole tensor, the largest |difference| and the verdict.

    A report's worst element can be an exact 0 in both (a unit that is off for the whole batch),
    which shows nothing; the largest element shows a real gradient and how closely the finite
    difference meets it. The verdict is ``check_phases``' rule: every element within ``atol`` or
    a relative error below ``tol``."""
    rows = []
    for phase in phases or model.phases:
        _, grads = model.phase_grads(phase, x, z_prior=z_prior)
        analytic = {name: g.copy() for name, g in grads.items()}
        for name, a in analytic.items():
            n = numerical_gradient(lambda _p: model.phase_grads(phase, x, z_prior=z_prior)[0], model.params[name])
            diff = np.abs(a - n)
            rel = diff / np.maximum(1e-8, np.abs(a) + np.abs(n))
            at = tuple(int(i) for i in np.unravel_index(int(np.argmax(np.abs(a))), a.shape))
            rows.append({"phase": phase, "name": name, "at": at, "analytic": float(a[at]), "numeric": float(n[at]),
                         "rel_error": float(rel[at]), "max_abs_diff": float(diff.max()),
                         "ok": bool(np.all((diff <= atol) | (rel < tol)))})
    return rows

"""The two adversarial games every model of the family plays, on any runner.

A *runner* is what computes one network (``Sequential`` or ``aae_np.fast.FusedMLP``:
``forward(x)``, ``backward(dout, need_dx, param_grads)``); these functions do not know
which backend they run on. Every loss is taken on D's logit a (fused sigmoid + BCE,
``nn.losses.bce_with_logits``), so dL/da = (D - t) / N.
"""

from __future__ import annotations

import numpy as np

from aae_np.nn.losses import bce_with_logits

__all__ = ["real_vs_fake", "fool"]


def real_vs_fake(disc, real: np.ndarray, fake: np.ndarray) -> tuple[float, float]:
    """The discriminator's phase: real rows target 1, fake rows 0; returns (loss, accuracy).

    Both halves go through D as one batch of 2N rows with targets [1; 0]; the mean BCE
    over that batch is exactly the average of the two halves' means (for equal halves),
    and dL/da = (D - t) / 2N row by row. Accumulates D's parameter gradients; the fake
    rows are constants here (no gradient flows back to whatever made them)."""
    n = len(real)
    if len(fake) != n:
        raise ValueError(f"the prior sample has {n} rows but the batch has {len(fake)}; "
                         "give one prior sample per input")
    target = np.concatenate([np.ones((n, 1), real.dtype), np.zeros((n, 1), real.dtype)])
    a = disc.forward(np.concatenate([real, fake]))
    loss, da = bce_with_logits(a, target)                          # (D - t) / 2N
    disc.backward(da, need_dx=False)                               # dW_D = inp^T delta, ...
    return loss, float(0.5 * (np.mean(a[:n] > 0) + np.mean(a[n:] <= 0)))


def fool(disc, inp: np.ndarray) -> tuple[float, np.ndarray]:
    """The generator's loss L_G = BCE(D(inp), 1); returns (L_G, dL_G/d inp).

    Only the input gradient is wanted: a generator phase does not train D, so D's
    parameter gradients are not computed (``param_grads=False``)."""
    a = disc.forward(inp)
    loss, da = bce_with_logits(a, np.ones_like(a))                 # dL/da = (D - 1) / N
    return loss, disc.backward(da, param_grads=False)              # da W_D^T ... back through D

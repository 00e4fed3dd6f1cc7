"""One convention per quantity, written once: each loss the course differentiates, as the package
(``aae_np.nn``, ``aae_np.models``), the exercises and their checkers, the notebooks and
``docs/derivations.md`` all define it.

``tests/test_conventions.py`` holds every one of them to this table, by value (the package's,
the reference solutions', the checkers' and the notebooks' own functions computed on the same
inputs) and by text (each place states the formula as written here), so they cannot drift apart.
"""

from __future__ import annotations

__all__ = ["CONVENTIONS", "FORBIDDEN"]

# quantity -> the formula as every text writes it (notebooks, exercise stubs, docs)
CONVENTIONS: dict[str, str] = {
    # the discriminator's loss: the average of the two halves' means = the mean BCE over all 2N rows
    "L_D": "L_D = 1/2 [BCE(D(z_prior), 1) + BCE(D(z_fake), 0)]",
    "delta_D": "(D(z_prior) − 1)/2N",
    # the generator's loss: a mean over the N codes, target 1
    "L_G": "L_G = BCE(D(enc(x)), 1)",
    # reconstruction MSE: a mean over all n = N*D elements (as torch.nn.MSELoss())
    "mse": "2/n (pred − target)",
    # batch normalisation: the biased batch variance
    "bn_var": "var = 1/N",
}

# what each quantity must never be written as again (the drifts issue 29 found)
FORBIDDEN: dict[str, str] = {
    "L_D": "L_D = BCE(D(z_prior), 1) + BCE(D(z_fake), 0)",        # the sum, without its 1/2
}

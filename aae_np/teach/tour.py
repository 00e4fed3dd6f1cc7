"""The gradient-check tour printed by ``aae-np gradcheck``: every layer, loss, model phase and
the phases of the paper's variants."""

from __future__ import annotations

import numpy as np

from aae_np.models.aae import AAE
from aae_np.models.variants import VariantAAE, one_hot
from aae_np.nn import losses
from aae_np.nn.gradcheck import GradReport, check_layer, check_loss, check_params
from aae_np.nn.layers import Dense, LeakyReLU, ReLU, Sequential, Sigmoid, Tanh


def gradcheck_reports(seed: int = 0) -> list[GradReport]:
    """Float64 finite-difference reports, with inputs kept where derivatives are measurable.

    ReLU inputs stay away from the kink at 0; h = 1e-3 where the function is
    linear or quadratic in what is perturbed (no truncation error), 1e-5 elsewhere.
    """
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.1, 2, (4, 6)) * rng.choice([-1.0, 1.0], (4, 6))
    binary = rng.integers(0, 2, (4, 3)).astype(float)
    reports = [
        check_layer(Dense(6, 5, rng=rng), x, h=1e-3),
        check_layer(ReLU(), x),
        check_layer(LeakyReLU(), x),
        check_layer(Sigmoid(), x),
        check_layer(Tanh(), x),
        check_layer(Sequential(Dense(6, 5, rng=rng, init="glorot"), Tanh(),
                               Dense(5, 3, rng=rng, init="glorot")), x, tol=1e-6),
        check_loss(losses.mse, rng.uniform(-1, 1, (4, 3)), rng.uniform(1.5, 2, (4, 3)), h=1e-3),
        check_loss(losses.bce, rng.uniform(0.05, 0.95, (4, 3)), binary),
        check_loss(losses.bce_with_logits, rng.uniform(-4, 4, (4, 3)), binary),
        check_loss(losses.softmax_cross_entropy, rng.uniform(-2, 2, (4, 3)), rng.integers(0, 3, 4)),
    ]
    model = AAE(input_dim=6, latent_dim=3, encoder_hidden=(5,), decoder_hidden=(4,),
                discriminator_hidden=(5,), image_discriminator_hidden=(5,), activation="tanh",
                dtype="float64", seed=seed)
    xm, z_prior = rng.uniform(0.05, 0.95, (4, 6)), rng.standard_normal((4, 3))
    for phase in model.phases:                   # the paper's four and the image discriminator's two
        _, grads = model.phase_grads(phase, xm, z_prior=z_prior)
        analytic = {k: g.copy() for k, g in grads.items()}
        reports.append(check_params(lambda: model.phase_grads(phase, xm, z_prior=z_prior)[0],
                                    {k: model.params[k] for k in analytic}, analytic,
                                    title=f"AAE phase {phase!r}", tol=1e-6, atol=1e-10))
    reports.extend(variant_reports(rng))
    return reports


def variant_reports(rng: np.random.Generator) -> list[GradReport]:
    """Every phase of the label-conditioned, supervised and semi-supervised variants (the
    clustering variant's phases are the semi-supervised ones without labels)."""
    reports = []
    small = dict(input_dim=6, n_classes=3, style_dim=2, encoder_hidden=(5,), decoder_hidden=(4,),
                 discriminator_hidden=(5,), activation="tanh", dtype="float64", seed=1)
    xm, labels = rng.uniform(0.05, 0.95, (4, 6)), np.array([0, 2, 1, -1])
    y_prior = one_hot(rng.integers(0, 3, 4), 3, np.float64)
    cases = [("conditioned", ("reconstruction", "discriminator", "generator")),
             ("supervised", ("reconstruction",)),
             ("semi-supervised", ("reconstruction", "discriminator", "generator", "supervised"))]
    for variant, phases in cases:
        prior = {"name": "mixture", "k": 3} if variant == "conditioned" else {}
        model = VariantAAE(variant=variant, prior=prior, **small)
        z_prior = model.prior.sample(4, rng, np.float64)
        lab = labels if variant == "conditioned" else np.abs(labels)
        for phase in phases:
            _, grads = model.phase_grads(phase, xm, labels=lab, z_prior=z_prior, y_prior=y_prior)
            analytic = {k: g.copy() for k, g in grads.items()}
            reports.append(check_params(lambda: model.phase_grads(phase, xm, labels=lab, z_prior=z_prior, y_prior=y_prior)[0],
                                        {k: model.params[k] for k in analytic}, analytic,
                                        title=f"{variant} phase {phase!r}", tol=1e-6, atol=1e-10))
    return reports

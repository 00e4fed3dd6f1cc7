"""Notebook 01, section 8: the full-model check passes on correct code for every seed, and still fails
on a wrong gradient (aae_np/teach/phase_check.py)."""

import numpy as np
import pytest

from aae_np.models.aae import AAE, PHASES
from aae_np.nn.gradcheck import check_params
from aae_np.teach.phase_check import ATOL, MARGIN, check_phases, kink_distance, kink_free_batch


def small(seed, backend=None):
    return AAE(input_dim=6, latent_dim=3, encoder_hidden=(5,), decoder_hidden=(4,),
               discriminator_hidden=(5,), dtype="float64", seed=seed, backend=backend)


def test_section_8_passes_for_50_seeds():
    failed = []
    for seed in range(50):
        model = small(seed)
        x, z = kink_free_batch(model, np.random.default_rng(seed))
        assert kink_distance(model, x, z) >= MARGIN
        failed += [(seed, str(r)) for r in check_phases(model, x, z, PHASES).values() if not r.passed()]
    assert not failed, failed[:2]


def test_the_naive_check_fails_on_correct_code_where_the_robust_one_passes():
    """Model seed 0, batch seed 3: a ReLU input sits at a kink, and the naive check reports a
    relative error of 1 on a correct gradient. This is why section 8 draws kink-free batches."""
    model = small(0, backend="numpy")
    rng = np.random.default_rng(3)
    x, z = rng.uniform(0.05, 0.95, (4, 6)), rng.standard_normal((4, 3))
    assert kink_distance(model, x, z) < 1e-5
    _, grads = model.phase_grads("discriminator", x, z_prior=z)
    analytic = {k: g.copy() for k, g in grads.items()}
    naive = check_params(lambda: model.phase_grads("discriminator", x, z_prior=z)[0],
                         {k: model.params[k] for k in analytic}, analytic, tol=1e-6)
    assert not naive.passed()
    x, z = kink_free_batch(model, np.random.default_rng(3))
    assert all(r.passed() for r in check_phases(model, x, z, PHASES).values())


@pytest.mark.parametrize("phase", list(PHASES))
def test_a_wrong_gradient_is_still_caught(phase, monkeypatch):
    """The absolute floor forgives rounding noise (1e-11), not mistakes: a 1 % error in one
    element of a trained tensor fails."""
    model = small(2, backend="numpy")
    x, z = kink_free_batch(model, np.random.default_rng(2))
    real = model.phase_grads

    def off_by_one_percent(name, *args, **kwargs):
        loss, grads = real(name, *args, **kwargs)
        key = max(grads, key=lambda k: np.abs(grads[k]).max())
        g = grads[key]
        g.flat[np.argmax(np.abs(g))] *= 1.01
        return loss, grads

    monkeypatch.setattr(model, "phase_grads", off_by_one_percent)
    report = check_phases(model, x, z, [phase])[phase]
    assert not report.passed() and report.max_rel_error > 1e-3
    assert ATOL < 1e-9

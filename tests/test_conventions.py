"""One convention per quantity (aae_np/teach/conventions.py): the package, the reference solutions,
the checkers, notebooks 01, 02 and 04 and docs/derivations.md agree, by value and by text."""

import re

import nbformat
import numpy as np
import pytest

from aae_np.models.adversarial import fool, real_vs_fake
from aae_np.nn import losses
from aae_np.nn.activations import sigmoid
from aae_np.nn.batchnorm import batchnorm_backward, batchnorm_forward
from aae_np.nn.layers import Dense
from aae_np.teach import solutions as ref
from aae_np.teach.conventions import CONVENTIONS, FORBIDDEN
from aae_np.teach.exercises import EXERCISES
from conftest import REPO

NB = REPO / "notebooks"
TEXTS = {"derivations": (REPO / "docs" / "derivations.md").read_text(encoding="utf-8"),
         **{p.name: p.read_text(encoding="utf-8") for p in NB.glob("*.ipynb")},
         **{p.name: p.read_text(encoding="utf-8") for p in (REPO / "aae_np" / "teach").glob("*.py")
            if p.name != "conventions.py"}}


def _code_cells(name: str) -> list[str]:
    return [c.source for c in nbformat.read(NB / name, as_version=4).cells if c.cell_type == "code"]


def _disc(W: np.ndarray, b: np.ndarray) -> Dense:
    d = Dense(W.shape[0], 1, dtype=np.float64)
    d.params["W"][...], d.params["b"][...] = W, b
    return d


def _squash(text: str) -> str:
    """No whitespace, ASCII minus, JSON escapes undone: the same formula however a file spaces it."""
    text = text.replace("\\n", " ").replace('\\"', '"').replace("−", "-")
    return re.sub(r"\s+", "", text)


# ----------------------------------------------------------------------------- by text
@pytest.mark.parametrize("where,quantities", [
    ("derivations", ["L_D", "delta_D", "bn_var"]),
    ("02_gradient_check_exercises.ipynb", ["L_D", "L_G", "bn_var"]),
    ("01_derivation.ipynb", ["L_D"]),
    ("solutions.py", ["L_D"]),
])
def test_each_place_writes_the_formula_as_the_table_does(where, quantities):
    text = _squash(TEXTS[where])
    for q in quantities:
        assert _squash(CONVENTIONS[q]) in text, f"{where} does not state {q} as {CONVENTIONS[q]!r}"


def test_the_derivations_write_L_D_with_its_half():
    text = _squash(TEXTS["derivations"])
    assert _squash("= 1/2 [ bce_with_logits(a_real, 1) + bce_with_logits(a_fake, 0) ]") in text
    assert _squash("delta_fake = dL_D/da_fake = D(z_fake) / 2N") in text


@pytest.mark.parametrize("quantity", list(FORBIDDEN))
def test_no_place_writes_a_drifted_form(quantity):
    bad = [where for where, text in TEXTS.items() if _squash(FORBIDDEN[quantity]) in _squash(text)]
    assert not bad, f"{quantity} written as {FORBIDDEN[quantity]!r} in {bad}"


def test_the_text_test_can_fail():
    stub_as_it_was = '"""Gradient of L_D = BCE(D(z_prior), 1) + BCE(D(z_fake), 0) w.r.t. W and b.'
    assert _squash(FORBIDDEN["L_D"]) in _squash(stub_as_it_was)


# ----------------------------------------------------------------------------- by value
def test_L_D_is_one_quantity_in_the_package_the_solution_the_checker_and_notebooks_01_and_04():
    trial = EXERCISES["discriminator_grad"].trials()[0]
    zp, zf, W, b = (trial.args[k] for k in ("z_prior", "z_fake", "W", "b"))
    d = _disc(W, b)
    loss, _ = real_vs_fake(d, zp, zf)                                  # the package's model
    package = (d.grads["W"], d.grads["b"])
    for got, want in zip(ref.discriminator_grad(zp, zf, W, b), package):   # the reference solution
        np.testing.assert_allclose(got, want, rtol=1e-12)
    for got, want in zip(trial.want, package):                         # the checker's finite differences
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-12)
    half = 0.5 * (losses.bce_with_logits(zp @ W + b, np.ones((len(zp), 1)))[0]
                  + losses.bce_with_logits(zf @ W + b, np.zeros((len(zf), 1)))[0])
    assert loss == pytest.approx(half, rel=1e-12)

    ns: dict = {}                                                      # notebook 01, its setup cell
    exec(next(s for s in _code_cells("01_derivation.ipynb") if "def L_D(" in s), ns)   # noqa: S102
    zq = ns["rng"].normal(size=ns["z_prior"].shape)
    nb01 = ns["L_D"](zq)
    assert nb01 == pytest.approx(real_vs_fake(_disc(ns["WD"], ns["bD"]), ns["z_prior"], zq)[0], rel=1e-12)
    assert ns["Adv_D"](zq) == pytest.approx(2 * nb01, rel=1e-12)       # the tutorial's sum, named apart

    cells = _code_cells("04_capstone_train_your_own.ipynb")             # notebook 04, its phase functions
    ns = {"np": np, "sigmoid": sigmoid, "RECON_LOSS": "mse", **{n: getattr(ref, n) for n in ref.__all__}}
    for marker in ("def init_network(", "def discriminator_phase("):
        exec(next(s for s in cells if marker in s), ns)                 # noqa: S102
    nets = ns["init_aae"](6, 5, 3, seed=0, dtype=np.float64)
    rng = np.random.default_rng(0)
    x, z_prior = rng.uniform(0, 1, (4, 6)), rng.normal(size=(4, 3))
    z_fake = ns["encode"](nets, x)
    (W1, b1), (W2, b2) = nets["discriminator"]
    h = np.maximum(np.concatenate([z_prior, z_fake]) @ W1 + b1, 0)
    want = 0.5 * (losses.bce_with_logits(h[:4] @ W2 + b2, np.ones((4, 1)))[0]
                  + losses.bce_with_logits(h[4:] @ W2 + b2, np.zeros((4, 1)))[0])
    assert ns["discriminator_phase"](nets, x, z_prior)[0] == pytest.approx(want, rel=1e-12)


def test_L_G_delta_is_one_quantity():
    trial = EXERCISES["generator_grad"].trials()[0]
    a = np.random.default_rng(1).normal(size=(6, 1))
    d = _disc(np.ones((1, 1)), np.zeros(1))
    loss, dz = fool(d, a)                                              # the package: D is the identity map + sigmoid
    np.testing.assert_allclose(dz, (sigmoid(a) - 1) / len(a), rtol=1e-12)
    assert loss == pytest.approx(ref.bce_with_logits(a, np.ones_like(a))[0], rel=1e-12)
    got = ref.generator_grad(*trial.args.values())
    for g, w in zip(got, trial.want):
        np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-12)


def test_mse_bce_softmax_and_batchnorm_are_one_quantity_each():
    rng = np.random.default_rng(2)
    p, t = rng.uniform(0, 1, (4, 5)), rng.uniform(0, 1, (4, 5))
    np.testing.assert_allclose(ref.mse_grad(p, t), losses.mse(p, t)[1], rtol=1e-12)
    s = rng.normal(0, 3, (4, 5))
    for got, want in zip(ref.bce_with_logits(s, t), losses.bce_with_logits(s, t)):
        np.testing.assert_allclose(got, want, rtol=1e-12)
    y = rng.integers(0, 5, 4)
    for got, want in zip(ref.softmax_cross_entropy(s, y), losses.softmax_cross_entropy(s, y)):
        np.testing.assert_allclose(got, want, rtol=1e-12)
    x, gamma, dout = rng.normal(size=(6, 3)), rng.uniform(0.5, 2, 3), rng.normal(size=(6, 3))
    _, x_hat, _, var, inv_sigma = batchnorm_forward(x, gamma, np.zeros(3), 1e-3)
    np.testing.assert_allclose(var, x.var(axis=0), rtol=1e-12)         # divided by N, not N - 1
    for got, want in zip(ref.batchnorm_backward(x, gamma, dout, 1e-3), batchnorm_backward(dout, x_hat, gamma, inv_sigma)):
        np.testing.assert_allclose(got, want, rtol=1e-10)

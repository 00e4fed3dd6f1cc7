"""Every equation of ``docs/derivations.md``, and every erratum it lists, checked numerically.

The tutorial is "Adversarial Autoencoder (AAE) Tutorial"; its "Derivatives" section is
transcribed formula by formula below, next to the corrected form, and both are held
against float64 central differences (``aae_np.nn.gradcheck``). A corrected form must agree
to a relative error below 1e-7; a tutorial form that the document calls wrong must
*measurably* disagree (a sign flip, a ratio, or a relative error far above 0.5).

Notation (the package's, see ``aae_np/nn/layers.py``): a batch is rows, ``x (N, D_x)``;
``W`` is ``(D_in, D_out)`` and ``y = x W + b``; ``delta`` is dL/d(pre-activation) with
its shape. The tutorial writes column vectors, ``W x + b``; its ``W'`` (decoder) is
``(D_x, D_z)``, i.e. ``W' = W_d^T``.

The tiny model (tutorial's equations, one layer each):

    encoder        u_e = x W_e + b_e       z = tanh(u_e)        (N, D_z)
    decoder        u_d = z W_d + b_d       x_hat = sigmoid(u_d) (N, D_x)
    discriminator  a   = z W_D + b_D       D(z) = sigmoid(a)    (N, 1)

``tanh`` stands for the tutorial's generic encoder activation sigma_e (its derivative
1 - z^2 differs visibly from the decoder's x_hat (1 - x_hat)).
"""

from __future__ import annotations

import numpy as np
import pytest

from aae_np.nn.activations import sigmoid
from aae_np.nn.gradcheck import check_params, numerical_gradient, rel_error
from aae_np.nn.layers import Dense, ReLU, Sequential, Sigmoid
from aae_np.nn.losses import bce, bce_with_logits, mse

N, DX, DZ = 4, 6, 3          # D_x != D_z != N, so a product in the wrong order cannot pass by luck
PASS = 1e-7


# --------------------------------------------------------------------------- model
def make_model(seed: int = 0) -> dict[str, np.ndarray]:
    """Parameters and data of the tiny model, float64, in well-conditioned ranges."""
    rng = np.random.default_rng(seed)
    return {
        "x": rng.uniform(0.05, 0.95, (N, DX)),          # pixels in (0, 1)
        "We": rng.normal(0.0, 0.6, (DX, DZ)), "be": rng.normal(0.0, 0.1, DZ),
        "Wd": rng.normal(0.0, 0.8, (DZ, DX)), "bd": rng.normal(0.0, 0.1, DX),
        "WD": rng.normal(0.0, 0.8, (DZ, 1)), "bD": rng.normal(0.0, 0.1, 1),
        "z_prior": rng.standard_normal((N, DZ)),          # samples of p(z) = N(0, I)
    }


def encode(m):
    u_e = m["x"] @ m["We"] + m["be"]
    return u_e, np.tanh(u_e)


def decode(m, z):
    u_d = z @ m["Wd"] + m["bd"]
    return u_d, sigmoid(u_d)


def logit(m, z):
    return z @ m["WD"] + m["bD"]


def L_rec(m):
    """Mean over all N*D_x elements, as nn.MSELoss()."""
    _, z = encode(m)
    _, x_hat = decode(m, z)
    return mse(x_hat, m["x"])[0]


def L_D(m, z_fake=None):
    """-(1/N) sum log D(z_prior) - (1/N) sum log(1 - D(z_fake))."""
    if z_fake is None:
        z_fake = encode(m)[1]
    ones, zeros = np.ones((N, 1)), np.zeros((N, 1))
    return (bce_with_logits(logit(m, m["z_prior"]), ones)[0]
            + bce_with_logits(logit(m, z_fake), zeros)[0])


def L_G(m):
    """-(1/N) sum log D(E(x))."""
    return bce_with_logits(logit(m, encode(m)[1]), np.ones((N, 1)))[0]


def numeric(f, arr, h=1e-5):
    """Central differences of the scalar f() w.r.t. arr (perturbed in place)."""
    return numerical_gradient(lambda _a: f(), arr, h)


def decoder_delta(m):
    """delta_d = dL_rec/du_d = 2/(N D) (x_hat - x) * x_hat (1 - x_hat)   (N, D_x)."""
    _, z = encode(m)
    _, x_hat = decode(m, z)
    return (2.0 / (N * DX)) * (x_hat - m["x"]) * x_hat * (1 - x_hat)


# ------------------------------------------------------- sections 1-4: the derivation
def test_section1_decoder_mse():
    """docs/derivations.md section 1: dL/dx_hat, delta_d, dW_d, db_d, dL/dz."""
    m = make_model()
    u_e, z = encode(m)
    _, x_hat = decode(m, z)
    dx_hat = (2.0 / (N * DX)) * (x_hat - m["x"])                  # (N, D_x)
    delta_d = dx_hat * x_hat * (1 - x_hat)                         # (N, D_x)
    dWd = z.T @ delta_d                                            # (D_z, N)(N, D_x) -> (D_z, D_x)
    dbd = delta_d.sum(axis=0)                                      # 1^T delta_d -> (D_x,)
    dz = delta_d @ m["Wd"].T                                       # (N, D_x)(D_x, D_z) -> (N, D_z)
    assert dWd.shape == m["Wd"].shape and dz.shape == z.shape

    # dL/dx_hat: L is quadratic in x_hat, so a large step is exact
    xh = x_hat.copy()
    assert rel_error(dx_hat, numeric(lambda: mse(xh, m["x"])[0], xh, h=1e-3)) < PASS
    report = check_params(lambda: L_rec(m), {"Wd": m["Wd"], "bd": m["bd"]}, {"Wd": dWd, "bd": dbd})
    assert report.passed(), str(report)
    zz = z.copy()
    f_of_z = lambda: mse(decode(m, zz)[1], m["x"])[0]              # noqa: E731
    assert rel_error(dz, numeric(f_of_z, zz)) < PASS


def test_section1_decoder_bce_on_logits():
    """Section 1, BCE reconstruction on logits: delta_d = (x_hat - x) / (N D_x), no sigmoid derivative."""
    m = make_model()
    _, z = encode(m)
    u_d, x_hat = decode(m, z)

    def f():
        return bce_with_logits(decode(m, z)[0], m["x"])[0]

    delta_d = (x_hat - m["x"]) / (N * DX)
    report = check_params(f, {"Wd": m["Wd"], "bd": m["bd"]},
                          {"Wd": z.T @ delta_d, "bd": delta_d.sum(axis=0)})
    assert report.passed(), str(report)


def test_section2_encoder_through_decoder():
    """Section 2: delta_e = (delta_d W_d^T) * sigma_e'(u_e); dW_e = x^T delta_e; db_e = 1^T delta_e."""
    m = make_model()
    _, z = encode(m)
    delta_e = (decoder_delta(m) @ m["Wd"].T) * (1 - z * z)        # tanh' = 1 - tanh^2
    dWe = m["x"].T @ delta_e                                       # (D_x, N)(N, D_z) -> (D_x, D_z)
    report = check_params(lambda: L_rec(m), {"We": m["We"], "be": m["be"]},
                          {"We": dWe, "be": delta_e.sum(axis=0)})
    assert report.passed(), str(report)


def test_section3_discriminator():
    """Section 3: dL/da_real = (D - 1)/N, dL/da_fake = D/N, z_fake detached; the program's 0.5 halves it."""
    m = make_model()
    z_fake = encode(m)[1].copy()                                    # detached: a constant here
    D_real, D_fake = sigmoid(logit(m, m["z_prior"])), sigmoid(logit(m, z_fake))
    delta_real, delta_fake = (D_real - 1) / N, D_fake / N           # (N, 1) each
    dWD = m["z_prior"].T @ delta_real + z_fake.T @ delta_fake       # (D_z, 1)
    dbD = delta_real.sum(axis=0) + delta_fake.sum(axis=0)
    report = check_params(lambda: L_D(m, z_fake), {"WD": m["WD"], "bD": m["bD"]},
                          {"WD": dWD, "bD": dbD})
    assert report.passed(), str(report)
    # the program's d_loss = 0.5 * (d_real_loss + d_fake_loss): every gradient is halved
    half = numeric(lambda: 0.5 * L_D(m, z_fake), m["WD"])
    assert rel_error(half, 0.5 * dWD) < PASS


def test_section4_generator():
    """Section 4: dL_G/da = (D - 1)/N, dL_G/dz = delta_a W_D^T, then into the encoder as in section 2."""
    m = make_model()
    _, z = encode(m)
    D = sigmoid(logit(m, z))
    delta_a = (D - 1) / N                                           # (N, 1)
    dz = delta_a @ m["WD"].T                                        # (N, 1)(1, D_z) -> (N, D_z)
    delta_e = dz * (1 - z * z)
    report = check_params(lambda: L_G(m), {"We": m["We"], "be": m["be"]},
                          {"We": m["x"].T @ delta_e, "be": delta_e.sum(axis=0)})
    assert report.passed(), str(report)


def test_layer_by_layer_two_layer_mlps_of_the_program():
    """Section 'Deeper networks': the program's 2-layer MLPs, delta recursion written out by hand.

    delta_{l-1} = (delta_l W_l^T) * sigma'_{l-1}(u_{l-1}); dW_l = h_{l-1}^T delta_l.
    Checked against finite differences and against the package's Dense/ReLU/Sigmoid backward.
    """
    rng = np.random.default_rng(1)
    H = 5
    x = rng.uniform(0.05, 0.95, (N, DX))
    enc = Sequential(Dense(DX, H, rng=rng, dtype=np.float64), ReLU(), Dense(H, DZ, rng=rng, dtype=np.float64))
    dec = Sequential(Dense(DZ, H, rng=rng, dtype=np.float64), ReLU(),
                     Dense(H, DX, rng=rng, dtype=np.float64), Sigmoid())
    dis = Sequential(Dense(DZ, H, rng=rng, dtype=np.float64), ReLU(), Dense(H, 1, rng=rng, dtype=np.float64))
    for layer in (enc[0], dec[0], dis[0]):
        layer.params["b"][:] = rng.normal(0, 0.3, H)

    def loss():  # generator phase of the program: recon + reg, both through the encoder
        z = enc.forward(x)
        return mse(dec.forward(z), x)[0] + bce_with_logits(dis.forward(z), np.ones((N, 1)))[0]

    # forward, keeping every pre-activation
    W1, b1, W2, b2 = enc.params["0.W"], enc.params["0.b"], enc.params["2.W"], enc.params["2.b"]
    u1 = x @ W1 + b1; h1 = np.maximum(u1, 0); z = h1 @ W2 + b2                      # noqa: E702
    V1, c1, V2, c2 = dec.params["0.W"], dec.params["0.b"], dec.params["2.W"], dec.params["2.b"]
    v1 = z @ V1 + c1; g1 = np.maximum(v1, 0); x_hat = sigmoid(g1 @ V2 + c2)          # noqa: E702
    A1, e1, A2, e2 = dis.params["0.W"], dis.params["0.b"], dis.params["2.W"], dis.params["2.b"]
    s1 = z @ A1 + e1; k1 = np.maximum(s1, 0); D = sigmoid(k1 @ A2 + e2)              # noqa: E702
    for pre in (u1, v1, s1):       # finite differences across a ReLU kink would be meaningless
        assert np.abs(pre).min() > 1e-3

    # backward by hand
    delta_x = (2.0 / (N * DX)) * (x_hat - x) * x_hat * (1 - x_hat)   # decoder output layer
    delta_g = (delta_x @ V2.T) * (v1 > 0)                             # decoder hidden layer
    dz = delta_g @ V1.T                                               # reconstruction part of dL/dz
    delta_a = (D - 1) / N                                             # discriminator logit (fused)
    delta_k = (delta_a @ A2.T) * (s1 > 0)
    dz = dz + delta_k @ A1.T                                          # the two paths into z add up
    delta_z = dz                                                      # z is linear: sigma' = 1
    delta_h = (delta_z @ W2.T) * (u1 > 0)
    mine = {"0.W": x.T @ delta_h, "0.b": delta_h.sum(0), "2.W": h1.T @ delta_z, "2.b": delta_z.sum(0)}

    report = check_params(loss, enc.params, mine, title="encoder, generator phase")
    assert report.passed(), str(report)
    # and the package's layers compute the same thing through backward()
    for net in (enc, dec, dis):
        net.zero_grad()
    zz = enc.forward(x)
    dz_rec = dec.backward(mse(dec.forward(zz), x)[1])
    dz_adv = dis.backward(bce_with_logits(dis.forward(zz), np.ones((N, 1)))[1])
    enc.backward(dz_rec + dz_adv)
    for k in mine:
        assert rel_error(enc.grads[k], mine[k]) < 1e-12


# ------------------------------------------------------------------- section 5: errata
def test_errata_a_sign_of_reconstruction_gradient():
    """Errata (a): the tutorial's dL/dx_hat = (x - x_hat) points uphill; the gradient is along (x_hat - x)."""
    m = make_model()
    _, x_hat = decode(m, encode(m)[1])
    xh = x_hat.copy()
    num = numeric(lambda: mse(xh, m["x"])[0], xh, h=1e-3)
    tutorial = m["x"] - x_hat
    assert np.all(np.sign(tutorial) == -np.sign(num))               # opposite sign in every element
    cos = np.sum(tutorial * num) / np.linalg.norm(tutorial) / np.linalg.norm(num)
    assert cos == pytest.approx(-1.0, abs=1e-12)
    # gradient descent along the tutorial's "gradient" of W_d increases the loss
    _, z = encode(m)
    dWd_tutorial = z.T @ ((m["x"] - x_hat) * x_hat * (1 - x_hat))   # row form of "(x - x_hat) s' z^T"
    dWd_correct = z.T @ decoder_delta(m)
    step_correct = dWd_correct * (np.linalg.norm(dWd_tutorial) / np.linalg.norm(dWd_correct))  # same length
    Wd0 = m["Wd"].copy()
    before = L_rec(m)
    m["Wd"][...] = Wd0 - 0.1 * dWd_tutorial
    after_tutorial = L_rec(m)
    m["Wd"][...] = Wd0 - 0.1 * step_correct
    after_correct = L_rec(m)
    assert after_tutorial > before > after_correct, (before, after_tutorial, after_correct)


def test_errata_b_missing_2_over_n_factor():
    """Errata (b): L = (1/n) sum (x_hat - x)^2 has gradient (2/n)(x_hat - x); n = N*D_x for a batch."""
    m = make_model()
    _, x_hat = decode(m, encode(m)[1])
    xh = x_hat.copy()
    num = numeric(lambda: mse(xh, m["x"])[0], xh, h=1e-3)
    n = N * DX
    assert rel_error((2.0 / n) * (x_hat - m["x"]), num) < PASS
    ratio = (m["x"] - x_hat) / num                                   # tutorial / true
    np.testing.assert_allclose(ratio, -n / 2, rtol=1e-8)            # sign flipped and n/2 = 12 times too large
    magnitude = (x_hat - m["x"]) / num                               # the sign fixed, factor still missing
    np.testing.assert_allclose(magnitude, n / 2, rtol=1e-8)
    # taking n = D_x (a per-example mean) while the loss also averages over the batch: N times too large
    np.testing.assert_allclose((2.0 / DX) * (x_hat - m["x"]) / num, N, rtol=1e-8)

    # The constant matters for the tutorial's update W <- W - eta dL/dW (an n/2 larger step),
    # not for Adam, whose first step is lr * g / (|g| + eps) whatever the scale of g.
    g = num
    adam_first_step = lambda g: 1e-3 * g / (np.abs(g) + 1e-8)       # noqa: E731  (bias-corrected m, v)
    assert rel_error(adam_first_step(g), adam_first_step(-ratio * g)) < 1e-4


def test_errata_c_decoder_weight_gradient_order_and_shape():
    """Errata (c), decoder: for a batch in row form dL/dW_d = z^T [dL/dx_hat * s'] (D_z, D_x)."""
    m = make_model()
    _, z = encode(m)
    _, x_hat = decode(m, z)
    num = numeric(lambda: L_rec(m), m["Wd"])                        # (D_z, D_x)
    assert rel_error(z.T @ decoder_delta(m), num) < PASS

    g = (m["x"] - x_hat) * x_hat * (1 - x_hat)                       # "(x - x_hat) . s'(W'z + b')", (N, D_x)
    with pytest.raises(ValueError):                                 # "... . z^T" in row form: (N,D_x)(D_z,N)
        g @ z.T
    # read per example in column form and summed over the batch, it is a (D_x, D_z) matrix: W'-shaped,
    # i.e. the transpose of W_d, and (after the sign and 2/n of (a), (b)) otherwise right
    tutorial = sum(np.outer(g[i], z[i]) for i in range(N))          # sum_i g_i z_i^T
    assert tutorial.shape == (DX, DZ) != m["Wd"].shape
    np.testing.assert_allclose(tutorial.T / num, -(N * DX) / 2, rtol=1e-6)


def test_errata_c_dxhat_dW_is_a_three_tensor():
    """Errata (c): dx_hat/dW' is not a matrix 'z . s''; for one example it is a (D_x, D_z, D_x) 3-tensor
    J[i, k, j] = [i == j] s'_i z_k, of which only D_x*D_z entries are non-zero."""
    m = make_model()
    m["x"] = m["x"][:1]
    _, z = encode(m)
    _, x_hat = decode(m, z)
    J = np.empty((DX, DZ, DX))
    for i in range(DX):
        J[i] = numeric(lambda: decode(m, z)[1][0, i], m["Wd"])
    s_prime = (x_hat * (1 - x_hat))[0]
    expected = np.einsum("ij,i,k->ikj", np.eye(DX), s_prime, z[0])
    assert rel_error(J, expected) < PASS
    assert np.count_nonzero(np.abs(J) > 1e-12) == DX * DZ < J.size
    # contracting it with dL/dx_hat gives the delta form z^T (g * s')
    g = (2.0 / DX) * (x_hat - m["x"])[0]
    assert rel_error(np.einsum("i,ikj->kj", g, J), np.outer(z[0], g * s_prime)) < PASS


def test_errata_c_dL_dz_transpose_on_the_wrong_side():
    """Errata (c): dL/dz = delta_d W_d^T (row form) = W'^T delta_d (column form), never 'delta_d W'^T'."""
    m = make_model()
    _, z = encode(m)
    zz = z.copy()
    num = numeric(lambda: mse(decode(m, zz)[1], m["x"])[0], zz)      # (N, D_z)
    delta_d = decoder_delta(m)
    W_prime = m["Wd"].T                                             # tutorial's W', (D_x, D_z)
    assert rel_error(delta_d @ m["Wd"].T, num) < PASS
    assert rel_error((W_prime.T @ delta_d.T).T, num) < PASS         # column form, one column per example
    with pytest.raises(ValueError):                                 # the tutorial's order: (N,D_x)(D_z,D_x)
        delta_d @ W_prime.T


def test_errata_c_encoder_sigma_prime_after_x_transpose():
    """Errata (c), encoder: s_e'(u_e) must multiply the upstream gradient BEFORE the x^T product."""
    m = make_model()
    _, z = encode(m)
    num = numeric(lambda: L_rec(m), m["We"])                        # (D_x, D_z)
    g = decoder_delta(m) @ m["Wd"].T                                # dL/dz, (N, D_z)
    s_e = 1 - z * z                                                 # (N, D_z), one row per example
    assert rel_error(m["x"].T @ (g * s_e), num) < PASS              # x^T [(delta_d W_d^T) * s_e']

    # Tutorial's order: [...] . x^T . s'(Wx + b). The x^T product sums over the batch, leaving
    # (D_x, D_z); no per-example s' can be applied afterwards. As a matrix product it does not even
    # give a matrix: (D_x, D_z)(D_z, 1) -> (D_x, 1).
    xg = m["x"].T @ g
    assert (xg @ s_e[:1].T).shape == (DX, 1) != m["We"].shape
    err_mean = rel_error(xg * s_e.mean(axis=0), num)                # s' averaged over the batch
    # the best any per-column rescaling of x^T g can do (least squares per column)
    c = np.sum(xg * num, axis=0) / np.sum(xg * xg, axis=0)
    best = np.linalg.norm(xg * c - num) / np.linalg.norm(num)
    assert err_mean > 0.5 and best > 0.05, (err_mean, best)

    # With ONE example the order is harmless when s' scales the columns: (x^T g) * s' == x^T (g * s')
    x1, g1, s1 = m["x"][:1], g[:1], s_e[:1]
    assert rel_error((x1.T @ g1) * s1, x1.T @ (g1 * s1)) < 1e-14


def test_errata_d_one_over_D_is_right_but_fusing_gives_minus_one_minus_D():
    """Errata (d): d(-log D)/dW = -(1/D) dD/dW is right; with dD/da = D(1 - D) it is -(1 - D) da/dW."""
    m = make_model()
    m["WD"] *= 3.0                                                  # spread D(z) over (0, 1)
    _, z = encode(m)
    D = sigmoid(logit(m, z))
    num = numeric(lambda: L_G(m), m["We"])

    def through_encoder(dL_da):                                     # (N,1) -> dW_e (D_x, D_z)
        return m["x"].T @ ((dL_da @ m["WD"].T) * (1 - z * z))

    unfused = through_encoder(-(1 / D) * (D * (1 - D)) / N)        # -(1/D) . dD/da, per example, mean
    fused = through_encoder((D - 1) / N)                            # -(1 - D) / N
    assert rel_error(unfused, num) < PASS and rel_error(fused, num) < PASS
    # D(z) is per example: taking the batch mean of D inside 1/D is wrong
    wrong = through_encoder(-(1 / D.mean()) * (D * (1 - D)) / N)
    assert rel_error(wrong, num) > 0.2, rel_error(wrong, num)    # 0.28 here; grows with the spread of D


def test_errata_d_unfused_form_overflows_in_float32():
    """Errata (d): in float32, 1/D overflows to inf below logit -88.7 and 0 * inf = nan once D underflows;
    the fused D - 1 stays finite. (Same for the fake term 1/(1 - D) once D rounds to 1, logit > 16.6.)"""
    a = np.array([-5.0, -20.0, -60.0, -88.0, -89.0, -95.0, -110.0], dtype=np.float32)
    D = sigmoid(a)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        unfused = -(np.float32(1) / D) * (D * (1 - D))
        fake_unfused = (np.float32(1) / (1 - sigmoid(-a))) * (sigmoid(-a) * (1 - sigmoid(-a)))
    fused = D - 1
    truth = sigmoid(a.astype(np.float64)) - 1
    assert np.all(np.isfinite(fused)) and rel_error(fused, truth) < 1e-6
    assert np.all(np.isfinite(unfused[:4])) and rel_error(unfused[:4], truth[:4]) < 1e-6
    assert np.isneginf(unfused[4]) and np.isneginf(unfused[5])      # 1/D > float32 max 3.4e38
    assert D[6] == 0 and np.isnan(unfused[6])                       # 1/0 = inf, inf * 0 = nan
    assert np.isnan(fake_unfused[-1]) and np.all(np.isfinite(sigmoid(-a)))
    # D itself is denormal below 1.2e-38 and carries a visible error (2 % at logit -100)
    d100 = sigmoid(np.array([-100.0], np.float32))[0]
    assert abs(d100 / sigmoid(np.array([-100.0]))[0] - 1) > 0.01


def test_errata_e_discriminator_gradient_sign():
    """Errata (e): the tutorial's (1/D dD/dW - 1/(1-D) d(1-D)/dW) has the real term's sign flipped."""
    m = make_model()
    z_fake = encode(m)[1].copy()
    zp = m["z_prior"]
    Dp, Dq = sigmoid(logit(m, zp)), sigmoid(logit(m, z_fake))
    dDp = zp * (Dp * (1 - Dp))                                      # "dD/dW'' = z s'(W''z + b'')", row i
    dDq = z_fake * (Dq * (1 - Dq))
    # real term evaluated at z_prior, fake term at the encoded z, mean over the batch
    tut_real = np.mean((1 / Dp) * dDp, axis=0)[:, None]
    tut_fake = np.mean(-(1 / (1 - Dq)) * (-dDq), axis=0)[:, None]  # d(1 - D)/dW = -dD/dW

    ones, zeros = np.ones((N, 1)), np.zeros((N, 1))
    num_real = numeric(lambda: bce_with_logits(logit(m, zp), ones)[0], m["WD"])
    num_fake = numeric(lambda: bce_with_logits(logit(m, z_fake), zeros)[0], m["WD"])
    num = numeric(lambda: L_D(m, z_fake), m["WD"])

    np.testing.assert_allclose(tut_real / num_real, -1.0, rtol=1e-7)   # real term: exactly negated
    assert rel_error(tut_fake, num_fake) < PASS                       # fake term: right
    assert rel_error(tut_real + tut_fake, num) > 0.5
    assert rel_error(zp.T @ ((Dp - 1) / N) + z_fake.T @ (Dq / N), num) < PASS  # corrected, fused
    # It is not the negated gradient either (that would flip both terms): -num differs too.
    assert rel_error(tut_real + tut_fake, -num) > 0.5


def test_errata_e_literal_single_z_reading_is_the_gradient_of_the_logit():
    """Errata (e): with ONE D(z) as written, 1/D dD/dW - 1/(1-D) d(1-D)/dW = d/dW [log D - log(1 - D)]
    = da/dW = z: the 'gradient' is the batch mean of z and does not depend on W_D at all."""
    m = make_model()
    z = m["z_prior"]
    D = sigmoid(logit(m, z))
    dD = z * (D * (1 - D))
    literal = np.mean((1 / D) * dD - (1 / (1 - D)) * (-dD), axis=0)[:, None]
    assert rel_error(literal, z.mean(axis=0)[:, None]) < 1e-14
    num = numeric(lambda: np.mean(np.log(sigmoid(logit(m, z))) - np.log(1 - sigmoid(logit(m, z)))),
                  m["WD"], h=1e-3)                                  # = mean of the logit: linear in W_D
    assert rel_error(literal, num) < PASS
    m["WD"] *= -3.0
    D2 = sigmoid(logit(m, z))
    dD2 = z * (D2 * (1 - D2))
    literal2 = np.mean((1 / D2) * dD2 - (1 / (1 - D2)) * (-dD2), axis=0)[:, None]
    assert rel_error(literal2, literal) < 1e-14


def test_errata_f_total_loss_is_not_the_minimax_game():
    """Errata (f): one gradient of L = Rec + l1 Adv_D + l2 Adv_G (nothing detached) is not the phased update."""
    m = make_model()
    lam1 = lam2 = 1.0
    total = lambda: L_rec(m) + lam1 * L_D(m) + lam2 * L_G(m)       # noqa: E731  z_fake NOT detached
    phased_generator = lambda: L_rec(m) + lam2 * L_G(m)            # noqa: E731  what the encoder should get
    g_total = numeric(total, m["We"])
    g_phase = numeric(phased_generator, m["We"])
    err_encoder = rel_error(g_total, g_phase)
    assert err_encoder > 0.5, err_encoder

    # at the fake logit the encoder receives (l1 D + l2 (D - 1))/N = (2D - 1)/N instead of (D - 1)/N:
    # the Adv_D part D/N always pushes D(E(x)) down (the discriminator's side); the net push stops at
    # D = 1/2 and reverses above it, where the phased generator gradient still pushes D up
    _, z = encode(m)
    a = logit(m, z)
    aa = a.copy()
    adv = lambda: (lam1 * bce_with_logits(aa, np.zeros((N, 1)))[0]  # noqa: E731
                   + lam2 * bce_with_logits(aa, np.ones((N, 1)))[0])
    num_a = numeric(adv, aa)
    D = sigmoid(a)
    assert rel_error(num_a, (2 * D - 1) / N) < PASS
    assert np.any(D > 0.5) and np.all(num_a[D > 0.5] > 0) and np.all(num_a[D < 0.5] < 0)
    assert np.all((D - 1) / N < 0)

    # the discriminator would in turn be trained on Adv_G too: its gradient is not that of Adv_D
    g_total_D = numeric(total, m["WD"])
    z_fake = z.copy()
    g_disc = numeric(lambda: L_D(m, z_fake), m["WD"])
    assert rel_error(g_total_D, g_disc) > 0.5
    # the phased updates pass: encoder of section 4 (+ section 2) and discriminator of section 3
    delta_e = (decoder_delta(m) @ m["Wd"].T + ((D - 1) / N) @ m["WD"].T) * (1 - z * z)
    assert rel_error(m["x"].T @ delta_e, g_phase) < PASS


def test_errata_g_bce_on_probabilities_saturates():
    """Errata (g): sigmoid then BCE on probabilities cuts the encoder's gradient when D is tiny.

    dL/da for L = -log D(a) is (D - 1)/N ~ -1/N for small D (the fused form). Through a
    probability-space BCE it becomes dL/dp * dp/da, which implementations guard:
    * aae_np.nn.losses.bce clips p to [1e-7, 1 - 1e-7]: exactly 0 for logit < -16.1;
    * PyTorch's BCELoss backward divides by max(p(1-p), 1e-12) (aten/src/ATen/native/Loss.cpp):
      the gradient shrinks by p / 1e-12 for logit < -27.6. Emulated below in float32.
    """
    a = np.array([[-2.0], [-9.2], [-17.0], [-30.0], [-40.0]])       # -9.2: D ~ 1e-4, the log's G loss
    n = a.shape[0]
    fused = bce_with_logits(a, np.ones_like(a))[1]                  # (D - 1)/n
    sig = Sigmoid()
    p = sig.forward(a)
    via_package_bce = sig.backward(bce(p, np.ones_like(a))[1])
    np.testing.assert_allclose(via_package_bce[:2], fused[:2], rtol=1e-7)
    assert np.all(via_package_bce[2:] == 0) and np.all(fused[2:] < -0.99 / n)

    p32 = sigmoid(a.astype(np.float32))
    torch_like = ((p32 - 1) / np.maximum(p32 * (1 - p32), np.float32(1e-12))) * (p32 * (1 - p32)) / n
    ratio = torch_like / fused
    np.testing.assert_allclose(ratio[:3], 1.0, rtol=1e-5)          # at D ~ 1e-4 it has NOT vanished
    assert 0.05 < ratio[3, 0] < 0.15 and ratio[4, 0] < 1e-5         # below D = 1e-12 it does

    # the discriminator's own gradient on a confidently rejected fake is D/N: ~1e-4 of its maximum
    # at the log's D loss of 1e-4 -- the saturated sigmoid, harmless for the side that is winning
    assert bce_with_logits(np.array([[-9.2]]), np.zeros((1, 1)))[1][0, 0] < 2e-4


def test_note_bounded_encoder_output_cannot_match_a_gaussian_prior():
    """Note: z = sigmoid(Wx + b) (or ReLU) is never negative; almost every N(0, I) sample in 64-D has a
    negative coordinate, so 'any coordinate < 0' separates real from fake perfectly. Hence the
    program's linear z."""
    rng = np.random.default_rng(0)
    prior = rng.standard_normal((10_000, 64))
    encoded = sigmoid(rng.normal(0, 5, (10_000, 64)))
    rule = lambda z: np.any(z < 0, axis=1)                          # noqa: E731  "real"
    assert rule(prior).mean() == 1.0 and rule(encoded).mean() == 0.0


def test_note_relu_decoder_output_stops_learning():
    """Note: with x_hat = ReLU(u_d), a pixel with u_d < 0 outputs 0 and gets exactly zero gradient,
    whatever its target; a sigmoid output always passes some gradient and stays in (0, 1)."""
    m = make_model()
    _, z = encode(m)
    u_d = z @ m["Wd"] + m["bd"]
    dead = u_d < 0
    assert dead.any()
    relu_grad = (2.0 / (N * DX)) * (np.maximum(u_d, 0) - m["x"]) * (u_d > 0)
    assert np.all(relu_grad[dead] == 0) and np.all(m["x"][dead] > 0)
    assert np.all(decoder_delta(m) != 0)

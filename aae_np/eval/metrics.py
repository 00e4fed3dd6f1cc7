"""Numbers that judge a trained AAE: reconstruction error, how close q(z) is to the prior,
and how confidently and how diversely a classifier recognises generated digits.

Everything is computed in float64, whatever the input dtype, and returned as a Python float.
Batches are rows: ``x`` is ``(N, D)``, ``z`` is ``(N, d)``, as in the rest of the package.

* ``reconstruction_mse``    mean of (x - x_hat)^2 over all N * D elements.
* ``gaussian_frechet``      Frechet (2-Wasserstein squared) distance of two Gaussians.
* ``frechet_to_prior``      the same between a Gaussian fitted to z and the prior N(0, I):
                            the project's "Frechet(q(z), N(0, I))".
* ``mmd_rbf``               unbiased MMD^2 between two samples with a sum of RBF kernels.
* ``inception_style_score`` exp(E_x KL(p(y|x) || p(y))) for class probabilities.
* ``classification_error``  fraction of wrong argmax predictions.
* ``nearest_component_fraction`` how many codes lie nearest their own class's prior mode.

The Parzen-window log-likelihood (the paper's Table 1) is in ``parzen.py``; the clustering
error under both protocols (majority vote, the paper's) in ``clustering.py``.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "reconstruction_mse",
    "sqrtm_psd",
    "gaussian_frechet",
    "fit_gaussian",
    "frechet_to_prior",
    "median_sq_distance",
    "mmd_rbf",
    "inception_style_score",
    "classification_error",
    "nearest_component_fraction",
    "as_rows",
    "as_labels",
    "sq_distances",
]


def as_rows(a: np.ndarray, name: str, where: str, min_rows: int = 1) -> np.ndarray:
    """``a`` as a float64 (N, D) matrix, or a ValueError that says what was wrong."""
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"{where}: {name} must be 2-D (N, D) with one example per row, "
                         f"got shape {a.shape}")
    if a.shape[0] < min_rows:
        raise ValueError(f"{where}: {name} needs at least {min_rows} rows, got {a.shape[0]}")
    if not np.isfinite(a).all():
        raise ValueError(f"{where}: {name} of shape {a.shape} contains NaN or inf")
    return a


# ----------------------------------------------------------------------------- reconstruction

def reconstruction_mse(x: np.ndarray, x_hat: np.ndarray) -> float:
    """Mean squared error over **all** elements: ``1/(N D) * sum_ij (x_ij - x_hat_ij)^2``.

    ``x``, ``x_hat``: arrays of the same shape, typically (N, 784) in [0, 1].
    The same averaging as ``losses.mse``, so the two numbers can be compared.
    """
    x = np.asarray(x, dtype=np.float64)
    x_hat = np.asarray(x_hat, dtype=np.float64)
    if x.shape != x_hat.shape:
        raise ValueError(f"reconstruction_mse: x has shape {x.shape} but x_hat has shape "
                         f"{x_hat.shape}; they must match element for element")
    if x.size == 0:
        raise ValueError("reconstruction_mse: x is empty")
    diff = x - x_hat
    return float(np.mean(diff * diff))


def mean_image_mse(x_train: np.ndarray, x_test: np.ndarray, rows: int = 1000) -> float:
    """``reconstruction_mse(x_test, mean training image)``: the MSE of the trivial model that
    answers every image with the mean of ``x_train`` (N, D), the number a trained autoencoder
    must beat. Float64, ``rows`` test images at a time (the broadcast whole would allocate four
    (N, D) float64 temporaries: up to 0.5 s for 10,000 images on a fresh process; this: 0.08 s)."""
    mean = np.mean(x_train, axis=0, dtype=np.float64)
    chunks = [x_test[i:i + rows] for i in range(0, len(x_test), rows)]
    return sum(reconstruction_mse(c, np.broadcast_to(mean, c.shape)) * c.size for c in chunks) / x_test.size


# ----------------------------------------------------------------------------- Frechet distance

def sqrtm_psd(c: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric positive semi-definite matrix, (d, d) -> (d, d).

    ``C = U diag(lam) U^T``  =>  ``C^{1/2} = U diag(sqrt(lam)) U^T``.
    ``C`` is symmetrised first, and eigenvalues below zero (round-off of a PSD matrix,
    e.g. a sample covariance of fewer than d points) are clipped to zero.
    """
    c = np.asarray(c, dtype=np.float64)
    lam, u = np.linalg.eigh(0.5 * (c + c.T))
    return (u * np.sqrt(np.clip(lam, 0.0, None))) @ u.T


def _check_gaussian(mu: np.ndarray, cov: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    mu = np.atleast_1d(np.asarray(mu, dtype=np.float64))
    cov = np.atleast_2d(np.asarray(cov, dtype=np.float64))
    d = mu.shape[0]
    if mu.ndim != 1 or cov.shape != (d, d):
        raise ValueError(f"gaussian_frechet: mu{name} must be (d,) and cov{name} (d, d); "
                         f"got {mu.shape} and {cov.shape}")
    if not (np.isfinite(mu).all() and np.isfinite(cov).all()):
        raise ValueError(f"gaussian_frechet: mu{name} or cov{name} contains NaN or inf")
    asym = np.abs(cov - cov.T).max()
    if asym > 1e-6 * max(1.0, np.abs(cov).max()):
        raise ValueError(f"gaussian_frechet: cov{name} is not symmetric (max |C - C^T| = {asym:.3g})")
    return mu, cov


def gaussian_frechet(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """Frechet distance between N(mu1, cov1) and N(mu2, cov2) (the squared 2-Wasserstein distance).

    ``mu1, mu2``: (d,); ``cov1, cov2``: (d, d) symmetric PSD.

        F = |mu1 - mu2|^2 + tr(cov1 + cov2 - 2 (cov1^{1/2} cov2 cov1^{1/2})^{1/2})

    ``M = cov1^{1/2} cov2 cov1^{1/2}`` is symmetric PSD, so ``tr(M^{1/2}) = sum_k sqrt(lam_k(M))``
    is read off a symmetric eigendecomposition (``eigh``) with negative round-off clipped to
    zero; no non-symmetric ``sqrtm`` (which can return complex noise) is involved. This form
    equals the FID formula's ``tr((cov1 cov2)^{1/2})`` because ``cov1 cov2`` is similar to ``M``.
    The result is clipped at 0, since round-off can make a true 0 come out as -1e-15.
    """
    mu1, cov1 = _check_gaussian(mu1, cov1, "1")
    mu2, cov2 = _check_gaussian(mu2, cov2, "2")
    if mu1.shape != mu2.shape:
        raise ValueError(f"gaussian_frechet: the two Gaussians live in different dimensions "
                         f"({mu1.shape[0]} and {mu2.shape[0]})")
    s1 = sqrtm_psd(cov1)
    m = s1 @ cov2 @ s1
    lam = np.linalg.eigvalsh(0.5 * (m + m.T))
    tr_sqrt = np.sqrt(np.clip(lam, 0.0, None)).sum()
    diff = mu1 - mu2
    value = diff @ diff + np.trace(cov1) + np.trace(cov2) - 2.0 * tr_sqrt
    return float(max(value, 0.0))


def fit_gaussian(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sample mean (d,) and unbiased sample covariance (d, d) of the rows of ``z`` (N, d), N >= 2.

    ``mu = 1/N sum_i z_i``;  ``cov = 1/(N-1) sum_i (z_i - mu)(z_i - mu)^T``.
    """
    z = as_rows(z, "z", "fit_gaussian", min_rows=2)
    mu = z.mean(axis=0)
    zc = z - mu
    return mu, zc.T @ zc / (z.shape[0] - 1)


def frechet_to_prior(z: np.ndarray, prior_mean: np.ndarray | None = None,
                     prior_cov: np.ndarray | None = None) -> float:
    """Frechet distance between a Gaussian fitted to the codes ``z`` (N, d) and the prior.

    The prior defaults to N(0, I_d); pass ``prior_mean`` (d,) and/or ``prior_cov`` (d, d)
    for another Gaussian (e.g. ``prior_cov = s^2 I`` for a prior of standard deviation s).
    Only the first two moments of q(z) enter, so a non-Gaussian q(z) with the right mean and
    covariance scores 0 here; ``mmd_rbf`` sees the whole shape.
    With N samples from the prior itself the value is not exactly 0 but about
    ``d / N + d (d + 1) / (4 N)`` (noise of the mean plus noise of the covariance estimate):
    0.0013 for d=8, N=20000, which is the floor below which differences mean nothing.
    """
    mu, cov = fit_gaussian(z)
    d = mu.shape[0]
    m0 = np.zeros(d) if prior_mean is None else prior_mean
    c0 = np.eye(d) if prior_cov is None else prior_cov
    return gaussian_frechet(mu, cov, m0, c0)


# ----------------------------------------------------------------------------- MMD

def sq_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise squared Euclidean distances (Na, D), (Nb, D) -> (Na, Nb), clipped at 0.

    ``|a_i - b_j|^2 = |a_i|^2 + |b_j|^2 - 2 a_i . b_j``; the expansion can dip below zero by
    round-off, hence the clip.
    """
    d2 = (a * a).sum(axis=1)[:, None] + (b * b).sum(axis=1)[None, :] - 2.0 * (a @ b.T)
    return np.maximum(d2, 0.0)


def median_sq_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Median of the squared distances between distinct points of the pooled sample [a; b].

    ``a`` (Na, D), ``b`` (Nb, D). This is the "median heuristic" scale for RBF kernels.
    """
    pooled = np.concatenate([as_rows(a, "a", "median_sq_distance"),
                             as_rows(b, "b", "median_sq_distance")])
    d2 = sq_distances(pooled, pooled)
    return float(np.median(d2[np.triu_indices(len(pooled), k=1)]))


def _subsample(a: np.ndarray, max_rows: int, rng: np.random.Generator) -> np.ndarray:
    if len(a) <= max_rows:
        return a
    return a[rng.choice(len(a), size=max_rows, replace=False)]


def mmd_rbf(a: np.ndarray, b: np.ndarray, bandwidths: np.ndarray | list[float] | None = None,
            max_rows: int = 2000, seed: int = 0) -> float:
    """Unbiased estimate of MMD^2 between the samples ``a`` (m, D) and ``b`` (n, D).

    Kernel: a sum of RBF kernels, ``k(x, y) = sum_s exp(-|x - y|^2 / (2 sigma_s^2))``, with
    ``bandwidths`` the sigmas. By default ``sigma^2 = h * {1/4, 1, 4}`` where ``h`` is half
    the median squared distance of the pooled sample (median heuristic: ``exp(-d^2 / h')``
    with ``h'`` = median ``d^2`` is the middle kernel), so the estimate looks at fine, typical
    and coarse scales at once.

        MMD^2_u = 1/(m(m-1)) sum_{i != j} k(a_i, a_j) + 1/(n(n-1)) sum_{i != j} k(b_i, b_j)
                  - 2/(m n) sum_{i, j} k(a_i, b_j)

    Leaving out the i == j terms makes the estimate unbiased: its mean is 0 when a and b
    come from the same distribution, so it can be (slightly) negative.

    Each sample is subsampled without replacement to at most ``max_rows`` rows with
    ``np.random.default_rng(seed)``, so the value is reproducible and the three kernel
    matrices stay at most (2000, 2000) (32 MB each in float64).
    """
    a = as_rows(a, "a", "mmd_rbf", min_rows=2)
    b = as_rows(b, "b", "mmd_rbf", min_rows=2)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"mmd_rbf: a has {a.shape[1]} columns but b has {b.shape[1]}; "
                         "both samples must live in the same space")
    rng = np.random.default_rng(seed)
    a, b = _subsample(a, max_rows, rng), _subsample(b, max_rows, rng)
    d_aa, d_bb, d_ab = sq_distances(a, a), sq_distances(b, b), sq_distances(a, b)
    if bandwidths is None:
        m = len(a)
        pooled = np.concatenate([d_aa[np.triu_indices(m, k=1)],
                                 d_bb[np.triu_indices(len(b), k=1)], d_ab.ravel()])
        h = 0.5 * float(np.median(pooled))
        if h <= 0:
            raise ValueError("mmd_rbf: the median distance between points is 0 (most points are "
                             "identical); pass bandwidths= explicitly")
        sigmas2 = h * np.array([0.25, 1.0, 4.0])
    else:
        sig = np.atleast_1d(np.asarray(bandwidths, dtype=np.float64))
        if sig.ndim != 1 or sig.size == 0 or not (sig > 0).all():
            raise ValueError(f"mmd_rbf: bandwidths must be positive numbers, got {bandwidths!r}")
        sigmas2 = sig ** 2

    def kernel_sum(d2: np.ndarray) -> np.ndarray:
        return sum(np.exp(-d2 / (2.0 * s2)) for s2 in sigmas2)

    m, n = len(a), len(b)
    k_aa, k_bb, k_ab = kernel_sum(d_aa), kernel_sum(d_bb), kernel_sum(d_ab)
    term_aa = (k_aa.sum() - np.trace(k_aa)) / (m * (m - 1))     # i != j only
    term_bb = (k_bb.sum() - np.trace(k_bb)) / (n * (n - 1))
    term_ab = k_ab.sum() / (m * n)
    return float(term_aa + term_bb - 2.0 * term_ab)


# ----------------------------------------------------------------------------- classifier score

def inception_style_score(probs: np.ndarray, eps: float = 1e-12) -> float:
    """``exp(E_x KL(p(y|x) || p(y)))`` for class probabilities ``probs`` (N, K), rows summing to 1.

    ``p(y) = 1/N sum_i p(y|x_i)`` is the marginal over the sample, and

        KL(p(y|x_i) || p(y)) = sum_k p_ik (log p_ik - log p_k),   with 0 log 0 = 0.

    The score lies in [1, K]: it is K when every prediction is confident (one-hot) and the
    classes are used equally often, and 1 when every row is the same distribution (no
    diversity) or every row is uniform (no confidence). ``eps`` only guards the logarithms.
    """
    p = as_rows(probs, "probs", "inception_style_score")
    if (p < 0).any():
        raise ValueError("inception_style_score: probs has negative entries; pass probabilities "
                         "(softmax outputs), not logits")
    row_sums = p.sum(axis=1)
    if not np.allclose(row_sums, 1.0, atol=1e-3):
        worst = int(np.argmax(np.abs(row_sums - 1.0)))
        raise ValueError(f"inception_style_score: every row of probs must sum to 1; row {worst} "
                         f"sums to {row_sums[worst]:.6g}")
    marginal = p.mean(axis=0)                                       # p(y), (K,)
    log_ratio = np.log(np.maximum(p, eps)) - np.log(np.maximum(marginal, eps))[None, :]
    kl = np.where(p > 0, p * log_ratio, 0.0).sum(axis=1)            # (N,)
    return float(np.exp(kl.mean()))


# ----------------------------------------------------------------------------- labels

def as_labels(a: np.ndarray, name: str, where: str, n: int | None = None) -> np.ndarray:
    """``a`` as a 1-D integer array of labels (N,), or a ValueError that says what was wrong."""
    a = np.asarray(a)
    if a.ndim != 1 or not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"{where}: {name} must be a 1-D integer array, got {a.dtype} {a.shape}")
    if n is not None and len(a) != n:
        raise ValueError(f"{where}: {name} has {len(a)} entries, expected {n}")
    return a


def classification_error(predicted: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of ``predicted`` (N,) integer classes that differ from ``labels`` (N,)."""
    labels = as_labels(labels, "labels", "classification_error")
    predicted = as_labels(predicted, "predicted", "classification_error", len(labels))
    if not len(labels):
        raise ValueError("classification_error: no examples")
    return float(np.mean(predicted != labels))


def nearest_component_fraction(z: np.ndarray, labels: np.ndarray, means: np.ndarray) -> float:
    """Fraction of codes ``z`` (N, d) whose nearest component mean (``means`` (k, d)) is their
    own label's: how well a label-conditioned prior tied each class to its mode."""
    z = as_rows(z, "z", "nearest_component_fraction")
    means = as_rows(means, "means", "nearest_component_fraction")
    labels = as_labels(labels, "labels", "nearest_component_fraction", len(z))
    if means.shape[1] != z.shape[1]:
        raise ValueError(f"nearest_component_fraction: z is {z.shape[1]}-D but the means are {means.shape[1]}-D")
    return float(np.mean(np.argmin(sq_distances(z, means), axis=1) == labels))

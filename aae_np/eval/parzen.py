"""The Parzen-window log-likelihood (Makhzani et al. 2015, Table 1):
the log-density of data under a Gaussian kernel density on generated samples, sigma chosen on
a validation split. Computed in float64; batches are rows.
"""

from __future__ import annotations

import numpy as np

from aae_np.eval.metrics import as_rows, sq_distances

__all__ = ["parzen_log_likelihoods", "parzen_select_sigma", "parzen_evaluation"]


def parzen_log_likelihoods(samples: np.ndarray, x: np.ndarray, sigmas: np.ndarray | list[float],
                           batch_size: int = 500) -> np.ndarray:
    """(len(sigmas), N) log p(x_i) under the Gaussian kernel density of ``samples`` (M, D):

    ``log p(x) = logsumexp_j(-|x - s_j|^2 / (2 sigma^2)) - log M - D/2 log(2 pi sigma^2)``.

    Distances are computed once per batch of ``x`` and shared by every sigma.
    """
    samples = as_rows(samples, "samples", "parzen_log_likelihoods")
    x = as_rows(x, "x", "parzen_log_likelihoods")
    sigmas = np.atleast_1d(np.asarray(sigmas, dtype=np.float64))
    if samples.shape[1] != x.shape[1]:
        raise ValueError(f"parzen_log_likelihoods: samples are {samples.shape[1]}-D but x is {x.shape[1]}-D")
    if sigmas.ndim != 1 or not (sigmas > 0).all():
        raise ValueError(f"parzen_log_likelihoods: sigmas must be positive, got {sigmas}")
    m, d = samples.shape
    out = np.empty((len(sigmas), len(x)))
    for start in range(0, len(x), batch_size):
        d2 = sq_distances(x[start:start + batch_size], samples)          # (b, M)
        for i, sigma in enumerate(sigmas):
            e = -d2 / (2 * sigma * sigma)
            top = e.max(axis=1, keepdims=True)
            lse = top[:, 0] + np.log(np.exp(e - top).sum(axis=1))
            out[i, start:start + batch_size] = lse - np.log(m) - 0.5 * d * np.log(2 * np.pi * sigma * sigma)
    return out


def parzen_select_sigma(samples: np.ndarray, x_val: np.ndarray,
                        sigmas: np.ndarray | list[float] | None = None) -> tuple[float, np.ndarray]:
    """The sigma of ``sigmas`` (default: 20 values, log-spaced 0.05..1) with the highest mean
    validation log-likelihood; returns it and the mean log-likelihood of every sigma."""
    sigmas = np.geomspace(0.05, 1.0, 20) if sigmas is None else np.asarray(sigmas, dtype=np.float64)
    means = parzen_log_likelihoods(samples, x_val, sigmas).mean(axis=1)
    return float(sigmas[int(np.argmax(means))]), means


def parzen_evaluation(samples: np.ndarray, x_val: np.ndarray, x_test: np.ndarray) -> dict[str, float]:
    """The paper's Table 1 protocol: sigma chosen on ``x_val``, then the mean Parzen
    log-likelihood of ``x_test`` (nats) under ``samples`` and its standard error."""
    sigma, _ = parzen_select_sigma(samples, x_val)
    ll = parzen_log_likelihoods(samples, x_test, [sigma])[0]
    return {"parzen_sigma": sigma, "parzen_ll": float(ll.mean()),
            "parzen_ll_sem": float(ll.std(ddof=1) / np.sqrt(len(ll)))}

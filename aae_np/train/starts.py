"""Several short starts of a clustering run, the one whose clusters say most about the images kept.

A clustering run's outcome is mostly settled in its first epochs: on Fashion-MNIST the
seeds' majority errors at epoch 3 were already in the order of their final ones
(docs/variants.md). So, as k-means keeps the best of ``n_init`` starts by its own objective,
``best_start`` trains ``starts`` candidates (seeds ``seed``, ``seed + 1000``, ...: candidate 0
is the run without starts) for ``epochs`` epochs each and keeps the one with the largest mutual
information between image and cluster,

    I(x; y) = H(mean_x q(y|x)) - mean_x H(q(y|x))       (nats, on the training images),

large when the clusters are both used evenly and told apart confidently. No label is read.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable

import numpy as np

__all__ = ["cluster_information", "best_start", "START_SEED_STEP"]

#: candidate r's seed is the run's seed + r * START_SEED_STEP (seeds 0-999 share no candidate)
START_SEED_STEP = 1000


def _entropy(p: np.ndarray) -> np.ndarray:
    return -(p * np.log(np.clip(p, 1e-12, None))).sum(axis=-1)


def cluster_information(q: np.ndarray) -> float:
    """I(x; y) in nats of the cluster probabilities ``q`` (N, K), one row per image, rows summing to 1."""
    q = np.asarray(q, dtype=np.float64)
    if q.ndim != 2 or len(q) == 0 or not np.allclose(q.sum(axis=1), 1.0, atol=1e-4) or (q < 0).any():
        raise ValueError(f"cluster_information needs (N, K) probabilities with rows summing to 1, got shape {q.shape}")
    return float(_entropy(q.mean(axis=0)) - _entropy(q).mean())


def best_start(build: Callable[[Any, Any], Any], model_config: Any, train_config: Any, starts: int,
               epochs: int, report: Callable[[str], None] | None = None) -> tuple[Any, list[float]]:
    """The trainer, of ``starts`` candidates each trained ``epochs`` epochs, with the largest
    ``cluster_information`` on its training images, and every candidate's information.

    ``build(model_config, train_config)`` makes a fresh trainer; candidate r gets both seeds
    raised by r * START_SEED_STEP. ``report`` (e.g. ``print``) hears one line per candidate. The
    kept trainer's history gains ``start_information`` (every candidate's) and ``start_test_error``
    (every candidate's held-out error after its epochs, when the trainer measures one: never used
    to choose, only to show how well the information chose)."""
    if not getattr(model_config, "has_y", False):
        raise ValueError("starts > 1 needs a variant with clusters (a y head): clustering, semi-supervised or reduction")
    if starts < 1 or not 1 <= epochs <= train_config.epochs:
        raise ValueError(f"best_start needs starts >= 1 (got {starts}) and 1 <= epochs <= the run's "
                         f"{train_config.epochs} (got {epochs})")
    best, scores, errors = None, [], []
    for r in range(starts):
        step = r * START_SEED_STEP
        trainer = build(replace(model_config, seed=model_config.seed + step),
                        replace(train_config, seed=train_config.seed + step))
        trainer.fit(epochs)
        scores.append(cluster_information(trainer.model.classify(trainer.x_train)))
        errors.append(trainer.history.get("test_error", [float("nan")])[-1])
        if report is not None:
            report(f"start {r + 1}/{starts} (seed {train_config.seed + step}): I(x; y) = {scores[-1]:.4f} nats "
                   f"after {epochs} epochs")
        if best is None or scores[-1] > max(scores[:-1]):      # a tie keeps the earlier start
            best = trainer
    best.history.update(start_information=scores, start_test_error=errors)
    return best, scores

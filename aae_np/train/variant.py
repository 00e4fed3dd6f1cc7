"""Training and evaluating the paper's variants (``aae_np.models.variants``).

One step on a mini-batch runs, in order (paper sections 2, 6 and 7):

1. ``reconstruction``  encoder + decoder;
2. ``discriminator``   D_z (and D_y) on prior samples vs. encoded codes;
3. ``generator``       the encoder fools them;
4. ``supervised``      (semi-supervised only) the encoder's y head on a mini-batch of the
                       labelled subset, drawn with replacement.

Labels: the supervised variant uses every training label; the conditioned and
semi-supervised ones use ``n_labels`` of them, drawn per class with ``label_seed``
(``n_labels = -1``: all); unlabelled rows carry label -1. Clustering and the
unsupervised variant use none.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aae_np.eval import metrics
from aae_np.nn.base import NonFiniteError
from aae_np.nn.optim import Adam
from aae_np.train.trainer import TrainConfig, Trainer
from aae_np.models.variants import UNLABELLED, VariantAAE

__all__ = ["VariantTrainConfig", "VariantTrainer", "labelled_subset", "evaluate_variant"]


@dataclass
class VariantTrainConfig(TrainConfig):
    lr_sup: float = 1e-3           # the supervised phase's Adam
    n_labels: int = 100            # labelled training images (semi-supervised, conditioned); -1: all
    sup_batch_size: int = 100
    label_seed: int = 0
    input_noise: float = 0.0       # std of Gaussian noise added to the encoder's input (denoising)
    warmup_epochs: int = 0         # epochs of reconstruction (+ supervised) only, before the adversarial phases
    y_instance_noise: float = 0.0  # std of Gaussian noise on both inputs of D_y (real one-hots and y)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.schedule != "phased":
            raise ValueError("VariantTrainConfig: the variants train with the phased schedule only")
        checks = {"lr_sup must be > 0": self.lr_sup > 0, "sup_batch_size must be >= 1": self.sup_batch_size >= 1,
                  "n_labels must be >= -1 (-1: all)": self.n_labels >= -1,
                  "input_noise must be >= 0": self.input_noise >= 0,
                  f"warmup_epochs ({self.warmup_epochs}) must lie in [0, epochs = {self.epochs}]":
                      0 <= self.warmup_epochs <= self.epochs,
                  "y_instance_noise must be >= 0": self.y_instance_noise >= 0}
        problems = [text for text, ok in checks.items() if not ok]
        if problems:
            raise ValueError("VariantTrainConfig: " + "; ".join(problems))


def labelled_subset(labels: np.ndarray, n: int, seed: int, n_classes: int = 10) -> np.ndarray:
    """Sorted indices of ``n`` labelled examples, ``n // n_classes`` per class (seeded).

    ``n = -1`` means all. ``n`` must be a multiple of ``n_classes`` so every class has
    the same number, as in the paper's semi-supervised protocol.
    """
    labels = np.asarray(labels)
    if n == -1 or n >= len(labels):
        return np.arange(len(labels))
    if n % n_classes:
        raise ValueError(f"n_labels must be a multiple of {n_classes} (the same number per class), got {n}")
    rng = np.random.default_rng(seed)
    per = n // n_classes
    picks = []
    for c in range(n_classes):
        members = np.flatnonzero(labels == c)
        if len(members) < per:
            raise ValueError(f"class {c} has {len(members)} training examples, fewer than {per} labels asked")
        picks.append(rng.choice(members, per, replace=False))
    return np.sort(np.concatenate(picks))


class VariantTrainer(Trainer):
    """``Trainer`` for a ``VariantAAE``: the same epochs, progress bars, checkpoints and resume."""

    model_class = VariantAAE
    config_class = VariantTrainConfig
    history_keys = ("recon_loss", "d_loss", "g_loss", "d_accuracy", "d_loss_y", "g_loss_y", "d_accuracy_y",
                    "sup_loss", "test_mse", "test_error", "seconds")

    def __init__(self, model: VariantAAE, config: VariantTrainConfig, x_train: np.ndarray,
                 y_train: np.ndarray | None = None, x_test: np.ndarray | None = None,
                 y_test: np.ndarray | None = None, out_dir=None, progress: bool = True) -> None:
        c = model.config
        if c.uses_labels or c.variant == "clustering":
            if y_train is None:
                raise ValueError(f"the {c.variant} variant needs the training labels "
                                 f"({'to pick the labelled subset' if c.uses_labels else 'for the cluster mapping'})")
        self.y_train = None if y_train is None else np.asarray(y_train, dtype=np.int64)
        self.y_test = None if y_test is None else np.asarray(y_test, dtype=np.int64)
        n_labels = -1 if c.variant == "supervised" else config.n_labels
        self.labelled = (labelled_subset(self.y_train, n_labels, config.label_seed, c.n_classes)
                         if c.uses_labels else np.zeros(0, np.int64))
        self.labels = np.full(len(x_train), UNLABELLED, np.int64)   # what training sees
        if c.uses_labels:
            self.labels[self.labelled] = self.y_train[self.labelled]
        super().__init__(model, config, x_train, x_test, out_dir, progress)

    def schedule(self) -> dict[str, tuple[str, ...]]:
        phases = {"reconstruction": ("encoder", "decoder"), "discriminator": self.model.discriminators,
                  "generator": ("encoder",)}
        if self.model.config.variant == "semi-supervised":
            phases["supervised"] = ("encoder",)
        return phases

    def _rule(self, phase: str) -> Adam:
        if phase == "supervised":
            return Adam(lr=self.config.lr_sup, betas=(self.config.beta1_ae, 0.999))
        return super()._rule(phase)

    def _train_step(self, idx: np.ndarray, progress: float) -> dict[str, float]:
        return self.step(self.x_train[idx], progress, self.labels[idx])

    def step(self, x: np.ndarray, progress: float = 0.0, labels: np.ndarray | None = None) -> dict[str, float]:
        model, dtype, n = self.model, self.model.dtype, len(x)
        stats: dict[str, float] = {}
        phases = self._phase_order(progress)
        if self.epoch < self.config.warmup_epochs:     # let the codes spread before the adversaries push
            phases = [p for p in phases if p not in ("discriminator", "generator")]
        for phase in phases:
            xb, lb, z_prior, y_prior = x, labels, None, None
            if phase == "discriminator":
                if model.config.variant == "conditioned":   # labelled rows: their class's component
                    drawn = self.rng.integers(0, model.config.n_classes, n)
                    z_prior, _ = model.prior.sample_with_labels(n, self.rng, dtype,
                                                                labels=np.where(lb >= 0, lb, drawn))
                else:
                    z_prior = model.prior.sample(n, self.rng, dtype)
                if model.prior_y is not None:
                    y_prior = model.prior_y.sample(n, self.rng, dtype)
                    if self.config.y_instance_noise > 0:
                        y_prior = y_prior + self._y_noise(n)
            elif phase == "supervised":
                pick = self.labelled[self.rng.integers(0, len(self.labelled), self.config.sup_batch_size)]
                xb, lb = self.x_train[pick], self.labels[pick]
            y_noise = None
            if model.prior_y is not None and self.config.y_instance_noise > 0 and phase in (
                    "discriminator", "generator"):
                y_noise = self._y_noise(n)
            x_in = None
            if self.config.input_noise > 0:
                x_in = xb + (self.config.input_noise * self.rng.standard_normal(xb.shape)).astype(dtype)
            try:
                loss, grads = model.phase_grads(phase, xb, lb, z_prior, y_prior, x_in, y_noise)
            except NonFiniteError as err:
                raise self._diverged(phase, str(err)) from err
            if not math.isfinite(loss):
                raise self._diverged(phase, f"the loss is not finite ({loss})")
            self.optimizers[phase].step(grads)
            stats.update(model.last_stats)
        return stats

    def _y_noise(self, n: int) -> np.ndarray:
        k = self.model.config.n_classes
        return (self.config.y_instance_noise * self.rng.standard_normal((n, k))).astype(self.model.dtype)

    def epoch_metrics(self) -> dict[str, float]:
        if self.x_test is None:
            return {}
        return held_out_metrics(self.model, self.x_train, self.y_train, self.x_test, self.y_test)

    def test_mse(self) -> float:
        if self.x_test is None:
            return float("nan")
        return _test_mse(self.model, self.x_test, self.y_test)

    @classmethod
    def resume(cls, path, x_train, y_train=None, x_test=None, y_test=None, epochs=None, out_dir=None,
               progress: bool = True) -> "VariantTrainer":
        return cls._resume(path, epochs, lambda model, config: cls(
            model, config, x_train, y_train, x_test, y_test,
            out_dir=Path(path).parent if out_dir is None else out_dir, progress=progress))


def _test_mse(model: VariantAAE, x_test: np.ndarray, y_test: np.ndarray | None) -> float:
    labels = y_test if model.config.variant == "supervised" else None     # its decoder takes the label
    return metrics.reconstruction_mse(x_test, model.reconstruct(x_test, labels))


def held_out_metrics(model: VariantAAE, x_train: np.ndarray, y_train: np.ndarray | None,
                     x_test: np.ndarray, y_test: np.ndarray | None) -> dict[str, Any]:
    """Held-out MSE and, for a y head with labels, the test error (classification for the
    semi-supervised variant; clustering, with clusters mapped on the training set, otherwise)."""
    out: dict[str, Any] = {"test_mse": _test_mse(model, x_test, y_test)}
    if model.config.has_y and y_test is not None:
        predicted = model.classify(x_test).argmax(1)
        if model.config.variant == "semi-supervised":
            out["test_error"] = metrics.classification_error(predicted, y_test)
        else:
            out["test_error"] = metrics.clustering_error(model.classify(x_train).argmax(1), y_train,
                                                         predicted, y_test, model.config.n_classes)
        out["clusters_used"] = int(len(np.unique(predicted)))
    return out


def evaluate_variant(model: VariantAAE, x_train: np.ndarray, y_train: np.ndarray | None,
                     x_test: np.ndarray, y_test: np.ndarray | None, parzen: bool = False,
                     seed: int = 0) -> dict[str, Any]:
    """The paper's numbers for one trained variant, as a JSON-able dict.

    Always: held-out reconstruction MSE, Fréchet and MMD between q(z) (encoded test set)
    and p(z). Semi-supervised: test classification error. Clustering: clustering error
    (clusters mapped to labels on the training set). Conditioned with a mixture prior:
    the fraction of test codes nearest their own class's mode. ``parzen``: Parzen-window
    log-likelihood of the test set under 10,000 decoded prior samples, sigma chosen on
    the last 1,000 training images (the paper's Table 1 protocol).
    """
    c = model.config
    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {"variant": c.variant}
    out.update(held_out_metrics(model, x_train, y_train, x_test, y_test))
    z = model.encode(x_test)
    prior_z = model.prior.sample(len(z), rng, np.float64)
    mean, cov = model.prior.moments()
    out["frechet"] = metrics.frechet_to_prior(z, mean, cov)
    out["mmd"] = metrics.mmd_rbf(z, prior_z, seed=seed)
    if c.variant == "conditioned" and y_test is not None and hasattr(model.prior, "component_means"):
        out["nearest_component_fraction"] = metrics.nearest_component_fraction(
            z, y_test, model.prior.component_means())
    if parzen:
        out.update(metrics.parzen_evaluation(model.sample(10_000, rng), x_train[-1000:], x_test))
    return out

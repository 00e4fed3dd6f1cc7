"""Exercise 13's three broken runs: small MNIST trainings that fail in three classic ways.

    python -m aae_np.teach.broken_runs [OUT]      # OUT defaults to notebooks/broken_runs/

Each run trains a small model (one hidden layer of 128 units) on the first ``N_TRAIN`` MNIST
training images for ``EPOCHS`` epochs, in a few seconds, and records every mini-batch's losses
and the discriminator's accuracy, and after each epoch the held-out reconstruction MSE and (for
the clustering model) how many clusters are in use. It writes ``run_<x>.json`` (that history)
and ``run_<x>.png`` (its curves) per run. The runs are named A, B and C, not by what is wrong
with them: finding that out is the exercise (``aae_np.teach.diagnose``).

``train(name, fix=None, epochs=...)`` is also what the checker calls to rerun one epoch of a run
with a fix applied (``FIXES``: each a change of the run's settings).
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Run", "RUNS", "FIXES", "N_TRAIN", "EPOCHS", "FOLDER", "train", "clusters_in_use", "plot", "write_all"]

N_TRAIN, N_TEST, EPOCHS, BATCH = 1000, 500, 4, 50
FOLDER = Path(__file__).resolve().parents[2] / "notebooks" / "broken_runs"
HEALTHY = dict(lr_ae=1e-3, lr_d=2e-4, lr_g=4e-4, batch_size=BATCH, beta1_adv=0.5)


@dataclass(frozen=True)
class Run:
    """One broken run: the model ("aae" or "clustering") and the settings that differ from ``HEALTHY``."""

    model: str
    train: dict[str, Any] = field(default_factory=dict)
    batchnorm: bool = False                  # BatchNorm after every encoder layer (the clustering model's only)


RUNS: dict[str, Run] = {
    "A": Run("aae", {"lr_ae": 0.3}),                         # the reconstruction's steps overshoot
    "B": Run("clustering"),                                  # no BatchNorm: one cluster's logit wins for all
    "C": Run("aae", {"lr_d": 1e-2, "lr_g": 1e-5}),           # D learns 1000x faster than the encoder fools it
}

# a fix is a change of the run's settings; each run has exactly one that cures it
FIXES: dict[str, dict[str, Any]] = {
    "lower_lr_ae": {"train": {"lr_ae": HEALTHY["lr_ae"]}},
    "lower_lr_d": {"train": {"lr_d": HEALTHY["lr_d"], "lr_g": HEALTHY["lr_g"]}},
    "cluster_batchnorm": {"batchnorm": True},              # the clustering model's encoder; no change for an AAE
    "smaller_batch": {"train": {"batch_size": BATCH // 2}},
}


def _data() -> tuple[np.ndarray, np.ndarray]:
    from aae_np.data import load

    data = load(download_ok=False, progress=False)
    return data.x_train[:N_TRAIN], data.x_test[:N_TEST]


def _trainer(run: Run, x: np.ndarray, x_test: np.ndarray, epochs: int) -> Any:
    from aae_np.train.trainer import TrainConfig, Trainer

    hidden = dict(encoder_hidden=(128,), decoder_hidden=(128,), discriminator_hidden=(64,), seed=0)
    settings = {**HEALTHY, **run.train, "epochs": epochs}
    if run.model == "aae":
        from aae_np.models.aae import AAE, AAEConfig

        return Trainer(AAE(AAEConfig(latent_dim=2, **hidden), backend="numpy"), TrainConfig(**settings), x, x_test,
                       progress=False)
    from aae_np.models.variants import VariantAAE, VariantConfig
    from aae_np.train.variant import VariantTrainConfig, VariantTrainer

    model = VariantAAE(VariantConfig(variant="clustering", n_classes=10, style_dim=5, encoder_batchnorm=run.batchnorm,
                                     **hidden), backend="numpy")
    return VariantTrainer(model, VariantTrainConfig(n_labels=0, **settings), x, progress=False)


def clusters_in_use(model: Any, x: np.ndarray, share: float = 0.02) -> int:
    """How many clusters hold at least ``share`` of the images ``x`` (by q(y|x)'s largest entry)."""
    q = model.classify(x)
    counts = np.bincount(np.argmax(q, axis=1), minlength=q.shape[1])
    return int(np.sum(counts >= share * len(x)))


def train(name: str, fix: str | None = None, epochs: int = EPOCHS) -> dict[str, Any]:
    """Run ``name`` (with ``fix`` applied) for ``epochs`` epochs; its history.

    ``batch``: per mini-batch ``recon_loss``, ``d_loss``, ``g_loss``, ``d_accuracy`` (NaN from the
    batch where training diverged on); ``epoch``: per epoch ``test_mse`` and, for the clustering
    model, ``clusters`` (out of 10)."""
    from aae_np.train.trainer import TrainingDiverged

    run = RUNS[name]
    if fix is not None:
        change = FIXES[fix]
        run = replace(run, train={**run.train, **change.get("train", {})}, batchnorm=change.get("batchnorm",
                                                                                                 run.batchnorm))
    x, x_test = _data()
    trainer = _trainer(run, x, x_test, epochs)
    keys = ("recon_loss", "d_loss", "g_loss", "d_accuracy")
    batch: dict[str, list[float]] = {k: [] for k in keys}
    epoch: dict[str, list[float]] = {"test_mse": [], **({"clusters": []} if run.model == "clustering" else {})}
    rng, bs, diverged = np.random.default_rng(0), trainer.config.batch_size, None
    steps = len(x) // bs
    with np.errstate(all="ignore"):
        for e in range(epochs):
            order = rng.permutation(len(x))
            for i in range(steps):
                try:
                    stats = trainer.step(x[order[i * bs:(i + 1) * bs]], (e * steps + i) / (epochs * steps),
                                         None if getattr(trainer, "labels", None) is None else
                                         trainer.labels[order[i * bs:(i + 1) * bs]])
                except TrainingDiverged as err:
                    diverged, stats = diverged or f"epoch {e + 1}, batch {i + 1}: {err}".split(". ")[0], {}
                for k in keys:
                    batch[k].append(float(stats.get(k, math.nan)))
            finite = all(np.isfinite(p).all() for p in trainer.model.params.values())
            mse = float(np.mean((trainer.model.reconstruct(x_test) - x_test) ** 2)) if finite else math.nan
            epoch["test_mse"].append(mse)
            if "clusters" in epoch:
                epoch["clusters"].append(clusters_in_use(trainer.model, x_test) if finite else 0)
    mean_image = float(np.mean((x_test - x.mean(axis=0)) ** 2))
    return {"run": name, "fix": fix, "epochs": epochs, "images": len(x), "batch_size": bs, "steps_per_epoch": steps,
            "mean_image_mse": mean_image, "batch": batch, "epoch": epoch, "diverged": diverged}


def plot(history: dict[str, Any], path: str | Path) -> Path:
    """The run's curves: losses per mini-batch, D's accuracy, and the per-epoch numbers."""
    from matplotlib.figure import Figure

    from aae_np.eval.plots import save_figure

    b, e, steps = history["batch"], history["epoch"], history["steps_per_epoch"]
    fig = Figure(figsize=(12, 2.9))
    axes = fig.subplots(1, 4)
    axes[0].plot(b["recon_loss"], lw=1)
    axes[0].set_yscale("log")
    axes[0].set_title("reconstruction loss (log scale)", fontsize=9)
    for key, style in (("d_loss", "-"), ("g_loss", "--")):          # floored: a loss of 1e-20 is 0 here
        axes[1].plot(np.maximum(b[key], 1e-4), style, label=key, lw=1)
    axes[1].set_yscale("log")
    axes[1].legend(fontsize=7)
    axes[1].set_title("discriminator and generator losses", fontsize=9)
    axes[2].plot(b["d_accuracy"], lw=1, color="C3")
    axes[2].axhline(0.5, color="grey", lw=0.8, ls=":")
    axes[2].set_ylim(0, 1.02)
    axes[2].set_title("discriminator accuracy", fontsize=9)
    epochs = np.arange(1, len(e["test_mse"]) + 1)
    axes[3].plot(epochs, e["test_mse"], "o-", label="held-out MSE")
    axes[3].axhline(history["mean_image_mse"], color="grey", lw=0.8, ls=":", label="the mean image's")
    axes[3].legend(fontsize=7, loc="lower left")
    axes[3].set_title("after each epoch", fontsize=9)
    if "clusters" in e:
        twin = axes[3].twinx()
        twin.plot(epochs, e["clusters"], "s--", color="C2")
        twin.set_ylim(0, 10.5)
        twin.set_ylabel("clusters in use (of 10)", color="C2", fontsize=8)
    for ax in axes[:3]:
        ax.set_xlabel(f"mini-batch ({steps} per epoch)", fontsize=8)
    axes[3].set_xlabel("epoch", fontsize=8)
    fig.suptitle(f"run {history['run']}", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def write_all(folder: str | Path = FOLDER) -> list[Path]:
    """Train the three runs; write ``run_<x>.json`` and ``run_<x>.png`` into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name in RUNS:
        history = train(name)
        path = folder / f"run_{name.lower()}.json"
        path.write_text(json.dumps(history, indent=None) + "\n", encoding="utf-8")
        written += [path, plot(history, folder / f"run_{name.lower()}.png")]
    return written


if __name__ == "__main__":
    for p in write_all(sys.argv[1] if len(sys.argv) > 1 else FOLDER):
        print(p, f"{p.stat().st_size / 1024:.0f} KB")

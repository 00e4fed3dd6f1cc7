"""Training and evaluating the paper's variants (``aae_np.models.variants``).

One step on a mini-batch runs, in order (paper sections 2, 6 and 7):

1. ``reconstruction``  encoder + decoder;
2. ``discriminator``   D_z (and D_y) on prior samples vs. encoded codes;
3. ``generator``       the encoder fools them;
4. ``supervised``      (semi-supervised only) the encoder's y head on a mini-batch of the
                       labelled subset, drawn with replacement;

and, not the paper's, each only when its learning rate is set (clustering, semi-supervised):

5. ``consistency``     the y head on an augmented view pulled towards its own sharpened q(y|x)
                       (``balance``: plus even cluster use; ``revive``: a pull on empty clusters;
                       ``threshold``: confident rows only; ``mix``: views and targets mixed in pairs;
                       ``neighbours``: the view is of the row or of one of its nearest neighbours;
                       ``split_at``: from then on towards the split clusters, of the row, the adversaries resting);
6. ``decoded_class``   the decoder draws the class it is given, as the encoder reads it.

Self-training (semi-supervised, ``pseudo_labels = N``; not the paper's): from epoch ``pseudo_at``
on, the supervised phase also draws the N unlabelled training images q(y|x) was surest of, per
predicted class, labelled with that class (chosen once; kept in the checkpoint; ``aae_np.train.pseudo``).

Labels: the supervised variant uses every training label; the conditioned and
semi-supervised ones use ``n_labels`` of them, drawn per class with ``label_seed``
(``n_labels = -1``: all); unlabelled rows carry label -1. Clustering and the
unsupervised variant use none.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aae_np.eval.clustering import split_validation
from aae_np.eval.held_out import held_out_metrics, test_mse
from aae_np.models.variants import UNLABELLED, VariantAAE
from aae_np.nn.optim import Adam, Momentum
from aae_np.train.augment import mix_pairs, random_affine, random_flips, random_shifts
from aae_np.train.inputs import check_labels
from aae_np.train.neighbours import nearest_neighbours, neighbour_rows, saved_table
from aae_np.train.pseudo import saved_pseudo, surest
from aae_np.train.split import saved_clusters, split_model_clusters
from aae_np.train.trainer import TrainConfig, Trainer

__all__ = ["VariantTrainConfig", "VariantTrainer", "labelled_subset"]


@dataclass
class VariantTrainConfig(TrainConfig):
    lr_sup: float = 1e-3           # the supervised phase's learning rate
    n_labels: int = 100            # labelled training images (semi-supervised, conditioned); -1: all
    sup_batch_size: int = 100
    label_seed: int = 0
    input_noise: float = 0.0       # std of Gaussian noise added to the encoder's input (denoising)
    warmup_epochs: int = 0         # epochs of reconstruction (+ supervised) only, before the adversarial phases
    y_instance_noise: float = 0.0  # std of Gaussian noise on both inputs of D_y (real one-hots and y)
    validation_images: int = 0     # the last N training images, held out of training (the clustering protocol's)
    consistency: float = 0.0       # learning rate of the consistency phase (0: off; not the paper's)
    shift: int = 2                 # the consistency phase's views: shifts of up to this many pixels,
    rotate: float = 15.0           # turns of up to this many degrees and scalings by up to 1 +- scale
    scale: float = 0.1             # (both 0: whole-pixel shifts only)
    flip: float = 0.0              # and mirrored left to right with this probability (clothes, not digits)
    elastic: float = 0.0           # and bent: pixels displaced by this times smoothed noise (Simard et al.; 0: off)
    mix: float = 0.0               # views (and targets) mixed in pairs, weights ~ Beta(mix, mix) (0: off)
    sharpen: float = 0.5           # the consistency target is q(y|x)^(1/sharpen), renormalised
    shift_labelled: bool = False   # the supervised phase's batch augmented the same way (not the paper's)
    balance: float = 0.0           # weight of KL(batch mean of y || uniform) in the consistency phase (not the paper's)
    revive: float = 0.0            # weight of KL(uniform || batch mean of y): pulls on empty clusters (not the paper's)
    threshold: float = 0.0         # the consistency phase skips rows whose target's largest probability is below this
    decoded_class: float = 0.0     # learning rate of the decoded_class phase (0: off; not the paper's)
    pseudo_labels: int = 0         # semi-supervised self-training: after epoch pseudo_at, the N unlabelled images
    pseudo_at: int = 0             # q(y|x) is surest of per predicted class join the supervised phase (0: off)
    neighbours: int = 0            # the consistency phase's view: of the row or of one of its k nearest (0: the row),
    neighbours_at: int = 0         # by cosine of the pixels, from this epoch on of the encoder's hidden layer (0: never)
    split_at: int = 0              # clustering: at this epoch, merged clusters are split into empty ones (aae_np.train.split)
    starts: int = 1                # candidates trained start_epochs each, the one whose clusters hold the most
    start_epochs: int = 3          # I(x; y) kept (aae_np.train.starts; 1: no candidates; not the paper's)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.schedule != "phased":
            raise ValueError("VariantTrainConfig: the variants train with the phased schedule only")
        checks = {"lr_sup must be > 0": self.lr_sup > 0, "sup_batch_size must be >= 1": self.sup_batch_size >= 1,
                  "n_labels must be >= -1 (-1: all)": self.n_labels >= -1,
                  "input_noise must be >= 0": self.input_noise >= 0,
                  f"warmup_epochs ({self.warmup_epochs}) must lie in [0, epochs = {self.epochs}]":
                      0 <= self.warmup_epochs <= self.epochs,
                  "y_instance_noise must be >= 0": self.y_instance_noise >= 0,
                  "validation_images must be >= 0": self.validation_images >= 0,
                  "consistency must be >= 0 (0: off)": self.consistency >= 0,
                  "shift must lie in [0, 27]": 0 <= self.shift <= 27,
                  "rotate must lie in [0, 180]": 0 <= self.rotate <= 180, "scale must lie in [0, 1)": 0 <= self.scale < 1,
                  "sharpen must lie in (0, 1]": 0 < self.sharpen <= 1, "flip must lie in [0, 1]": 0 <= self.flip <= 1,
                  "balance must be >= 0": self.balance >= 0, "mix must be >= 0 (0: off)": self.mix >= 0,
                  "elastic must be >= 0 (0: off)": self.elastic >= 0,
                  "revive must be >= 0": self.revive >= 0,
                  "threshold must lie in [0, 1)": 0 <= self.threshold < 1,
                  "decoded_class must be >= 0 (0: off)": self.decoded_class >= 0,
                  "starts must be >= 1 (1: one start)": self.starts >= 1,
                  "neighbours must be >= 0 (0: off)": self.neighbours >= 0,
                  f"neighbours_at ({self.neighbours_at}) must lie in [0, epochs = {self.epochs}] and needs neighbours":
                      0 <= self.neighbours_at <= self.epochs and (self.neighbours > 0 or self.neighbours_at == 0),
                  "pseudo_labels must be >= 0 (0: off)": self.pseudo_labels >= 0,
                  f"split_at ({self.split_at}) must lie in [0, epochs = {self.epochs}] and needs consistency > 0":
                      0 <= self.split_at <= self.epochs and (self.consistency > 0 or self.split_at == 0),
                  f"pseudo_at ({self.pseudo_at}) must lie in [1, epochs = {self.epochs}]":
                      self.pseudo_labels == 0 or 1 <= self.pseudo_at <= self.epochs,
                  f"start_epochs ({self.start_epochs}) must lie in [1, epochs = {self.epochs}]":
                      self.starts == 1 or 1 <= self.start_epochs <= self.epochs}
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
    """``Trainer`` for a ``VariantAAE``: the same epochs, progress bars, checkpoints and resume.

    With ``config.validation_images = n > 0`` the last n training images and labels are held
    out (``x_val``, ``y_val``): never trained on, they name the clusters in the paper's protocol
    (history key ``test_error_paper``). ``x_train``, ``y_train`` are the images trained on.
    """

    model_class = VariantAAE
    config_class = VariantTrainConfig
    history_keys = ("recon_loss", "d_loss", "g_loss", "d_accuracy", "d_loss_y", "g_loss_y", "d_accuracy_y",
                    "sup_loss", "consistency_loss", "test_mse", "test_error", "test_error_paper", "seconds")

    def __init__(self, model: VariantAAE, config: VariantTrainConfig, x_train: np.ndarray,
                 y_train: np.ndarray | None = None, x_test: np.ndarray | None = None,
                 y_test: np.ndarray | None = None, out_dir=None, progress: bool = True) -> None:
        c = model.config
        x_train, y_train, self.x_val, self.y_val = split_validation(x_train, y_train, config.validation_images)
        if c.uses_labels or (c.variant == "clustering" and x_test is not None):    # scoring the clusters
            if y_train is None:
                raise ValueError(f"the {c.variant} variant needs the training labels "
                                 f"({'to pick the labelled subset' if c.uses_labels else 'for the cluster mapping'})")
        top = c.n_classes if c.uses_labels else None        # clustering reads labels only to score
        self.y_train = None if y_train is None else check_labels(y_train, len(x_train), top, "y_train")
        self.y_test = None if y_test is None else check_labels(y_test, len(y_test), top, "y_test")
        n_labels = -1 if c.variant == "supervised" else config.n_labels
        self.labelled = (labelled_subset(self.y_train, n_labels, config.label_seed, c.n_classes)
                         if c.uses_labels else np.zeros(0, np.int64))
        self.labels = np.full(len(x_train), UNLABELLED, np.int64)   # what training sees
        if c.uses_labels:
            self.labels[self.labelled] = self.y_train[self.labelled]
        if config.pseudo_labels and c.variant != "semi-supervised":
            raise ValueError(f"pseudo_labels applies to the semi-supervised variant, not {c.variant}")
        if config.split_at and c.variant != "clustering":
            raise ValueError(f"split_at applies to the clustering variant, not {c.variant}")
        self.split: np.ndarray | None = None              # split_at's clusters, the consistency targets
        self.pseudo = np.zeros(0, np.int64)              # self-training's rows (labels[pseudo]: their classes)
        self.supervised_rows = self.labelled             # what the supervised phase draws from
        self.neighbours = nearest_neighbours(x_train, config.neighbours) if config.neighbours else None
        self.mined = False                               # whether they are the encoder's (neighbours_at)
        super().__init__(model, config, x_train, x_test, out_dir, progress)

    def schedule(self) -> tuple[str, ...]:
        """The model's phases but those of our additions whose rate is 0 (off)."""
        return tuple(p for p in self.model.phases if self._own_rate(p) != 0)

    def _own_rate(self, phase: str) -> float | None:
        """The learning rate of a phase the plain AAE does not have (None for the others)."""
        c = self.config
        return {"supervised": c.lr_sup, "consistency": c.consistency, "decoded_class": c.decoded_class}.get(phase)

    def describe(self) -> str:
        labels = f", {len(self.labelled):,} labels" if self.model.config.uses_labels else ""
        return (f"{self.model.num_params():,} parameters, {self.config.epochs} epochs{labels}, "
                f"{self.model.backend} backend")

    def facts(self) -> dict[str, int]:
        return {**super().facts(), "n_labels": int(len(self.labelled))}

    def _rule(self, phase: str) -> Adam | Momentum:
        lr = self._own_rate(phase)
        if lr is not None:
            return self.make_rule(lr, adversarial=False)
        return super()._rule(phase)

    def _phase_order(self, progress: float) -> list[str]:
        phases = super()._phase_order(progress)
        if self.epoch < self.config.warmup_epochs or self.split is not None:   # codes spread first; after a split
            phases = [p for p in phases if p not in ("discriminator", "generator")]  # D_y would pull y back
        return phases

    def phase_inputs(self, phase: str, x: np.ndarray,
                     labels: np.ndarray | None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The batch (the supervised phase draws its own from the labelled subset) and what the
        phase takes: labels, prior samples (a labelled row's from its class's component in the
        conditioned variant), instance noise on y, noisy encoder inputs; for the consistency phase a
        shifted view of the batch (with ``neighbours``, in ``train_epoch``, of a row or one of its
        neighbours) and, as its target, q(y|x) of the batch itself (evaluation mode)."""
        model, dtype, n = self.model, self.model.dtype, len(x)
        inputs = {"labels": labels}
        if phase == "discriminator":
            if model.config.variant == "conditioned":   # labelled rows: their class's component
                drawn = self.rng.integers(0, model.config.n_classes, n)
                inputs["z_prior"], _ = model.prior.sample_with_labels(n, self.rng, dtype,
                                                                      labels=np.where(labels >= 0, labels, drawn))
            else:
                inputs["z_prior"] = model.prior.sample(n, self.rng, dtype)
            if model.prior_y is not None:
                y_prior = model.prior_y.sample(n, self.rng, dtype)
                inputs["y_prior"] = y_prior + self._y_noise(n) if self.config.y_instance_noise > 0 else y_prior
        elif phase == "decoded_class":         # prior styles, each decoded with a random class
            inputs["z_style"] = model.prior.sample(n, self.rng, dtype)
            inputs["classes"] = self.rng.integers(0, model.config.n_classes, n)
        elif phase == "supervised":
            rows = self.supervised_rows
            pick = rows[self.rng.integers(0, len(rows), self.config.sup_batch_size)]
            x, inputs["labels"] = self.x_train[pick], self.labels[pick]
        if phase == "consistency":
            inputs["y_target"] = self._target(x)
            if self.config.threshold > 0:      # confident rows only (the sharpened target's top probability)
                inputs["y_weight"] = (inputs["y_target"].max(axis=1) >= self.config.threshold).astype(model.dtype)
            for term in ("balance", "revive"):
                if getattr(self.config, term) > 0:
                    inputs[term] = getattr(self.config, term)
        view = x
        if phase == "consistency" and self.neighbours is not None and self.batch_rows is not None and self.split is None:
            view = inputs["x_in"] = self._view(self.x_train[neighbour_rows(self.batch_rows, self.neighbours, self.rng)])
        elif phase == "consistency" or (phase == "supervised" and self.config.shift_labelled):
            view = inputs["x_in"] = self._view(x)
        if phase == "consistency" and self.config.mix > 0:
            view = inputs["x_in"] = mix_pairs(view, inputs, self.config.mix, self.rng)
        if model.prior_y is not None and self.config.y_instance_noise > 0 and phase in ("discriminator", "generator"):
            inputs["y_noise"] = self._y_noise(n)
        if self.config.input_noise > 0:
            inputs["x_in"] = view + (self.config.input_noise * self.rng.standard_normal(x.shape)).astype(dtype)
        return x, self._with_dropout_mask(model.phases[phase], x, inputs)

    def train_epoch(self) -> dict[str, float]:
        c = self.config
        if c.pseudo_labels and self.epoch == c.pseudo_at and len(self.pseudo) == 0:
            self._set_pseudo(*self.surest(c.pseudo_labels))
        if c.split_at and self.epoch == c.split_at and self.split is None:
            self.split = split_model_clusters(self.model, self.x_train)
        if c.neighbours and c.neighbours_at and self.epoch == c.neighbours_at and not self.mined:
            self.neighbours, self.mined = nearest_neighbours(self.model.hidden("encoder", self.x_train), c.neighbours), True
        return super().train_epoch()

    def surest(self, per_class: int) -> tuple[np.ndarray, np.ndarray]:
        """(rows, classes): ``pseudo.surest`` of the training images still unlabelled."""
        return surest(self.model, self.x_train, self.labels, per_class)

    def _set_pseudo(self, rows: np.ndarray, classes: np.ndarray) -> None:
        self.pseudo = np.asarray(rows, np.int64)
        self.labels[self.pseudo] = classes
        self.supervised_rows = np.sort(np.concatenate([self.labelled, self.pseudo]))

    def extra_state(self) -> dict:
        state = {"neighbour_rows": self.neighbours.tolist()} if self.mined else {}
        if self.split is not None:
            state["split_clusters"] = self.split.tolist()
        if len(self.pseudo) == 0:
            return state
        return {**state, "pseudo_rows": self.pseudo.tolist(), "pseudo_classes": self.labels[self.pseudo].tolist()}

    def load_extra_state(self, state: dict) -> None:
        if "neighbour_rows" in state:
            self.neighbours, self.mined = saved_table(state["neighbour_rows"], self.neighbours), True
        if "split_clusters" in state:
            self.split = saved_clusters(state["split_clusters"], len(self.x_train), self.model.config.n_classes)
        if "pseudo_rows" in state:
            self._set_pseudo(*saved_pseudo(state, self.labels, self.model.config.n_classes))

    def _view(self, x: np.ndarray) -> np.ndarray:
        """An augmented view of the batch: shifted, or turned, scaled, shifted (and bent, with
        ``elastic``); then mirrored with probability ``flip``."""
        c = self.config
        if c.rotate == 0 and c.scale == 0 and c.elastic == 0:
            view = random_shifts(x, c.shift, self.rng)
        else:
            view = random_affine(x, self.rng, c.shift, c.rotate, c.scale, elastic=c.elastic)
        return random_flips(view, c.flip, self.rng) if c.flip > 0 else view

    def _target(self, x: np.ndarray) -> np.ndarray:
        """q(y|x) in evaluation mode, sharpened: q^(1/T) / sum_j q_j^(1/T) (T = ``sharpen``); after
        ``split_at``, the batch rows' split clusters, one-hot."""
        if self.split is not None and self.batch_rows is not None:
            return np.eye(self.model.config.n_classes, dtype=x.dtype)[self.split[self.batch_rows]]
        q = self.model.classify(x)
        if self.config.sharpen == 1:
            return q
        log_t = np.log(np.maximum(q, 1e-30)) / self.config.sharpen
        t = np.exp(log_t - log_t.max(axis=1, keepdims=True))
        return (t / t.sum(axis=1, keepdims=True)).astype(q.dtype)

    def _y_noise(self, n: int) -> np.ndarray:
        k = self.model.config.n_classes
        return (self.config.y_instance_noise * self.rng.standard_normal((n, k))).astype(self.model.dtype)

    def epoch_metrics(self) -> dict[str, float]:
        if self.x_test is None:
            return {}
        return held_out_metrics(self.model, self.x_train, self.y_train, self.x_test, self.y_test, self.x_val,
                                self.y_val)

    def test_mse(self) -> float:
        if self.x_test is None:
            return float("nan")
        return test_mse(self.model, self.x_test, self.y_test)

    @classmethod
    def resume(cls, path, x_train, y_train=None, x_test=None, y_test=None, epochs=None, out_dir=None,
               progress: bool = True, backend: str | None = None, lr: float | None = None) -> "VariantTrainer":
        trainer = cls._resume(path, epochs, backend, lambda model, config: cls(
            model, config, x_train, y_train, x_test, y_test,
            out_dir=Path(path).parent if out_dir is None else out_dir, progress=progress), lr)
        for key, values in trainer.history.items():      # a key newer than the checkpoint: NaN so far
            if not values and trainer.epoch:
                values.extend([float("nan")] * trainer.epoch)
        return trainer

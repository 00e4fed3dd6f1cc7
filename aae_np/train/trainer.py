"""Training: the paper's phased schedule (default) and the tutorial's joint schedule.

Phased (Makhzani et al., 2015, section 2): for every mini-batch

1. ``reconstruction``: encoder + decoder minimise the reconstruction loss;
2. ``discriminator``: D learns to tell prior samples from encoded ones;
3. ``generator``: the encoder learns to fool D;
4. only with an image discriminator (``AAEConfig.image_discriminator_hidden``):
   ``image_discriminator`` (D_x learns real images from decoded prior samples) and
   ``image_generator`` (the decoder learns to fool D_x).

Joint (the tutorial's program): one step of encoder + decoder on
``L_rec + lambda * L_G``, then one discriminator step. Its failure (D wins,
the decoder outputs the mean image) is reproducible with
``--preset tutorial --schedule joint``.

Each phase has its own optimizer (Adam, or SGD with momentum as in the paper's
appendix), as the paper's phases are separate games. Checkpoints hold the model, every optimizer's state, the random
generator's state and the history, so ``resume`` continues bit for bit.
"""

from __future__ import annotations

import json
import math
import os
import time
from contextlib import nullcontext
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from aae_np.fast import pool
from aae_np.files import atomic_write_text
from aae_np.models.aae import AAE, IMAGE_PHASES
from aae_np.models.network_set import NetworkSet
from aae_np.nn.base import NonFiniteError
from aae_np.nn.optim import Adam, Momentum
from aae_np.train.inputs import batch_bounds, check_rows
from aae_np.train.resume import read_trainer_state, with_learning_rate
from aae_np.train.train_config import SCHEDULES, TrainConfig

__all__ = ["TrainConfig", "Trainer", "TrainingDiverged", "SCHEDULES"]

HISTORY_KEYS = ("recon_loss", "d_loss", "g_loss", "d_accuracy", "test_mse", "seconds")
IMAGE_HISTORY_KEYS = ("image_d_loss", "image_g_loss", "image_d_accuracy")


class TrainingDiverged(RuntimeError):
    """A loss became NaN or inf; the last good checkpoint was kept."""


class Trainer:
    """Runs a schedule over ``x_train`` (N, input_dim) float32 in [0, 1].

    ``history`` holds one entry per finished epoch for each key of
    ``HISTORY_KEYS`` (mean over the epoch's batches; ``test_mse`` on
    ``x_test`` if given). With ``out_dir`` a checkpoint is written
    atomically after every epoch.
    """

    def __init__(self, model: NetworkSet, config: TrainConfig, x_train: np.ndarray,
                 x_test: np.ndarray | None = None, out_dir: str | os.PathLike | None = None,
                 progress: bool = True) -> None:
        self.model, self.config = model, config
        dim = model.config.input_dim              # every bad input fails here, before the first step
        self.x_train = check_rows(x_train, dim, "x_train", model.dtype)
        self.x_test = None if x_test is None else check_rows(x_test, dim, "x_test", model.dtype)
        if model.config.encoder_batchnorm and min(len(self.x_train), config.batch_size) < 2:
            raise ValueError(f"a BatchNorm encoder trains on batches of at least 2 rows; got batch_size "
                             f"{config.batch_size} and {len(self.x_train)} training rows: use a batch size "
                             "(--batch-size) of 2 or more, and at least 2 rows")
        self.out_dir = None if out_dir is None else Path(out_dir)
        self.progress = progress
        self.rng = np.random.default_rng(config.seed)
        self.epoch = 0
        self.batch_rows: np.ndarray | None = None     # the training rows of the step's batch (train_epoch)
        if "image_generator" in self.schedule():
            self.history_keys = self.history_keys + IMAGE_HISTORY_KEYS
        self.history: dict[str, list[float]] = {k: [] for k in self.history_keys}
        # one optimizer per phase, over the networks the model's phase table says it trains
        self.optimizers = {phase: model.optimizer(phase, self._rule(phase)) for phase in self.schedule()}
        self.base_lr = {phase: opt.rule.lr for phase, opt in self.optimizers.items()}

    history_keys = HISTORY_KEYS
    held_out_seconds = 0.0                # spent on the per-epoch held-out numbers (of this process)
    reuse_encoder = True                  # a generator phase takes its discriminator phase's enc(x)
    _step_mask: tuple[np.ndarray, np.ndarray] | None = None   # (batch, its dropout mask) of this step
    zero_others = False                   # the step reads only the gradients a phase returns
    resumes: list[dict[str, Any]] = []    # what changed at each resume (epochs, learning rates)
    model_class: type[NetworkSet] = AAE
    config_class: type[TrainConfig] = TrainConfig
    labels: np.ndarray | None = None      # per training row, for models whose phases take labels

    def describe(self) -> str:
        """One line on the run: size, schedule, length, backend."""
        return (f"{self.model.num_params():,} parameters, schedule {self.config.schedule}, "
                f"{self.config.epochs} epochs, {self.model.backend} backend")

    def facts(self) -> dict[str, int]:
        """What a run's summary records besides the model's numbers."""
        return {"epochs": self.epoch}

    def schedule(self) -> tuple[str, ...]:
        """The phases one step runs, in order."""
        image = tuple(p for p in IMAGE_PHASES if p in self.model.phases)
        return SCHEDULES[self.config.schedule] + image

    def _rule(self, phase: str) -> Adam | Momentum:
        c = self.config
        if phase in ("reconstruction", "joint"):
            return self.make_rule(c.lr_ae, adversarial=False)
        lr = {"discriminator": c.lr_d, "generator": c.lr_g, "image_discriminator": c.lr_image_d,
              "image_generator": c.lr_image_g}[phase]
        return self.make_rule(lr, adversarial=c.schedule == "phased" or phase in IMAGE_PHASES)

    def make_rule(self, lr: float, adversarial: bool) -> Adam | Momentum:
        """The configured update rule at ``lr``, with the adversarial or the autoencoder's beta1 / momentum."""
        c = self.config
        if c.optimizer == "momentum":
            return Momentum(lr=lr, momentum=c.momentum_adv if adversarial else c.momentum_ae)
        return Adam(lr=lr, betas=(c.beta1_adv if adversarial else c.beta1_ae, 0.999))

    # -- one step / one epoch -------------------------------------------------------
    def lr_factor(self, progress: float) -> float:
        """1 until ``lr_decay_start``, then linear to 0 at the end (progress in [0, 1])."""
        start = self.config.lr_decay_start
        if progress <= start or start >= 1:
            return 1.0
        return max(0.0, (1 - progress) / (1 - start))

    def _phase_order(self, progress: float) -> list[str]:
        """Set this step's learning rates; the phases to run, adversarial pair repeated ``adv_steps`` times."""
        factor = self.lr_factor(progress) * 0.1 ** sum(self.epoch >= e for e in self.config.decay_epochs)
        for phase, optimizer in self.optimizers.items():
            optimizer.set_lr(self.base_lr[phase] * factor)
        phases = list(self.optimizers)
        if self.config.adv_steps > 1:      # (..., D, G) * adv_steps
            first, last = phases.index("discriminator"), phases.index("generator") + 1
            phases = phases[:first] + phases[first:last] * self.config.adv_steps + phases[last:]
        return phases

    def step(self, x: np.ndarray, progress: float = 0.0, labels: np.ndarray | None = None) -> dict[str, float]:
        """All phases of the schedule on one mini-batch (``labels``: its rows' labels, for the
        models whose phases take them); returns their numbers.

        ``progress`` is the fraction of training done, for the learning-rate schedule.
        """
        stats: dict[str, float] = {}
        previous, self._step_mask = None, None
        for phase in self._phase_order(progress):
            xb, inputs = self.phase_inputs(phase, x, labels)
            # only D changed since the discriminator phase encoded this batch (see phase_grads)
            reuse = self.reuse_encoder and phase == "generator" and previous == "discriminator"
            previous = phase
            try:
                loss, grads = self.model.phase_grads(phase, xb, reuse_encoder=reuse,
                                                     zero_others=self.zero_others, **inputs)
            except NonFiniteError as err:
                raise self._diverged(phase, str(err)) from err
            if not math.isfinite(loss):
                raise self._diverged(phase, f"the loss is not finite ({loss})")
            self.optimizers[phase].step(grads)
            stats.update(self.model.last_stats)
        return stats

    def phase_inputs(self, phase: str, x: np.ndarray,
                     labels: np.ndarray | None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The batch and the inputs ``phase`` takes (the model's phase table names them),
        drawn from ``self.rng``: prior samples, and posterior noise when the model has it."""
        spec, model = self.model.phases[phase], self.model
        inputs = {}
        if "z_prior" in spec.needs:
            inputs["z_prior"] = model.prior.sample(len(x), self.rng, model.dtype)
        if "eps" in spec.uses and model.config.posterior_std > 0:
            inputs["eps"] = self.rng.standard_normal((len(x), model.config.latent_dim)).astype(model.dtype)
        return x, self._with_dropout_mask(spec, x, inputs)

    def _with_dropout_mask(self, spec, x: np.ndarray, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Add the input dropout's keep mask (1 with probability 1 - input_dropout) if the phase needs one:
        one mask per step for every phase on the step's batch when the model's encoder is otherwise
        pure (so the generator phase can take the discriminator phase's forward pass), else one per phase."""
        if "dropout_mask" in spec.needs:
            shared = self._step_mask
            if shared is None or shared[0] is not x or not self.model.encoder_is_pure():
                keep = self.rng.random(x.shape) >= self.model.config.input_dropout
                shared = self._step_mask = x, keep.astype(self.model.dtype)
            inputs["dropout_mask"] = shared[1]
        return inputs

    def _diverged(self, phase: str, what: str) -> TrainingDiverged:
        where = f"the {phase} phase of " if phase in self.optimizers else ""
        path = self.checkpoint_path                 # advice names only what exists: a checkpoint or none
        advice = (f"The last good checkpoint is {path} (epoch {self.epoch}); resume it with smaller learning "
                  f"rates (aae-np train --out {path.parent} --resume --lr LR), or start again with another --seed."
                  if path is not None and self.epoch > 0 and path.is_file() else
                  "No checkpoint was written (no epoch finished). Start again with smaller learning rates "
                  "(--lr LR, or TrainConfig's lr_*), or another --seed.")
        return TrainingDiverged(f"training diverged in {where}epoch {self.epoch + 1}: {what}. {advice}")

    def train_epoch(self) -> dict[str, float]:
        from tqdm.auto import tqdm

        n, bs = len(self.x_train), self.config.batch_size
        order = self.rng.permutation(n)
        sums: dict[str, float] = {}
        batches = batch_bounds(n, bs)           # a last batch of one row joins the one before it
        bar = tqdm(batches, desc=f"epoch {self.epoch + 1}/{self.config.epochs}", unit="batch",
                   disable=not self.progress, leave=False, mininterval=1.0)
        total = max(1, self.config.epochs * len(batches))
        for count, (start, stop) in enumerate(bar, 1):
            progress = (self.epoch * len(batches) + count - 1) / total
            idx = self.batch_rows = order[start:stop]
            stats = self.step(self.x_train[idx], progress, None if self.labels is None else self.labels[idx])
            for k, v in stats.items():
                sums[k] = sums.get(k, 0.0) + v
            if count % 10 == 0:
                bar.set_postfix({k: f"{v / count:.4f}" for k, v in sums.items()})
        bar.close()
        self.batch_rows = None                  # a step called on its own has no training rows
        return {k: v / len(batches) for k, v in sums.items()}

    def fit(self, epochs: int | None = None,
            on_epoch: Callable[["Trainer", dict[str, float]], None] | None = None) -> dict[str, list[float]]:
        """Train until ``epochs`` (default ``config.epochs``) epochs are done in total; on the
        numba backend each epoch's steps run on the pool's two threads (``aae_np.fast.pool``), the
        held-out numbers after it outside, so they are the numbers any later evaluation gives."""
        if epochs is not None and epochs > self.config.epochs:      # the lr schedule ends at config.epochs
            raise ValueError(f"fit({epochs}) goes past this trainer's schedule of {self.config.epochs} epochs (its "
                             f"learning rates are set for that length); build it with epochs={epochs} in its config, "
                             f"or Trainer.resume(checkpoint, ..., epochs={epochs})")
        target = self.config.epochs if epochs is None else epochs
        while self.epoch < target:
            t0 = time.perf_counter()
            with pool.running() if self.model.backend == "numba" else nullcontext():
                means = self.train_epoch()
            if not all(np.isfinite(p).all() for p in self.model.params.values()):
                raise self._diverged("update", "parameters became NaN/inf")
            self.epoch += 1
            t1 = time.perf_counter()
            means.update(self.epoch_metrics())
            self.held_out_seconds += time.perf_counter() - t1
            means["seconds"] = time.perf_counter() - t0
            for key in self.history_keys:
                self.history[key].append(float(means.get(key, float("nan"))))
            if self.out_dir is not None:
                self.save_checkpoint()
            if on_epoch is not None:
                on_epoch(self, means)
        return self.history

    def epoch_metrics(self) -> dict[str, float]:
        """Held-out numbers recorded after every epoch."""
        return {"test_mse": self.test_mse()}

    def test_mse(self) -> float:
        """Held-out reconstruction MSE (mean over all pixels), NaN without test data."""
        return float("nan") if self.x_test is None else self.model.reconstruction_mse(self.x_test)

    # -- checkpoints ---------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path | None:
        return None if self.out_dir is None else self.out_dir / "checkpoint.npz"

    def extra_state(self) -> dict[str, Any]:
        """A subclass's own part of the checkpoint's trainer state (JSON; none here)."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Take back what ``extra_state`` saved (ValueError if it is malformed)."""

    def save_checkpoint(self, path: str | os.PathLike | None = None) -> Path:
        path = Path(path) if path is not None else self.checkpoint_path
        if path is None:
            raise ValueError("save_checkpoint needs a path or a Trainer with out_dir")
        state = {"epoch": self.epoch, "train_config": asdict(self.config), "history": self.history,
                 "rng": self.rng.bit_generator.state, **({"resumes": self.resumes} if self.resumes else {}),
                 **self.extra_state()}
        extra = {"__trainer__": np.array(json.dumps(state))}
        for phase, opt in self.optimizers.items():
            extra.update(opt.state_arrays(f"optim/{phase}"))
        self.model.save(path, extra)
        history = {**self.history, **({"resumes": self.resumes} if self.resumes else {})}
        atomic_write_text(path.with_name("history.json"), json.dumps(history, indent=1))
        return path

    @classmethod
    def resume(cls, path: str | os.PathLike, x_train: np.ndarray, x_test: np.ndarray | None = None,
               epochs: int | None = None, out_dir: str | os.PathLike | None = None,
               progress: bool = True, backend: str | None = None, lr: float | None = None) -> "Trainer":
        """Rebuild a trainer from a checkpoint; ``fit()`` then continues as if never stopped
        (``epochs``, ``lr``: a longer run, or every learning rate changed, e.g. after a divergence)."""
        return cls._resume(path, epochs, backend, lambda model, config: cls(
            model, config, x_train, x_test, out_dir=Path(path).parent if out_dir is None else out_dir,
            progress=progress), lr)

    @classmethod
    def _resume(cls, path, epochs: int | None, backend: str | None, build: Callable[[Any, Any], "Trainer"],
                lr: float | None = None) -> "Trainer":
        """The checkpoint's trainer; ``epochs`` and ``lr`` (every learning rate) may change, and
        a change is recorded in ``resumes``. Every part of the file is checked before use."""
        model, extra = cls.model_class.load_with_extras(path, backend)
        state = read_trainer_state(path, extra)
        try:
            config = cls.config_class.from_dict(state["train_config"])
            changes = {k: v for k, v in (("epochs", epochs), ("lr", lr)) if v is not None}
            config = replace(with_learning_rate(config, lr), **({"epochs": epochs} if epochs is not None else {}))
        except (TypeError, ValueError) as err:
            raise ValueError(f"{path}: cannot resume with these training settings: {err}") from None
        trainer = build(model, config)
        trainer.epoch = state["epoch"]
        trainer.history = {k: [float(v) for v in state["history"].get(k, [])] for k in trainer.history_keys}
        trainer.resumes = state.get("resumes", []) + ([{"epoch": trainer.epoch, **changes}] if changes else [])
        try:
            trainer.load_extra_state(state)
            trainer.rng.bit_generator.state = state["rng"]
            for phase, opt in trainer.optimizers.items():
                opt.load_state_arrays(extra, f"optim/{phase}")
        except (TypeError, ValueError, KeyError) as err:
            raise ValueError(f"{path}: {err}; the checkpoint is damaged or from another run") from None
        return trainer

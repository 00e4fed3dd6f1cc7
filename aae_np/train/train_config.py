"""``TrainConfig``: the settings of a training run, each checked when it is built."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

__all__ = ["TrainConfig", "SCHEDULES", "OPTIMIZERS"]

# The phases of each schedule, in order; which networks a phase trains and which inputs it
# needs come from the model's phase table (``AAE.phases``). A model with an image
# discriminator runs its IMAGE_PHASES after either schedule.
SCHEDULES = {"phased": ("reconstruction", "discriminator", "generator"), "joint": ("joint", "discriminator")}
OPTIMIZERS = ("adam", "momentum")


@dataclass
class TrainConfig:
    epochs: int = 20
    batch_size: int = 100
    schedule: str = "phased"
    lr_ae: float = 1e-3            # reconstruction (phased) or joint step
    lr_d: float = 1e-3
    lr_g: float = 1e-3
    beta1_ae: float = 0.9
    beta1_adv: float = 0.5         # discriminator and generator optimizers
    lr_decay_start: float = 1.0    # fraction of training after which every lr falls linearly to 0
    optimizer: str = "adam"        # "adam" (beta1_*, 0.999) or "momentum" (SGD, momentum_*; the paper's)
    momentum_ae: float = 0.9       # SGD momentum of the reconstruction (joint, supervised) phase
    momentum_adv: float = 0.9      # SGD momentum of the adversarial phases
    decay_epochs: tuple[int, ...] = ()  # every lr divided by 10 after each of these epochs (step decay)
    adv_steps: int = 1             # discriminator + generator steps per reconstruction step
    lr_image_d: float = 4e-4       # image discriminator and image generator (decoder), when the
    lr_image_g: float = 4e-4       # model has an image discriminator; beta1 = beta1_adv
    seed: int = 0

    def __post_init__(self) -> None:
        problems = []
        if self.schedule not in SCHEDULES:
            problems.append(f"schedule must be one of {sorted(SCHEDULES)}, got {self.schedule!r}")
        for name, low in (("epochs", 0), ("adv_steps", 1), ("batch_size", 1)):
            if getattr(self, name) < low:
                problems.append(f"{name} must be >= {low}, got {getattr(self, name)}")
        self.decay_epochs = tuple(self.decay_epochs)
        if self.optimizer not in OPTIMIZERS:
            problems.append(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if not (0 <= self.momentum_ae < 1 and 0 <= self.momentum_adv < 1):
            problems.append("momentum_ae and momentum_adv must lie in [0, 1)")
        if any(not isinstance(e, int) or e < 1 for e in self.decay_epochs) or list(self.decay_epochs) != sorted(
                self.decay_epochs):
            problems.append(f"decay_epochs must be increasing epochs >= 1, got {self.decay_epochs}")
        if not 0 <= self.lr_decay_start <= 1:
            problems.append(f"lr_decay_start must be in [0, 1], got {self.lr_decay_start}")
        for name in ("lr_ae", "lr_d", "lr_g", "lr_image_d", "lr_image_g"):
            if not getattr(self, name) > 0:
                problems.append(f"{name} must be > 0")
        if problems:
            raise ValueError("TrainConfig: " + "; ".join(problems))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

"""A "mean teacher" (Tarvainen & Valpola, 2017): a copy of the model whose parameters are an
exponential moving average of the trained model's, not the paper's.

After step t the teacher's parameters become

    theta_teacher <- a_t * theta_teacher + (1 - a_t) * theta,    a_t = min(decay, (1 + t) / (10 + t)),

so early on, while the model moves fast, the average forgets quickly (a_0 = 0.1) and later it spans
about 1 / (1 - decay) steps. BatchNorm's running statistics are the model's own, copied after every
step (they already are moving averages). Every network is averaged, so the teacher is a whole model:
it gives the consistency phase its target and is the model that is evaluated and saved
(``Trainer.evaluated_model``).
"""

from __future__ import annotations

import numpy as np

from aae_np.models.network_set import NetworkSet

__all__ = ["Teacher"]


class Teacher:
    """The moving average of ``student`` (a ``NetworkSet``) with ``decay`` in (0, 1)."""

    def __init__(self, student: NetworkSet, decay: float) -> None:
        if not 0 < decay < 1:
            raise ValueError(f"Teacher: decay must lie in (0, 1), got {decay}")
        self.student, self.decay, self.steps = student, float(decay), 0
        self.model = type(student)(student.config, backend=student.backend)
        self.model.flat_params[...] = student.flat_params
        self._copy_state()
        self._delta = np.empty_like(student.flat_params)

    def rate(self) -> float:
        """a_t of the next update."""
        return min(self.decay, (1 + self.steps) / (10 + self.steps))

    def update(self) -> None:
        """One step: move the teacher (1 - a_t) of the way to the student."""
        teacher = self.model.flat_params
        np.subtract(self.student.flat_params, teacher, out=self._delta)
        self._delta *= 1 - self.rate()
        teacher += self._delta
        self._copy_state()
        self.steps += 1

    def _copy_state(self) -> None:
        for key, value in self.student.state.items():
            self.model.state[key][...] = value

    def state_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        """What a checkpoint keeps to resume the average bit for bit."""
        return {f"{prefix}/params": self.model.flat_params.copy(), f"{prefix}/steps": np.array(self.steps)}

    def load_state_arrays(self, arrays: dict[str, np.ndarray], prefix: str) -> None:
        params, steps = arrays[f"{prefix}/params"], arrays[f"{prefix}/steps"]
        if params.shape != self.model.flat_params.shape or steps.shape != () or int(steps) < 0:
            raise ValueError(f"the teacher's arrays ({prefix}/...) do not fit this model")
        self.model.flat_params[...] = params
        self.steps = int(steps)
        self._copy_state()

"""Training the dimensionality-reduction AAE (``aae_np.models.reduction``).

The variants' trainer as it is (the same phases, draws, warm-up, checkpoints and resume); it
only rebuilds a ``ReductionAAE`` on resume and records the head cost and the closest two heads'
distance per epoch.
"""

from __future__ import annotations

from aae_np.models.reduction import ReductionAAE
from aae_np.train.variant import VariantTrainer

__all__ = ["ReductionTrainer"]


class ReductionTrainer(VariantTrainer):
    """``VariantTrainer`` for a ``ReductionAAE``."""

    model_class = ReductionAAE
    history_keys = VariantTrainer.history_keys + ("head_cost", "min_head_distance")

"""Shared test settings: hypothesis profiles, the path to the shared MNIST copy, and a helper that
gives a model trained-looking BatchNorm statistics."""

import os
from pathlib import Path

from hypothesis import HealthCheck, settings

settings.register_profile("default", max_examples=60, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", max_examples=60, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") else "default")

REPO = Path(__file__).resolve().parents[1]
SHARED_MNIST = REPO.parent / "shared" / "data" / "mnist"


def with_running_statistics(model, seed=1):
    """Give ``model``'s encoder BatchNorm running statistics other than (0, 1), as after training, so
    that evaluation mode differs from a fresh model's."""
    import numpy as np

    rng = np.random.default_rng(seed)
    for layer in model.nets["encoder"].layers:
        if "running_var" in getattr(layer, "state", {}):
            layer.state["running_mean"][...] = rng.normal(0, 0.5, layer.state["running_mean"].shape)
            layer.state["running_var"][...] = rng.uniform(0.5, 2, layer.state["running_var"].shape)
    return model

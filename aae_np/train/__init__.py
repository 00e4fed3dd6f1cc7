"""Training: the Trainer (one step over a model's phase table), the variants' inputs, presets and resolve."""

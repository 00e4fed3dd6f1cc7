"""Train model/training configurations on MNIST and print the quality numbers of the issue.

Each SPEC is ``name|{AAEConfig json}|{TrainConfig json}``, for example

    .venv/bin/python benchmarks/quality.py \
        'default|{"latent_dim":6,"discriminator_hidden":[256,256]}|{"epochs":15,"batch_size":50,"lr_d":2e-4,"lr_g":4e-4,"lr_decay_start":0.5}'

Printed per run: training seconds, held-out MSE, Fréchet(q(z), N(0, I)), the MNIST score of
10,000 decoded prior samples (and its mean conditional entropy H), the same score of the test
reconstructions (the ceiling for prior samples with a perfectly matched q(z)), and the final
discriminator accuracy. The tables in docs/training.md come from this script. Run one at a time:
it uses every core.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from aae_np.eval import metrics
from aae_np.data import load
from aae_np.eval.mnist_score import load_or_train_classifier
from aae_np.models.aae import AAE, AAEConfig
from aae_np.train.trainer import TrainConfig, Trainer


def score_parts(classifier, images: np.ndarray) -> tuple[float, float]:
    """(score, E[H(y|x)]) with score = exp(H(E p(y|x)) - E H(y|x))."""
    p = classifier.predict_proba(images)
    marginal = p.mean(axis=0)
    h_y = -np.sum(marginal * np.log(marginal + 1e-12))
    h_y_x = -np.sum(p * np.log(p + 1e-12), axis=1).mean()
    return float(np.exp(h_y - h_y_x)), float(h_y_x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("specs", nargs="+", help="name|model-json|train-json")
    parser.add_argument("--data-dir")
    args = parser.parse_args()
    data = load("mnist", args.data_dir)
    classifier = load_or_train_classifier(data.x_train, data.y_train)
    for spec in args.specs:
        name, model_json, train_json = spec.split("|")
        model = AAE(AAEConfig(**json.loads(model_json)))
        trainer = Trainer(model, TrainConfig(**json.loads(train_json)), data.x_train, data.x_test,
                          progress=False)
        trainer.fit()
        z = model.encode(data.x_test)
        prior_score, prior_h = score_parts(classifier, model.decode(model.prior.sample(10_000, np.random.default_rng(0))))
        recon_score, _ = score_parts(classifier, model.reconstruct(data.x_test))
        print(f"{name:12s} t={sum(trainer.history['seconds']):.0f}s mse={trainer.history['test_mse'][-1]:.4f} "
              f"frechet={metrics.frechet_to_prior(z):.3f} score={prior_score:.2f} (H {prior_h:.3f}) "
              f"recon_score={recon_score:.2f} d_acc={trainer.history['d_accuracy'][-1]:.2f}", flush=True)


if __name__ == "__main__":
    main()

"""Offline: how far would splitting a trained clustering model's mixed clusters into its empty ones go?

No training. For a saved clustering model (``benchmarks/results/models/NAME/model.npz``, trained on
the first 9,000 of the shared MNIST training images), every used cluster with at least ``--least``
training images gets a two-way split along the neighbour graph of its images in the encoder's last
hidden layer (``aae_np.train.split.bisect``: each image joined to its ``--k`` nearest by cosine, the
graph made symmetric; the second eigenvector of the normalised graph Laplacian, cut at its median). Each
empty cluster then takes one side of one such split, and a test image of a split cluster follows
the side of most of its 5 nearest training images in it. The test majority error is printed for
each way of choosing which clusters to split:

* ``z``: those whose two sides the style z tells apart worst (``aae_np.train.split.separability``, a
  logistic regression's 3-fold accuracy of the side from z; ``split_at`` does this during training).
  A split the style explains is two styles of one digit; a split it cannot explain is two contents:
  the AAE's own separation of style and content, no label read;
* ``lambda2``: the smallest second eigenvalue (the clearest two communities);
* ``largest``: the most training images;
* ``labels``: the least pure by the true labels (reads them: a ceiling, not a method).

    .venv/bin/python benchmarks/split_clusters.py benchmarks/results/models/clustering-clusters30-neighbours5-seed1/model.npz

docs/variants.md has the numbers.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aae_np.eval.clustering import clustering_error  # noqa: E402
from aae_np.train.split import cluster_cuts  # noqa: E402

CHOICES = ("z", "lambda2", "largest", "labels")


def split_errors(model, x_train, y_train, x_test, y_test, k: int = 10, least: int = 60) -> dict[str, float]:
    """The test majority error as trained (``"as trained"``) and after splitting by each of ``CHOICES``."""
    n_clusters = model.config.n_classes
    train_c, test_c = model.classify(x_train).argmax(1), model.classify(x_test).argmax(1)
    h_train, h_test = (h / np.maximum(np.linalg.norm(h, axis=1, keepdims=True), 1e-12)
                       for h in (model.hidden("encoder", x_train), model.hidden("encoder", x_test)))
    z = model.encode(x_train)
    empty = [c for c in range(n_clusters) if not (train_c == c).any()]
    splits = cluster_cuts(train_c, h_train, z, k, least)          # what split_at cuts during training
    for c, cut in splits.items():
        cut.update(z=cut["separability"], largest=-len(cut["rows"]),
                   labels=np.bincount(y_train[cut["rows"]]).max() / len(cut["rows"]))
    out = {"as trained": clustering_error(train_c, y_train, test_c, y_test, n_clusters)}
    for choice in CHOICES:
        chosen = sorted(splits, key=lambda c: splits[c][choice])[:len(empty)]
        new_train, new_test = train_c.copy(), test_c.copy()
        for c, free in zip(chosen, empty):
            rows, side = splits[c]["rows"], splits[c]["side"]
            new_train[rows[side == 1]] = free
            tests = np.flatnonzero(test_c == c)
            nearest = np.argsort(-(h_test[tests] @ h_train[rows].T), axis=1)[:, :5]
            new_test[tests[side[nearest].mean(axis=1) > 0.5]] = free
        out[choice] = clustering_error(new_train, y_train, new_test, y_test, n_clusters)
    return out


def main(argv: list[str] | None = None) -> None:
    from aae_np.data import load
    from aae_np.models.load import load_model

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, help="a clustering model.npz")
    parser.add_argument("--data-dir", default=None, help="the MNIST folder (default: as aae-np finds it)")
    parser.add_argument("--train-images", type=int, default=9000, help="the images it trained on (the preset: 9000)")
    parser.add_argument("--k", type=int, default=10, help="neighbours per image in the graph")
    parser.add_argument("--least", type=int, default=60, help="the fewest training images of a cluster to split")
    args = parser.parse_args(argv)
    model, _ = load_model(args.model, backend="numpy")
    data = load("mnist", args.data_dir)
    n = args.train_images
    x_train, y_train = data.x_train[:n].astype(model.dtype), data.y_train[:n]
    errors = split_errors(model, x_train, y_train, data.x_test.astype(model.dtype), data.y_test, args.k, args.least)
    for name, error in errors.items():
        print(f"{name:>10}: {100 * error:.2f} %")


if __name__ == "__main__":
    main()

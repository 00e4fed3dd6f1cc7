"""Offline: how pure are the neighbourhoods a clustering can hope to follow?

No training. For a saved clustering model, each of the first ``--images`` training images is given
the majority label of its ``--k`` nearest other images (cosine), in pixel space and in the encoder's
last hidden layer (``NetworkSet.hidden``), and the share that get their own label is printed beside
the model's majority-vote error on the same images. A clustering whose clusters are each mapped to
one label cannot be much purer than the neighbourhoods its features draw: a majority error well
below 1 - (that share) would need cluster borders that follow the labels more closely than the
features do. Labels are read only to score.

    .venv/bin/python benchmarks/neighbour_purity.py benchmarks/results/models/NAME/model.npz
    .venv/bin/python benchmarks/neighbour_purity.py MODEL --dataset fashion-mnist --images 15000

docs/variants.md ("Issue 27, eleventh session") has the numbers.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aae_np.eval.clustering import clustering_error  # noqa: E402
from aae_np.train.neighbours import nearest_neighbours  # noqa: E402


def neighbour_vote_accuracy(features: np.ndarray, labels: np.ndarray, k: int) -> float:
    """The share of rows whose k nearest other rows' majority label (ties: the smallest) is their own."""
    table = nearest_neighbours(features, k)
    votes = np.apply_along_axis(np.bincount, 1, labels[table], minlength=int(labels.max()) + 1)
    return float((votes.argmax(axis=1) == labels).mean())


def main(argv: list[str] | None = None) -> int:
    from aae_np.data import load
    from aae_np.models.load import load_model

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, help="a clustering model.npz")
    parser.add_argument("--dataset", default="mnist", choices=("mnist", "fashion-mnist"))
    parser.add_argument("--data-dir", default=None, help="the dataset's folder (default: as aae-np finds "
                        "it; for fashion-mnist the system package's)")
    parser.add_argument("--images", type=int, default=9000,
                        help="the first N training images (the MNIST preset trains on 9000)")
    parser.add_argument("--k", type=int, default=10, help="neighbours per image")
    args = parser.parse_args(argv)
    model, _ = load_model(args.model, backend="numpy")
    folder = args.data_dir or ("/usr/share/datasets/fashion-mnist" if args.dataset == "fashion-mnist" else None)
    data = load(args.dataset, folder, download_ok=False)
    x, y = data.x_train[:args.images].astype(model.dtype), data.y_train[:args.images]
    clusters = model.classify(x).argmax(axis=1)
    print(f"{args.model} on the first {len(x):,} {args.dataset} training images, {args.k} nearest neighbours")
    print(f"  the model's majority error: {clustering_error(clusters, y, clusters, y, model.config.n_classes):.2%} "
          f"({len(np.unique(clusters))} of {model.config.n_classes} clusters used)")
    for name, features in (("pixels", x), ("hidden layer", model.hidden("encoder", x))):
        share = neighbour_vote_accuracy(features, y, args.k)
        print(f"  {name:>12}: {share:.2%} of images carry their neighbours' majority label ({1 - share:.2%} do not)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The ``aae-np`` command line."""

from __future__ import annotations

import argparse
import sys

import numpy as np


def _cmd_gradcheck(args: argparse.Namespace) -> int:
    """Check every layer and loss against finite differences and print the reports."""
    from aae_np import losses
    from aae_np.gradcheck import check_layer, check_loss
    from aae_np.layers import Dense, LeakyReLU, ReLU, Sequential, Sigmoid, Tanh

    rng = np.random.default_rng(args.seed)
    x = rng.uniform(-2, 2, (4, 6))
    x[np.abs(x) < 1e-2] = 0.5           # keep ReLU inputs off the kink
    reports = [
        check_layer(Dense(6, 5, rng=rng), x, h=1e-3),   # linear: large h is exact
        check_layer(ReLU(), x),
        check_layer(LeakyReLU(), x),
        check_layer(Sigmoid(), x),
        check_layer(Tanh(), x),
        check_layer(Sequential(Dense(6, 5, rng=rng, init="glorot"), Tanh(),
                               Dense(5, 3, rng=rng, init="glorot")), x, h=1e-4, tol=1e-6),
        check_loss(losses.mse, rng.uniform(-1, 1, (4, 3)), rng.uniform(-1, 1, (4, 3)), h=1e-3),
        check_loss(losses.bce, rng.uniform(0.05, 0.95, (4, 3)), rng.integers(0, 2, (4, 3)).astype(float)),
        check_loss(losses.bce_with_logits, rng.uniform(-4, 4, (4, 3)), rng.integers(0, 2, (4, 3)).astype(float)),
        check_loss(losses.softmax_cross_entropy, rng.uniform(-2, 2, (4, 3)), rng.integers(0, 3, 4)),
    ]
    for report in reports:
        print(report, end="\n\n")
    failed = [r.title for r in reports if not r.passed()]
    print(f"{len(reports) - len(failed)}/{len(reports)} checks passed; "
          f"worst relative error {max(r.max_rel_error for r in reports):.2e}")
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aae-np", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("gradcheck", help="finite-difference check of every layer and loss")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_gradcheck)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

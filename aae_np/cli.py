"""The ``aae-np`` command line: train, sample, reconstruct, encode, evaluate, gradcheck.

Bad arguments and bad data end with one ``aae-np: error: ...`` line and exit
status 2, never a traceback (``AAE_NP_DEBUG=1`` shows the traceback).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

EXIT_USAGE, EXIT_DIVERGED = 2, 3


class CLIError(Exception):
    """A problem the user can fix; printed as one line."""


def _load_data(args: argparse.Namespace):
    from aae_np.data import load

    return load(args.dataset, args.data_dir, download_ok=not args.no_download, progress=not args.quiet)


def _load_model(path: str):
    from aae_np.model import AAE

    return AAE.load(path)


# -- train ----------------------------------------------------------------------------
def _cmd_train(args: argparse.Namespace) -> int:
    from aae_np.model import AAE, AAEConfig
    from aae_np.presets import get_preset
    from aae_np.train import Trainer

    out = Path(args.out)
    data = _load_data(args)
    checkpoint = out / "checkpoint.npz"
    if args.resume:
        if not checkpoint.is_file():
            raise CLIError(f"--resume: no checkpoint at {checkpoint}; start a run with --out {out} first")
        trainer = Trainer.resume(checkpoint, data.x_train, data.x_test, epochs=args.epochs,
                                 progress=not args.quiet)
        print(f"resuming {checkpoint} at epoch {trainer.epoch}/{trainer.config.epochs}")
    else:
        model_cfg, train_cfg = get_preset(args.preset)
        overrides = {k: v for k, v in (("latent_dim", args.latent_dim), ("seed", args.seed)) if v is not None}
        model_cfg = AAEConfig.from_dict({**model_cfg.to_dict(), **overrides})
        for key in ("epochs", "batch_size", "schedule", "seed"):
            if getattr(args, key) is not None:
                setattr(train_cfg, key, getattr(args, key))
        if args.lr is not None:
            train_cfg.lr_ae = train_cfg.lr_d = train_cfg.lr_g = args.lr
        train_cfg.__post_init__()
        if checkpoint.exists() and not args.overwrite:
            raise CLIError(f"{out} already holds a run; pass --resume to continue it, "
                           f"--overwrite to start again, or another --out")
        trainer = Trainer(AAE(model_cfg), train_cfg, data.x_train, data.x_test, out_dir=out,
                          progress=not args.quiet)
        print(f"training preset {args.preset!r} ({trainer.model.num_params():,} parameters, "
              f"schedule {train_cfg.schedule}, {train_cfg.epochs} epochs, {trainer.model.backend} backend) "
              f"on {len(data.x_train):,} "
              f"{args.dataset} images -> {out}/")

    def report(t: Trainer, means: dict[str, float]) -> None:
        if not args.quiet:
            print(f"epoch {t.epoch:3d}/{t.config.epochs}  recon {means.get('recon_loss', float('nan')):.4f}  "
                  f"D {means.get('d_loss', float('nan')):.3f} (acc {means.get('d_accuracy', float('nan')):.2f})  "
                  f"G {means.get('g_loss', float('nan')):.3f}  test MSE {means['test_mse']:.4f}  "
                  f"[{means['seconds']:.1f}s]", flush=True)

    start = time.perf_counter()
    trainer.fit(on_epoch=report)
    seconds = time.perf_counter() - start
    model = trainer.model
    model.save(out / "model.npz")
    summary = _evaluate(model, data, score=False)
    summary.update(train_seconds=round(seconds, 2), epochs=trainer.epoch)
    (out / "metrics.json").write_text(json.dumps(summary, indent=1))
    written = _plots(model, data, trainer.history, out, seed=trainer.config.seed)
    print(f"done in {seconds:.1f}s: test MSE {summary['test_mse']:.4f}, "
          f"Frechet(q(z), p(z)) {summary['frechet']:.3f}")
    print("wrote " + ", ".join(str(p) for p in [out / "model.npz", out / "history.json",
                                                 out / "metrics.json", *written]))
    return 0


def _evaluate(model, data, score: bool, cache: str | None = None) -> dict[str, float]:
    from aae_np import metrics

    x_hat = model.reconstruct(data.x_test)
    z = model.encode(data.x_test)
    result = {"test_mse": metrics.reconstruction_mse(data.x_test, x_hat),
              "frechet": metrics.frechet_to_prior(z, prior_cov=model.config.prior_std ** 2
                                                  * np.eye(model.config.latent_dim))}
    if score:
        from aae_np.mnist_score import load_or_train_classifier, mnist_score

        clf = load_or_train_classifier(data.x_train, data.y_train, cache=cache)
        samples = model.decode(model.prior.sample(10_000, np.random.default_rng(0)))
        result["mnist_score"] = mnist_score(clf, samples)
        result["mnist_score_real_test"] = mnist_score(clf, data.x_test)
    return {k: float(v) for k, v in result.items()}


def _plots(model, data, history, out: Path, seed: int = 0) -> list[Path]:
    from aae_np import plots

    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    x = data.x_test[:10]
    written = [
        plots.reconstructions(x, model.reconstruct(x), out / "reconstructions.png"),
        plots.samples(model.decode(model.prior.sample(100, rng)), out / "samples.png"),
        plots.latent_scatter(model.encode(data.x_test[:5000]), data.y_test[:5000], out / "latent.png"),
    ]
    if history:
        written.append(plots.loss_curves(history, out / "losses.png"))
    if model.config.latent_dim == 2:
        written.append(plots.latent_manifold(model.decode, out / "manifold.png"))
    return written


# -- sample / reconstruct / encode / evaluate -------------------------------------------
def _cmd_sample(args: argparse.Namespace) -> int:
    from aae_np import plots

    model = _load_model(args.model)
    images = model.decode(model.prior.sample(args.n, np.random.default_rng(args.seed)))
    out = Path(args.out)
    if out.suffix == ".npy":
        np.save(out, images)
    else:
        plots.samples(images, out)
    print(f"wrote {args.n} samples to {out}")
    return 0


def _cmd_reconstruct(args: argparse.Namespace) -> int:
    from aae_np import plots

    model, data = _load_model(args.model), _load_data(args)
    x = data.x_test[:args.n]
    plots.reconstructions(x, model.reconstruct(x), Path(args.out), n=args.n)
    print(f"wrote {len(x)} test images and their reconstructions to {args.out}")
    return 0


def _cmd_encode(args: argparse.Namespace) -> int:
    model, data = _load_model(args.model), _load_data(args)
    x, y = (data.x_test, data.y_test) if args.split == "test" else (data.x_train, data.y_train)
    z = model.encode(x)
    out = Path(args.out)
    np.savez(out, z=z, labels=y) if out.suffix == ".npz" else np.save(out, z)
    print(f"wrote codes of {len(z)} {args.split} images, shape {z.shape}, to {out}")
    if args.plot:
        from aae_np import plots

        plots.latent_scatter(z, y, Path(args.plot))
        print(f"wrote {args.plot}")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    model, data = _load_model(args.model), _load_data(args)
    result = _evaluate(model, data, score=args.score, cache=args.classifier_cache)
    for key, value in result.items():
        print(f"{key:24s} {value:.4f}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0


def _cmd_gradcheck(args: argparse.Namespace) -> int:
    """Check every layer, loss and model phase against finite differences; print the reports."""
    from aae_np.demo import gradcheck_reports

    reports = gradcheck_reports(args.seed)
    for report in reports:
        print(report, end="\n\n")
    failed = [r.title for r in reports if not r.passed()]
    print(f"{len(reports) - len(failed)}/{len(reports)} checks passed; "
          f"worst relative error {max(r.max_rel_error for r in reports):.2e}")
    return 1 if failed else 0


# -- parser -------------------------------------------------------------------------------
def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
    return value


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and a pointer to --help), not a usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", help="folder with the four IDX files (else $AAE_NP_DATA, data/<dataset>, "
                                      "or download)")
    p.add_argument("--dataset", default="mnist", choices=["mnist", "fashion-mnist"])
    p.add_argument("--no-download", action="store_true", help="never download; fail if the data is missing")


def build_parser() -> argparse.ArgumentParser:
    from aae_np.presets import PRESETS

    parser = _Parser(prog="aae-np", description="Adversarial Autoencoders in NumPy.")
    parser.add_argument("--threads", type=_positive_int,
                        help="BLAS threads (sets OMP/OPENBLAS/MKL_NUM_THREADS; default: all cores)")
    parser.add_argument("--backend", choices=["numpy", "numba"],
                        help="numpy: the readable layers; numba: fused kernels (default: $AAE_NP_BACKEND, "
                             "else numba when installed)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars or per-epoch lines")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("train", help="train an AAE; writes model.npz, history.json, metrics.json and plots")
    _data_args(p)
    p.add_argument("--out", default="runs/default", help="output folder (default runs/default)")
    p.add_argument("--preset", default="default", choices=sorted(PRESETS))
    p.add_argument("--schedule", choices=["phased", "joint"], help="phased (paper, default) or joint (tutorial)")
    p.add_argument("--epochs", type=_positive_int)
    p.add_argument("--batch-size", type=_positive_int)
    p.add_argument("--latent-dim", type=_positive_int)
    p.add_argument("--lr", type=_positive_float, help="one learning rate for all optimizers")
    p.add_argument("--seed", type=int)
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    p.add_argument("--overwrite", action="store_true", help="start again even if --out holds a run")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("sample", help="decode prior samples into a PNG grid (or .npy)")
    p.add_argument("--model", required=True)
    p.add_argument("--n", type=_positive_int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="samples.png")
    p.set_defaults(func=_cmd_sample)

    p = sub.add_parser("reconstruct", help="test images above their reconstructions, as a PNG")
    p.add_argument("--model", required=True)
    _data_args(p)
    p.add_argument("--n", type=_positive_int, default=10)
    p.add_argument("--out", default="reconstructions.png")
    p.set_defaults(func=_cmd_reconstruct)

    p = sub.add_parser("encode", help="latent codes of a data split (.npy, or .npz with labels)")
    p.add_argument("--model", required=True)
    _data_args(p)
    p.add_argument("--split", choices=["train", "test"], default="test")
    p.add_argument("--out", default="z.npz")
    p.add_argument("--plot", help="also write a latent scatter PNG here")
    p.set_defaults(func=_cmd_encode)

    p = sub.add_parser("evaluate", help="held-out reconstruction MSE, Frechet(q(z), p(z)) [, MNIST score]")
    p.add_argument("--model", required=True)
    _data_args(p)
    p.add_argument("--score", action="store_true",
                   help="also the MNIST score of 10,000 prior samples (trains/caches a small classifier)")
    p.add_argument("--classifier-cache", help="classifier cache file (default ~/.cache/aae_np/...)")
    p.add_argument("--json", help="also write the numbers to this JSON file")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("gradcheck", help="finite-difference check of every layer, loss and model phase")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_gradcheck)
    return parser


def _set_threads(n: int | None) -> None:
    if n is not None:
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
            os.environ[var] = str(n)
        try:    # BLAS may already be loaded (numpy is imported above): resize its pool too
            from threadpoolctl import threadpool_limits

            threadpool_limits(n)
        except ImportError:
            pass


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _set_threads(args.threads)
    if args.backend:
        os.environ["AAE_NP_BACKEND"] = args.backend
    from aae_np.train import TrainingDiverged

    try:
        return args.func(args)
    except TrainingDiverged as err:
        print(f"aae-np: training stopped: {err}", file=sys.stderr)
        return EXIT_DIVERGED
    except (CLIError, ValueError, OSError) as err:
        if os.environ.get("AAE_NP_DEBUG"):
            raise
        print(f"aae-np: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("aae-np: interrupted (the last epoch's checkpoint is kept; --resume continues)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

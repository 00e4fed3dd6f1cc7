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
    from aae_np.models.aae import load_model

    return load_model(path)[0]


def _is_variant(model) -> bool:
    return getattr(model, "kind", "aae") == "variant"


# -- train ----------------------------------------------------------------------------
def _cmd_train(args: argparse.Namespace) -> int:
    from aae_np.models.aae import AAE, AAEConfig
    from aae_np.train.presets import get_preset
    from aae_np.train.trainer import Trainer

    out = Path(args.out)
    checkpoint = out / "checkpoint.npz"
    if args.resume and checkpoint.is_file():      # the checkpoint, not the flags, says what it is
        from aae_np.models.aae import model_kind

        is_variant = model_kind(checkpoint) == "variant"
    else:
        is_variant = args.variant is not None
    if is_variant:
        return _train_variant(args, out, checkpoint)
    for flag in ("labels", "label_seed", "clusters", "prior"):
        if getattr(args, flag) is not None:
            raise CLIError(f"--{flag.replace('_', '-')} applies to the variants only; add --variant NAME")
    data = _load_data(args)
    if args.resume:
        _require_checkpoint(out, checkpoint)
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
        _check_fresh_out(out, checkpoint, args.overwrite)
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


def _require_checkpoint(out: Path, checkpoint: Path) -> None:
    if not checkpoint.is_file():
        raise CLIError(f"--resume: no checkpoint at {checkpoint}; start a run with --out {out} first")


def _check_fresh_out(out: Path, checkpoint: Path, overwrite: bool) -> None:
    if checkpoint.exists() and not overwrite:
        raise CLIError(f"{out} already holds a run; pass --resume to continue it, "
                       f"--overwrite to start again, or another --out")


def _train_variant(args: argparse.Namespace, out: Path, checkpoint: Path) -> int:
    """``train --variant NAME``: one of the paper's variants (aae_np.models.variants)."""
    from aae_np.train.presets import get_variant_preset
    from aae_np.train.variant import VariantTrainer, evaluate_variant
    from aae_np.models.variants import VariantAAE, VariantConfig

    data = _load_data(args)
    if args.resume:
        _require_checkpoint(out, checkpoint)
        trainer = VariantTrainer.resume(checkpoint, data.x_train, data.y_train, data.x_test, data.y_test,
                                        epochs=args.epochs, progress=not args.quiet)
        print(f"resuming {checkpoint} at epoch {trainer.epoch}/{trainer.config.epochs}")
    else:
        model_cfg, train_cfg = get_variant_preset(args.variant)
        overrides = {}
        if args.seed is not None:
            overrides["seed"] = args.seed
        if args.clusters is not None:
            if args.variant != "clustering":
                raise CLIError("--clusters applies to --variant clustering only")
            overrides["n_classes"] = args.clusters
        if args.prior is not None:
            overrides["prior"] = _prior_config(args.prior, args.latent_dim or model_cfg.style_dim, model_cfg.n_classes)
            if args.latent_dim is None and args.prior in ("mixture", "swiss_roll"):
                overrides["style_dim"] = 2
        if args.latent_dim is not None:
            overrides["style_dim"] = args.latent_dim
            if args.prior is None and model_cfg.prior:
                overrides["prior"] = _prior_config(model_cfg.prior["name"], args.latent_dim, model_cfg.n_classes)
        model_cfg = VariantConfig.from_dict({**model_cfg.to_dict(), **overrides})
        for key in ("epochs", "batch_size", "seed"):
            if getattr(args, key) is not None:
                setattr(train_cfg, key, getattr(args, key))
        if train_cfg.warmup_epochs >= train_cfg.epochs:      # a short run still gets its adversarial epochs
            train_cfg.warmup_epochs = train_cfg.epochs // 2
        if args.schedule not in (None, "phased"):
            raise CLIError("the variants train with the phased schedule only")
        if args.labels is not None:
            if args.variant not in ("semi-supervised", "conditioned"):
                raise CLIError("--labels applies to --variant semi-supervised or conditioned")
            train_cfg.n_labels = args.labels
        if args.label_seed is not None:
            train_cfg.label_seed = args.label_seed
        if args.lr is not None:
            train_cfg.lr_ae = train_cfg.lr_d = train_cfg.lr_g = train_cfg.lr_sup = args.lr
        train_cfg.__post_init__()
        _check_fresh_out(out, checkpoint, args.overwrite)
        trainer = VariantTrainer(VariantAAE(model_cfg), train_cfg, data.x_train, data.y_train, data.x_test,
                                 data.y_test, out_dir=out, progress=not args.quiet)
        labels = (f", {len(trainer.labelled):,} labels" if model_cfg.uses_labels else "")
        print(f"training the {model_cfg.variant} variant ({trainer.model.num_params():,} parameters, "
              f"{train_cfg.epochs} epochs{labels}, {trainer.model.backend} backend) on {len(data.x_train):,} "
              f"{args.dataset} images -> {out}/")

    def report(t, means: dict[str, float]) -> None:
        if not args.quiet:
            extra = (f"  test error {means['test_error']:.4f}" if "test_error" in means else "")
            print(f"epoch {t.epoch:3d}/{t.config.epochs}  recon {means.get('recon_loss', float('nan')):.4f}  "
                  f"D {means.get('d_loss', float('nan')):.3f}  G {means.get('g_loss', float('nan')):.3f}  "
                  f"test MSE {means.get('test_mse', float('nan')):.4f}{extra}  [{means['seconds']:.1f}s]",
                  flush=True)

    start = time.perf_counter()
    trainer.fit(on_epoch=report)
    seconds = time.perf_counter() - start
    model = trainer.model
    model.save(out / "model.npz")
    summary = evaluate_variant(model, data.x_train, data.y_train, data.x_test, data.y_test)
    summary.update(train_seconds=round(seconds, 2), epochs=trainer.epoch, n_labels=int(len(trainer.labelled)))
    (out / "metrics.json").write_text(json.dumps(summary, indent=1))
    written = _variant_plots(model, data, trainer.history, out, seed=trainer.config.seed)
    print(f"done in {seconds:.1f}s: " + ", ".join(f"{k} {v:.4f}" for k, v in summary.items()
                                                 if isinstance(v, float) and k != "train_seconds"))
    print("wrote " + ", ".join(str(p) for p in [out / "model.npz", out / "history.json",
                                                 out / "metrics.json", *written]))
    return 0


def _prior_config(name: str, dim: int, k: int) -> dict:
    if name in ("mixture", "swiss_roll"):
        if dim != 2:
            raise CLIError(f"the {name} prior is 2-D; use --latent-dim 2 (or leave it out)")
        return {"name": name, "k": k}
    return {"name": name, "dim": dim}


def _variant_plots(model, data, history, out: Path, seed: int = 0) -> list[Path]:
    from aae_np.eval import plots

    c = model.config
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    x, y = data.x_test[:10], data.y_test[:10]
    written = [plots.reconstructions(x, model.reconstruct(x, y if c.variant == "supervised" else None),
                                     out / "reconstructions.png"),
               plots.samples(model.sample(100, rng), out / "samples.png")]
    z = model.encode(data.x_test[:5000])
    written.append(plots.latent_scatter(z, data.y_test[:5000], out / "latent.png",
                                        title=f"Test codes z ({c.variant})"))
    if c.decoder_gets_label:           # the paper's style/content figure
        written.append(plots.style_grid(model.decode, model.prior.sample(10, rng), c.n_classes,
                                        out / "styles.png"))
    if c.variant == "clustering":
        clusters = model.classify(data.x_test).argmax(1)
        heads = model.decode(np.zeros((c.n_classes, c.style_dim)), np.arange(c.n_classes))
        members = [data.x_test[clusters == k][:10] for k in range(c.n_classes)]
        written.append(plots.cluster_grid(heads, members, out / "clusters.png"))
    if history:
        written.append(plots.loss_curves(history, out / "losses.png"))
    if c.style_dim == 2 and not c.decoder_gets_label:
        written.append(plots.latent_manifold(model.decode, out / "manifold.png"))
    return written


def _evaluate(model, data, score: bool, cache: str | None = None) -> dict[str, float]:
    from aae_np.eval import metrics

    x_hat = model.reconstruct(data.x_test)
    z = model.encode(data.x_test)
    result = {"test_mse": metrics.reconstruction_mse(data.x_test, x_hat),
              "frechet": metrics.frechet_to_prior(z, prior_cov=model.config.prior_std ** 2
                                                  * np.eye(model.config.latent_dim))}
    if score:
        from aae_np.eval.mnist_score import load_or_train_classifier, mnist_score

        clf = load_or_train_classifier(data.x_train, data.y_train, cache=cache)
        samples = model.decode(model.prior.sample(10_000, np.random.default_rng(0)))
        result["mnist_score"] = mnist_score(clf, samples)
        result["mnist_score_real_test"] = mnist_score(clf, data.x_test)
    return {k: float(v) for k, v in result.items()}


def _plots(model, data, history, out: Path, seed: int = 0) -> list[Path]:
    from aae_np.eval import plots

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
    from aae_np.eval import plots

    model = _load_model(args.model)
    rng = np.random.default_rng(args.seed)
    images = model.sample(args.n, rng) if _is_variant(model) else model.decode(model.prior.sample(args.n, rng))
    out = Path(args.out)
    if out.suffix == ".npy":
        np.save(out, images)
    else:
        plots.samples(images, out)
    print(f"wrote {args.n} samples to {out}")
    return 0


def _cmd_reconstruct(args: argparse.Namespace) -> int:
    from aae_np.eval import plots

    model, data = _load_model(args.model), _load_data(args)
    x = data.x_test[:args.n]
    x_hat = (model.reconstruct(x, data.y_test[:args.n] if model.config.variant == "supervised" else None)
             if _is_variant(model) else model.reconstruct(x))
    plots.reconstructions(x, x_hat, Path(args.out), n=args.n)
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
        from aae_np.eval import plots

        plots.latent_scatter(z, y, Path(args.plot))
        print(f"wrote {args.plot}")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    model, data = _load_model(args.model), _load_data(args)
    if _is_variant(model):
        from aae_np.train.variant import evaluate_variant

        if args.score:
            raise CLIError("--score is for plain AAE models; the variants report their own metrics")
        result = evaluate_variant(model, data.x_train, data.y_train, data.x_test, data.y_test, parzen=args.parzen)
    else:
        result = _evaluate(model, data, score=args.score, cache=args.classifier_cache)
        if args.parzen:
            from aae_np.eval.metrics import parzen_evaluation

            samples = model.decode(model.prior.sample(10_000, np.random.default_rng(0)))
            result.update(parzen_evaluation(samples, data.x_train[-1000:], data.x_test))
    for key, value in result.items():
        print(f"{key:24s} {value:.4f}" if isinstance(value, float) else f"{key:24s} {value}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0


def _cmd_gradcheck(args: argparse.Namespace) -> int:
    """Check every layer, loss and model phase against finite differences; print the reports."""
    from aae_np.teach.tour import gradcheck_reports

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
    from aae_np.train.presets import PRESETS
    from aae_np.models.priors import PRIORS
    from aae_np.models.variants import VARIANTS

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
    p.add_argument("--variant", choices=list(VARIANTS),
                   help="one of the paper's variants instead of the plain AAE (its own preset; see README)")
    p.add_argument("--labels", type=int, metavar="N",
                   help="labelled training images, N/10 per class (semi-supervised, conditioned; -1: all)")
    p.add_argument("--label-seed", type=int, help="which labelled images are drawn (default 0)")
    p.add_argument("--clusters", type=_positive_int, help="number of clusters (clustering variant)")
    p.add_argument("--prior", choices=sorted(PRIORS), help="prior of z for the variants")
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

    p = sub.add_parser("evaluate", help="held-out reconstruction MSE, Frechet(q(z), p(z)) [, MNIST score, "
                                        "Parzen]; the variants' errors")
    p.add_argument("--model", required=True)
    _data_args(p)
    p.add_argument("--score", action="store_true",
                   help="also the MNIST score of 10,000 prior samples (trains/caches a small classifier)")
    p.add_argument("--classifier-cache", help="classifier cache file (default ~/.cache/aae_np/...)")
    p.add_argument("--parzen", action="store_true",
                   help="also the Parzen-window log-likelihood of the test set (10,000 samples, sigma "
                        "chosen on the last 1,000 training images; the paper's Table 1)")
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
    from aae_np.train.trainer import TrainingDiverged

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

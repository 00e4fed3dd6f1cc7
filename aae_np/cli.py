"""The ``aae-np`` command line: train, sample, reconstruct, encode, evaluate, gradcheck.

The CLI parses and reports: the settings of a run come from ``train.presets.resolve``, the
numbers and figures from ``eval.report``, and the backend (``--backend``) is passed to the
library as an argument. Bad arguments and bad data end with one ``aae-np: error: ...`` line
and exit status 2, never a traceback (``AAE_NP_DEBUG=1`` shows the traceback).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from aae_np import cli_data
from aae_np.cli_args import EXIT_USAGE, build_parser, set_threads
from aae_np.files import atomic_write, atomic_write_text

EXIT_DIVERGED = 3
MAX_IMAGES = 100_000          # sample / reconstruct --n: 100,000 images of 784 floats are 0.3 GB
# the settings of a run that train --resume may not change (epochs and lr may): presets.resolve's keywords
SETTINGS = ("latent_dim", "seed", "epochs", "batch_size", "schedule", "lr", "labels", "label_seed", "clusters",
            "prior", "encoder_batchnorm", "input_dropout", "variant", "consistency", "recipe", "decoded_class", "starts",
            "neighbours", "split_at")


class CLIError(Exception):
    """A problem the user can fix; printed as one line."""


def _load_data(args: argparse.Namespace):
    """The data of a model command: its own training data unless named (``cli_data``)."""
    data = cli_data.data_for_model(args)
    cli_data.say_notes(data)
    return data


def _load_model(args: argparse.Namespace):
    from aae_np.models import load_model

    return load_model(args.model, backend=args.backend)[0]


# -- train ----------------------------------------------------------------------------
def _cmd_train(args: argparse.Namespace) -> int:
    loading = cli_data.start_loading(args)        # IDX data on a thread, while this one imports
    from aae_np.eval import report
    from aae_np.train.presets import resolve
    from aae_np.train.run import RunFolder, new_trainer, resume_trainer

    out = Path(args.out)
    checkpoint = out / "checkpoint.npz"
    settings = {k: getattr(args, k) for k in SETTINGS}
    progress = not args.quiet and sys.stderr.isatty()        # bars on a terminal; a log gets one line an epoch
    if args.resume and not checkpoint.is_file():
        raise CLIError(f"--resume: no checkpoint at {checkpoint}; start a run with --out {out} first")
    if not args.resume:
        model_cfg, train_cfg = resolve(args.preset or "default", **settings)
    with RunFolder(out, resume=args.resume, overwrite=args.overwrite):
        clock = time.perf_counter()
        data = cli_data.training_data(args, loading)
        # with a thread: how long loading took there, while this one imported
        timings = {"data": loading.seconds if loading else time.perf_counter() - clock}
        if args.resume:
            if args.preset is not None:
                raise CLIError("--preset cannot change on --resume: the run keeps its own settings")
            trainer = resume_trainer(checkpoint, data, epochs=args.epochs, backend=args.backend, progress=progress,
                                     lr=args.lr, same={k: v for k, v in settings.items() if v is not None
                                                       and k not in ("epochs", "lr")})
            print(f"resuming {checkpoint} at epoch {trainer.epoch}/{trainer.config.epochs}")
        else:
            model_cfg, train_cfg = cli_data.fit_model_config(model_cfg, train_cfg, data, args.consistency is not None)
            trainer = new_trainer(model_cfg, train_cfg, data, out_dir=out, backend=args.backend, progress=progress,
                                  report=None if args.quiet else print)
            name = f"the {args.variant} variant" if args.variant else f"preset {args.preset or 'default'!r}"
            print(f"training {name} ({trainer.describe()}) on {data.describe()} -> {out}/")
        cli_data.say_notes(data)

        def on_epoch(t, means: dict[str, float]) -> None:
            if not args.quiet:
                print(report.epoch_line(t.epoch, t.config.epochs, means), flush=True)

        start = time.perf_counter()
        trainer.fit(on_epoch=on_epoch)
        seconds = time.perf_counter() - start
        model = trainer.model
        model.save(out / "model.npz", cli_data.record_arrays(data))
        held_out = getattr(trainer.config, "validation_images", 0)
        clock = time.perf_counter()
        summary = report.evaluate(model, data, validation_images=held_out)
        summary.update(train_seconds=round(seconds, 2), **trainer.facts())
        warnings = report.sanity_warnings(summary, model, data)
        timings.update(training=seconds, held_out_per_epoch=trainer.held_out_seconds,
                       evaluation=time.perf_counter() - clock)
        if warnings:
            summary["warnings"] = warnings
        atomic_write_text(out / "metrics.json", json.dumps(summary, indent=1))
        clock = time.perf_counter()
        skipped: list[str] = []
        written = report.write_figures(model, data, trainer.history, out, seed=trainer.config.seed,
                                       validation_images=held_out, image_shape=data.image_shape, skipped=skipped)
        cli_data.say_notes(replace(data, notes=[]), skipped)
        timings["figures"] = time.perf_counter() - clock      # where this process's time went, rewritten
        summary["seconds"] = {k: round(v, 3) for k, v in timings.items()}
        atomic_write_text(out / "metrics.json", json.dumps(summary, indent=1))
    print(f"done in {seconds:.1f}s: " + ", ".join(f"{k} {v:.4f}" for k, v in summary.items()
                                                 if isinstance(v, float) and k != "train_seconds"))
    if report.clustering_line(summary):
        print(report.clustering_line(summary))
    for warning in warnings:
        print(f"aae-np: warning: {warning}", file=sys.stderr)
    print("wrote " + ", ".join(str(p) for p in [out / "model.npz", out / "history.json",
                                                 out / "metrics.json", *written]))
    return 0


# -- sample / reconstruct / encode / evaluate -------------------------------------------
def _check_n(n: int) -> None:
    if n > MAX_IMAGES:
        raise CLIError(f"--n {n} is more than {MAX_IMAGES:,} images; ask for fewer, or call the library in batches")


def _cmd_sample(args: argparse.Namespace) -> int:
    from aae_np.eval import plots

    _check_n(args.n)
    images = _load_model(args).sample(args.n, np.random.default_rng(args.seed))
    out = Path(args.out)
    if out.suffix == ".npy":
        atomic_write(out, lambda f: np.save(f, images))
    else:
        plots.samples(cli_data.as_images(args.model, images, out), out)
    print(f"wrote {args.n} samples to {out}")
    return 0


def _cmd_reconstruct(args: argparse.Namespace) -> int:
    _check_n(args.n)
    print(cli_data.write_reconstructions(_load_model(args), _load_data(args), args.n, Path(args.out)))
    return 0


def _cmd_encode(args: argparse.Namespace) -> int:
    model, data = _load_model(args), _load_data(args)
    x, y = (data.x_test, data.y_test) if args.split == "test" else (data.x_train, data.y_train)
    z = model.encode(x)
    print(cli_data.write_codes(z, y, Path(args.out), f"{args.split} rows of {data.name}"))
    if args.plot:
        from aae_np.eval import latent_plots

        latent_plots.latent_scatter(z, y, Path(args.plot))
        print(f"wrote {args.plot}")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from aae_np.eval import report
    from aae_np.train.run import saved_train_config

    model, data = _load_model(args), _load_data(args)
    cli_data.check_score(args, data)
    held_out = (saved_train_config(args.model) or {}).get("validation_images", 0)   # the run's own split
    result = report.evaluate(model, data, score=args.score, parzen=args.parzen, cache=args.classifier_cache,
                             validation_images=held_out)
    for key, value in result.items():
        print(f"{key:24s} {value:.4f}" if isinstance(value, float) else f"{key:24s} {value}")
    if report.clustering_line(result):
        print(report.clustering_line(result))
    if args.json:
        atomic_write_text(args.json, json.dumps(result, indent=1))
    return 0


def _cmd_gradcheck(args: argparse.Namespace) -> int:
    """Check every layer, loss and model phase against finite differences; print the reports."""
    from aae_np.teach.tour import gradcheck_reports

    reports = gradcheck_reports(args.seed)
    for r in reports:
        print(r, end="\n\n")
    failed = [r.title for r in reports if not r.passed()]
    print(f"{len(reports) - len(failed)}/{len(reports)} checks passed; "
          f"worst relative error {max(r.max_rel_error for r in reports):.2e}")
    return 1 if failed else 0


# -- grade (teachers) ------------------------------------------------------------------
def _cmd_grade(args: argparse.Namespace) -> int:
    from aae_np.teach.gradebook import Limits, grade_folder

    limits = Limits(args.time_limit, args.cell_time_limit, args.call_time_limit, args.memory_limit)
    rows = grade_folder(args.submissions, args.out, args.feedback, args.jobs, limits, progress=not args.quiet)
    print(f"{len(rows)} submissions graded -> {args.out}")
    return 0


COMMANDS = {"train": _cmd_train, "sample": _cmd_sample, "reconstruct": _cmd_reconstruct, "encode": _cmd_encode,
            "evaluate": _cmd_evaluate, "gradcheck": _cmd_gradcheck, "grade": _cmd_grade}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser(COMMANDS)
    args = parser.parse_args(argv)
    set_threads(args.threads)
    try:
        return args.func(args)
    except RuntimeError as err:
        # imported only now: train starts loading its data before the trainer's (slow) imports
        from aae_np.train.trainer import TrainingDiverged

        if not isinstance(err, TrainingDiverged):
            raise
        print(f"aae-np: training stopped: {err}", file=sys.stderr)
        return EXIT_DIVERGED
    except (CLIError, ValueError, OSError) as err:
        if os.environ.get("AAE_NP_DEBUG"):
            raise
        where = f"{err.filename}: " if isinstance(err, OSError) and err.filename else ""
        what = err.strerror if isinstance(err, OSError) and err.strerror else err
        print(f"aae-np: error: {where}{what}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(cli_data.interrupt_message(args), file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

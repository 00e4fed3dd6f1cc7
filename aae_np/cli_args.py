"""The arguments of the ``aae-np`` command line (``aae_np.cli`` runs the commands)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

EXIT_USAGE = 2


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _positive_float(text: str, zero_ok: bool = False) -> float:
    kind = "a number >= 0" if zero_ok else "a positive number"
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {kind}, got {text!r}") from None
    if not (value >= 0 if zero_ok else value > 0) or value != value:
        raise argparse.ArgumentTypeError(f"expected {kind}, got {value}")
    return value


def _rate_or_off(text: str) -> float:
    """A learning rate, or 0: off."""
    return _positive_float(text, zero_ok=True)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and a pointer to --help), not a usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _data_args(p: argparse.ArgumentParser, train: bool) -> None:
    p.add_argument("--data", metavar="PATH",
                   help="your own data: an .npz (x, optional y, x_test, y_test), an .npy, or a folder of PNGs "
                        "(docs/your-data.md)" + ("" if train else "; default: the data the model was trained on"))
    p.add_argument("--image-shape", metavar="H,W",
                   help="the rows are H x W images (inferred when square; 'none': not images, no image figures)")
    p.add_argument("--scale", choices=["minmax", "minmax-all"],
                   help="map values to [0, 1]: each feature by its training range, or one range for all "
                        "(a trained model applies its own)")
    p.add_argument("--data-dir", help="folder with the four IDX files (else $AAE_NP_DATA for MNIST, "
                                      "data/<dataset>, ../shared/data/<dataset>, or download)")
    p.add_argument("--dataset", choices=["mnist", "fashion-mnist"],
                   help="which IDX dataset (default mnist; an IDX folder's content decides its name)")
    p.add_argument("--no-download", action="store_true", help="never download; fail if the data is missing")
    if not train:
        p.add_argument("--other-data", action="store_true",
                       help="use a dataset other than the one the model was trained on")


def build_parser(commands: dict[str, Callable[[argparse.Namespace], int]]) -> argparse.ArgumentParser:
    """The parser of ``aae-np``; ``commands`` maps each sub-command to the function that runs it."""
    from aae_np.models.priors import PRIORS
    from aae_np.models.reduction import REDUCTION
    from aae_np.models.variants import VARIANTS
    from aae_np.train.presets import PRESETS

    parser = _Parser(prog="aae-np", description="Adversarial Autoencoders in NumPy.")
    parser.add_argument("--threads", type=_positive_int,
                        help="BLAS threads (sets OMP/OPENBLAS/MKL_NUM_THREADS; default: all cores)")
    parser.add_argument("--backend", choices=["numpy", "numba"],
                        help="numpy: the readable layers; numba: fused kernels (default: $AAE_NP_BACKEND, "
                             "else numba when installed)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars or per-epoch lines")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    def command(name: str, help: str, model: bool = False, data: bool = False) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help)
        p.set_defaults(func=commands[name])
        if model:
            p.add_argument("--model", required=True, help="a model.npz written by aae-np train")
        if data:
            _data_args(p, train=name == "train")
        return p

    p = command("train", "train an AAE; writes model.npz, history.json, metrics.json and plots", data=True)
    p.add_argument("--out", default="runs/default", help="output folder (default runs/default)")
    p.add_argument("--preset", choices=sorted(PRESETS), help="the model and its training (default: default)")
    p.add_argument("--schedule", choices=["phased", "joint"], help="phased (paper, default) or joint (tutorial)")
    p.add_argument("--epochs", type=_positive_int)
    p.add_argument("--batch-size", type=_positive_int)
    p.add_argument("--latent-dim", type=_positive_int)
    p.add_argument("--lr", type=_positive_float, help="one learning rate for all optimizers")
    p.add_argument("--seed", type=int)
    p.add_argument("--encoder-batchnorm", action="store_true", default=None,
                   help="BatchNorm after every encoder layer, its output included (the paper's appendix)")
    p.add_argument("--input-dropout", type=float, metavar="P",
                   help="drop each input pixel with probability P while training (the paper: 0.2)")
    p.add_argument("--variant", choices=[*VARIANTS, REDUCTION],
                   help="one of the paper's variants instead of the plain AAE (its own preset; see README)")
    p.add_argument("--labels", type=int, metavar="N",
                   help="labelled training images, N/10 per class (semi-supervised, conditioned; -1: all)")
    p.add_argument("--label-seed", type=int, help="which labelled images are drawn (default 0)")
    p.add_argument("--clusters", type=_positive_int, help="number of clusters (clustering variant)")
    p.add_argument("--prior", choices=sorted(PRIORS), help="prior of z for the variants")
    p.add_argument("--consistency", type=_positive_float, metavar="LR",
                   help="clustering, semi-supervised: train q(y|x) of shifted images towards q(y|x) of the "
                        "images, at this learning rate (not the paper's; docs/variants.md)")
    p.add_argument("--decoded-class", type=_rate_or_off, metavar="LR",
                   help="clustering, semi-supervised: train the decoder so the encoder reads dec([z, c]) as c, at "
                        "this learning rate (0: off; semi-supervised default 0.005, not the paper's; docs/variants.md)")
    p.add_argument("--recipe", choices=["ours", "paper"],
                   help="clustering, semi-supervised: ours (default: the paper's recipe with our consistency "
                        "phase; docs/variants.md) or paper (the paper's appendix recipe alone)")
    p.add_argument("--starts", type=_positive_int, metavar="N",
                   help="clustering, semi-supervised, reduction: train N candidates 3 epochs each and go on with the "
                        "one whose clusters hold the most information I(x; y) (like k-means' n_init; not the paper's)")
    p.add_argument("--neighbours", type=_positive_int, metavar="K",
                   help="clustering, semi-supervised: the consistency phase's view of an image is of it or of one of "
                        "its K nearest training images (not the paper's; docs/variants.md)")
    p.add_argument("--split-at", type=_positive_int, metavar="E",
                   help="clustering: at epoch E, cut the clusters the style z explains worst in two and move one half "
                        "of each into an empty cluster (not the paper's; aae_np.train.split, docs/variants.md)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    p.add_argument("--overwrite", action="store_true", help="start again even if --out holds a run")

    p = command("sample", "decode prior samples into a PNG grid (or .npy)", model=True)
    p.add_argument("--n", type=_positive_int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="samples.png")

    p = command("reconstruct", "test images above their reconstructions, as a PNG (or the rows, as .npz)",
                model=True, data=True)
    p.add_argument("--n", type=_positive_int, default=10)
    p.add_argument("--out", default="reconstructions.png")

    p = command("encode", "latent codes of a data split (.npy, or .npz with labels)", model=True, data=True)
    p.add_argument("--split", choices=["train", "test"], default="test")
    p.add_argument("--out", default="z.npz")
    p.add_argument("--plot", help="also write a latent scatter PNG here")

    p = command("evaluate", "held-out reconstruction MSE, Frechet(q(z), p(z)) [, MNIST score, Parzen]; "
                "the variants' errors", model=True, data=True)
    p.add_argument("--score", action="store_true",
                   help="also the MNIST score of 10,000 prior samples (trains/caches a small classifier)")
    p.add_argument("--classifier-cache", help="classifier cache file (default ~/.cache/aae_np/...)")
    p.add_argument("--parzen", action="store_true",
                   help="also the Parzen-window log-likelihood of the test set (10,000 samples, sigma "
                        "chosen on the last 1,000 training images; the paper's Table 1)")
    p.add_argument("--json", help="also write the numbers to this JSON file")

    p = command("gradcheck", "finite-difference check of every layer, loss and model phase")
    p.add_argument("--seed", type=int, default=0)

    p = command("grade", "run a folder of submitted notebooks 02/04 and write a gradebook CSV (teachers)")
    p.add_argument("submissions", help="folder with one sub-folder (or one .ipynb) per student")
    p.add_argument("--out", default="grades.csv", help="the CSV, one row per student (default grades.csv)")
    p.add_argument("--feedback", help="folder of one feedback file per student (default: <out>_feedback/)")
    p.add_argument("--jobs", type=_positive_int, help="submissions run at once (default: one per core)")
    p.add_argument("--time-limit", type=_positive_float, default=600.0, metavar="S",
                   help="seconds for one submission's notebooks, after which it is killed (default 600)")
    p.add_argument("--cell-time-limit", type=_positive_float, default=180.0, metavar="S",
                   help="seconds for one cell, after which it is interrupted (default 180)")
    p.add_argument("--call-time-limit", type=_positive_float, default=10.0, metavar="S",
                   help="seconds for one call of a graded function (default 10)")
    p.add_argument("--memory-limit", type=_positive_int, default=4096, metavar="MB",
                   help="address space of one submission and its kernel, Unix only (default 4096)")
    return parser


def set_threads(n: int | None) -> None:
    """BLAS and Numba at ``n`` threads, at most the cores this process may use (more threads than
    cores take turns on them, and a product waits for its slowest part: 20-66x slower)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if n is not None and n > cores:
        print(f"aae-np: --threads {n} is more than the {cores} cores this process may use; using {cores}",
              file=sys.stderr)
        n = cores
    if n is not None:
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
            os.environ[var] = str(n)
        try:    # BLAS may already be loaded (numpy is imported above): resize its pool too
            from threadpoolctl import threadpool_limits

            threadpool_limits(n)
        except ImportError:
            pass

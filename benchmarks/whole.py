"""Whole process: ``aae-np train`` against the tutorial's PyTorch program, in alternating pairs.

Both train the tutorial's model (784-256-64 encoder, 64-256-784 decoder, 64-256-1 discriminator,
Adam 1e-3, batch 128, the joint schedule) for ``--epochs`` epochs on the 60,000 Fashion-MNIST
training images, as whole processes started from the shell; the wall time of each includes its
imports, data loading and everything it does after training.

* **ours**: ``python -m aae_np.cli -q train --dataset fashion-mnist --preset tutorial
  --schedule joint --epochs N --out DIR`` (it also measures the held-out MSE after every epoch,
  writes a checkpoint per epoch, evaluates, and draws its four figures);
* **the tutorial's program**: its own text, read from the seeds document (``--tutorial``), run
  with two changes: ``num_epochs`` = N, and ``torchvision`` (not installable beside this machine's
  PyTorch wheel) replaced by a stand-in written here that gives ``datasets.MNIST`` the same
  Fashion-MNIST images as float tensors in [0, 1] (``ToTensor``'s values), decoded once at start.
  The stand-in is kinder than torchvision, which decodes every image through PIL at each access.
  The program is not copied into this repository; it is read from the document at run time.

Pairs alternate (ours, tutorial, ours, tutorial, ...; the order flips every pair), the ratio is
taken pair by pair (tutorial wall / ours), and the medians are reported. Both use this machine's
cores (2); ``--threads`` sets ``OMP_NUM_THREADS`` / ``OPENBLAS_NUM_THREADS`` for both.
Our run's own breakdown (data, training, held-out MSE, evaluation, figures) comes from its
``metrics.json`` (``seconds``).

    .venv/bin/python benchmarks/whole.py                 # 3 pairs, 5 epochs; needs torch
    .venv/bin/python benchmarks/whole.py --pairs 1 --epochs 1

Needs ``pip install torch==2.13.0`` (never a dependency of aae_np) and Fashion-MNIST
(``apt-get install dataset-fashion-mnist``). Writes ``benchmarks/results/whole.json``.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).parent))
from step import cpu_line  # noqa: E402  (beside this file)
SEEDS = ROOT.parent / "shared" / "seeds" / "004_c69d9ebaec042376.txt"
DATA = Path("/usr/share/datasets/fashion-mnist")

# The stand-in for torchvision: datasets.MNIST over the Fashion-MNIST IDX files (read with the
# project's own reader), transforms.ToTensor as a marker (the images are tensors already).
SHIM_DATASETS = '''
import os
import numpy as np
import torch
from aae_np.data import load_mnist


class MNIST(torch.utils.data.Dataset):
    def __init__(self, root, train=True, transform=None, download=False):
        data = load_mnist(os.environ["WHOLE_BENCH_DATA"], "fashion-mnist")
        x, y = (data.x_train, data.y_train) if train else (data.x_test, data.y_test)
        self.images = torch.from_numpy(np.ascontiguousarray(x.reshape(-1, 1, 28, 28)))
        self.labels = torch.from_numpy(y)

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i], int(self.labels[i])
'''
SHIM_TRANSFORMS = '''
class ToTensor:
    def __call__(self, image):
        return image
'''


def tutorial_program(seeds: Path, epochs: int) -> str:
    """The tutorial's PyTorch program from the seeds document, with ``num_epochs`` = ``epochs``."""
    text = seeds.read_text()
    start = text.index("import torch\n")
    end = text.index('print("Training complete!")', start) + len('print("Training complete!")')
    program, count = re.subn(r"num_epochs = \d+", f"num_epochs = {epochs}", text[start:end])
    if count != 1:
        raise SystemExit(f"{seeds}: expected one 'num_epochs = N' line in the program, found {count}")
    return program + "\n"


def run(cmd: list[str], env: dict[str, str], cwd: Path) -> float:
    """Wall seconds of one whole process; exits with its output if it fails."""
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tutorial", type=Path, default=SEEDS, help="the seeds document with the program")
    parser.add_argument("--data", type=Path, default=DATA, help="the Fashion-MNIST folder")
    parser.add_argument("--phased", action="store_true",
                        help="also run ours with the phased schedule in each pair and compare seconds per epoch")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "whole.json")
    args = parser.parse_args()
    if min(args.pairs, args.epochs, args.threads) < 1:
        parser.error("--pairs, --epochs and --threads must be at least 1")
    if importlib.util.find_spec("torch") is None:
        raise SystemExit("PyTorch is not installed: pip install torch==2.13.0 to compare (never an aae_np dependency)")
    if not args.data.is_dir():
        raise SystemExit(f"no Fashion-MNIST at {args.data}: apt-get install dataset-fashion-mnist, or pass --data")
    if not args.tutorial.is_file():
        raise SystemExit(f"no tutorial document at {args.tutorial}: pass --tutorial")
    with tempfile.TemporaryDirectory(prefix="aae-whole-") as tmp:
        tmp = Path(tmp)
        (tmp / "torchvision").mkdir()
        (tmp / "torchvision" / "__init__.py").write_text("from . import datasets, transforms\n")
        (tmp / "torchvision" / "datasets.py").write_text(SHIM_DATASETS)
        (tmp / "torchvision" / "transforms.py").write_text(SHIM_TRANSFORMS)
        (tmp / "tutorial.py").write_text(tutorial_program(args.tutorial, args.epochs))
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "OPENBLAS_NUM_THREADS": str(args.threads),
               "WHOLE_BENCH_DATA": str(args.data), "PYTHONPATH": os.pathsep.join([str(tmp), str(ROOT)])}
        env.pop("AAE_NP_BACKEND", None)
        ours_cmd = lambda i, schedule="joint": [  # noqa: E731
            sys.executable, "-m", "aae_np.cli", "-q", "train", "--dataset", "fashion-mnist", "--data-dir", str(args.data),
            "--preset", "tutorial", "--schedule", schedule, "--epochs", str(args.epochs),
            "--out", str(tmp / f"run{i}{'' if schedule == 'joint' else schedule}")]
        theirs_cmd = [sys.executable, str(tmp / "tutorial.py")]
        run(ours_cmd("warm"), env, tmp)                  # numba's on-disk cache, the page cache
        pairs = []
        for i in range(args.pairs):
            order = ("ours", "tutorial") if i % 2 == 0 else ("tutorial", "ours")
            walls = {}
            for who in order + (("phased",) if args.phased else ()):
                walls[who] = run(ours_cmd(i) if who == "ours" else ours_cmd(i, "phased") if who == "phased"
                                 else theirs_cmd, env, tmp)
            seconds = json.loads((tmp / f"run{i}" / "metrics.json").read_text()).get("seconds", {})
            pair = {**walls, "ratio": walls["tutorial"] / walls["ours"], "ours_breakdown": seconds}
            if args.phased:                  # seconds per epoch from each run's history, median over epochs
                per_epoch = {s: statistics.median(json.loads((tmp / f"run{i}{s}" / "history.json").read_text())["seconds"])
                             for s in ("", "phased")}
                pair["epoch_joint_over_phased"] = per_epoch[""] / per_epoch["phased"]
            pairs.append(pair)
            print(f"pair {i + 1}: ours {walls['ours']:.2f} s, tutorial {walls['tutorial']:.2f} s, "
                  f"ratio {walls['tutorial'] / walls['ours']:.2f}" + (
                      f"; epoch joint / phased {pair['epoch_joint_over_phased']:.2f}" if args.phased else ""), flush=True)
    med = {k: statistics.median(p[k] for p in pairs) for k in ("ours", "tutorial", "ratio")
           + (("epoch_joint_over_phased",) if args.phased else ())}
    print(cpu_line())
    print(f"{args.epochs} epochs of 60k Fashion-MNIST, tutorial model, joint schedule, {args.threads} threads, "
          f"{args.pairs} alternating pairs, medians: ours {med['ours']:.2f} s, the tutorial's program "
          f"{med['tutorial']:.2f} s: {med['ratio']:.2f}x" + (
              f"; ours, seconds per epoch joint / phased: {med['epoch_joint_over_phased']:.2f}" if args.phased else ""))
    keys = sorted({k for p in pairs for k in p["ours_breakdown"]})
    if keys:
        print("ours, median seconds: " + ", ".join(
            f"{k} {statistics.median(p['ours_breakdown'].get(k, float('nan')) for p in pairs):.2f}" for k in keys))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"cpu": cpu_line(), "epochs": args.epochs, "threads": args.threads, "torch": importlib.metadata.version("torch"),
                                     "python": sys.version.split()[0], "pairs": pairs, "medians": med}, indent=1))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()

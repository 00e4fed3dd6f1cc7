"""Where a numba training step's time goes, found by leaving parts of it out.

Three versions of one ``Trainer.step`` (a preset, real images) run in alternating rounds inside
``pool.running()``, as ``Trainer.fit`` runs them:

* **full**: the step as it trains;
* **no updates**: every phase's optimizer step does nothing;
* **neither**: no updates, and the kernels' matrix products only zero their outputs (the
  epilogues, losses, prior samples and Python still run, on zeros).

Each takes away one part, so the parts add up to the full step: ``updates = full - no updates``
(with what they do to the caches of the products after them), ``GEMMs = no updates - neither``
(the products inside the step, to set beside ``step.py --gemm-floor``, the same products replayed
alone) and ``everything else = neither`` (Python between the kernel calls, the epilogues, losses,
prior samples, input checks). There is no "no GEMMs" version with the updates: the zeroing runs on
the calling thread only, so the other thread's updates would read gradients the first one wrote,
which costs what the split GEMMs avoid. What a left-out version computes is meaningless; only its
time is. Each time is per step, a median over rounds.

    .venv/bin/python benchmarks/ablate.py --preset default --schedule phased --rounds 12
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from aae_np.data import load_mnist
from aae_np.fast import pool
from aae_np.fast.kernels import dense_kernels
from aae_np.fast.runner import FusedMLP
from aae_np.models.aae import AAE
from aae_np.train.presets import PRESETS, resolve
from aae_np.train.trainer import Trainer

VERSIONS = ("full", "no updates", "neither")
SHARED_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


def zero_product(a, b, out):
    """A GEMM that is not one: the output the kernels would have written, zeroed."""
    out.fill(0)
    return out


def versions(trainer: Trainer) -> dict[str, Callable[[], None]]:
    """Each version's switch: a function that sets the trainer up for it ("full" puts back the real
    kernels and optimizer steps)."""
    runners = [r for r in trainer.model.run.values() if isinstance(r, FusedMLP)]
    real = {id(r): r.kernels for r in runners}
    without = {id(r): SimpleNamespace(**{**vars(r.kernels), **dict(zip(("dense_forward", "dense_backward"),
                                                                          dense_kernels(zero_product)))})
               for r in runners}

    def switch(updates: bool, gemms: bool):
        def setup():
            for runner in runners:
                runner.kernels = (real if gemms else without)[id(runner)]
            for optimizer in trainer.optimizers.values():
                if updates:
                    vars(optimizer).pop("step", None)           # the class's step again
                else:
                    optimizer.step = lambda grads=None: None
        return setup
    return {"full": switch(True, True), "no updates": switch(False, True), "neither": switch(False, False)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="default", choices=sorted(PRESETS))
    parser.add_argument("--schedule", choices=["joint", "phased"], default="phased")
    parser.add_argument("--steps", type=int, default=60, help="steps per round")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--gap", type=float, default=0.2, help="seconds of sleep before each round")
    parser.add_argument("--data", metavar="DIR", default=str(SHARED_MNIST), help="MNIST IDX files (default: %(default)s)")
    parser.add_argument("--json", metavar="FILE", help="also write the rounds and medians here")
    args = parser.parse_args()
    if args.steps < 1 or args.rounds < 1:
        parser.error("--steps and --rounds must be at least 1")
    try:
        x = np.ascontiguousarray(load_mnist(args.data).x_train[:4096])
    except (OSError, ValueError) as err:
        sys.exit(f"ablate.py: cannot read MNIST from {args.data}: {err} (pass --data DIR)")
    model_cfg, train_cfg = resolve(args.preset, schedule=args.schedule)
    trainer = Trainer(AAE(model_cfg, backend="numba"), train_cfg, x, progress=False)
    bs, setups = train_cfg.batch_size, versions(trainer)
    batches = [x[i * bs:(i + 1) * bs] for i in range(len(x) // bs)]
    times: dict[str, list[float]] = {v: [] for v in VERSIONS}
    with pool.running() as running:
        threads = running.threads if running is not None else 1
        for version in VERSIONS:                    # warm up: compile, allocate
            setups[version]()
            for batch in batches[:3]:
                trainer.step(batch)
        for _ in range(args.rounds):
            for version in VERSIONS:
                setups[version]()
                time.sleep(args.gap)
                t0 = time.perf_counter()
                for i in range(args.steps):
                    trainer.step(batches[i % len(batches)])
                times[version].append((time.perf_counter() - t0) / args.steps * 1e3)
    setups["full"]()
    med = {v: statistics.median(ts) for v, ts in times.items()}
    parts = {"GEMMs": med["no updates"] - med["neither"], "updates": med["full"] - med["no updates"],
             "everything else": med["neither"]}
    print(f"preset {args.preset}, {args.schedule}, batch {bs}, float32, {threads} thread(s), "
          f"{args.rounds} rounds x {args.steps} steps, medians (ms per step)")
    for version in VERSIONS:
        print(f"  {version:12s}{med[version]:8.3f}")
    print("parts: " + ", ".join(f"{k} {v:.3f}" for k, v in parts.items()))
    if args.json:
        Path(args.json).write_text(json.dumps({"preset": args.preset, "schedule": args.schedule, "batch_size": bs, "threads": threads,
                                               "rounds_ms": times, "median_ms": med, "parts_ms": parts}, indent=1))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()

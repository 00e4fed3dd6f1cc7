"""Training-step speed: numpy backend vs. numba backend vs. PyTorch (eager, torch.compile) vs. JAX jit.

The same model (a preset's sizes), schedule, batch, dtype (float32), initial weights and
thread count for all of them. Each contestant runs ``--steps`` training steps per round; rounds
alternate between contestants (A B C A B C ...) so that a slow spell of this shared machine hits
all of them; the table reports medians over ``--rounds``. Before each round the benchmark sleeps
``--gap`` seconds: an idle OpenBLAS pool keeps its threads spinning for ~0.1 s after its last
call, and without the gap those threads steal a core from the next contestant (PyTorch measured
5.7 ms per step instead of 4.3 ms that way). Every contestant is warmed up (JIT compiles,
allocators) before the first round.

The peers (``benchmarks/peers.py``: how each is written, its compile boundaries, random numbers
and thread limits) are measured only when installed, and are never dependencies of aae_np:
``pip install torch==2.13.0`` for "pytorch eager" and "torch.compile", ``pip install jax jaxlib``
for "jax jit"; a missing one is skipped with a message. ``--peers`` picks some of them.

    .venv/bin/python benchmarks/step.py                       # tutorial model, joint + phased
    .venv/bin/python benchmarks/step.py --preset default --schedule phased
    .venv/bin/python benchmarks/step.py --smoke               # seconds; what CI runs
    .venv/bin/python benchmarks/step.py --check --preset default   # the peers run our step?
    .venv/bin/python benchmarks/step.py --schedule joint --gemm-floor
    .venv/bin/python benchmarks/step.py --preset default --data ../shared/data/mnist   # real images
    .venv/bin/python benchmarks/step.py --state runs/tutorial-joint/checkpoint.npz   # a real training state

``--state CHECKPOINT`` times the step training really computes: every contestant starts from the
checkpoint's weights (ours also from its Adam moments; the peers' Adam starts fresh), on real
images (``--data``, default the shared MNIST beside the repository), with the checkpoint's model,
schedule and batch size (``--preset`` and ``--schedule`` are ignored).

``--check`` times nothing: it runs two steps of our NumPy backend and of every installed peer
from the same weights, batches and prior samples and prints the largest relative differences
of the losses and of the updated layers (exit status 1 if one exceeds ``--tolerance``).

``--gemm-floor`` adds two contestants that do only the matrix products of one numba-backend step:
every ``np.dot`` of the step is recorded once (shapes and memory layouts), then replayed into
preallocated outputs, in NumPy's BLAS and, when PyTorch is installed, with ``torch.mm`` (PyTorch's
own GEMM). No step can be faster than its GEMMs, so this is the floor for the numba backend.

``--spells`` tags each round by the machine's state just before it: after the gap, two threads
bounce a cache line 2,000 times (``benchmarks/spells.py``), up to 10 times until a round trip takes
less than ``SPELL_CYCLES`` (for some 80 ms after JAX's rounds every bounce is slow, whatever the
machine); the fastest of them at ``SPELL_CYCLES`` or more means a slow spell (the two vCPUs no
longer share a cache, ``docs/performance.md``). The table then also gives each ratio over the rounds
where neither side was in a spell ("÷ quiet"), since a spell slows the contestants by different amounts.

Writes ``benchmarks/results/step.json`` (or ``--json``) with the machine's CPU, thread settings,
BLAS and versions.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np

from aae_np.fast import pool
from aae_np.models.aae import AAE
from aae_np.train.presets import PRESETS, get_preset, resolve
from aae_np.train.trainer import Trainer

sys.path.insert(0, str(Path(__file__).parent))
from peers import PEERS, check, our_trainer, spec_of  # noqa: E402  (beside this file)

SPELL_CYCLES = 600          # round trips of a cache line: ~200-260 cycles quiet, ~1,100 in a spell
PEER_KEYS = {"eager": "pytorch eager", "compile": "torch.compile", "jax": "jax jit"}
INSTALL = {"pytorch eager": ("PyTorch", "torch==2.13.0"), "torch.compile": ("PyTorch", "torch==2.13.0"),
           "jax jit": ("JAX", "jax jaxlib")}


def on_pool(name: str):
    """The numba backend trains inside ``pool.running()`` (as ``Trainer.fit``
    does), entered for each of its rounds only, so that its workers are gone while the other
    contestants run; "numba, BLAS threads" is the same step without the pool."""
    return pool.running() if name in ("numba backend", "GEMMs: pool", "numba, no flush") else nullcontext()


def without_flush(step):
    """``step`` with subnormals left as they are (``aae_np.nn.subnormal``), to time the flush."""
    from aae_np.nn.subnormal import flushing

    def unflushed(batch):
        with flushing(False):
            return step(batch)
    return unflushed


def per_round(times: dict[str, list[float]], against: str = "numba backend") -> dict[str, float]:
    """Each contestant's time divided by ``against``'s in the same round, median over the rounds
    (> 1: ``against`` was faster). Rounds alternate between contestants, so a slow spell of the
    machine usually hits both sides of a ratio, which the ratio of two medians would not see."""
    return {name: statistics.median(t / a for t, a in zip(ts, times[against])) for name, ts in times.items()}


def spell_cycles(round_trip) -> float:
    """The fastest cache-line round trip (cycles) of up to 10 bounces of 2,000 trips, stopping at
    the first under ``SPELL_CYCLES`` (``--spells``)."""
    best = float("inf")
    for _ in range(10):
        best = min(best, round_trip(2_000)[0])
        if best < SPELL_CYCLES:
            break
    return best


def per_quiet_round(times: dict[str, list[float]], trips: dict[str, list[float]],
                    against: str = "numba backend") -> dict[str, tuple[float | None, int]]:
    """Like ``per_round`` over the rounds where neither side's round trip before it reached
    ``SPELL_CYCLES``: (median ratio or None, how many such rounds)."""
    out = {}
    for name, ts in times.items():
        quiet = [t / a for t, a, tt, ta in zip(ts, times[against], trips[name], trips[against])
                 if max(tt, ta) < SPELL_CYCLES]
        out[name] = (statistics.median(quiet) if quiet else None, len(quiet))
    return out


def say_missing(name: str, said: set[str]) -> None:
    """One line, once per run, for a peer whose package is not installed."""
    if name not in said:
        said.add(name)
        package, pip = INSTALL[name]
        print(f"{package} is not installed: skipping {name!r} (pip install {pip} to compare)")


def ours(preset: str, schedule: str, backend: str, x: np.ndarray, state: str | None = None, **options):
    """One training step of ``preset``, or of the checkpoint ``state``; ``options``: model
    overrides of ``presets.resolve`` (``encoder_batchnorm``, ``input_dropout``)."""
    if state is not None:
        trainer = Trainer.resume(state, x, backend=backend, progress=False)
    else:
        model_cfg, train_cfg = resolve(preset, schedule=schedule, **options)
        trainer = Trainer(AAE(model_cfg, backend=backend), train_cfg, x, progress=False)
    return lambda batch: trainer.step(batch)


class _DotRecorder:
    """Stands in for the ``np`` module inside ``aae_np.fast.kernels`` and records every np.dot."""

    def __init__(self) -> None:
        self.calls: list[tuple[np.ndarray, np.ndarray]] = []

    def __getattr__(self, name: str):
        return getattr(np, name)

    def dot(self, a, b, out=None):
        self.calls.append((_same_layout(a), _same_layout(b)))
        return np.dot(a, b, out=out)


def _same_layout(a: np.ndarray) -> np.ndarray:
    """A copy of ``a`` with its memory order (a transposed view stays a transposed view)."""
    return a.copy() if a.flags.c_contiguous else np.ascontiguousarray(a.T).T


def gemm_floor(preset: str, schedule: str, x: np.ndarray):
    """(replay in NumPy's BLAS, replay by ``pool.gemm``, replay with torch.mm or None, number of
    GEMMs, GFLOP per step)."""
    from aae_np.fast import kernels

    step = ours(preset, schedule, "numba", x)
    _, train_cfg = get_preset(preset)
    batch = x[:train_cfg.batch_size]
    step(batch)                                     # compile outside the recording
    recorder, saved = _DotRecorder(), kernels.np
    kernels.np = pool.np = recorder             # outside a pool, pool.gemm is np.dot
    try:
        step(batch)
    finally:
        kernels.np = pool.np = saved
    calls = [(a, b, np.empty((a.shape[0], b.shape[1]), np.float32)) for a, b in recorder.calls]
    gflop = sum(2 * a.shape[0] * a.shape[1] * b.shape[1] for a, b, _ in calls) / 1e9

    def numpy_gemms(_batch):
        for a, b, out in calls:
            np.dot(a, b, out=out)

    def pool_gemms(_batch):                     # inside pool.running(): our halves
        for a, b, out in calls:
            pool.gemm(a, b, out)

    try:
        import torch
    except ImportError:
        return numpy_gemms, pool_gemms, None, len(calls), gflop
    tcalls = [(torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(out)) for a, b, out in calls]

    def torch_gemms(_batch):
        for a, b, out in tcalls:
            torch.mm(a, b, out=out)

    return numpy_gemms, pool_gemms, torch_gemms, len(calls), gflop


VECTOR_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_bf16", "avx_vnni", "amx_tile", "asimd", "sve")


def cpu() -> tuple[str, list[str]]:
    """The CPU's model name (with its family and model numbers where /proc/cpuinfo has them: a
    name such as "AMD EPYC" covers several generations) and its vector extensions (Linux)."""
    name, flags, numbers = platform.processor() or platform.machine(), [], {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and name in (platform.processor(), platform.machine()):
                    name = value.strip()
                elif key in ("cpu family", "model") and key not in numbers:
                    numbers[key] = value.strip()
                elif key in ("flags", "Features") and not flags:
                    flags = [f for f in VECTOR_FLAGS if f in value.split()]
    except OSError:
        pass
    if len(numbers) == 2:
        name += f" (family {numbers['cpu family']}, model {numbers['model']})"
    return name, flags


def cpu_line() -> str:
    name, flags = cpu()
    return f"CPU: {name} ({' '.join(flags) or 'vector extensions unknown'}), {os.cpu_count()} logical CPUs"


def machine(threads: int) -> dict:
    info = {"python": sys.version.split()[0], "numpy": np.__version__, "platform": platform.platform(),
            "threads": threads, "cpu_count": os.cpu_count(),
            "env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                                   "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")}}
    info["cpu"], info["vector_extensions"] = cpu()
    try:
        from threadpoolctl import threadpool_info

        info["blas"] = [{k: p.get(k) for k in ("internal_api", "version", "num_threads", "architecture")}
                        for p in threadpool_info()]
    except ImportError:
        pass
    for package in ("numba", "torch", "jax", "jaxlib"):
        if package in sys.modules:                     # only what this run imported
            info[package] = sys.modules[package].__version__
    return info


def run_check(preset: str, schedules: list[str], names: list[str], threads: int, x: np.ndarray,
              tolerance: float, said: set[str]) -> int:
    """Print ``peers.check``'s differences per schedule and peer; 1 if one exceeds ``tolerance``."""
    rows = [r for schedule in schedules for r in check(preset, schedule, names, threads, x)]
    for name in names:
        if not any(r["peer"] == name for r in rows):
            say_missing(name, said)
    if not rows:
        return 0
    print(f"preset {preset}: {rows[0]['steps']} steps from the same weights, batches and prior samples; "
          f"largest relative difference from the numpy backend (tolerance {tolerance:g})")
    print(f"{'schedule':9s}{'peer':15s}{'losses':>10s}{'layers':>10s}  worst layer")
    bad = 0
    for r in rows:
        ok = r["loss_rel"] <= tolerance and r["weight_rel"] <= tolerance
        bad += not ok
        print(f"{r['schedule']:9s}{r['peer']:15s}{r['loss_rel']:10.1e}{r['weight_rel']:10.1e}  "
              f"{r['worst_layer']}{'' if ok else '  DIFFERENT'}")
    print("the peers run our step" if not bad else f"{bad} peer step(s) differ from ours")
    return int(bad > 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="tutorial", choices=sorted(PRESETS))
    parser.add_argument("--schedule", choices=["joint", "phased", "both"], default="both")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=50, help="steps per round")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--gap", type=float, default=0.5,
                        help="seconds of sleep before each round, so that the previous contestant's "
                             "idle BLAS/OpenMP threads have stopped spinning (OpenBLAS spins ~0.1 s)")
    parser.add_argument("--gemm-floor", action="store_true",
                        help="also time only the matrix products of a numba step (NumPy's BLAS and torch.mm)")
    parser.add_argument("--encoder-batchnorm", action="store_true", default=None,
                        help="BatchNorm in the encoder (our backends only: the peers and the GEMM floor are skipped)")
    parser.add_argument("--input-dropout", type=float, help="input dropout probability (our backends only)")
    parser.add_argument("--peers", default="eager,compile,jax",
                        help="comma-separated peers to run when installed: eager (PyTorch eager), "
                             "compile (torch.compile), jax (jax.jit), or none")
    parser.add_argument("--check", action="store_true",
                        help="time nothing: do the peers' steps give our numpy backend's losses and weights?")
    parser.add_argument("--tolerance", type=float, default=1e-4, help="largest relative difference --check accepts")
    parser.add_argument("--spells", action="store_true",
                        help="tag each round by a cache-line round trip before it and add ratios over quiet rounds")
    parser.add_argument("--smoke", action="store_true", help="2 rounds of 3 steps: checks it runs")
    parser.add_argument("--data", metavar="DIR",
                        help="time on the first training images of the MNIST-format folder DIR (e.g. "
                             "../shared/data/mnist) instead of uniform noise: real images have always-black "
                             "pixels, whose weights get exactly zero gradients, as in training")
    parser.add_argument("--flush-cost", action="store_true",
                        help="also time the numba step with the subnormal flush off")
    parser.add_argument("--state", metavar="CHECKPOINT",
                        help="start every contestant from this training checkpoint, on real images")
    parser.add_argument("--json", default=str(Path(__file__).parent / "results" / "step.json"))
    args = parser.parse_args()
    if min(args.steps, args.rounds, args.threads) < 1:
        parser.error("--steps, --rounds and --threads must be at least 1")
    if args.spells:
        from spells import round_trip                  # beside this file; numba-compiled once here
        round_trip(100)
    keys = [k for k in args.peers.split(",") if k and k != "none"]
    if set(keys) - set(PEER_KEYS):
        parser.error(f"--peers: unknown {sorted(set(keys) - set(PEER_KEYS))}; choose from {sorted(PEER_KEYS)} or none")
    peer_names, said = [PEER_KEYS[k] for k in keys], set()
    if args.smoke:
        args.steps, args.rounds, args.gap = 3, 2, 0.0
    from threadpoolctl import threadpool_limits

    threadpool_limits(args.threads)
    _, train_cfg = get_preset(args.preset)
    if args.state:
        from aae_np.train.resume import read_trainer_state
        saved = read_trainer_state(args.state, dict(np.load(args.state)))["train_config"]
        train_cfg.batch_size, args.schedule, args.gemm_floor = saved["batch_size"], saved["schedule"], False
        args.data = args.data or str(Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist")
    rng = np.random.default_rng(0)
    n_images = max(train_cfg.batch_size * 4, 512)
    if args.data:
        from aae_np.data import load_mnist

        x = np.ascontiguousarray(load_mnist(args.data).x_train[:n_images])
    else:
        x = rng.random((n_images, 784), dtype=np.float32)
    batches = [x[i * train_cfg.batch_size:(i + 1) * train_cfg.batch_size] for i in range(4)]
    schedules = ["joint", "phased"] if args.schedule == "both" else [args.schedule]
    if args.check:
        sys.exit(run_check(args.preset, schedules, peer_names, args.threads, x, args.tolerance, said))
    rows = []
    for schedule in schedules:
        options = {k: v for k, v in (("encoder_batchnorm", args.encoder_batchnorm),
                                     ("input_dropout", args.input_dropout)) if v is not None}
        # the peers have no dropout: a preset with input dropout is compared without it on every
        # side, and its own step is one more contestant
        preset_dropout = 0.0 if options or args.state else resolve(args.preset)[0].input_dropout
        same = dict(options, input_dropout=0.0) if preset_dropout else options
        if preset_dropout and schedule == schedules[0]:
            print(f"the {args.preset} preset drops {preset_dropout:g} of the input pixels, which the peers do not: "
                  "every contestant runs without it but 'numba, input dropout', the preset's own step")
        contestants = {"numpy backend": ours(args.preset, schedule, "numpy", x, args.state, **same),
                       "numba backend": ours(args.preset, schedule, "numba", x, args.state, **same)}
        if preset_dropout:
            contestants["numba, input dropout"] = ours(args.preset, schedule, "numba", x, args.state)
        if args.flush_cost:                  # the subnormal flush's cost: the same step with it off
            contestants["numba, no flush"] = without_flush(ours(args.preset, schedule, "numba", x, args.state, **same))
        if pool.available() and args.threads == pool.THREADS:   # the pool's rule, measured: without it
            contestants["numba, BLAS threads"] = ours(args.preset, schedule, "numba", x, args.state, **same)
        if options:
            print(f"model options {options}: our two backends only")
            args.gemm_floor = False
        else:
            trainer = (Trainer.resume(args.state, x, backend="numpy", progress=False) if args.state
                       else our_trainer(args.preset, schedule, x))     # every peer starts from our weights
            if args.state and trainer.model.config.input_dropout:
                print(f"{args.state} was trained with input dropout, which the peers do not have: "
                      "our backends only")
                peer_names = []
            spec = spec_of(trainer) if peer_names else None
            for name in peer_names:
                peer = PEERS[name](spec, args.threads)
                if peer is None:
                    say_missing(name, said)
                else:
                    contestants[name] = peer.step
        if args.gemm_floor:
            numpy_gemms, pool_gemms, torch_gemms, count, gflop = gemm_floor(args.preset, schedule, x)
            print(f"{schedule}: a numba step makes {count} GEMMs, {gflop:.3f} GFLOP")
            contestants["GEMMs: numpy"] = numpy_gemms
            if pool.available():
                contestants["GEMMs: pool"] = pool_gemms
            if torch_gemms is not None:
                contestants["GEMMs: torch.mm"] = torch_gemms
        for name, step in contestants.items():          # warm up: JIT compile, allocator, caches
            with on_pool(name):
                for b in batches:
                    step(b)
        times: dict[str, list[float]] = {name: [] for name in contestants}
        trips: dict[str, list[float]] = {name: [] for name in contestants}
        for _ in range(args.rounds):
            for name, step in contestants.items():
                time.sleep(args.gap)
                if args.spells:
                    trips[name].append(spell_cycles(round_trip))
                with on_pool(name):
                    t0 = time.perf_counter()
                    for i in range(args.steps):
                        step(batches[i % 4])
                    times[name].append((time.perf_counter() - t0) / args.steps)
        base = statistics.median(times.get("pytorch eager", times["numpy backend"]))
        vs_numba = per_round(times)
        quiet = per_quiet_round(times, trips) if args.spells else {}
        for name, ts in times.items():
            med = statistics.median(ts)
            rows.append({"schedule": schedule, "contestant": name, "ms_per_step": med * 1e3,
                         "steps_per_s": 1 / med, "samples_per_s": train_cfg.batch_size / med,
                         "speed_vs_" + ("pytorch" if "pytorch eager" in times else "numpy"): base / med,
                         "per_round_vs_numba": vs_numba[name], "rounds_ms": [t * 1e3 for t in ts],
                         **({"quiet_vs_numba": quiet[name][0], "quiet_rounds": quiet[name][1],
                             "round_trip_cycles": [round(t) for t in trips[name]]} if args.spells else {})})
    print(cpu_line())
    print(f"preset {args.preset}, batch {train_cfg.batch_size}, float32, {args.threads} threads, "
          f"{args.rounds} rounds x {args.steps} steps, medians")
    print(f"{'schedule':9s}{'contestant':19s}{'ms/step':>9s}{'steps/s':>9s}{'samples/s':>11s}{'ratio':>8s}"
          f"{'÷ numba':>9s}" + (f"{'÷ quiet':>9s}{'rounds':>7s}" if args.spells else ""))
    for r in rows:
        ratio = next(v for k, v in r.items() if k.startswith("speed_vs_"))
        extra = "" if not args.spells else (f"{'-':>9s}" if r["quiet_vs_numba"] is None
                                            else f"{r['quiet_vs_numba']:9.2f}") + f"{r['quiet_rounds']:7d}"
        print(f"{r['schedule']:9s}{r['contestant']:19s}{r['ms_per_step']:9.2f}{r['steps_per_s']:9.1f}"
              f"{r['samples_per_s']:11.0f}{ratio:8.2f}{r['per_round_vs_numba']:9.2f}" + extra)
    print("ratio: the baseline's median time / this one's (PyTorch eager, else the numpy backend); "
          "÷ numba: this contestant's time / the numba backend's in the same round, median over rounds"
          + (f"; ÷ quiet: the same over the rounds where neither round trip reached {SPELL_CYCLES} cycles"
             if args.spells else ""))
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": machine(args.threads), "preset": args.preset, "state": args.state,
                               "data": args.data or "uniform noise",
                               "options": {"encoder_batchnorm": args.encoder_batchnorm,
                                           "input_dropout": args.input_dropout},
                               "batch_size": train_cfg.batch_size, "rows": rows}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

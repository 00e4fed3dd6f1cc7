"""Is this machine in a slow spell? Training steps, a cache line bounced between two threads, and
one thread's memory bandwidth, sampled in turn for ``--seconds``.

On this project's 2-vCPU VM the training step sometimes runs twice as slow for minutes
(``docs/performance.md``). Each sample here is: ``--steps`` default phased steps on the pool
(``Trainer.fit``'s set-up), then 20,000 round trips of one cache line between two threads
(acquire loads and release stores, ``aae_np/fast/atomics.py``; in cycles of the time-stamp
counter), then one thread copying a 64 MB and a 4 MB array (GB/s). A spell shows as a slow step
together with a slow round trip while one thread's bandwidth stays put: the two vCPUs have stopped
sharing a cache.

    .venv/bin/python benchmarks/spells.py --seconds 240       # one line per sample, then a summary

Writes ``benchmarks/results/spells.json`` (or ``--json``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np
from numba import njit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aae_np.fast import pool  # noqa: E402
from aae_np.fast.atomics import cycles, sched_getcpu, store_release  # noqa: E402
from aae_np.fast.pool import _wait  # noqa: E402

PING, PONG = 0, 8                 # the two slots, on different cache lines


@njit(nogil=True)
def _ping(line, n):
    start = cycles()
    for i in range(1, n + 1):
        store_release(line, PING, i)
        _wait(line, PONG, i)      # the pool's wait: spins, offers the core after ~80 us
    line[16] = sched_getcpu()
    return cycles() - start


@njit(nogil=True)
def _pong(line, n):
    for i in range(1, n + 1):
        _wait(line, PING, i)
        store_release(line, PONG, i)
    line[24] = sched_getcpu()


def round_trip(n: int = 20_000) -> tuple[float, int, int]:
    """(cycles per round trip, the pinging thread's CPU, the other's)."""
    line = np.zeros(32, np.int64)
    other = threading.Thread(target=_pong, args=(line, n))
    other.start()
    spent = _ping(line, n)
    other.join()
    return spent / n, int(line[16]), int(line[24])


def bandwidth(megabytes: int, copies: int) -> float:
    """GB/s (read + write) of one thread copying an array of ``megabytes``."""
    a = np.ones(megabytes << 18, np.float32)
    b = np.empty_like(a)
    np.copyto(b, a)
    start = time.perf_counter()
    for _ in range(copies):
        np.copyto(b, a)
    return 2 * a.nbytes * copies / (time.perf_counter() - start) / 1e9


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=240.0)
    parser.add_argument("--steps", type=int, default=60, help="default phased steps per sample")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "spells.json")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.seconds < 0:
        parser.error("--steps must be at least 1 and --seconds at least 0")

    from aae_np.models.aae import AAE
    from aae_np.train.presets import resolve
    from aae_np.train.trainer import Trainer
    model_cfg, train_cfg = resolve("default")
    x = np.random.default_rng(0).random((20 * train_cfg.batch_size, 784), dtype=np.float32)
    trainer = Trainer(AAE(model_cfg, backend="numba"), train_cfg, x, progress=False)
    batches = np.split(x, 20)
    round_trip(100)                               # compile
    samples, end = [], time.time() + args.seconds
    while time.time() < end or not samples:
        with pool.running():
            for batch in batches[:3]:
                trainer.step(batch)
            start = time.perf_counter()
            for k in range(args.steps):
                trainer.step(batches[k % len(batches)])
            step_ms = (time.perf_counter() - start) / args.steps * 1e3
        trip, cpu, other_cpu = round_trip()
        sample = {"step_ms": round(step_ms, 2), "round_trip_cycles": round(trip), "cpus": [cpu, other_cpu],
                  "memory_gb_s": round(bandwidth(64, 3), 1), "l3_gb_s": round(bandwidth(4, 40), 1)}
        samples.append(sample)
        print(json.dumps(sample), flush=True)
    trips = sorted(s["round_trip_cycles"] for s in samples)
    print(f"{len(samples)} samples: step {statistics.median(s['step_ms'] for s in samples):.2f} ms median "
          f"({min(s['step_ms'] for s in samples):.2f}-{max(s['step_ms'] for s in samples):.2f}), round trip "
          f"{trips[0]}-{trips[-1]} cycles (median {statistics.median(trips):.0f})")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"samples": samples}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

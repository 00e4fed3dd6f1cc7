"""The benchmarks run (smoke mode only: speed claims come from full runs, not from tests)."""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_step_benchmark_smoke(tmp_path):
    out = tmp_path / "step.json"
    result = subprocess.run([sys.executable, str(REPO / "benchmarks" / "step.py"), "--smoke", "--gemm-floor",
                             "--json", str(out)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    contestants = {(r["schedule"], r["contestant"]) for r in report["rows"]}
    assert {("joint", "numpy backend"), ("joint", "numba backend"), ("phased", "numba backend"),
            ("joint", "GEMMs: numpy")} <= contestants
    assert all(r["steps_per_s"] > 0 for r in report["rows"])
    assert report["machine"]["threads"] == 2 and "ms/step" in result.stdout
    assert "joint: a numba step makes 22 GEMMs" in result.stdout     # tutorial model, first-layer dx skipped


def test_variants_benchmark_table_and_run_parsing():
    sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
    try:
        import variants as bench
    finally:
        sys.path.pop(0)
    assert bench.parse_run("semi-supervised:labels=100,seed=2") == ("semi-supervised", {"labels": 100, "seed": 2})
    base = dict(n_classes=10, style_dim=4, train_wall_s=120.0, train_cpu_s=230.0)
    lines = [dict(base, variant="semi-supervised", n_labels=100, test_error=e) for e in (0.10, 0.12, 0.14)]
    lines.append(dict(base, variant="clustering", n_labels=0, n_classes=16, test_error=0.2))
    text = bench.table(lines)
    assert "| semi-supervised | 100 labels | test error | 12.00 % ± 2.00 % (3) | ≤ 6 % | 1.90 % (± 0.10) | 2.0 / 3.8 min |" in text
    assert "| clustering | 16 clusters | clustering error | 20.00 % (1) | ≤ 15 % | 9.55 % |" in text

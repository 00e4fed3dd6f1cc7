"""The benchmarks run (smoke mode only: speed claims come from full runs, not from tests)."""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_step_benchmark_smoke(tmp_path):
    out = tmp_path / "step.json"
    result = subprocess.run([sys.executable, str(REPO / "benchmarks" / "step.py"), "--smoke", "--json", str(out)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    contestants = {(r["schedule"], r["contestant"]) for r in report["rows"]}
    assert {("joint", "numpy backend"), ("joint", "numba backend"), ("phased", "numba backend")} <= contestants
    assert all(r["steps_per_s"] > 0 for r in report["rows"])
    assert report["machine"]["threads"] == 2 and "ms/step" in result.stdout

"""The benchmarks run (smoke mode only: speed claims come from full runs, not from tests)."""

import importlib
import importlib.util
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
STEP = REPO / "benchmarks" / "step.py"
# The peers are never dependencies (CI has neither): their tests skip without them.
HAS_TORCH = importlib.util.find_spec("torch") is not None
HAS_JAX = importlib.util.find_spec("jax") is not None


def bench(name: str):
    """The benchmark script ``benchmarks/<name>.py``, imported as a module."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.pop(0)


@pytest.fixture
def mnist_dir():
    """The shared MNIST copy beside the repository (CI has it), or skip."""
    path = REPO.parent / "shared" / "data" / "mnist"
    if not path.is_dir():
        pytest.skip(f"no MNIST at {path}")
    return path


def run_step(*args: str) -> subprocess.CompletedProcess:
    """benchmarks/step.py in its own process (the peers set thread counts for the whole process)."""
    return subprocess.run([sys.executable, str(STEP), *args], capture_output=True, text=True, timeout=300)


def check_rows(stdout: str) -> dict[tuple[str, str], str]:
    """(schedule, peer) -> the rest of its line in ``step.py --check``'s table."""
    peers = ("pytorch eager", "torch.compile", "jax jit")
    return {(line[:9].strip(), peer): line[9 + len(peer):] for line in stdout.splitlines()
            for peer in peers if line[9:].startswith(peer)}


def test_step_benchmark_smoke(tmp_path):
    out = tmp_path / "step.json"
    result = run_step("--smoke", "--gemm-floor", "--peers", "eager", "--json", str(out))
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    contestants = {(r["schedule"], r["contestant"]) for r in report["rows"]}
    assert {("joint", "numpy backend"), ("joint", "numba backend"), ("phased", "numba backend"),
            ("joint", "GEMMs: numpy")} <= contestants
    assert all(r["steps_per_s"] > 0 for r in report["rows"])
    assert report["machine"]["threads"] == 2 and "ms/step" in result.stdout
    assert "joint: a numba step makes 22 GEMMs" in result.stdout     # tutorial model, first-layer dx skipped


@pytest.mark.skipif(not HAS_JAX, reason="JAX is not installed (pip install jax jaxlib); its peer is skipped")
def test_jax_peer_runs_our_step(tmp_path):
    result = run_step("--check", "--peers", "jax")               # tutorial model, both schedules
    assert result.returncode == 0, result.stdout + result.stderr
    rows = check_rows(result.stdout)
    assert set(rows) == {("joint", "jax jit"), ("phased", "jax jit")}, result.stdout
    assert "DIFFERENT" not in result.stdout and "the peers run our step" in result.stdout
    out = tmp_path / "step.json"                                  # the timed step: its own jit, keys, donation
    result = run_step("--smoke", "--peers", "jax", "--schedule", "phased", "--json", str(out))
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert ("phased", "jax jit") in {(r["schedule"], r["contestant"]) for r in report["rows"]}
    assert "jax" in report["machine"] and "donated" not in result.stderr


@pytest.mark.skipif(not HAS_TORCH, reason="PyTorch is not installed (pip install torch==2.13.0); its peers are skipped")
def test_torch_peers_run_our_step():
    result = run_step("--check", "--peers", "eager,compile", "--schedule", "joint")   # compiling takes ~10 s
    assert result.returncode == 0, result.stdout + result.stderr
    assert set(check_rows(result.stdout)) == {("joint", "pytorch eager"), ("joint", "torch.compile")}
    assert "DIFFERENT" not in result.stdout


WRONG_BETA1 = """
import sys
import numpy as np
sys.path.insert(0, {benchmarks!r})
from peers import check

def wrong(spec):                    # the discriminator's Adam with the generator's beta1 swapped
    lr, beta1, beta2, eps = spec.adam["discriminator"]
    spec.adam["discriminator"] = (lr, 0.9 if beta1 == 0.5 else 0.5, beta2, eps)

x = np.random.default_rng(0).random((512, 784), dtype=np.float32)
for change in (None, wrong):
    row = check("tutorial", "phased", [{peer!r}], 2, x, change=change)[0]
    print(row["loss_rel"], row["weight_rel"])
"""


@pytest.mark.skipif(not (HAS_JAX or HAS_TORCH), reason="neither JAX nor PyTorch is installed")
def test_check_catches_a_wrong_step():
    """A peer whose discriminator Adam has the wrong beta1 is caught (one step would not see it)."""
    code = WRONG_BETA1.format(benchmarks=str(REPO / "benchmarks"), peer="jax jit" if HAS_JAX else "pytorch eager")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    (right_loss, right_weights), (wrong_loss, wrong_weights) = (map(float, line.split())
                                                               for line in result.stdout.split("\n")[:2])
    assert right_loss < 1e-5 and right_weights < 1e-5
    assert wrong_loss > 1e-4 and wrong_weights > 1e-4             # over step.py --check's tolerance


def test_variants_benchmark_table_and_run_parsing():
    variants = bench("variants")
    assert variants.parse_run("semi-supervised:labels=100,seed=2") == ("semi-supervised", {"labels": 100, "seed": 2})
    assert variants.parse_run("clustering:consistency=0.01") == ("clustering", {"consistency": 0.01})
    assert variants.parse_run("clustering:balance=1,style=4,dataset=fashion-mnist,decay=20,encoder=2000,starts=6") == (
        "clustering", {"balance": 1.0, "style": 4, "dataset": "fashion-mnist", "decay": 20, "encoder": 2000, "starts": 6})
    with pytest.raises(SystemExit, match="unknown option 'colour'"):
        variants.parse_run("clustering:colour=1")
    with pytest.raises(SystemExit, match="pseudo=N and pseudo_at=E go together"):
        variants.parse_run("semi-supervised:pseudo=500")
    base = dict(n_classes=10, style_dim=4, train_wall_s=120.0, train_cpu_s=230.0)
    lines = [dict(base, variant="semi-supervised", n_labels=100, test_error=e) for e in (0.10, 0.12, 0.14)]
    lines.append(dict(base, variant="clustering", n_labels=0, n_classes=16, test_error=0.2))   # an older line
    for seed_error, paper_error, used in ((0.10, 0.12, 25), (0.20, 0.16, 23)):
        lines.append(dict(base, variant="clustering", n_labels=0, n_classes=30, test_error=seed_error,
                          test_error_paper=paper_error, clusters_used=used, kmeans_error=0.26,
                          kmeans_error_paper=0.27, kmeans_clusters_used=30))
    lines.append(dict(base, variant="semi-supervised", n_labels=100, test_error=0.05, consistency=0.01))
    lines.append(dict(base, variant="semi-supervised", n_labels=100, test_error=0.02, consistency=0.05,
                      class_agreement=0.93, options={"seed": 0, "labels": 100, "decoded_class": 0.02}))
    lines.append(dict(base, variant="clustering", n_labels=0, test_error=0.4, test_error_paper=0.41,
                      hungarian_accuracy=0.62, kmeans_error=0.5, kmeans_error_paper=0.52,
                      kmeans_hungarian_accuracy=0.47, consistency=0.01,
                      options={"seed": 0, "clusters": 10, "balance": 1.0, "dataset": "fashion-mnist"}))
    text = variants.table(lines)
    assert "| semi-supervised | 100 labels, + consistency 0.01 | test error | 5.00 % (1) |" in text
    assert ("| semi-supervised | 100 labels | test error | 12.00 % ± 2.00 % (3) | — | ≤ 1.5 %; class agreement ≥ 90 % "
            "| 1.90 % (± 0.10) | 2.0 / 3.8 min |") in text
    assert ("| semi-supervised | 100 labels, + consistency 0.05, decoded_class=0.02 | test error (class agreement) "
            "| 2.00 % (1) (93 / 100 read as asked) |") in text
    assert ("| clustering | 16 clusters | clustering error, majority / paper protocol | 20.00 % / — (1) | — / — "
            "| ≤ 9.5 %, every cluster used | 9.55 % |") in text
    assert ("| clustering | 30 clusters | clustering error, majority / paper protocol | 15.00 % ± 7.07 % / 14.00 % "
            "± 2.83 % (2; 23–25 of 30 used) | 26.00 % / 27.00 % | ≤ 5 % | 4.10 % |") in text
    assert ("| clustering | 10 clusters, + consistency 0.01, balance=1,dataset=fashion-mnist | clustering error, "
            "majority / paper protocol | 40.00 % / 41.00 % (1); Hungarian accuracy 62.00 % | 50.00 % / 52.00 %; 47.00 % "
            "| Hungarian accuracy ≥ 65 % | — |") in text


def test_a_presets_run_and_the_same_settings_as_options_share_a_row():
    """A row is the options over what the recipe resolved (``resolved``): our preset's run and a run
    that named the same settings share one row; another epoch count gets its own."""
    variants = bench("variants")
    from aae_np.train.presets import resolve

    _, train = resolve(variant="clustering", seed=1)
    assert variants.resolved(train) == {"balance": 1.0, "epochs": 100, "decay": 85}
    base = dict(variant="clustering", n_labels=0, n_classes=16, consistency=0.03, train_wall_s=60.0, train_cpu_s=90.0)
    lines = [dict(base, test_error=0.08, options={"seed": 0, "clusters": 16, "balance": 1.0, "epochs": 100, "decay": 85}),
             dict(base, test_error=0.10, options={"seed": 1, "clusters": 16}, resolved=variants.resolved(train)),
             dict(base, test_error=0.30, options={"seed": 2, "clusters": 16},
                  resolved=variants.resolved(replace(train, epochs=60)))]
    text = variants.table(lines)
    assert "| 16 clusters, + consistency 0.03, balance=1,decay=85,epochs=100 | clustering error, " in text
    assert "| 9.00 % ± 1.41 % / — (2) |" in text
    again = dict(lines[1], test_error=0.12)          # seed 1 run again: its latest run stands, once
    assert "| 10.00 % ± 2.83 % / — (2) |" in variants.table(lines + [again])
    assert "| 16 clusters, + consistency 0.03, balance=1,decay=85,epochs=60 |" in text and "| 30.00 % / — (1) |" in text


def test_variants_benchmark_curves(tmp_path, monkeypatch):
    variants = bench("variants")
    lines = [dict(variant="clustering", n_classes=16, n_labels=0, options={"seed": seed}, consistency=0.01,
                  history_test_error=[0.3, 0.2 + seed / 10], history_test_error_paper=[0.35, 0.25])
             for seed in (0, 1)]                                            # one setting, two seeds: a mean
    lines += [dict(variant="semi-supervised", n_classes=10, n_labels=100, options={"seed": 1},
                   history_test_error=[0.2, 0.1]),                          # one seed: a grey trial
              dict(variant="supervised", n_classes=10, n_labels=-1, options={})]     # no curve: skipped
    import aae_np.eval.plots as plots

    drawn, save = {}, plots.save_figure

    def keep_axes(fig, path):                   # the figure's axes, to read what was drawn
        drawn["axes"] = fig.axes
        return save(fig, path)
    monkeypatch.setattr(plots, "save_figure", keep_axes)
    path = variants.curves(lines, tmp_path / "curves.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
    clustering, semi = drawn["axes"][:2]
    assert [t.get_text() for t in clustering.get_legend().get_texts()] == ["16 clusters, + consistency 0.01 (2 seeds)"]
    mean, dashed = clustering.get_lines()
    np.testing.assert_allclose(mean.get_ydata(), [30, 25])                  # the mean of 20 and 30 at epoch 2
    assert dashed.get_linestyle() == "--" and semi.get_legend() is None and len(semi.get_lines()) == 1


def test_whole_process_benchmark_reads_the_tutorial_program():
    """benchmarks/whole.py runs the tutorial's own program text, with only its epoch count changed."""
    whole = bench("whole")
    if not whole.SEEDS.is_file():
        pytest.skip(f"no seeds document at {whole.SEEDS}")
    program = whole.tutorial_program(whole.SEEDS, epochs=3)
    compile(program, "tutorial.py", "exec")                     # a whole program, nothing cut off
    assert "num_epochs = 3\n" in program and "num_epochs = 50" not in program
    assert program.startswith("import torch\n") and program.rstrip().endswith('print("Training complete!")')
    assert "datasets.MNIST(" in program and "optim.Adam(" in program
    compile(whole.SHIM_DATASETS, "datasets.py", "exec")


@pytest.mark.skipif(not HAS_TORCH or not Path("/usr/share/datasets/fashion-mnist").is_dir(),
                    reason="needs PyTorch and Debian's dataset-fashion-mnist")
def test_whole_process_benchmark_smoke(tmp_path):
    out = tmp_path / "whole.json"
    result = subprocess.run([sys.executable, str(REPO / "benchmarks" / "whole.py"), "--pairs", "1", "--epochs", "1",
                             "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr + result.stdout
    report = json.loads(out.read_text())
    pair = report["pairs"][0]
    assert pair["ours"] > 0 and pair["tutorial"] > 0 and set(pair["ours_breakdown"]) >= {"training", "figures"}


def test_step_benchmark_on_real_images(tmp_path, mnist_dir):
    out = tmp_path / "step.json"
    result = run_step("--smoke", "--schedule", "joint", "--peers", "none", "--data", str(mnist_dir), "--json", str(out))
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert report["data"] == str(mnist_dir) and {r["contestant"] for r in report["rows"]} - {"numba, BLAS threads"} == {"numpy backend", "numba backend"}


def test_step_benchmark_ratios_are_taken_round_by_round():
    """A slow spell that hits both contestants in the same rounds cancels in the per-round ratio."""
    step = bench("step")
    times = {"numba backend": [1.0, 1.0, 2.0, 2.0, 2.0], "jax jit": [1.1, 1.1, 2.2, 2.2, 2.2]}
    ratios = step.per_round(times)
    assert ratios == {"numba backend": 1.0, "jax jit": pytest.approx(1.1)}
    # JAX ran one round outside the spell that hit numba there: the ratio of the medians would say
    # 1.1 / 2.0 = 0.55 (JAX faster); round by round it is still 1.1 in four rounds of five
    times["jax jit"] = [1.1, 1.1, 1.1, 2.2, 2.2]
    assert step.per_round(times)["jax jit"] == pytest.approx(1.1)


@pytest.mark.skipif(not __import__("aae_np.fast.pool", fromlist=["pool"]).available(), reason="no pool here")
def test_spells_probe_smoke(tmp_path):
    out = tmp_path / "spells.json"
    result = subprocess.run([sys.executable, str(REPO / "benchmarks" / "spells.py"), "--seconds", "0", "--steps", "2",
                             "--json", str(out)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    (sample,) = json.loads(out.read_text())["samples"]
    assert sample["step_ms"] > 0 and sample["round_trip_cycles"] > 0 and sample["memory_gb_s"] > 0
    assert len(sample["cpus"]) == 2 and "round trip" in result.stdout


def test_ablation_versions_leave_out_what_they_say(mnist_dir):
    """benchmarks/ablate.py's switches: no updates keeps every parameter, neither also makes every
    product zero (all rows of a network's output equal), and full trains again afterwards."""
    ablate = bench("ablate")
    from aae_np.data import load_mnist
    from aae_np.models.aae import AAE
    from aae_np.train.presets import resolve
    from aae_np.train.trainer import Trainer

    x = load_mnist(mnist_dir).x_train[:256]
    model_cfg, train_cfg = resolve("tutorial", schedule="phased")
    trainer = Trainer(AAE(model_cfg, backend="numba"), train_cfg, x, progress=False)
    setups, batch = ablate.versions(trainer), x[:train_cfg.batch_size]
    params = trainer.model.params

    def after_step(version):
        setups[version]()
        before = {k: p.copy() for k, p in params.items()}
        trainer.step(batch)
        return {k for k in params if not np.array_equal(before[k], params[k])}

    assert after_step("no updates") == set() and after_step("neither") == set()
    codes = trainer.model.run["encoder"].forward(batch)
    assert np.all(codes == codes[:1])                     # x W = 0: every row is act(b)
    assert "encoder.0.W" in after_step("full")
    codes = trainer.model.run["encoder"].forward(batch)
    assert not np.all(codes == codes[:1])
    assert np.array_equal(codes, trainer.model.encode(batch))   # the real kernels again


def test_ablation_benchmark_smoke(tmp_path, mnist_dir):
    out = tmp_path / "ablate.json"
    result = subprocess.run([sys.executable, str(REPO / "benchmarks" / "ablate.py"), "--preset", "tutorial",
                             "--rounds", "1", "--steps", "2", "--gap", "0", "--data", str(mnist_dir),
                             "--json", str(out)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert set(report["median_ms"]) == {"full", "no updates", "neither"}
    assert all(t > 0 for t in report["median_ms"].values()) and "parts: GEMMs" in result.stdout
    assert sum(report["parts_ms"].values()) == pytest.approx(report["median_ms"]["full"])


@pytest.mark.parametrize("script, args", [("step.py", ["--rounds", "0"]), ("step.py", ["--preset", "nope"]),
                                          ("ablate.py", ["--steps", "0"]), ("ablate.py", ["--preset", "nope"]),
                                          ("whole.py", ["--pairs", "0"]), ("spells.py", ["--steps", "0"])])
def test_benchmarks_refuse_bad_arguments_in_one_line(script, args):
    result = subprocess.run([sys.executable, str(REPO / "benchmarks" / script), *args],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and f"{script}: error:" in result.stderr
    assert "Traceback" not in result.stderr


def test_step_benchmark_quiet_rounds_leave_out_the_spells():
    """``--spells``: a round counts as quiet when neither side's round trip before it reached
    SPELL_CYCLES; a bounce slowed for a moment (after JAX's rounds) is retried, a spell is not."""
    step = bench("step")
    quiet, spell = 200, 2 * step.SPELL_CYCLES
    times = {"numba backend": [1.0, 2.0, 1.0, 1.0], "jax jit": [1.05, 3.0, 1.1, 1.5]}
    trips = {"numba backend": [quiet, quiet, quiet, spell], "jax jit": [quiet, spell, quiet, quiet]}
    result = step.per_quiet_round(times, trips)
    assert result["jax jit"] == pytest.approx((1.075, 2)) and result["numba backend"] == (1.0, 3)
    assert step.per_quiet_round(times, {k: [spell] * 4 for k in trips})["jax jit"] == (None, 0)
    bounces = iter([(9000.0, 0, 1), (8000.0, 0, 1), (210.0, 0, 1), (100.0, 0, 1)])
    assert step.spell_cycles(lambda n: next(bounces)) == 210.0          # stops at the first quiet one
    assert step.spell_cycles(lambda n: (1100.0, 0, 1)) == 1100.0           # a spell stays a spell


def test_step_benchmark_tags_rounds_by_spell(tmp_path):
    out = tmp_path / "step.json"
    result = run_step("--smoke", "--spells", "--schedule", "joint", "--peers", "none", "--json", str(out))
    assert result.returncode == 0, result.stderr
    rows = json.loads(out.read_text())["rows"]
    assert all(len(r["round_trip_cycles"]) == 2 and all(t > 0 for t in r["round_trip_cycles"]) for r in rows)
    assert all(0 <= r["quiet_rounds"] <= 2 for r in rows) and "÷ quiet" in result.stdout


def test_step_benchmark_from_a_checkpoint_on_real_images(tmp_path, mnist_dir):
    from aae_np.data import load_mnist
    from aae_np.models.aae import AAE
    from aae_np.train.presets import resolve
    from aae_np.train.trainer import Trainer

    model_cfg, train_cfg = resolve("tutorial", schedule="joint", epochs=1)
    x = load_mnist(mnist_dir).x_train[:512]
    Trainer(AAE(model_cfg), train_cfg, x, out_dir=tmp_path / "run", progress=False).fit()
    out = tmp_path / "step.json"
    result = run_step("--state", str(tmp_path / "run" / "checkpoint.npz"), "--data", str(mnist_dir), "--smoke",
                      "--peers", "none", "--json", str(out))
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert report["state"].endswith("checkpoint.npz") and report["data"] == str(mnist_dir)
    assert {r["schedule"] for r in report["rows"]} == {"joint"} and report["batch_size"] == 128
    assert "CPU: " in result.stdout and report["machine"]["vector_extensions"] is not None


def test_split_clusters_splits_the_mixed_cluster_the_style_does_not_explain():
    """benchmarks/split_clusters.py on a stand-in model: cluster 0 holds two groups of different
    labels apart in the hidden layer, with the same style; cluster 1 two styles of one label; cluster 2
    is empty. The style criterion splits cluster 0 (error 0), the purity ceiling too."""
    split = bench("split_clusters")
    rng = np.random.default_rng(0)

    def group(n, centre, label, cluster, z_shift):
        h = np.zeros((n, 8))
        h[:, centre] = 1.0
        h += 0.05 * rng.random((n, 8))
        return h, np.full(n, label), np.full(n, cluster), z_shift + 0.1 * rng.standard_normal((n, 2))

    parts = [group(80, 0, 4, 0, 0.0), group(80, 1, 9, 0, 0.0),          # content split, same style
             group(80, 2, 1, 1, -3.0), group(80, 3, 1, 1, 3.0)]         # style split, one label
    h, y, c, z = (np.concatenate(p) for p in zip(*parts))
    x = np.arange(len(h))[:, None].astype(float)                      # rows stand for images

    class StandIn:
        config = type("C", (), {"n_classes": 3})

        def classify(self, rows):
            return np.eye(3)[c[rows[:, 0].astype(int)]]

        def hidden(self, name, rows):
            return h[rows[:, 0].astype(int)]

        def encode(self, rows):
            return z[rows[:, 0].astype(int)]

    errors = split.split_errors(StandIn(), x, y, x, y, k=5, least=20)
    assert errors["as trained"] == pytest.approx(80 / 320)
    assert errors["z"] == 0 and errors["labels"] == 0
    from aae_np.train.split import bisect
    lam, side = bisect(h[:160], 5)
    assert set(side[:80]) != set(side[80:]) and lam < 0.05


def test_neighbour_purity_counts_the_rows_their_neighbours_outvote():
    """benchmarks/neighbour_purity.py: two tight groups of one label each, and one row of the first
    label sitting inside the second group: it alone is outvoted by its neighbours."""
    purity = bench("neighbour_purity")
    rng = np.random.default_rng(0)
    a = np.array([1.0, 0.0]) + 0.01 * rng.standard_normal((20, 2))
    b = np.array([0.0, 1.0]) + 0.01 * rng.standard_normal((20, 2))
    features = np.vstack([a, b, [[0.0, 1.0]]])
    labels = np.r_[np.zeros(20, int), np.ones(20, int), 0]
    assert purity.neighbour_vote_accuracy(features, labels, 5) == pytest.approx(40 / 41)
    assert purity.neighbour_vote_accuracy(features, 1 - labels, 5) == pytest.approx(40 / 41)   # any label names


def test_cpu_names_the_family_and_model_beside_a_generic_model_name(monkeypatch):
    """benchmarks/step.py's cpu(): "AMD EPYC" covers several generations, so the family and model
    numbers go with it (every variants.py record carries them); an ARM cpuinfo has neither."""
    import io
    step = bench("step")
    x86 = "processor\t: 0\ncpu family\t: 25\nmodel\t\t: 17\nmodel name\t: AMD EPYC\nflags\t\t: fpu avx avx2 fma avx512f\n"
    monkeypatch.setattr(step.platform, "processor", lambda: "")
    monkeypatch.setattr(step, "open", lambda *a, **k: io.StringIO(x86), raising=False)
    assert step.cpu() == ("AMD EPYC (family 25, model 17)", ["avx", "avx2", "fma", "avx512f"])
    arm = "processor\t: 0\nFeatures\t: fp asimd sve\nCPU architecture: 8\n"
    monkeypatch.setattr(step, "open", lambda *a, **k: io.StringIO(arm), raising=False)
    name, flags = step.cpu()
    assert "family" not in name and flags == ["asimd", "sve"]


def test_a_variants_run_records_its_result_and_the_cpu(tmp_path, monkeypatch):
    """benchmarks/variants.py's run() end to end on a stand-in (1,200 noise images: 200 trained on,
    the clustering protocol's 1,000 held out; one epoch): the record has the metrics, the seconds
    and the machine's CPU, and the model lands in the models folder (here a temporary one)."""
    from aae_np.data import MnistData
    variants = bench("variants")
    monkeypatch.setattr(variants, "MODELS", tmp_path / "models")
    rng = np.random.default_rng(0)
    data = MnistData(rng.random((1200, 784)).astype(np.float32), rng.integers(0, 10, 1200),
                     rng.random((100, 784)).astype(np.float32), rng.integers(0, 10, 100))
    result = variants.run("clustering", {"clusters": 4, "epochs": 1, "seed": 0}, data)
    assert 0 <= result["test_error"] <= 1 and result["train_wall_s"] > 0 and result["validation_images"] == 1000
    assert isinstance(result["cpu"], str) and result["cpu"] and isinstance(result["vector_extensions"], list)
    assert (tmp_path / "models" / "clustering-clusters4-epochs1-seed0" / "model.npz").is_file()

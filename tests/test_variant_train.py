"""VariantTrainer: labelled subsets, phases run, bit-identical resume; the CLI's --variant path."""

import json

import numpy as np
import pytest

from aae_np.train import presets
from aae_np.cli import main
from aae_np.models import load_model
from aae_np.eval.report import evaluate_variant
from aae_np.train.variant import VariantTrainConfig, VariantTrainer, labelled_subset
from aae_np.models.variants import VARIANTS, VariantAAE, VariantConfig
from test_cli import synthetic_mnist

TINY = dict(input_dim=20, n_classes=4, style_dim=2, encoder_hidden=(16,), decoder_hidden=(16,),
            discriminator_hidden=(8,), seed=3)
PRIOR = {"conditioned": {"name": "mixture", "k": 4}}


def tiny(variant):
    return VariantAAE(**{**TINY, "variant": variant, "prior": PRIOR.get(variant, {})})


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    x, y = rng.random((96, 20), dtype=np.float32), np.tile(np.arange(4), 24)
    return x, y, x[:32].copy(), y[:32].copy()


def test_labelled_subset_is_balanced_seeded_and_checked():
    labels = np.repeat(np.arange(10), 50)
    idx = labelled_subset(labels, 100, seed=1)
    assert len(idx) == 100 and (np.bincount(labels[idx]) == 10).all()
    np.testing.assert_array_equal(idx, labelled_subset(labels, 100, seed=1))
    assert not np.array_equal(idx, labelled_subset(labels, 100, seed=2))
    assert len(labelled_subset(labels, -1, seed=0)) == 500
    with pytest.raises(ValueError, match="multiple of 10"):
        labelled_subset(labels, 105, seed=0)
    labels[:45] = 1                                            # class 0 keeps 5 examples
    with pytest.raises(ValueError, match="class 0 has 5 training examples, fewer than 10"):
        labelled_subset(labels, 100, seed=0)


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_variant_trains_and_records_its_numbers(data, variant):
    x, y, xt, yt = data
    config = VariantTrainConfig(epochs=2, batch_size=16, n_labels=8, sup_batch_size=8, input_noise=0.1)
    trainer = VariantTrainer(tiny(variant), config, x, y, xt, yt, progress=False)
    history = trainer.fit()
    assert len(history["test_mse"]) == 2 and np.isfinite(history["test_mse"]).all()
    assert history["recon_loss"][1] < history["recon_loss"][0] or variant == "conditioned"
    if variant == "semi-supervised":
        assert len(trainer.labelled) == 8 and np.isfinite(history["sup_loss"]).all()
        assert np.isfinite(history["test_error"]).all() and np.isfinite(history["d_loss_y"]).all()
    if variant == "supervised":
        assert len(trainer.labelled) == len(x)               # the supervised AAE uses every label
    if variant in ("unsupervised", "clustering"):
        assert (trainer.labels == -1).all()
    result = evaluate_variant(trainer.model, x, y, xt, yt)
    assert {"test_mse", "frechet", "mmd"} <= set(result)
    assert ("test_error" in result) == (variant in ("semi-supervised", "clustering"))
    assert ("nearest_component_fraction" in result) == (variant == "conditioned")


def test_conditioned_training_draws_prior_samples_from_the_labels_components(data, monkeypatch):
    x, y, xt, yt = data
    trainer = VariantTrainer(tiny("conditioned"), VariantTrainConfig(epochs=1, batch_size=16, n_labels=-1),
                             x, y, progress=False)
    seen = []
    original = trainer.model.prior.sample_with_labels
    monkeypatch.setattr(trainer.model.prior, "sample_with_labels",
                        lambda n, rng, dtype, labels: seen.append(labels) or original(n, rng, dtype, labels))
    trainer.step(x[:16], 0.0, trainer.labels[:16])
    np.testing.assert_array_equal(seen[0], y[:16])


def test_labels_are_required_where_used(data):
    x, y, _, _ = data
    with pytest.raises(ValueError, match="needs the training labels"):
        VariantTrainer(tiny("semi-supervised"), VariantTrainConfig(), x, None, progress=False)


def test_variant_resume_is_bit_identical(data, tmp_path):
    x, y, xt, yt = data
    config = dict(epochs=3, batch_size=16, n_labels=8, sup_batch_size=8, input_noise=0.1)
    straight = VariantTrainer(tiny("semi-supervised"), VariantTrainConfig(**config), x, y, xt, yt,
                              out_dir=tmp_path / "a", progress=False)
    straight.fit()
    first = VariantTrainer(tiny("semi-supervised"), VariantTrainConfig(**config), x, y, xt, yt,
                           out_dir=tmp_path / "b", progress=False)
    first.fit(epochs=1)
    resumed = VariantTrainer.resume(tmp_path / "b" / "checkpoint.npz", x, y, xt, yt, progress=False)
    assert resumed.epoch == 1 and resumed.config.input_noise == 0.1
    resumed.fit()
    for k, v in straight.model.params.items():
        np.testing.assert_array_equal(resumed.model.params[k], v, err_msg=k)
    assert resumed.history["test_error"] == straight.history["test_error"]


@pytest.fixture
def small_presets(monkeypatch):
    """The CLI's variant presets with tiny networks, so the end-to-end test is quick."""
    real = presets._variant_presets

    def shrunk():
        out = {}
        for name, (model, train) in real().items():
            model = type(model).from_dict({**model.to_dict(), "encoder_hidden": [32], "decoder_hidden": [32],
                                           "discriminator_hidden": [16]})
            train.epochs, train.warmup_epochs = 1, 0
            train.pseudo_at = min(train.pseudo_at, 1)          # (self-training, where on, within the run)
            train.n_labels = 20 if train.n_labels > 0 else train.n_labels
            train.validation_images = min(train.validation_images, 50)
            out[name] = (model, train)
        return out

    monkeypatch.setattr(presets, "_variant_presets", shrunk)


@pytest.fixture
def mnist_dir(tmp_path, monkeypatch):
    return synthetic_mnist(tmp_path, monkeypatch, n_train=200)       # 20 labels need 2 per class


@pytest.mark.parametrize("variant,figures", [
    ("semi-supervised", ["styles.png"]), ("clustering", ["clusters.png", "styles.png"]),
    ("supervised", ["styles.png"]), ("conditioned", ["manifold.png"]), ("unsupervised", ["manifold.png"]),
])
def test_cli_trains_each_variant_and_writes_its_figure_and_metrics(variant, figures, small_presets, mnist_dir,
                                                                    tmp_path, capsys):
    out = tmp_path / variant
    args = ["-q", "train", "--data-dir", str(mnist_dir), "--variant", variant, "--out", str(out)]
    if variant == "clustering":
        args += ["--clusters", "6"]
    assert main(args) == 0
    for name in ["model.npz", "metrics.json", "history.json", "samples.png", "latent.png", *figures]:
        assert (out / name).is_file(), name
    result = json.loads((out / "metrics.json").read_text())
    assert result["variant"] == variant and np.isfinite(result["test_mse"])
    model, _ = load_model(out / "model.npz")
    assert model.config.variant == variant
    if variant == "clustering":
        assert model.config.n_classes == 6 and "test_error" in result
    assert main(["-q", "train", "--data-dir", str(mnist_dir), "--out", str(out), "--resume", "--epochs", "2"]) == 0
    assert len(json.loads((out / "history.json").read_text())["test_mse"]) == 2
    capsys.readouterr()
    assert main(["evaluate", "--model", str(out / "model.npz"), "--data-dir", str(mnist_dir), "--parzen"]) == 0
    printed = capsys.readouterr().out
    assert "parzen_ll" in printed and "frechet" in printed
    assert main(["sample", "--model", str(out / "model.npz"), "--out", str(tmp_path / "s.npy"), "--n", "5"]) == 0
    assert np.load(tmp_path / "s.npy").shape == (5, 784)


@pytest.mark.parametrize("args,message", [
    (["--labels", "100"], "applies to the variants only"),
    (["--variant", "supervised", "--labels", "100"], "--labels applies to --variant semi-supervised"),
    (["--variant", "semi-supervised", "--clusters", "5"], "--clusters applies to --variant clustering"),
    (["--variant", "semi-supervised", "--labels", "15"], "multiple of 10"),
    (["--variant", "conditioned", "--latent-dim", "3"], "is 2-D; use --latent-dim 2"),
    (["--variant", "nope"], "invalid choice"),
])
def test_variant_flag_errors_are_one_line(args, message, small_presets, mnist_dir, tmp_path, capsys):
    code = main(["-q", "train", "--data-dir", str(mnist_dir), "--out", str(tmp_path / "r"), *args]) \
        if args[-1] != "nope" else None
    if code is None:
        with pytest.raises(SystemExit) as err:
            main(["-q", "train", "--data-dir", str(mnist_dir), *args])
        code = err.value.code
    assert code == 2
    assert message in capsys.readouterr().err


def test_warmup_epochs_skip_only_the_adversarial_phases(data):
    x, y, xt, yt = data
    config = VariantTrainConfig(epochs=2, batch_size=16, n_labels=8, sup_batch_size=8, warmup_epochs=1)
    trainer = VariantTrainer(tiny("semi-supervised"), config, x, y, xt, yt, progress=False)
    history = trainer.fit()
    assert np.isnan(history["d_loss"][0]) and np.isnan(history["g_loss_y"][0])
    assert np.isfinite(history["sup_loss"][0]) and np.isfinite(history["recon_loss"][0])
    assert np.isfinite(history["d_loss"][1]) and np.isfinite(history["g_loss_y"][1])
    with pytest.raises(ValueError, match=r"warmup_epochs \(3\) must lie in \[0, epochs = 2\]"):
        VariantTrainConfig(epochs=2, warmup_epochs=3)


def test_a_short_cli_run_keeps_adversarial_epochs_after_the_warm_up(small_presets, mnist_dir, tmp_path, monkeypatch):
    real = presets._variant_presets

    def with_warmup():
        out = real()
        out["clustering"][1].epochs, out["clustering"][1].warmup_epochs = 8, 3
        return out

    monkeypatch.setattr(presets, "_variant_presets", with_warmup)
    out = tmp_path / "short"
    assert main(["-q", "train", "--data-dir", str(mnist_dir), "--variant", "clustering", "--epochs", "2",
                 "--out", str(out)]) == 0
    history = json.loads((out / "history.json").read_text())
    assert np.isnan(history["d_loss"][0]) and np.isfinite(history["d_loss"][1])     # warm-up 2 // 2 = 1


def test_cli_starts_keeps_one_candidate_says_so_and_resumes_without_new_starts(small_presets, mnist_dir, tmp_path,
                                                                               capsys):
    out = tmp_path / "starts"
    assert main(["train", "--data-dir", str(mnist_dir), "--variant", "clustering", "--epochs", "2", "--starts", "3",
                 "--out", str(out)]) == 0
    said = capsys.readouterr().out
    lines = [line for line in said.splitlines() if line.startswith("start ")]
    assert [line[:10] for line in lines] == ["start 1/3 ", "start 2/3 ", "start 3/3 "]
    assert all("I(x; y) = " in line for line in lines)
    history = json.loads((out / "history.json").read_text())
    assert len(history["start_information"]) == 3 and len(history["d_loss"]) == 2    # 1 epoch kept + 1 more
    assert main(["-q", "train", "--data-dir", str(mnist_dir), "--out", str(out), "--resume", "--epochs", "3",
                 "--starts", "3"]) == 0
    assert len(json.loads((out / "history.json").read_text())["d_loss"]) == 3
    assert main(["-q", "train", "--data-dir", str(mnist_dir), "--out", str(out), "--resume", "--starts", "2"]) == 2
    assert "--starts 2 (the run has 3)" in capsys.readouterr().err

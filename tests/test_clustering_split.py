"""The clustering run's validation split: held out of training, used by the paper's protocol per
epoch, rebuilt by ``aae-np evaluate``; the CLI prints k-means beside ours and draws confusion.png."""

import json

import numpy as np
import pytest

from aae_np.cli import main
from aae_np.eval import report
from aae_np.models.variants import VariantAAE, VariantConfig
from aae_np.train import presets
from aae_np.train.variant import VariantTrainConfig, VariantTrainer
from test_cli import synthetic_mnist

TINY = dict(input_dim=20, n_classes=4, style_dim=2, encoder_hidden=(16,), decoder_hidden=(16,),
            discriminator_hidden=(8,), seed=3, variant="clustering")


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    x, y = rng.random((100, 20), dtype=np.float32), np.tile(np.arange(4), 25)
    return x, y, x[:32].copy(), y[:32].copy()


def test_the_trainer_never_sees_the_held_out_images(data, monkeypatch):
    x, y, xt, yt = data
    config = VariantTrainConfig(epochs=2, batch_size=16, n_labels=0, validation_images=20)
    trainer = VariantTrainer(VariantAAE(**TINY), config, x, y, xt, yt, progress=False)
    assert len(trainer.x_train) == 80 and len(trainer.y_train) == 80 and len(trainer.labels) == 80
    np.testing.assert_array_equal(trainer.x_val, x[80:])
    np.testing.assert_array_equal(trainer.y_val, y[80:])
    seen = []
    original = trainer.model.phase_grads
    monkeypatch.setattr(trainer.model, "phase_grads",
                        lambda phase, xb, **kw: seen.append(np.array(xb)) or original(phase, xb, **kw))
    history = trainer.fit()
    trained = np.concatenate(seen)
    held_out = {row.tobytes() for row in x[80:]}
    assert len(trained) and not any(row.tobytes() in held_out for row in trained)
    assert {row.tobytes() for row in trained} == {row.tobytes() for row in x[:80]}
    assert len(history["test_error_paper"]) == 2 and np.isfinite(history["test_error_paper"]).all()


def test_without_a_split_every_image_trains_and_the_paper_protocol_is_absent(data):
    x, y, xt, yt = data
    trainer = VariantTrainer(VariantAAE(**TINY), VariantTrainConfig(epochs=1, batch_size=16, n_labels=0),
                             x, y, xt, yt, progress=False)
    assert len(trainer.x_train) == 100 and trainer.x_val is None
    assert np.isnan(trainer.fit()["test_error_paper"]).all()
    with pytest.raises(ValueError, match="validation_images must be >= 0"):
        VariantTrainConfig(validation_images=-1)
    with pytest.raises(ValueError, match=r"validation_images must lie in \[0, 100\)"):
        VariantTrainer(VariantAAE(**TINY), VariantTrainConfig(n_labels=0, validation_images=100), x, y)


def test_evaluate_variant_scores_both_protocols_and_k_means(data):
    x, y, xt, yt = data
    trainer = VariantTrainer(VariantAAE(**TINY), VariantTrainConfig(epochs=1, batch_size=16, n_labels=0,
                                                                    validation_images=20), x, y, xt, yt,
                             progress=False)
    trainer.fit()
    result = report.evaluate_variant(trainer.model, trainer.x_train, trainer.y_train, xt, yt,
                                     x_val=trainer.x_val, y_val=trainer.y_val)
    assert result["test_error_paper"] == trainer.history["test_error_paper"][-1]
    assert {"kmeans_error", "kmeans_error_paper", "kmeans_clusters_used", "kmeans_cluster_sizes"} <= set(result)
    assert sum(result["cluster_sizes"]) == len(xt) and result["clusters_used"] == sum(
        n > 0 for n in result["cluster_sizes"])


@pytest.fixture
def tiny_clustering_preset(monkeypatch):
    def small():
        return {"clustering": (VariantConfig(variant="clustering", n_classes=6, style_dim=2, encoder_hidden=(32,),
                                             decoder_hidden=(32,), discriminator_hidden=(16,)),
                               VariantTrainConfig(n_labels=0, epochs=1, batch_size=50, validation_images=40))}

    monkeypatch.setattr(presets, "_variant_presets", small)


def test_cli_clustering_run_prints_k_means_writes_confusion_and_evaluate_rebuilds_the_split(
        tiny_clustering_preset, tmp_path, monkeypatch, capsys):
    mnist = synthetic_mnist(tmp_path, monkeypatch, n_train=200)
    out = tmp_path / "run"
    assert main(["-q", "train", "--data-dir", str(mnist), "--variant", "clustering", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "clustering error: ours" in printed and "k-means on pixels" in printed and "paper protocol" in printed
    assert (out / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    trained = json.loads((out / "metrics.json").read_text())
    for key in ("test_error", "test_error_paper", "clusters_used", "cluster_sizes", "kmeans_error",
                "kmeans_error_paper", "kmeans_clusters_used"):
        assert key in trained, key
    assert len(trained["cluster_sizes"]) == 6 and sum(trained["cluster_sizes"]) == 60
    history = json.loads((out / "history.json").read_text())
    assert history["test_error_paper"] == [trained["test_error_paper"]]

    assert main(["evaluate", "--model", str(out / "model.npz"), "--data-dir", str(mnist),
                 "--json", str(tmp_path / "e.json")]) == 0
    assert "k-means on pixels" in capsys.readouterr().out
    evaluated = json.loads((tmp_path / "e.json").read_text())
    for key in ("test_error", "test_error_paper", "kmeans_error", "kmeans_error_paper"):
        assert evaluated[key] == trained[key], key               # the same split, rebuilt from the run

    alone = tmp_path / "alone" / "model.npz"                     # a model file without its run
    alone.parent.mkdir()
    alone.write_bytes((out / "model.npz").read_bytes())
    assert main(["evaluate", "--model", str(alone), "--data-dir", str(mnist)]) == 0
    assert "no validation split" in capsys.readouterr().out

"""Every plot writes a real, non-blank PNG; the PCA and the grid layout give known answers."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from aae_np.eval import latent_plots, plots
from aae_np.models.aae import AAE

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_real_png(path: Path, min_side: int = 150) -> None:
    """The file is a PNG (signature + IHDR size) of reasonable size that is not one flat colour."""
    data = Path(path).read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path} does not start with the PNG signature"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert width >= min_side and height >= min_side // 3, (width, height)
    assert len(data) > 2000, f"{path} is only {len(data)} bytes"
    pixels = imread(path)
    assert pixels.shape[:2] == (height, width)
    assert pixels.std() > 0.01, f"{path} is a blank image"


@pytest.fixture
def digits() -> np.ndarray:
    """Twenty fake 28x28 'digits' in [0, 1]: a bright square at a different place each."""
    x = np.zeros((20, 28, 28))
    for i in range(20):
        x[i, i:i + 8, 27 - i - 8:27 - i] = 1.0
    return x.reshape(20, 784)


# ----------------------------------------------------------------------------- layout helpers

def test_tile_images_layout():
    imgs = np.arange(3 * 4, dtype=float).reshape(3, 2, 2)          # 3 images of 2x2
    grid = plots.tile_images(imgs, nrow=2, pad=1, pad_value=-1.0)
    assert grid.shape == (2 * 3 + 1, 2 * 3 + 1)                    # 2 rows, 2 columns of (2+1)
    np.testing.assert_array_equal(grid[1:3, 1:3], imgs[0])
    np.testing.assert_array_equal(grid[1:3, 4:6], imgs[1])
    np.testing.assert_array_equal(grid[4:6, 1:3], imgs[2])
    assert (grid[4:6, 4:6] == -1.0).all()                          # unused cell
    assert (grid[0] == -1.0).all() and (grid[:, 3] == -1.0).all()  # padding


def test_images_must_be_square():
    with pytest.raises(ValueError, match="not a square number"):
        plots.as_image_stack(np.zeros((2, 10)))


# ----------------------------------------------------------------------------- image figures

def test_image_grid_writes_png(tmp_path, digits):
    out = plots.image_grid(digits, tmp_path / "sub" / "grid.png", nrow=5, title="twenty squares")
    assert out == tmp_path / "sub" / "grid.png"
    assert_real_png(out)


def test_reconstructions_writes_png(tmp_path, digits):
    assert_real_png(plots.reconstructions(digits, 1.0 - digits, tmp_path / "rec.png", n=8))


def test_reconstructions_rejects_mismatched_pairs(tmp_path, digits):
    with pytest.raises(ValueError, match="x_hat has shape"):
        plots.reconstructions(digits, digits[:5], tmp_path / "rec.png")


def test_samples_writes_png(tmp_path):
    images = np.random.default_rng(0).random((64, 784))
    assert_real_png(plots.samples(images, tmp_path / "samples.png", nrow=8))


# ----------------------------------------------------------------------------- PCA and latent plots

def test_principal_components_finds_the_axis_of_spread():
    rng = np.random.default_rng(1)
    z = rng.standard_normal((2000, 5)) * np.array([0.1, 0.1, 5.0, 0.1, 0.1]) + 3.0
    pca = latent_plots.principal_components(z, k=2)
    assert abs(pca.components[0] @ np.eye(5)[2]) > 0.999
    assert pca.components[0, 2] > 0                                 # sign convention
    assert pca.explained_variance_ratio[0] > 0.98
    assert pca.scores.shape == (2000, 2)
    np.testing.assert_allclose(pca.scores[:, 0].std(), 5.0, rtol=0.05)
    np.testing.assert_allclose(pca.components @ pca.components.T, np.eye(2), atol=1e-12)


def test_principal_components_sign_is_fixed():
    # An SVD may return v or -v; we pick the sign that makes the largest-magnitude entry positive.
    rng = np.random.default_rng(6)
    for _ in range(20):
        z = rng.standard_normal((50, 4)) @ rng.standard_normal((4, 4))
        for sign in (1.0, -1.0):
            comps = latent_plots.principal_components(sign * z, k=3).components
            biggest = comps[np.arange(3), np.abs(comps).argmax(axis=1)]
            assert (biggest > 0).all(), comps


def test_principal_components_finds_a_diagonal_direction():
    rng = np.random.default_rng(2)
    direction = np.array([1.0, -1.0, 0.0]) / np.sqrt(2.0)
    z = rng.standard_normal((1000, 1)) * 4.0 * direction + 0.1 * rng.standard_normal((1000, 3))
    pca = latent_plots.principal_components(z, k=1)
    assert abs(pca.components[0] @ direction) > 0.999


def test_latent_scatter_2d_draws_z_directly(tmp_path, monkeypatch):
    def no_pca(*args, **kwargs):
        raise AssertionError("2-D codes must be drawn directly, not through PCA")

    monkeypatch.setattr(latent_plots, "principal_components", no_pca)
    rng = np.random.default_rng(3)
    z, labels = rng.standard_normal((1000, 2)), rng.integers(0, 10, 1000)
    assert_real_png(latent_plots.latent_scatter(z, labels, tmp_path / "z2.png"))


def test_latent_scatter_5d_uses_pca(tmp_path, monkeypatch):
    calls = []
    real = latent_plots.principal_components

    def spy(z, k=2):
        calls.append((z.shape, k))
        return real(z, k)

    monkeypatch.setattr(latent_plots, "principal_components", spy)
    rng = np.random.default_rng(4)
    z, labels = rng.standard_normal((1000, 5)), rng.integers(0, 10, 1000)
    assert_real_png(latent_plots.latent_scatter(z, labels, tmp_path / "z5.png"))
    assert calls == [((1000, 5), 2)]


def test_latent_scatter_without_labels_and_bad_input(tmp_path):
    z = np.random.default_rng(5).standard_normal((300, 3))
    assert_real_png(latent_plots.latent_scatter(z, None, tmp_path / "plain.png"))
    with pytest.raises(ValueError, match="d >= 2"):
        latent_plots.latent_scatter(z[:, :1], None, tmp_path / "bad.png")
    with pytest.raises(ValueError, match="labels"):
        latent_plots.latent_scatter(z, np.zeros(5, int), tmp_path / "bad.png")


def small_aae(latent_dim: int) -> AAE:
    return AAE(latent_dim=latent_dim, encoder_hidden=(16,), decoder_hidden=(16,),
               discriminator_hidden=(8,))


def test_latent_manifold_of_a_2d_model(tmp_path):
    out = latent_plots.latent_manifold(small_aae(2).decode, tmp_path / "manifold.png", n=8, span=2.0)
    assert_real_png(out)


def test_latent_manifold_grid_orientation(tmp_path):
    seen = []

    def decode(z):
        seen.append(z.copy())
        return np.repeat(1.0 / (1.0 + np.exp(-z[:, :1])), 16, axis=1)     # 4x4 images

    latent_plots.latent_manifold(decode, tmp_path / "m.png", n=3, span=1.0)
    z = seen[0]
    np.testing.assert_array_equal(z[0], [-1.0, 1.0])     # top-left: smallest z1, largest z2
    np.testing.assert_array_equal(z[2], [1.0, 1.0])      # along the top row z1 grows
    np.testing.assert_array_equal(z[8], [1.0, -1.0])     # bottom-right


def test_latent_manifold_rejects_non_2d_latents(tmp_path):
    with pytest.raises(ValueError, match="only for a 2-D latent space"):
        latent_plots.latent_manifold(small_aae(8).decode, tmp_path / "m.png")          # read from the model
    with pytest.raises(ValueError, match="only for a 2-D latent space"):
        latent_plots.latent_manifold(lambda z: z, tmp_path / "m.png", latent_dim=5)
    with pytest.raises(ValueError, match="only for a 2-D latent space"):
        latent_plots.latent_manifold(lambda z: small_aae(8).decode(z), tmp_path / "m.png")  # decoder refuses
    assert not (tmp_path / "m.png").exists()


# ----------------------------------------------------------------------------- history

def test_loss_curves_full_history(tmp_path):
    history = {"recon_loss": [0.3, 0.2, 0.15, 0.12], "d_loss": [0.69, 0.68, 0.7, 0.69],
               "g_loss": [0.7, 0.72, 0.69, 0.7], "d_accuracy": [0.7, 0.6, 0.55, 0.5],
               "test_mse": [0.05, None, 0.03, 0.028]}
    assert_real_png(plots.loss_curves(history, tmp_path / "loss.png"))


def test_loss_curves_plots_what_is_present(tmp_path):
    out = plots.loss_curves({"recon_loss": [0.3, 0.2], "note": "not numbers", "empty": []},
                            tmp_path / "partial.png")
    assert_real_png(out)


def test_loss_curves_rejects_a_history_with_nothing_to_plot(tmp_path):
    with pytest.raises(ValueError, match="nothing to plot"):
        plots.loss_curves({"recon_loss": [], "note": "x"}, tmp_path / "none.png")

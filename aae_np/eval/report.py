"""What a trained model is measured and shown by: the numbers ``aae-np`` prints and saves,
and the figures it writes. Public, so a notebook reports a run the way the CLI does.

``evaluate``      held-out numbers of any model of the family (a dict of floats; a clustering
                  model's also both protocols' errors beside k-means on pixels)
``write_figures`` reconstructions, samples, latent codes, losses [, manifold, styles, clusters,
                  confusion]
``epoch_line``    the one-line summary of an epoch
``clustering_line`` a clustering run's errors beside k-means', in one line
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from aae_np.eval import clustering, confusion_plot, latent_plots, metrics, plots
from aae_np.eval.baselines import BaselineUnavailable, kmeans_baseline
from aae_np.eval.held_out import held_out_metrics, test_mse
from aae_np.eval.mnist_score import load_or_train_classifier, mnist_score
from aae_np.eval.parzen import parzen_evaluation
from aae_np.models.network_set import NetworkSet
from aae_np.models.reduction import ReductionAAE
from aae_np.models.variants import VariantAAE

__all__ = ["evaluate", "evaluate_variant", "held_out_metrics", "test_mse", "sanity_warnings", "write_figures",
           "epoch_line", "clustering_line"]

N_SAMPLES = 10_000          # prior samples for the MNIST score and the Parzen window
N_SCATTER = 5_000           # test codes in latent.png


def evaluate_variant(model: VariantAAE, x_train: np.ndarray, y_train: np.ndarray | None,
                     x_test: np.ndarray, y_test: np.ndarray | None, parzen: bool = False,
                     seed: int = 0, x_val: np.ndarray | None = None, y_val: np.ndarray | None = None,
                     baseline: bool = True) -> dict[str, Any]:
    """The paper's numbers for one trained variant, as a JSON-able dict.

    ``x_train`` are the images the model trained on; ``x_val``, ``y_val`` the validation split
    held out of training, if any. Always: held-out reconstruction MSE, Fréchet and MMD between
    q(z) (encoded test set) and p(z). Semi-supervised: test classification error. Clustering:
    both protocols' errors (``held_out_metrics``) and, with ``baseline``, k-means on the same
    pixels at the same k (``baselines.kmeans_baseline``; without scikit-learn,
    ``kmeans_unavailable`` says what to install). Conditioned with a mixture prior:
    the fraction of test codes nearest their own class's mode. ``parzen``: Parzen-window
    log-likelihood of the test set under 10,000 decoded prior samples, sigma chosen on
    the last 1,000 training images (the paper's Table 1 protocol).
    """
    c = model.config
    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {"variant": c.variant}
    out.update(held_out_metrics(model, x_train, y_train, x_test, y_test, x_val, y_val))
    if baseline and c.variant == "clustering" and y_train is not None and y_test is not None:
        try:
            out.update(kmeans_baseline(x_train, y_train, x_test, y_test, c.n_classes, x_val, y_val, seed=seed))
        except BaselineUnavailable as err:
            out["kmeans_unavailable"] = str(err)
    z = model.encode(x_test)
    prior_z = model.prior.sample(len(z), rng, np.float64)
    mean, cov = model.prior.moments()
    out["frechet"] = metrics.frechet_to_prior(z, mean, cov)
    out["mmd"] = metrics.mmd_rbf(z, prior_z, seed=seed)
    if c.variant == "conditioned" and y_test is not None and hasattr(model.prior, "component_means"):
        out["nearest_component_fraction"] = metrics.nearest_component_fraction(
            z, y_test, model.prior.component_means())
    if parzen:
        out.update(parzen_evaluation(model.sample(N_SAMPLES, rng), x_train[-1000:], x_test))
    return out


def evaluate(model: NetworkSet, data: Any, score: bool = False, parzen: bool = False,
             cache: str | None = None, validation_images: int = 0) -> dict[str, Any]:
    """Held-out numbers of ``model`` on ``data`` (``aae_np.data.MnistData``).

    Plain AAE: reconstruction MSE, Fréchet(q(z), p(z)) and, on request, the MNIST score of
    10,000 prior samples (``score``, classifier cached at ``cache``) and the Parzen-window
    log-likelihood (``parzen``). A variant: ``evaluate_variant`` (its own metrics; no score),
    with the last ``validation_images`` training images as the validation split its run held
    out of training (the run's ``VariantTrainConfig.validation_images``).
    """
    if isinstance(model, VariantAAE):
        if score:
            raise ValueError("--score is for plain AAE models; the variants report their own metrics")
        x_fit, y_fit, x_val, y_val = clustering.split_validation(data.x_train, data.y_train, validation_images)
        return evaluate_variant(model, x_fit, y_fit, data.x_test, data.y_test, parzen=parzen, x_val=x_val,
                                y_val=y_val)
    z = model.encode(data.x_test)
    result = {"test_mse": model.reconstruction_mse(data.x_test),     # as the per-epoch number, batch by batch
              "frechet": metrics.frechet_to_prior(z, prior_cov=model.config.prior_std ** 2
                                                  * np.eye(model.config.latent_dim))}
    if score:
        clf = load_or_train_classifier(data.x_train, data.y_train, cache=cache)
        samples = model.decode(model.prior.sample(N_SAMPLES, np.random.default_rng(0)))
        result["mnist_score"] = mnist_score(clf, samples)
        result["mnist_score_real_test"] = mnist_score(clf, data.x_test)
    if parzen:
        samples = model.decode(model.prior.sample(N_SAMPLES, np.random.default_rng(0)))
        result.update(parzen_evaluation(samples, data.x_train[-1000:], data.x_test))
    return {k: float(v) for k, v in result.items()}


def sanity_warnings(summary: dict[str, Any], model: NetworkSet, data: Any) -> list[str]:
    """What says a finished run went wrong: reconstructions no better than the mean training
    image, codes far off the prior (Fréchet above the code's dimension; healthy runs are ~0.1),
    or numbers that are not finite."""
    out = []
    numbers = {k: v for k, v in summary.items() if isinstance(v, float)}
    bad = [k for k, v in numbers.items() if not np.isfinite(v)]
    if bad:
        out.append(f"{', '.join(bad)} {'is' if len(bad) == 1 else 'are'} not finite: training went wrong")
    mean_image = metrics.mean_image_mse(data.x_train, data.x_test)
    if summary.get("test_mse", 0.0) >= mean_image:
        out.append(f"held-out MSE {summary['test_mse']:.4f} is no better than the mean training image's "
                   f"({mean_image:.4f}): the autoencoder did not learn; try smaller learning rates")
    dim = model.config.style_dim if isinstance(model, VariantAAE) else model.config.latent_dim
    if summary.get("frechet", 0.0) > dim:
        out.append(f"Frechet(q(z), p(z)) = {summary['frechet']:.3g} is far from 0: the codes do not match the "
                   "prior (the discriminator won, or training diverged); try smaller learning rates")
    return out


def write_figures(model: NetworkSet, data: Any, history: dict[str, list[float]] | None, out: Path,
                  seed: int = 0, validation_images: int = 0, image_shape: Any = "square",
                  skipped: list[str] | None = None) -> list[Path]:
    """The figures of a trained model in ``out``; returns their paths. ``validation_images``:
    the run's validation split (the last training images), for the clustering's confusion matrix.

    ``image_shape``: (H, W) of the rows, "square" (the rows are square images), or None (not
    images: the image figures are left out; the latent plots and loss curves are always drawn).
    ``data.y_test`` may be None (one colour in the latent plots). What was left out, and why, is
    appended to ``skipped``."""
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    skipped = [] if skipped is None else skipped
    images = image_shape is not None
    shape = (lambda a: a) if image_shape in (None, "square") else (lambda a: a.reshape(len(a), *image_shape))
    labels = (lambda n: None) if data.y_test is None else (lambda n: data.y_test[:n])
    variant = isinstance(model, VariantAAE)
    written = []
    if images:
        x = data.x_test[:10]
        written += [plots.reconstructions(shape(x), shape(model.reconstruct(x, labels(10))), out / "reconstructions.png"),
                    plots.samples(shape(model.sample(100, rng)), out / "samples.png")]
    else:
        skipped.append("reconstructions.png, samples.png (the rows are not images; --image-shape H,W if they are)")
    if data.y_test is None:
        skipped.append("label colours in latent.png (no labels)")
    c = model.config
    if (c.style_dim if variant else c.latent_dim) >= 2:
        written.append(latent_plots.latent_scatter(model.encode(data.x_test[:N_SCATTER]), labels(N_SCATTER),
                                                   out / "latent.png",
                                                   **({"title": f"Test codes z ({c.variant})"} if variant else {})))
    else:
        skipped.append("latent.png (a 1-D code has no plane to draw)")
    if variant and c.decoder_gets_label and images:           # the paper's style/content figure
        written.append(plots.style_grid(lambda z, y: shape(model.decode(z, y)), model.prior.sample(10, rng),
                                        c.n_classes, out / "styles.png"))
    if variant and c.variant == "clustering" and images:
        clusters = model.classify(data.x_test).argmax(1)
        heads = model.decode(np.zeros((c.n_classes, c.style_dim)), np.arange(c.n_classes))
        members = [shape(data.x_test[clusters == k][:10]) for k in range(c.n_classes)]
        written.append(plots.cluster_grid(shape(heads), members, out / "clusters.png"))
    if variant and c.has_y and c.variant in ("clustering", "semi-supervised") and data.y_test is not None:
        written.append(_confusion(model, data, validation_images, out / "confusion.png"))
    if isinstance(model, ReductionAAE):            # section 8: the representation r, its heads marked
        written.append(latent_plots.latent_scatter(
            model.represent(data.x_test[:N_SCATTER]), labels(N_SCATTER), out / "reduction.png", axis="r",
            title=f"Test images at r = y W_c + b + z, {c.n_classes} heads (x)", marks=model.heads()))
    if history:
        written.append(plots.loss_curves(history, out / "losses.png"))
    if ((c.style_dim == 2 and not c.decoder_gets_label) if variant else c.latent_dim == 2) and images:
        written.append(latent_plots.latent_manifold(lambda z: shape(model.decode(z)), out / "manifold.png",
                                                    latent_dim=2))
    return written


def _confusion(model: VariantAAE, data: Any, validation_images: int, path: Path) -> Path:
    """confusion.png: clusters (rows ordered by their majority label) or predicted classes
    against the true test labels, both protocols' errors in the title."""
    predicted = model.classify(data.x_test).argmax(1)
    c = model.config
    if c.variant == "semi-supervised":
        error = metrics.classification_error(predicted, data.y_test)
        return confusion_plot.class_confusion(predicted, data.y_test, path, f"semi-supervised, {c.n_classes} "
                                              f"classes: test error {100 * error:.2f} %", c.n_classes)
    x_fit, y_fit, x_val, y_val = clustering.split_validation(data.x_train, data.y_train, validation_images)
    fit_clusters = model.classify(x_fit).argmax(1)
    numbers = clustering.protocols(fit_clusters, y_fit, predicted, data.y_test, c.n_classes,
                                   None if x_val is None else model.classify(x_val), y_val)
    paper = (f", {100 * numbers['test_error_paper']:.1f} % paper protocol ({len(x_val):,} validation images)"
             if "test_error_paper" in numbers else ", no validation split for the paper protocol")
    title = (f"{c.n_classes} clusters ({numbers['clusters_used']} used) on the {len(predicted):,} test images\n"
             f"error {100 * numbers['test_error']:.1f} % majority vote{paper}")
    return confusion_plot.cluster_confusion(predicted, data.y_test, clustering.cluster_mapping(
        fit_clusters, y_fit, c.n_classes), path, title)


def clustering_line(summary: dict[str, Any]) -> str | None:
    """A clustering run's errors beside k-means' on the same pixels, split and k, or None for
    other models: ``clustering error: ours 46.7 % majority / 44.0 % paper protocol (14 of 16
    clusters used); k-means on pixels 34.3 % / 36.1 % (16 used)``."""
    if summary.get("variant") != "clustering" or "test_error" not in summary:
        return None

    def pair(error: str) -> str:
        paper = summary.get(f"{error}_paper")
        return f"{100 * summary[error]:.1f} % majority / " + (f"{100 * paper:.1f} % paper protocol"
                                                              if paper is not None else "no validation split")
    k = len(summary.get("cluster_sizes", ())) or "?"
    line = f"clustering error: ours {pair('test_error')} ({summary['clusters_used']} of {k} clusters used)"
    if "kmeans_error" in summary:
        return line + f"; k-means on pixels {pair('kmeans_error')} ({summary['kmeans_clusters_used']} used)"
    return line + f"; k-means: {summary.get('kmeans_unavailable', 'not run')}"


def epoch_line(epoch: int, epochs: int, means: dict[str, float]) -> str:
    """``epoch  3/22  recon 0.1012  D 0.690 (acc 0.55)  G 0.702  test MSE 0.0312  [1.8s]``."""
    nan = float("nan")
    error = f"  test error {means['test_error']:.4f}" if "test_error" in means else ""
    return (f"epoch {epoch:3d}/{epochs}  recon {means.get('recon_loss', nan):.4f}  "
            f"D {means.get('d_loss', nan):.3f} (acc {means.get('d_accuracy', nan):.2f})  "
            f"G {means.get('g_loss', nan):.3f}  test MSE {means.get('test_mse', nan):.4f}{error}  "
            f"[{means['seconds']:.1f}s]")

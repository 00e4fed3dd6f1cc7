"""``AAEEstimator``: an adversarial autoencoder with scikit-learn's conventions, so it can sit in
a ``Pipeline`` beside PCA, UMAP or t-SNE. scikit-learn is not needed to use it; its tags
(``__sklearn_tags__``) import it only when scikit-learn itself asks.

``fit(X)`` trains (``X``: (N, D) in [0, 1], or any range with ``scale="minmax"``); ``transform``
gives codes z (N, latent_dim); ``inverse_transform`` decodes codes to rows; ``sample(n,
random_state)`` decodes prior samples; ``score`` is minus the reconstruction MSE (higher is
better). ``variant="clustering"`` or ``"semi-supervised"`` adds ``predict`` / ``predict_proba``
(q(y|x)); semi-supervised ``fit(X, y)`` uses ``n_labels`` of the labels, as the paper's protocol.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from aae_np.train.inputs import check_labels, check_rows

__all__ = ["AAEEstimator", "NotFittedError"]

PARAMS = ("variant", "latent_dim", "hidden", "epochs", "batch_size", "lr", "scale", "n_clusters", "n_labels",
          "backend", "random_state")


class NotFittedError(ValueError, AttributeError):
    """The estimator was used before ``fit`` (as scikit-learn's, a ValueError and an AttributeError)."""


class AAEEstimator:
    """An AAE (or a paper variant) as a scikit-learn transformer.

    variant      None (the plain AAE), "clustering" or "semi-supervised"
    latent_dim   size of the code z (a variant's style); None: the preset's
    hidden       hidden layer sizes of every network, e.g. (256, 256); None: the preset's
    epochs, batch_size, lr   training length, mini-batch rows, every learning rate; None: the preset's
    scale        None: X must lie in [0, 1]; "minmax": each feature's fit range is mapped to [0, 1]
    n_clusters   clusters of the clustering variant; n_labels: labelled rows used (semi-supervised)
    backend      "numpy" (default: picklable, exact) or "numba"
    random_state int seed of the weights and of every training draw
    """

    def __init__(self, variant: str | None = None, latent_dim: int | None = 2, hidden: tuple[int, ...] | None = None,
                 epochs: int | None = 20, batch_size: int | None = None, lr: float | None = None,
                 scale: str | None = None, n_clusters: int | None = None, n_labels: int | None = None,
                 backend: str = "numpy", random_state: int = 0) -> None:
        self.variant, self.latent_dim, self.hidden, self.epochs = variant, latent_dim, hidden, epochs
        self.batch_size, self.lr, self.scale, self.n_clusters = batch_size, lr, scale, n_clusters
        self.n_labels, self.backend, self.random_state = n_labels, backend, random_state

    # -- scikit-learn's protocol -----------------------------------------------------------
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {name: getattr(self, name) for name in PARAMS}

    def set_params(self, **params: Any) -> "AAEEstimator":
        for name, value in params.items():
            if name not in PARAMS:
                raise ValueError(f"AAEEstimator has no parameter {name!r}; its parameters are {', '.join(PARAMS)}")
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        defaults = AAEEstimator().get_params()
        changed = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items() if v != defaults[k])
        return f"AAEEstimator({changed})"

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "model_")

    def __sklearn_tags__(self):        # called by scikit-learn only, so it is imported only then
        from sklearn.utils import ClassifierTags, Tags, TargetTags, TransformerTags

        tags = Tags(estimator_type=None, target_tags=TargetTags(required=self.variant == "semi-supervised"),
                    transformer_tags=TransformerTags(preserves_dtype=["float32"]))
        if self.variant is not None:
            tags.classifier_tags = ClassifierTags()
        tags.non_deterministic = self.backend == "numba"
        return tags

    # -- fitting ---------------------------------------------------------------------------
    def _configs(self, n_features: int) -> tuple[Any, Any]:
        from aae_np.train.presets import fit_recipe, resolve

        model, train = resolve("default", self.variant, latent_dim=self.latent_dim, seed=self.random_state,
                               epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
                               clusters=self.n_clusters if self.variant == "clustering" else None,
                               labels=self.n_labels if self.variant in ("semi-supervised", "conditioned") else None)
        sizes = {} if self.hidden is None else {k: tuple(self.hidden) for k in vars(model) if k.endswith("_hidden")
                                                 and getattr(model, k)}
        if hasattr(train, "validation_images"):        # an estimator holds nothing out; score() is the user's
            train = replace(train, validation_images=0)
        train = fit_recipe(train, n_features)[0]         # our consistency phase needs 28 x 28 images
        return replace(model, input_dim=n_features, **sizes), train

    def _rows(self, X: Any, fitting: bool = False) -> np.ndarray:
        if hasattr(X, "toarray"):
            raise TypeError("sparse input is not supported (sparse matrix or array); pass X.toarray()")
        x = np.asarray(X)
        if x.dtype == object:               # numbers held as Python objects (pandas), as scikit-learn does
            x = x.astype(np.float64)
        if not fitting:
            if not hasattr(self, "model_"):
                raise NotFittedError("this AAEEstimator is not fitted yet; call fit(X) first")
            if x.ndim == 2 and x.shape[1] != self.n_features_in_:
                raise ValueError(f"X has {x.shape[1]} features, but AAEEstimator is expecting "
                                 f"{self.n_features_in_} features as input")
        x = check_rows(x, None, "X", "float64", unit_range=False)
        if fitting:
            if self.scale not in (None, "minmax"):
                raise ValueError(f"scale must be None or 'minmax', got {self.scale!r}")
            low, high = (x.min(0), x.max(0)) if self.scale else (np.zeros(x.shape[1]), np.ones(x.shape[1]))
            self.low_, self.span_ = low, np.where(high > low, high - low, 1.0)
        x = (x - self.low_) / self.span_
        if self.scale:
            x = np.clip(x, 0, 1)
        return check_rows(x, None, "X", unit_range=True)

    def fit(self, X: Any, y: Any = None) -> "AAEEstimator":
        from aae_np.train.run import new_trainer

        x = self._rows(X, fitting=True)
        labels = None                     # y is ignored (as by any transformer) except by the semi-supervised variant
        if self.variant == "semi-supervised" and y is not None:
            labels = check_labels(y, len(x), None, "y")
        if self.variant == "semi-supervised" and labels is None:
            raise ValueError("the semi-supervised variant needs y (class labels 0..k-1); n_labels of them are used")
        model_cfg, train_cfg = self._configs(x.shape[1])
        data = _Data(x, labels)
        trainer = new_trainer(model_cfg, train_cfg, data, backend=self.backend, progress=False)
        trainer.fit()
        self.model_, self.n_features_in_ = trainer.model, x.shape[1]
        self.history_ = trainer.history
        return self

    # -- using it ----------------------------------------------------------------------------
    def transform(self, X: Any) -> np.ndarray:
        """Codes z: (N, latent_dim) (a variant's style part)."""
        return self.model_.encode(self._rows(X))

    def fit_transform(self, X: Any, y: Any = None) -> np.ndarray:
        return self.fit(X, y).transform(X)

    def inverse_transform(self, Z: Any) -> np.ndarray:
        """Rows decoded from codes ``Z`` (N, latent_dim), in X's units."""
        if not hasattr(self, "model_"):
            raise NotFittedError("this AAEEstimator is not fitted yet; call fit(X) first")
        return self._unscale(self.model_.decode(np.asarray(Z)))

    def sample(self, n: int, random_state: int | np.random.Generator | None = None) -> np.ndarray:
        """``n`` rows decoded from prior samples, in X's units; ``random_state``: a seed or a Generator."""
        if not hasattr(self, "model_"):
            raise NotFittedError("this AAEEstimator is not fitted yet; call fit(X) first")
        return self._unscale(self.model_.sample(n, np.random.default_rng(random_state)))

    def score(self, X: Any, y: Any = None) -> float:
        """Minus the mean squared reconstruction error on the [0, 1] scale (higher is better)."""
        x = self._rows(X)
        return -float(np.mean((self.model_.reconstruct(x) - x) ** 2))

    # predict and predict_proba exist only for the variants with a y head (hasattr says so)
    @property
    def predict_proba(self):
        """q(y|x): (N, k) cluster or class probabilities (clustering, semi-supervised)."""
        if self.variant not in ("clustering", "semi-supervised"):
            raise AttributeError(f"predict_proba needs variant='clustering' or 'semi-supervised', not {self.variant!r}")
        return lambda X: self.model_.classify(self._rows(X))

    @property
    def predict(self):
        """The most probable cluster or class of each row, (N,) int64."""
        proba = self.predict_proba
        return lambda X: proba(X).argmax(1)

    def __getstate__(self) -> dict[str, Any]:
        """Picklable: the fitted model travels as its own .npz bytes (the format of model.npz)."""
        import tempfile
        from pathlib import Path

        state = dict(self.__dict__)
        if "model_" in state:
            with tempfile.TemporaryDirectory() as folder:
                path = Path(folder) / "model.npz"
                state.pop("model_").save(path)
                state["model_npz_"] = path.read_bytes()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        import tempfile
        from pathlib import Path

        from aae_np.models import load_model

        blob = state.pop("model_npz_", None)
        self.__dict__.update(state)
        if blob is not None:
            with tempfile.TemporaryDirectory() as folder:
                (Path(folder) / "model.npz").write_bytes(blob)
                self.model_ = load_model(Path(folder) / "model.npz", backend=self.backend)[0]

    def _unscale(self, rows: np.ndarray) -> np.ndarray:
        return rows * self.span_ + self.low_


class _Data:
    """The four arrays ``new_trainer`` reads; an estimator holds out no test split."""

    def __init__(self, x: np.ndarray, y: np.ndarray | None) -> None:
        self.x_train, self.y_train, self.x_test, self.y_test = x, y, None, None

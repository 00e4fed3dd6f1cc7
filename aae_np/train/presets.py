"""Named model + training settings, and ``resolve``: a preset with a user's overrides.

``aae-np train --preset NAME`` and ``--variant NAME`` both come here; this is where training
policy lives (what ``--lr`` sets, a short run's warm-up), not in the CLI.

``default``
    the best model a user gets from ``aae-np train`` in about a minute on a
    2-core CPU (numbers in README.md).
``tutorial``
    the tutorial's program: 784-256-64 encoder (ReLU, linear z), 64-256-784
    sigmoid decoder, 64-256-1 discriminator, MSE reconstruction, Adam 1e-3,
    batch 128, 50 epochs. With ``--schedule joint`` it reproduces the
    tutorial's failure; with the default phased schedule it learns.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from aae_np.models.aae import AAEConfig
from aae_np.models.reduction import ReductionConfig
from aae_np.models.variants import VariantConfig
from aae_np.train.resume import with_learning_rate
from aae_np.train.trainer import TrainConfig
from aae_np.train.variant import VariantTrainConfig

__all__ = ["PRESETS", "RECIPES", "OUR_RECIPE", "OUR_CONSISTENCY", "get_preset", "get_variant_preset", "resolve", "paper_recipe",
           "fit_recipe"]

RECIPES = ("ours", "paper")
#: what our recipe (the preset) adds to the paper's, per variant with a y head (the best measured:
#: docs/variants.md): the consistency phase's learning rate and its options; ``recipe="paper"`` is the
#: preset without them (``paper_recipe``)
OUR_RECIPE = {"clustering": dict(consistency=0.03, balance=1.0),
              "semi-supervised": dict(consistency=0.05, shift_labelled=True, decoded_class=0.005, elastic=20.0,
                                      pseudo_labels=800, pseudo_at=40)}
OUR_CONSISTENCY = {variant: added["consistency"] for variant, added in OUR_RECIPE.items()}
#: the paper's hidden widths where the preset (ours) narrows them to fit the time budget
PAPER_WIDTH = {"clustering": 3000}
#: the paper's schedule (/ 10 after epoch 50; 60 epochs) where ours trains longer
PAPER_SCHEDULE = {variant: dict(epochs=60, decay_epochs=(50,)) for variant in ("clustering", "semi-supervised")}
#: the VariantTrainConfig fields that are ours, not the paper's, at their "off" values
_NOT_THE_PAPERS = dict(consistency=0.0, shift_labelled=False, balance=0.0, revive=0.0, threshold=0.0, decoded_class=0.0,
                       flip=0.0, mix=0.0, elastic=0.0, pseudo_labels=0)

PRESETS: dict[str, tuple[AAEConfig, TrainConfig]] = {
    "default": (
        # input dropout 0.2 and 40 epochs (before: none and 22): held-out MSE 0.0255 -> 0.0247, MNIST
        # score 8.11 -> 8.30 (means of seeds 0-2, one dropout mask per step; docs/usage.md)
        AAEConfig(latent_dim=5, encoder_hidden=(512, 512), decoder_hidden=(512, 512),
                  discriminator_hidden=(256, 256), activation="relu", recon_loss="bce", input_dropout=0.2),
        TrainConfig(epochs=40, batch_size=50, lr_ae=2e-3, lr_d=2e-4, lr_g=4e-4,
                    beta1_ae=0.9, beta1_adv=0.5, lr_decay_start=0.5),
    ),
    "tutorial": (
        AAEConfig(latent_dim=64, encoder_hidden=(256,), decoder_hidden=(256,),
                  discriminator_hidden=(256,), activation="relu", recon_loss="mse", adv_weight=1.0),
        TrainConfig(epochs=50, batch_size=128, lr_ae=1e-3, lr_d=1e-3, lr_g=1e-3,
                    beta1_ae=0.9, beta1_adv=0.5, lr_decay_start=0.5),
    ),
}


def get_preset(name: str) -> tuple[AAEConfig, TrainConfig]:
    """Fresh copies of a preset's configs (callers may modify them)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    model, train = PRESETS[name]
    return AAEConfig.from_dict(model.to_dict()), TrainConfig.from_dict(vars(train))


def _variant_presets() -> dict:
    wide = dict(encoder_hidden=(1000, 1000), decoder_hidden=(1000, 1000), discriminator_hidden=(1000, 1000))
    adam = dict(batch_size=100, lr_ae=1e-3, lr_d=2e-4, lr_g=4e-4, lr_sup=1e-3, beta1_ae=0.9, beta1_adv=0.5,
                lr_decay_start=0.5)
    mixture = {"name": "mixture", "k": 10, "radius": 4.0}
    # the appendix's SGD: rates 0.1 (adversaries, supervised phase); 1.0 for the reconstruction, whose
    # loss is our mean over 784 pixels, where 0.01 barely moves it (docs/variants.md)
    paper = dict(optimizer="momentum", momentum_ae=0.9, momentum_adv=0.1, batch_size=100, lr_ae=1.0, lr_d=0.1,
                 lr_g=0.1, lr_sup=0.1, decay_epochs=(50,), epochs=60)
    return {
        # section 8, without labels: a 2-D Gaussian code
        "unsupervised": (VariantConfig(variant="unsupervised", style_dim=2, **wide),
                         VariantTrainConfig(epochs=20, n_labels=0, **adam)),
        # section 2.3 (and 8 with labels): a 2-D mixture of 10, every image labelled; a stronger
        # adversary than the other variants' (docs/variants.md)
        "conditioned": (VariantConfig(variant="conditioned", style_dim=2, prior=mixture, **wide),
                        VariantTrainConfig(epochs=20, n_labels=-1, **{**adam, "lr_d": 4e-4, "lr_g": 1e-3})),
        # section 5: label to the decoder, z = style; an 8-D z kept the digit too (docs/variants.md)
        "supervised": (VariantConfig(variant="supervised", style_dim=3, **wide),
                       VariantTrainConfig(epochs=20, n_labels=-1, **adam)),
        # section 6 and the appendix: 1000-1000 ReLU nets, a 10-D style, input noise 0.3, SGD with
        # momentum, / 10 after epoch 50; BatchNorm in the encoder and momentum 0.1 for the adversaries,
        # as in section 7, since without them SGD diverges within an epoch (docs/variants.md); ours adds
        # the consistency phase, the labelled batch augmented too, and the decoded_class phase (the decoder
        # follows the label: 98 of 100 decoded images read as asked), bent (elastic) views (seeds 0-2:
        # 1.91 % test error against 2.45 % without), 100 epochs, / 10 after 85 (1.70 %), self-training
        # from epoch 40 with the 800 surest images per class (1.56 %) and 150 epochs, / 10 after 135
        # (seeds 0-2: 1.41 %; docs/variants.md); recipe="paper" leaves all six out (PAPER_SCHEDULE)
        "semi-supervised": (VariantConfig(variant="semi-supervised", style_dim=10, encoder_batchnorm=True, **wide),
                            VariantTrainConfig(n_labels=100, input_noise=0.3, **OUR_RECIPE["semi-supervised"],
                                               **{**paper, "epochs": 150, "decay_epochs": (135,)})),
        # section 7 and the appendix: BatchNorm after every encoder layer (both heads too), input
        # dropout 0.2, SGD (momentum 0.9 for the autoencoder, 0.1 for the adversaries), / 10 after
        # epoch 50; 1000-1000 nets instead of 3000-3000 to fit the time budget (docs/variants.md);
        # the last 1,000 training images held out to name the clusters (the paper's protocol); ours
        # adds the consistency phase with its balance term (even use of the clusters) and trains 100
        # epochs, / 10 after 85 (the paper's schedule: 60, / 10 after 50; PAPER_SCHEDULE)
        "clustering": (VariantConfig(variant="clustering", n_classes=16, style_dim=5, encoder_batchnorm=True,
                                     input_dropout=0.2, **wide),
                       VariantTrainConfig(n_labels=0, validation_images=1000, **OUR_RECIPE["clustering"],
                                          **{**paper, "epochs": 100, "decay_epochs": (85,)})),
        # section 8: a 2-D representation r = y W_c + b + z around 20 learnt cluster heads pushed
        # eta apart; Adam with the conditioned variant's stronger adversary, one warm-up epoch and
        # instance noise on D_y (docs/variants.md)
        # ours: the consistency phase (rate 0.003) with the balance term, 60 epochs (seeds 0-2: 12.8 %
        # test clustering error, all 20 heads used; at rate 0.001: 16.2 %; 20 epochs without them: 42.0 %, 8 used)
        "reduction": (ReductionConfig(n_classes=20, style_dim=2, **wide),
                      VariantTrainConfig(epochs=60, n_labels=0, warmup_epochs=1, y_instance_noise=0.15,
                                         consistency=0.003, balance=1.0,
                                         **{**adam, "lr_d": 4e-4, "lr_g": 1e-3})),
    }


def get_variant_preset(variant: str) -> tuple[VariantConfig, VariantTrainConfig]:
    """Fresh (VariantConfig, VariantTrainConfig) for ``aae-np train --variant NAME``."""
    presets = _variant_presets()
    if variant not in presets:
        raise ValueError(f"unknown variant {variant!r}; choose one of {list(presets)}")
    model, train = presets[variant]
    return type(model).from_dict(model.to_dict()), VariantTrainConfig.from_dict(vars(train))


def resolve(preset: str = "default", variant: str | None = None, *, latent_dim: int | None = None,
            seed: int | None = None, epochs: int | None = None, batch_size: int | None = None,
            schedule: str | None = None, lr: float | None = None, labels: int | None = None,
            label_seed: int | None = None, clusters: int | None = None, prior: str | None = None,
            encoder_batchnorm: bool | None = None, input_dropout: float | None = None,
            consistency: float | None = None, recipe: str | None = None,
            decoded_class: float | None = None, starts: int | None = None, neighbours: int | None = None,
            split_at: int | None = None) -> tuple[Any, Any]:
    """(model config, train config) of ``preset`` (or of ``variant``'s preset) with the given
    overrides; ``None`` keeps the preset's value. Every config is rebuilt with
    ``dataclasses.replace``, so a bad value fails its config's own check.

    ``lr`` sets every learning rate of the run; ``seed`` seeds both the weights and the
    training draws; ``latent_dim`` is z's size (a variant's style); ``encoder_batchnorm`` and
    ``input_dropout`` add BatchNorm to the encoder and Dropout to its input. Only the variants take
    ``labels`` (semi-supervised, conditioned), ``label_seed``, ``clusters`` (clustering),
    ``prior`` and ``consistency`` (clustering, semi-supervised: the consistency phase's learning
    rate; ``decoded_class``: the decoded_class phase's; ``starts``: candidates of which the one with the most
    I(x; y) is kept, ``aae_np.train.starts``; ``neighbours``: the consistency phase's views are of an
    image or of one of its k nearest, ``aae_np.train.neighbours``; ``split_at``, clustering: the epoch at
    which merged clusters are split into the empty ones, ``aae_np.train.split``); a variant's short run keeps adversarial
    epochs after its warm-up. ``recipe`` (clustering,
    semi-supervised): "ours" (the default, the preset: the paper's appendix recipe with the
    consistency phase at ``OUR_CONSISTENCY``'s rate) or "paper" (the appendix recipe alone).
    """
    if recipe is not None and recipe not in RECIPES:
        raise ValueError(f"--recipe must be one of {list(RECIPES)}, got {recipe!r}")
    if variant is None:
        for name, value in (("labels", labels), ("label_seed", label_seed), ("clusters", clusters),
                            ("prior", prior), ("consistency", consistency), ("recipe", recipe),
                            ("decoded_class", decoded_class), ("starts", starts), ("neighbours", neighbours),
                            ("split_at", split_at)):
            if value is not None:
                raise ValueError(f"--{name.replace('_', '-')} applies to the variants only; add --variant NAME")
        model, train = get_preset(preset)
        model = replace(model, **_given(latent_dim=latent_dim, seed=seed, encoder_batchnorm=encoder_batchnorm,
                                        input_dropout=input_dropout))
    else:
        model, train = get_variant_preset(variant)
        model = replace(model, **_variant_model_overrides(model, seed, clusters, prior, latent_dim),
                        **_given(encoder_batchnorm=encoder_batchnorm, input_dropout=input_dropout))
        if schedule not in (None, "phased"):
            raise ValueError("the variants train with the phased schedule only")
        if labels is not None and variant not in ("semi-supervised", "conditioned"):
            raise ValueError("--labels applies to --variant semi-supervised or conditioned")
        if consistency is not None and not model.has_y:
            raise ValueError("--consistency applies to --variant clustering or semi-supervised (a y head)")
        if recipe is not None and variant not in OUR_CONSISTENCY:
            raise ValueError(f"--recipe applies to --variant {' or '.join(OUR_CONSISTENCY)}; "
                             f"the {variant} preset is the only recipe of that variant")
        if decoded_class is not None and (not model.has_y or variant == "reduction"):
            raise ValueError("--decoded-class applies to --variant clustering or semi-supervised (a decoder of [z, y])")
        if starts is not None and not model.has_y:
            raise ValueError("--starts applies to --variant clustering, semi-supervised or reduction (clusters to score)")
        if neighbours is not None and variant not in OUR_CONSISTENCY:
            raise ValueError(f"--neighbours applies to --variant {' or '.join(OUR_CONSISTENCY)} (the consistency phase)")
        if split_at is not None and variant != "clustering":
            raise ValueError("--split-at applies to --variant clustering")
        if recipe == "paper" and (consistency or decoded_class or neighbours or split_at):   # (0: off, as the paper's)
            raise ValueError("--recipe paper has no consistency or decoded_class phase (they are our additions); "
                             "leave out --consistency, --decoded-class, --neighbours and --split-at")
        if recipe == "paper":                 # the preset is ours: the paper's recipe is it without our phases
            train = paper_recipe(train)
            if variant in PAPER_WIDTH:        # ... with the paper's networks
                wide = (PAPER_WIDTH[variant],) * 2
                model = replace(model, encoder_hidden=wide, decoder_hidden=wide, discriminator_hidden=wide)
            train = replace(train, **PAPER_SCHEDULE.get(variant, {}))     # ... and schedule
        warmup = train.warmup_epochs
        if epochs is not None and warmup >= epochs:       # a short run still gets its adversarial epochs
            warmup = epochs // 2
        if consistency is not None:           # the labelled batch gets the consistency phase's views too
            train = replace(train, consistency=consistency, shift_labelled=model.uses_labels)
        n_epochs = train.epochs if epochs is None else epochs      # a short run's starts take half of it,
        pseudo_at = max(1, round(train.pseudo_at * n_epochs / train.epochs))    # its self-training the same share
        train = replace(train, **_given(n_labels=labels, label_seed=label_seed, decoded_class=decoded_class,
                                        starts=starts, neighbours=neighbours, split_at=split_at),
                        warmup_epochs=warmup, epochs=n_epochs,
                        start_epochs=min(train.start_epochs, max(1, n_epochs // 2)),
                        pseudo_at=pseudo_at if train.pseudo_labels else train.pseudo_at)
    train = replace(with_learning_rate(train, lr), **_given(epochs=epochs, batch_size=batch_size,
                                                             schedule=schedule, seed=seed))
    return model, train


def paper_recipe(train: Any) -> Any:
    """``train`` without our additions to the paper's recipe: no consistency phase (nor its balance
    term or threshold), no augmented labelled batch, no decoded_class phase."""
    return replace(train, **_NOT_THE_PAPERS)


def fit_recipe(train: Any, features: int) -> tuple[Any, bool]:
    """(``train`` for rows of ``features`` values, whether the consistency phase was left out): its
    views turn and shift 28 x 28 images, so on other rows the run takes the paper's recipe (the
    schedule, the preset's or the user's epochs, stays)."""
    if getattr(train, "consistency", 0) > 0 and features != 28 * 28:
        return paper_recipe(train), True
    return train, False


def _given(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _variant_model_overrides(model: VariantConfig, seed: int | None, clusters: int | None,
                             prior: str | None, latent_dim: int | None) -> dict[str, Any]:
    out = _given(seed=seed)
    if clusters is not None:
        if model.variant != "clustering":
            raise ValueError("--clusters applies to --variant clustering only")
        out["n_classes"] = clusters
    if prior is not None:
        out["prior"] = _prior_config(prior, latent_dim or model.style_dim, model.n_classes)
        if latent_dim is None and prior in ("mixture", "swiss_roll"):
            out["style_dim"] = 2
    if latent_dim is not None:
        out["style_dim"] = latent_dim
        if prior is None and model.prior:
            out["prior"] = _prior_config(model.prior["name"], latent_dim, model.n_classes)
    return out


def _prior_config(name: str, dim: int, k: int) -> dict[str, Any]:
    if name in ("mixture", "swiss_roll"):
        if dim != 2:
            raise ValueError(f"the {name} prior is 2-D; use --latent-dim 2 (or leave it out)")
        return {"name": name, "k": k}
    return {"name": name, "dim": dim}

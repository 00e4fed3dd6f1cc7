"""presets.resolve: a preset with a user's overrides, every config re-validated."""

from dataclasses import replace

import pytest

from aae_np.train.presets import get_preset, get_variant_preset, resolve


def test_no_overrides_is_the_preset():
    assert resolve("tutorial") == get_preset("tutorial")
    assert resolve(variant="clustering") == get_variant_preset("clustering")


def test_lr_sets_every_learning_rate_and_seed_both_configs():
    model, train = resolve("default", lr=1e-3, seed=7, latent_dim=3, epochs=4, schedule="joint")
    rates = {k: v for k, v in vars(train).items() if k.startswith("lr_") and k != "lr_decay_start"}
    assert rates == dict.fromkeys(["lr_ae", "lr_d", "lr_g", "lr_image_d", "lr_image_g"], 1e-3)
    assert (model.seed, train.seed, model.latent_dim, train.epochs, train.schedule) == (7, 7, 3, 4, "joint")
    _, vtrain = resolve(variant="semi-supervised", lr=2e-3)
    assert vtrain.lr_sup == vtrain.lr_ae == vtrain.lr_d == 2e-3
    assert get_preset("default")[1].lr_ae == 2e-3            # the preset itself is untouched


def test_a_short_variant_run_keeps_adversarial_epochs(monkeypatch):
    import aae_np.train.presets as presets
    from dataclasses import replace

    table = presets._variant_presets()
    model, train = table["clustering"]
    monkeypatch.setattr(presets, "_variant_presets",
                        lambda: {**table, "clustering": (model, replace(train, warmup_epochs=3))})
    assert resolve(variant="clustering", epochs=2)[1].warmup_epochs == 1
    assert resolve(variant="clustering", epochs=10)[1].warmup_epochs == 3


def test_the_appendix_recipes():
    """Section 6 and 7's settings as the presets state them (deviations named in presets.py), in
    the paper's recipe: the presets without our consistency phase."""
    for variant in ("semi-supervised", "clustering"):
        model, train = resolve(variant=variant, recipe="paper")
        assert (train.optimizer, train.momentum_ae, train.batch_size, train.decay_epochs) == ("momentum", 0.9, 100, (50,))
        assert (train.lr_d, train.lr_g) == (0.1, 0.1) and train.consistency == 0 and not train.shift_labelled
        width = 3000 if variant == "clustering" else 1000        # the appendix's networks
        assert model.encoder_hidden == model.decoder_hidden == model.discriminator_hidden == (width, width)
        assert model.encoder_batchnorm
    model, train = get_variant_preset("clustering")
    assert (model.input_dropout, model.style_dim, model.n_classes, train.momentum_adv) == (0.2, 5, 16, 0.1)
    assert train.validation_images == 1000
    model, train = get_variant_preset("semi-supervised")
    assert (train.input_noise, model.style_dim, train.lr_sup, train.n_labels) == (0.3, 10, 0.1, 100)


def test_consistency_is_an_option_of_the_variants_with_a_y_head():
    assert resolve(variant="clustering", consistency=0.01)[1].consistency == 0.01
    assert resolve(variant="semi-supervised", consistency=0.02)[1].consistency == 0.02
    assert resolve(variant="semi-supervised", consistency=0.02)[1].shift_labelled       # labelled views too
    assert not resolve(variant="clustering", consistency=0.02)[1].shift_labelled
    assert not resolve(variant="semi-supervised", recipe="paper")[1].shift_labelled
    with pytest.raises(ValueError, match="--consistency applies to --variant clustering or semi-supervised"):
        resolve(variant="unsupervised", consistency=0.01)
    with pytest.raises(ValueError, match="applies to the variants only"):
        resolve("default", consistency=0.01)


@pytest.mark.parametrize("kwargs, message", [
    (dict(batch_size=0), "batch_size must be >= 1"),              # the config's own check ran
    (dict(latent_dim=0), "latent_dim must be >= 1"),
    (dict(labels=100), "applies to the variants only"),
    (dict(variant="supervised", labels=100), "--labels applies to --variant semi-supervised"),
    (dict(variant="unsupervised", clusters=5), "--clusters applies to --variant clustering"),
    (dict(variant="conditioned", latent_dim=3), "is 2-D; use --latent-dim 2"),
    (dict(variant="clustering", schedule="joint"), "phased schedule only"),
    (dict(variant="nope"), "unknown variant"),
])
def test_bad_overrides_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        resolve(**kwargs)


def test_batchnorm_and_input_dropout_for_the_aae_and_every_variant():
    model, _ = resolve("default", encoder_batchnorm=True, input_dropout=0.2)
    assert model.encoder_batchnorm and model.input_dropout == 0.2
    vmodel, _ = resolve(variant="clustering", encoder_batchnorm=True, input_dropout=0.2)
    assert vmodel.encoder_batchnorm and vmodel.input_dropout == 0.2
    with pytest.raises(ValueError, match="input_dropout"):
        resolve(input_dropout=1.5)


@pytest.mark.parametrize("variant, ours", [("clustering", 0.03), ("semi-supervised", 0.05)])
def test_our_recipe_is_the_default_and_the_papers_is_one_flag_away(variant, ours):
    from aae_np.train.presets import OUR_CONSISTENCY

    assert OUR_CONSISTENCY[variant] == ours
    for recipe in (None, "ours"):
        assert resolve(variant=variant, recipe=recipe)[1].consistency == ours
    paper_model, paper = resolve(variant=variant, recipe="paper")
    assert paper.consistency == 0 and resolve(variant=variant, consistency=0.2)[1].consistency == 0.2
    assert (paper.balance, paper.threshold, paper.decoded_class, paper.shift_labelled, paper.flip, paper.mix,
            paper.elastic) == (0, 0, 0, False, 0, 0, 0)
    from aae_np.train.presets import OUR_RECIPE

    ours_train = resolve(variant=variant)[1]
    assert all(getattr(ours_train, key) == value for key, value in OUR_RECIPE[variant].items())
    assert (ours_train.epochs, ours_train.decay_epochs) == {"clustering": (100, (85,)),      # ours trains
                                                            "semi-supervised": (150, (135,))}[variant]   # longer than
    assert (paper.epochs, paper.decay_epochs) == (60, (50,))              # the paper's 60 epochs
    ours_model = resolve(variant=variant)[0]
    if variant == "clustering":                                # the paper's 3000-3000 networks, ours 1000-1000
        assert paper_model.encoder_hidden == paper_model.decoder_hidden == paper_model.discriminator_hidden \
            == (3000, 3000) and ours_model.encoder_hidden == (1000, 1000)
        paper_model = replace(paper_model, encoder_hidden=(1000, 1000), decoder_hidden=(1000, 1000),
                              discriminator_hidden=(1000, 1000))
    assert paper_model == ours_model                           # otherwise the same networks


def test_recipe_is_refused_where_it_does_not_apply():
    with pytest.raises(ValueError, match="--recipe applies to --variant clustering or semi-supervised"):
        resolve(variant="supervised", recipe="paper")
    with pytest.raises(ValueError, match="applies to the variants only"):
        resolve(recipe="paper")
    with pytest.raises(ValueError, match="no consistency or decoded_class phase"):
        resolve(variant="clustering", recipe="paper", consistency=0.01)
    with pytest.raises(ValueError, match="must be one of"):
        resolve(variant="clustering", recipe="mine")


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["clustering", "semi-supervised"])
@pytest.mark.parametrize("recipe", ["ours", "paper"])
def test_each_recipe_starts_and_improves_in_one_epoch(variant, recipe):
    """The presets' networks and rates on 2,000 shared MNIST images for one epoch: the held-out
    reconstruction error falls below the untrained model's and the test error below chance."""
    from aae_np.data import MnistData, load_mnist
    from aae_np.train.run import new_trainer
    from tests.conftest import SHARED_MNIST

    if not (SHARED_MNIST / "train-images-idx3-ubyte.gz").exists():
        pytest.skip("shared MNIST not found")
    full = load_mnist(SHARED_MNIST)
    data = MnistData(full.x_train[:2000], full.y_train[:2000], full.x_test[:1000], full.y_test[:1000])
    model_cfg, train_cfg = resolve(variant=variant, recipe=recipe, epochs=1, seed=0)
    trainer = new_trainer(model_cfg, train_cfg, data, progress=False)
    before = trainer.test_mse()
    history = trainer.fit()
    assert trainer.test_mse() < 0.8 * before
    assert history["test_error"][-1] < 0.8                 # chance: 0.9
    assert ("consistency" in trainer.schedule()) == (recipe == "ours")


def test_our_recipe_takes_the_papers_on_rows_that_are_not_28_by_28_images():
    from aae_np.train.presets import fit_recipe, paper_recipe

    ours = resolve(variant="semi-supervised")[1]
    assert fit_recipe(ours, 784) == (ours, False)
    fitted, dropped = fit_recipe(ours, 64)
    paper = resolve(variant="semi-supervised", recipe="paper")[1]
    assert dropped and fitted == paper_recipe(ours) == replace(paper, epochs=150, decay_epochs=(135,))
    assert fit_recipe(resolve(variant="semi-supervised", epochs=7)[1], 64)[0].epochs == 7   # the schedule stays
    plain = resolve("default")[1]
    assert fit_recipe(plain, 64) == (plain, False)


def test_bent_views_are_in_our_semi_supervised_recipe_only():
    assert resolve(variant="semi-supervised")[1].elastic == 20
    assert resolve(variant="clustering")[1].elastic == 0           # they merge fours and nines there


def test_decoded_class_is_an_option_of_the_variants_with_a_decoder_of_z_and_y():
    assert resolve(variant="semi-supervised")[1].decoded_class == 0.005     # in our semi-supervised recipe
    assert resolve(variant="clustering")[1].decoded_class == 0               # an option there
    for variant in ("semi-supervised", "clustering"):
        assert resolve(variant=variant, decoded_class=0.02)[1].decoded_class == 0.02
        assert resolve(variant=variant, decoded_class=0.0)[1].decoded_class == 0     # 0: off
    for variant in ("reduction", "supervised", "unsupervised"):
        with pytest.raises(ValueError, match="--decoded-class applies to --variant clustering or semi-supervised"):
            resolve(variant=variant, decoded_class=0.005)
    with pytest.raises(ValueError, match="applies to the variants only"):
        resolve(decoded_class=0.005)
    with pytest.raises(ValueError, match="no consistency or decoded_class phase"):
        resolve(variant="semi-supervised", recipe="paper", decoded_class=0.005)
    assert resolve(variant="semi-supervised", recipe="paper", decoded_class=0.0)[1].decoded_class == 0


def test_the_command_line_passes_decoded_class_to_the_run():
    from aae_np import cli
    from aae_np.cli_args import build_parser

    args = build_parser(cli.COMMANDS).parse_args(["train", "--variant", "semi-supervised", "--decoded-class", "0.005"])
    train = resolve(args.preset or "default", **{k: getattr(args, k) for k in cli.SETTINGS})[1]
    assert train.decoded_class == 0.005
    with pytest.raises(SystemExit):
        build_parser(cli.COMMANDS).parse_args(["train", "--variant", "semi-supervised", "--decoded-class", "-1"])
    off = build_parser(cli.COMMANDS).parse_args(["train", "--variant", "semi-supervised", "--decoded-class", "0"])
    assert resolve("default", **{k: getattr(off, k) for k in cli.SETTINGS})[1].decoded_class == 0


def test_starts_is_an_option_of_the_variants_with_clusters():
    for variant in ("clustering", "semi-supervised", "reduction"):
        assert resolve(variant=variant)[1].starts == 1                        # off in every preset
        assert resolve(variant=variant, starts=4)[1].starts == 4
        assert resolve(variant=variant, starts=4)[1].start_epochs == 3
        assert resolve(variant=variant, starts=4, epochs=5)[1].start_epochs == 2      # half a short run
        assert resolve(variant=variant, starts=4, epochs=1)[1].start_epochs == 1
    for variant in ("supervised", "unsupervised", "conditioned"):
        with pytest.raises(ValueError, match="--starts applies to --variant clustering, semi-supervised or reduction"):
            resolve(variant=variant, starts=2)
    with pytest.raises(ValueError, match="applies to the variants only"):
        resolve(starts=2)


def test_the_reduction_preset_has_the_consistency_phase_and_the_balance_term():
    train = resolve(variant="reduction")[1]
    assert (train.consistency, train.balance, train.epochs, train.optimizer) == (0.003, 1.0, 60, "adam")


def test_neighbours_and_split_at_are_options_of_our_recipe_and_the_cli_passes_them_on():
    from aae_np import cli

    train = resolve(variant="clustering", clusters=30, neighbours=5, split_at=80)[1]
    assert (train.neighbours, train.split_at) == (5, 80)
    assert resolve(variant="clustering")[1].neighbours == resolve(variant="clustering")[1].split_at == 0   # off
    assert resolve(variant="semi-supervised", neighbours=3)[1].neighbours == 3
    for variant, option in (("reduction", "neighbours"), ("semi-supervised", "split_at"), ("conditioned", "split_at")):
        with pytest.raises(ValueError, match=f"--{option.replace('_', '-')} applies to --variant"):
            resolve(variant=variant, **{option: 2})
    with pytest.raises(ValueError, match="--recipe paper has no consistency"):
        resolve(variant="clustering", recipe="paper", split_at=50)
    with pytest.raises(ValueError, match="split_at \\(80\\) must lie in \\[0, epochs = 10\\]"):
        resolve(variant="clustering", split_at=80, epochs=10)
    with pytest.raises(ValueError, match="applies to the variants only"):
        resolve(neighbours=2)
    from aae_np.cli_args import build_parser

    parse = build_parser(cli.COMMANDS).parse_args
    args = parse(["train", "--variant", "clustering", "--clusters", "30", "--neighbours", "5", "--split-at", "80"])
    train = resolve("default", **{k: getattr(args, k) for k in cli.SETTINGS})[1]
    assert (train.neighbours, train.split_at) == (5, 80)
    with pytest.raises(SystemExit):
        parse(["train", "--variant", "clustering", "--split-at", "0"])

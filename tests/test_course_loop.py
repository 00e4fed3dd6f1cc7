"""Exercise 12, the phased training loop: the reference passes, and each classic mistake in a loop
is caught at the call where it first shows, with its name (aae_np/teach/loop.py)."""

import pytest

from aae_np.nn.optim import Optimizer
from aae_np.teach import exercises, loop
from aae_np.teach import solutions as ref


def _loop(order=loop.ORDER, zero=True, owns=None, skip_step=None, fresh=False, rates=None):
    """A training loop with one classic slip switched on."""
    owns = owns or {"reconstruction": ("encoder", "decoder"), "discriminator": ("discriminator",),
                    "generator": ("encoder",)}

    def train(model, batches, rules):
        rules = {**rules, **(rates or {})}

        def make():
            made, shared = {}, {}
            for phase in loop.ORDER:
                nets = owns[phase]
                if nets not in shared:
                    shared[nets] = Optimizer(model.params_of(*nets), rules[phase])
                made[phase] = shared[nets]
            return made

        opt = make()
        for x, z_prior in batches:
            if fresh:
                opt = make()
            for phase in order:
                if zero:
                    model.zero_grad()
                if phase == "discriminator":
                    model.discriminator(x, z_prior)
                else:
                    getattr(model, phase)(x)
                if phase != skip_step:
                    opt[phase].step(model.grads)
    return train


ALL = ("encoder", "decoder", "discriminator")
MISTAKES = [
    (_loop(order=("discriminator", "reconstruction", "generator")), "phase_order", "step 0, the reconstruction"),
    (_loop(order=("reconstruction", "generator", "discriminator")), "phase_order", "step 0, the discriminator"),
    (_loop(order=("reconstruction", "discriminator")), "phase_missing", "step 0, the generator"),
    (_loop(zero=False), "zero_grad_forgotten", "step 0, the generator phase: it began with non-zero "
                                               "gradients in encoder"),
    (_loop(owns={"reconstruction": ALL, "discriminator": ALL, "generator": ALL}), "shared_optimizer",
     "step 0, the discriminator phase: its step changed decoder, encoder"),
    (_loop(owns={"reconstruction": ("encoder", "decoder"), "discriminator": ("discriminator",),
                 "generator": ("encoder", "decoder")}), "shared_optimizer", "step 0, the generator phase: its "
                                                                         "step changed decoder"),
    (_loop(owns={"reconstruction": ("encoder", "decoder"), "discriminator": ("discriminator",),
                 "generator": ("encoder", "discriminator")}), "generator_updates_discriminator",
     "step 0, the generator phase: its step changed discriminator"),
    (_loop(skip_step="generator"), "step_missing", "step 0, the generator phase: encoder did not change"),
    (_loop(owns={"reconstruction": ("decoder",), "discriminator": ("discriminator",), "generator": ("encoder",)}),
     "wrong_parameters", "step 0, the reconstruction phase: encoder did not change"),
    (_loop(fresh=True), "update_size", "step 1, the discriminator phase: loss"),
    (_loop(rates={"generator": loop.RULES["discriminator"].__class__(lr=1e-2)}), "update_size",
     "step 1, the reconstruction phase"),
]


def test_the_reference_and_a_loop_written_another_way_pass():
    assert exercises.check("train_phased", ref.train_phased).passed
    assert exercises.check("train_phased", _loop()).passed          # zero_grad, optimizers made differently


@pytest.mark.parametrize("fn,key,where", MISTAKES, ids=[f"{m[1]}-{i}" for i, m in enumerate(MISTAKES)])
def test_each_classic_mistake_is_named_where_it_first_shows(fn, key, where, capsys):
    result = exercises.check("train_phased", fn)
    assert not result.passed and result.diagnosis == key, result.message
    assert where in result.message, result.message
    assert "first loss that differs: step" in result.message and loop._WHY[key] in result.message
    assert capsys.readouterr().out.strip() == result.message.strip()


def test_the_losses_are_compared_step_by_step_and_the_first_difference_named():
    r = exercises.check("train_phased", _loop(zero=False))
    # the stale gradient is used by step 0's generator update; Adam's first step is lr * sign(g), which the
    # sum shares here, so the first loss to move is step 1's discriminator (after step 1's reconstruction)
    assert "first loss that differs: step 1, call 2 of 3: yours discriminator loss" in r.message


def test_a_stub_a_crash_and_a_loop_that_does_nothing():
    def stub(model, batches, rules):
        raise NotImplementedError

    def crash(model, batches, rules):
        for x, z in batches:
            model.discriminator(x)                              # z_prior forgotten

    assert exercises.check("train_phased", stub).status == "not implemented"
    r = exercises.check("train_phased", crash)
    assert r.status == "error" and "model.discriminator(x)" in r.message and "TypeError" in r.message
    r = exercises.check("train_phased", lambda model, batches, rules: None)
    assert r.diagnosis == "phase_missing" and "your loop made no such call (0 calls in all)" in r.message


def test_the_model_adds_gradients_and_the_generator_reaches_the_discriminator():
    model = loop.LoopModel()
    x, z = loop.loop_batches()[0]
    model.generator(x)
    once = {k: g.copy() for k, g in model.grads.items()}
    assert any(g.any() for k, g in once.items() if k.startswith("discriminator."))
    assert not any(g.any() for k, g in once.items() if k.startswith("decoder."))
    model.generator(x)
    assert all((model.grads[k] == 2 * g).all() for k, g in once.items())
    model.zero_grad()
    assert not any(g.any() for g in model.grads.values())

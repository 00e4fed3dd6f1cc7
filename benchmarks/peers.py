"""The step benchmark's peers: our training step as a user of PyTorch or JAX would write it.

Three peers, each built from a ``StepSpec`` read off one of our own ``Trainer``s, so that
sizes, activation, losses, schedule, Adam settings per phase and the initial float32 weights
are the trainer's, not a second copy of the presets:

``pytorch eager``  ``nn.Sequential`` MLPs, ``BCEWithLogitsLoss``, one ``torch.optim.Adam`` per
                   phase (as ``Trainer._rule`` sets them), ``zero_grad``/``backward``/``step``.
``torch.compile``  the same step function, compiled whole with ``torch.compile`` (default
                   mode), as PyTorch's own tutorial compiles a training step. Dynamo breaks the
                   graph at each ``backward()`` and ``Optimizer.zero_grad`` (it traces neither):
                   6 graphs per joint step, 8 per phased step, which Inductor compiles, the
                   forward and loss graphs with their AOTAutograd backward graphs and the
                   ``opt.step()`` loops among them.
``jax jit``        pure functions over pytrees (parameters and Adam states), the whole step
                   (every phase and its hand-written Adam, torch.optim.Adam's formula) in one
                   ``jax.jit`` with the state's buffers donated.

Randomness: the PyTorch peers draw the step's prior sample with ``torch.randn`` in eager
code just before calling the step function (the numbers are an input of the compiled
function); JAX carries a ``jax.random`` key in its state and splits it inside the jitted
step. Batches come in as the benchmark's NumPy arrays for all of them (``torch.from_numpy``
shares the memory; JAX copies the batch into its buffer inside the timed call, as it would
from a data loader).

Threads: ``torch.set_num_threads(threads)`` (Inductor's OpenMP kernels take the same count).
jaxlib 0.10's CPU client sizes its thread pool from the process's CPU affinity when it is
created; ``XLA_FLAGS`` such as ``--xla_cpu_multi_thread_eigen=false`` or
``intra_op_parallelism_threads=N`` do not change it (measured: a 1024 x 1024 matmul kept 2 cores
busy either way). So when ``threads`` is less than the CPUs this process may use, the client is
created while the calling thread's affinity is narrowed to ``threads`` CPUs, and the affinity is
restored afterwards: the pool's threads keep the narrow set, threads started later do not.

``check`` runs two training steps of our NumPy backend and of each peer from the same
weights, batches and prior samples, and compares every loss and every updated layer. Two, not
one: Adam's first step does not depend on the betas (m_hat = g, v_hat = g^2), so one step
would not catch a wrong beta1. Not more: torch.compile's Adam computes 1 - beta^t in float32
(inside a compiled graph the step count is a float32 tensor, where eager Adam takes a Python
float), 1.3e-5 off for beta2 = 0.999 at t = 1, and the adversarial losses amplify that to
2e-4 by the third step (the JAX peer with the same float32 rounding gives the same numbers).
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
from dataclasses import dataclass
from typing import Callable

import numpy as np

from aae_np.models.aae import AAE
from aae_np.train.presets import resolve
from aae_np.train.trainer import Trainer

LOSSES = ("recon_loss", "d_loss", "g_loss")


@dataclass
class StepSpec:
    """Everything a peer needs to run the step one of our trainers runs.

    ``layers``: per network, our Dense layers' name prefixes in order (``"encoder.0"``, ...);
    ``weights``: float32 copies of our parameters by qualified name, ``W (in, out)``, ``b (out,)``;
    ``adam``: per phase, ``(lr, beta1, beta2, eps)``."""

    schedule: str
    activation: str
    recon_loss: str
    adv_weight: float
    latent_dim: int
    layers: dict[str, list[str]]
    weights: dict[str, np.ndarray]
    adam: dict[str, tuple[float, float, float, float]]


@dataclass
class Peer:
    """``step(batch)``: one timed training step (draws its own prior sample);
    ``check_step(x, z_prior) -> {loss name: value}``: one step with the given prior sample;
    ``weights() -> {qualified name: array}`` in our layout."""

    step: Callable[[np.ndarray], None]
    check_step: Callable[[np.ndarray, np.ndarray], dict[str, float]]
    weights: Callable[[], dict[str, np.ndarray]]


def our_trainer(preset: str, schedule: str, x: np.ndarray, backend: str = "numpy") -> Trainer:
    """Our trainer of ``preset``'s step as the peers build it: without the preset's input dropout,
    which they do not implement (``benchmarks/step.py`` times the preset's own step beside it)."""
    model_cfg, train_cfg = resolve(preset, schedule=schedule, input_dropout=0.0)
    return Trainer(AAE(model_cfg, backend=backend), train_cfg, x, progress=False)


def spec_of(trainer: Trainer) -> StepSpec:
    """The step ``trainer`` runs, with a copy of its model's current weights."""
    model, c = trainer.model, trainer.model.config
    if c.encoder_batchnorm or c.input_dropout or c.posterior_std or c.image_discriminator_hidden:
        raise ValueError("the peers build plain MLP AAEs: no BatchNorm, dropout, posterior noise "
                         "or image discriminator")
    layers: dict[str, list[str]] = {}
    for prefix in dict.fromkeys(name.rsplit(".", 1)[0] for name in model.params):   # "encoder.0", ...
        layers.setdefault(prefix.split(".")[0], []).append(prefix)
    adam = {phase: (opt.rule.lr, *opt.rule.betas, opt.rule.eps) for phase, opt in trainer.optimizers.items()}
    return StepSpec(trainer.config.schedule, c.activation, c.recon_loss, c.adv_weight, c.latent_dim,
                    layers, {k: v.copy() for k, v in model.params.items()}, adam)


# -- PyTorch: eager and torch.compile -----------------------------------------------------
def torch_peer(spec: StepSpec, threads: int, compiled: bool = False) -> Peer | None:
    """The step in PyTorch eager, or the same step function under ``torch.compile``; None
    when PyTorch is not installed."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    nn = torch.nn

    def mlp(net):
        layers = []
        for i, prefix in enumerate(spec.layers[net]):
            w, b = spec.weights[prefix + ".W"], spec.weights[prefix + ".b"]
            linear = nn.Linear(*w.shape)
            with torch.no_grad():                              # nn.Linear keeps W as (out, in)
                linear.weight.copy_(torch.from_numpy(w.T))
                linear.bias.copy_(torch.from_numpy(b))
            layers.append(linear)
            if i < len(spec.layers[net]) - 1:
                layers.append(nn.ReLU() if spec.activation == "relu" else nn.LeakyReLU(0.2))
        return nn.Sequential(*layers)

    nets = {net: mlp(net) for net in spec.layers}
    enc, dec, dis = nets["encoder"], nets["decoder"], nets["discriminator"]
    bce = nn.BCEWithLogitsLoss()

    def adam(params, phase):
        lr, b1, b2, eps = spec.adam[phase]
        return torch.optim.Adam(params, lr=lr, betas=(b1, b2), eps=eps)

    joint = spec.schedule == "joint"
    opt_ae = adam([*enc.parameters(), *dec.parameters()], "joint" if joint else "reconstruction")
    opt_d = adam(dis.parameters(), "discriminator")
    opt_g = None if joint else adam(enc.parameters(), "generator")

    def recon(x, z):
        logits = dec(z)
        if spec.recon_loss == "bce":
            return bce(logits, x)
        return torch.mean((torch.sigmoid(logits) - x) ** 2)

    def update(x, z_prior):
        n = x.shape[0]
        ones, zeros = torch.ones(n, 1), torch.zeros(n, 1)
        if joint:
            opt_ae.zero_grad()
            z = enc(x)
            rec, g = recon(x, z), bce(dis(z), ones)
            (rec + spec.adv_weight * g).backward()
            opt_ae.step()
        else:
            opt_ae.zero_grad()
            rec = recon(x, enc(x))
            rec.backward()
            opt_ae.step()
        opt_d.zero_grad()
        with torch.no_grad():
            z_fake = enc(x)
        d = bce(dis(torch.cat([z_prior, z_fake])), torch.cat([ones, zeros]))
        d.backward()
        opt_d.step()
        if not joint:
            opt_g.zero_grad()
            g = bce(dis(enc(x)), ones)
            g.backward()
            opt_g.step()
            dis.zero_grad()
        return rec.detach(), d.detach(), g.detach()

    if compiled:
        # Dynamo caches per code object, and all peers share theirs (``update``, torch.optim's
        # ``step``): a second peer's graphs would count as recompiles of the first's, and past
        # ``recompile_limit`` (8) Dynamo runs eager. Each compiled peer starts as in a new process.
        torch._dynamo.reset()
        update = torch.compile(update)

    def step(batch):
        update(torch.from_numpy(batch), torch.randn(len(batch), spec.latent_dim))

    def check_step(x, z_prior):
        return dict(zip(LOSSES, (float(v) for v in update(torch.from_numpy(x), torch.from_numpy(z_prior)))))

    def weights():
        out = {}
        for net, prefixes in spec.layers.items():
            linears = [m for m in nets[net] if isinstance(m, nn.Linear)]
            for prefix, linear in zip(prefixes, linears):
                out[prefix + ".W"] = linear.weight.detach().numpy().T.copy()
                out[prefix + ".b"] = linear.bias.detach().numpy().copy()
        return out

    return Peer(step, check_step, weights)


# -- JAX: one jitted step -----------------------------------------------------------------
@contextlib.contextmanager
def _cpus(threads: int):
    """Narrow this thread's CPU affinity to ``threads`` CPUs inside the block (threads started
    there keep it), when fewer than all; restore it afterwards."""
    allowed = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
    if not 0 < threads < len(allowed):
        yield
        return
    os.sched_setaffinity(0, sorted(allowed)[:threads])
    try:
        yield
    finally:
        os.sched_setaffinity(0, allowed)


def jax_peer(spec: StepSpec, threads: int, seed: int = 0) -> Peer | None:
    """The step in JAX: pure functions, hand-written Adam, one ``jax.jit`` per step; None when
    JAX is not installed."""
    try:
        with _cpus(threads):                       # the CPU client and its thread pool start here
            import jax
            jax.devices("cpu")
    except ImportError:
        return None
    import jax.numpy as jnp

    tree_map = jax.tree_util.tree_map
    act = jax.nn.relu if spec.activation == "relu" else (lambda h: jax.nn.leaky_relu(h, 0.2))

    def mlp(layers, h):
        for w, b in layers[:-1]:
            h = act(h @ w + b)
        w, b = layers[-1]
        return h @ w + b

    def bce(s, t):                                 # mean BCE on logits, as BCEWithLogitsLoss
        return jnp.mean(jnp.maximum(s, 0) - s * t + jnp.log1p(jnp.exp(-jnp.abs(s))))

    def recon(logits, x):
        return bce(logits, x) if spec.recon_loss == "bce" else jnp.mean((jax.nn.sigmoid(logits) - x) ** 2)

    def adam(phase):
        """torch.optim.Adam's update: p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)."""
        lr, b1, b2, eps = spec.adam[phase]

        def update(params, grads, state):
            t = state["t"] + 1
            m = tree_map(lambda m, g: b1 * m + (1 - b1) * g, state["m"], grads)
            v = tree_map(lambda v, g: b2 * v + (1 - b2) * g * g, state["v"], grads)
            # 1 - b^t as -expm1(t log b): float32 1 - 0.999**1 would be off by 1e-5 relative
            step_size = lr / -jnp.expm1(t * math.log(b1))
            v_root = jnp.sqrt(-jnp.expm1(t * math.log(b2)))
            new = tree_map(lambda p, m, v: p - step_size * m / (jnp.sqrt(v) / v_root + eps), params, m, v)
            return new, {"t": t, "m": m, "v": v}

        return update

    joint = spec.schedule == "joint"
    adam_ae, adam_d = adam("joint" if joint else "reconstruction"), adam("discriminator")
    adam_g = None if joint else adam("generator")

    def train_step(state, x, z_prior):
        """One step of the schedule: ``state`` {"params", "opt"} -> (new state, losses)."""
        p, opt = state["params"], dict(state["opt"])
        ae = {"encoder": p["encoder"], "decoder": p["decoder"]}
        if joint:
            def joint_loss(ae):
                z = mlp(ae["encoder"], x)
                rec, g = recon(mlp(ae["decoder"], z), x), bce(mlp(p["discriminator"], z), 1.0)
                return rec + spec.adv_weight * g, (rec, g)

            (_, (rec, g)), grads = jax.value_and_grad(joint_loss, has_aux=True)(ae)
        else:
            rec, grads = jax.value_and_grad(lambda ae: recon(mlp(ae["decoder"], mlp(ae["encoder"], x)), x))(ae)
        ae, opt["ae"] = adam_ae(ae, grads, opt["ae"])
        z_fake = mlp(ae["encoder"], x)             # a constant below: the gradient is D's only
        target = jnp.concatenate([jnp.ones((len(x), 1)), jnp.zeros((len(x), 1))])
        d, grads = jax.value_and_grad(lambda dis: bce(mlp(dis, jnp.concatenate([z_prior, z_fake])), target))(
            p["discriminator"])
        dis, opt["d"] = adam_d(p["discriminator"], grads, opt["d"])
        enc = ae["encoder"]
        if not joint:
            g, grads = jax.value_and_grad(lambda enc: bce(mlp(dis, mlp(enc, x)), 1.0))(enc)
            enc, opt["g"] = adam_g(enc, grads, opt["g"])
        params = {"encoder": enc, "decoder": ae["decoder"], "discriminator": dis}
        return {"params": params, "opt": opt}, (rec, d, g)

    def bench_step(state, x):
        key, sub = jax.random.split(state["key"])
        z_prior = jax.random.normal(sub, (len(x), spec.latent_dim), jnp.float32)
        new, losses = train_step({"params": state["params"], "opt": state["opt"]}, x, z_prior)
        return {**new, "key": key}, losses

    bench_step = jax.jit(bench_step, donate_argnums=0)
    check_jit = jax.jit(train_step)

    params = {net: [(jnp.array(spec.weights[q + ".W"]), jnp.array(spec.weights[q + ".b"])) for q in prefixes]
              for net, prefixes in spec.layers.items()}           # copies: the step donates them

    def adam_state(tree):
        return {"t": jnp.zeros((), jnp.int32), "m": tree_map(jnp.zeros_like, tree),
                "v": tree_map(jnp.zeros_like, tree)}

    opt = {"ae": adam_state({"encoder": params["encoder"], "decoder": params["decoder"]}),
           "d": adam_state(params["discriminator"])}
    if not joint:
        opt["g"] = adam_state(params["encoder"])
    state = {"params": params, "opt": opt, "key": jax.random.key(seed)}

    def step(batch):
        nonlocal state
        state, losses = bench_step(state, batch)
        jax.block_until_ready((state, losses))     # the work is done inside the timed call

    def check_step(x, z_prior):
        nonlocal state
        new, losses = check_jit({"params": state["params"], "opt": state["opt"]}, x, z_prior)
        state = {**new, "key": state["key"]}
        return dict(zip(LOSSES, (float(v) for v in losses)))

    def weights():
        out = {}
        for net, prefixes in spec.layers.items():
            for prefix, (w, b) in zip(prefixes, state["params"][net]):
                out[prefix + ".W"], out[prefix + ".b"] = np.asarray(w), np.asarray(b)
        return out

    return Peer(step, check_step, weights)


PEERS: dict[str, Callable[[StepSpec, int], Peer | None]] = {
    "pytorch eager": lambda spec, threads: torch_peer(spec, threads),
    "torch.compile": lambda spec, threads: torch_peer(spec, threads, compiled=True),
    "jax jit": jax_peer,
}


# -- the check: same weights, batches and prior samples -> same losses and weights -----------
def layer_differences(theirs: dict[str, np.ndarray], ours: dict[str, np.ndarray]) -> dict[str, float]:
    """Per Dense layer ("encoder.0"): ||theirs - ours|| / ||ours|| over its W and b together.

    Neither per element nor per bias vector: where a gradient is no larger than its float32
    rounding noise (|g| ~ eps = 1e-8; one generator gradient of 1.05e-8 sits beside a median
    of 3.2e-3), Adam's lr * g / (|g| + eps) turns that noise into anything in [-lr, lr], so one
    weight may differ by up to lr between two correct steps that sum in another order, and a
    bias, which starts at zero, is after two steps no larger than such a difference."""
    sums: dict[str, np.ndarray] = {}
    for name, mine in ours.items():
        layer, diff = name.rsplit(".", 1)[0], theirs[name].astype(np.float64) - mine
        sums[layer] = sums.get(layer, np.zeros(2)) + [np.sum(diff * diff), np.sum(mine.astype(np.float64) ** 2)]
    return {layer: math.sqrt(diff / max(norm, 1e-300)) for layer, (diff, norm) in sums.items()}


def check(preset: str, schedule: str, names: list[str], threads: int, x: np.ndarray, steps: int = 2,
          change: Callable[[StepSpec], None] | None = None) -> list[dict]:
    """One row per installed peer in ``names``: the largest relative difference from our NumPy
    backend over ``steps`` steps' losses (recon, D, G of every step), and over the updated
    weights (``layer_differences``, the worst layer named). ``change`` alters the peers' copy
    of the step (tests use it to show that a wrong step is caught)."""
    trainer = our_trainer(preset, schedule, x)
    spec, n = spec_of(trainer), trainer.config.batch_size
    if change is not None:
        change(spec)
    batches, priors, ours = [x[i * n:(i + 1) * n] for i in range(steps)], [], []
    for batch in batches:                          # the prior sample the trainer is about to draw
        priors.append(trainer.model.prior.sample(n, copy.deepcopy(trainer.rng), trainer.model.dtype))
        stats = trainer.step(batch)
        ours.append([stats[k] for k in LOSSES])
    rows = []
    for name in names:
        peer = PEERS[name](spec, threads)
        if peer is None:
            continue
        theirs = [list(peer.check_step(b, z).values()) for b, z in zip(batches, priors)]
        loss_rel = max(abs(t - o) / max(abs(o), 1e-12) for to, oo in zip(theirs, ours) for t, o in zip(to, oo))
        rel = layer_differences(peer.weights(), trainer.model.params)
        worst = max(rel, key=rel.get)
        rows.append({"preset": preset, "schedule": schedule, "peer": name, "steps": steps,
                     "loss_rel": loss_rel, "weight_rel": rel[worst], "worst_layer": worst})
    return rows

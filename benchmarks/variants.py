"""Train the paper's variants with their CLI presets and tabulate them against the paper.

Each RUN is ``variant[:key=value,...]`` where keys are ``labels``, ``clusters``, ``seed``,
``epochs``, ``consistency``, ``recipe`` (ours or paper), ``style`` (the style z's dimension; the same
overrides as ``aae-np train --variant``, built by the same ``presets.resolve``) or a field of
``VariantTrainConfig`` the CLI does not set (``TRAIN_KEYS``: ``balance``, ``sharpen``, ``rotate``, ...),
for example

    .venv/bin/python benchmarks/variants.py semi-supervised:labels=100,seed=0 clustering:clusters=30,consistency=0.01

Every run appends one JSON line (metrics, wall and CPU seconds, threads, the CPU model) to
``benchmarks/results/variants.jsonl``; ``--table`` prints the Markdown table of all lines
so far (mean ± std over seeds) beside the paper's numbers. A clustering row gives both protocols'
errors (majority vote / the paper's: each cluster named by the validation example it scores
highest), how many clusters the test set uses, and k-means on raw pixels at the same k on the
same split scored the same two ways (``aae_np.eval.baselines``; needs ``pip install
'aae_np[baselines]'``). ``docs/variants.md`` comes from it. Run one at a time: it uses every core.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))      # run() reads the CPU with step.cpu (beside this file)

RESULTS = Path(__file__).parent / "results" / "variants.jsonl"
MODELS = Path(__file__).parent / "results" / "models"     # each run's model.npz and history (not committed)

#: (row name, metric, the paper's number on 60k MNIST: Makhzani et al. 2015, tables 2 and 3, section 7)
PAPER = {
    ("semi-supervised", 100): ("test error", "1.90 % (± 0.10)"),
    ("semi-supervised", 1000): ("test error", "1.60 % (± 0.08)"),
    ("clustering", 16): ("clustering error", "9.55 %"),
    ("clustering", 30): ("clustering error", "4.10 %"),
    ("unsupervised", 10): ("Parzen", "340 ± 2 (Table 1, not 2-D)"),
}
#: the targets of issue 27 (10,000 MNIST training images, or the 60,000 of Fashion-MNIST; mean of 3 seeds)
TARGET = {("semi-supervised", 100, "mnist"): "≤ 1.5 %; class agreement ≥ 90 %",
          ("semi-supervised", 1000, "mnist"): "≤ 1.2 %",
          ("clustering", 16, "mnist"): "≤ 9.5 %, every cluster used", ("clustering", 30, "mnist"): "≤ 5 %",
          ("clustering", 10, "fashion-mnist"): "Hungarian accuracy ≥ 65 %",
          ("clustering", 16, "fashion-mnist"): "≥ 15 points below k-means", ("conditioned", 10, "mnist"): "≥ 0.9",
          ("reduction", 20, "mnist"): "≤ 15 %, every head used"}


#: fields of VariantTrainConfig a RUN may set beyond the CLI's options (floats)
#: (``lr_decay_start=F``: every rate falls linearly to 0 from fraction F of the run; with ``decay=E`` too)
TRAIN_KEYS = ("balance", "revive", "threshold", "decoded_class", "sharpen", "shift", "rotate", "scale", "flip", "mix",
              "elastic", "lr_sup", "input_noise", "y_instance_noise", "lr_decay_start", "starts", "start_epochs",
              "neighbours", "neighbours_at", "split_at")
INT_KEYS = ("labels", "clusters", "seed", "epochs", "style", "shift", "decay", "encoder", "starts", "start_epochs",
            "pseudo", "pseudo_at", "neighbours", "neighbours_at", "split_at")
#: ``dataset=fashion-mnist`` trains on Fashion-MNIST (its folder: ``--fashion-dir``); ``decay=E``: the
#: learning rates / 10 after epoch E (the preset: 50, past a short run's end); ``encoder=N``: both hidden
#: layers of the encoder N wide (the preset: 1000); ``pseudo=N,pseudo_at=E`` (semi-supervised): after
#: epoch E, the N most confident unlabelled training images of each predicted class join the labelled set
OTHER_KEYS = ("labels", "clusters", "seed", "epochs", "consistency", "recipe", "style", "dataset", "decay", "encoder",
              "pseudo", "pseudo_at")


def parse_run(text: str) -> tuple[str, dict[str, int]]:
    variant, _, rest = text.partition(":")
    options = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        if key not in OTHER_KEYS + TRAIN_KEYS:
            raise SystemExit(f"unknown option {key!r} in {text!r}")
        options[key] = value if key in ("recipe", "dataset") else int(value) if key in INT_KEYS else float(value)
    if ("pseudo" in options) != ("pseudo_at" in options):
        raise SystemExit(f"pseudo=N and pseudo_at=E go together (the N surest images per class, after epoch E): {text!r}")
    return variant, options


def setting_of(options: dict) -> str:
    """The run's options other than the seed, e.g. ``balance=1,style=4`` (a table row per setting)."""
    return ",".join(f"{k}={format(v, 'g') if not isinstance(v, str) else v}" for k, v in sorted(options.items())
                    if k not in ("seed", "labels", "clusters", "consistency"))


def resolved(train_cfg) -> dict:
    """What the run's recipe set, options or not: our terms that are on, the epochs and the decay epoch
    (a table row is one setting of these with the options, so a preset's runs and the same
    settings given as options share a row)."""
    ours = ("balance", "revive", "threshold", "decoded_class", "flip", "mix", "elastic")
    out = {k: getattr(train_cfg, k) for k in ours if getattr(train_cfg, k)}
    if train_cfg.starts > 1:
        out.update(starts=train_cfg.starts, start_epochs=train_cfg.start_epochs)
    if train_cfg.pseudo_labels:
        out.update(pseudo=train_cfg.pseudo_labels, pseudo_at=train_cfg.pseudo_at)
    out["epochs"] = train_cfg.epochs
    if train_cfg.decay_epochs:
        out["decay"] = train_cfg.decay_epochs[0]
    return out


def setting_of_run(r: dict) -> str:
    """``setting_of`` the run's options over what its recipe set (``resolved``)."""
    return setting_of({**r.get("resolved", {}), **r.get("options", {})})


def run(variant: str, options: dict[str, int], data) -> dict:
    from threadpoolctl import threadpool_info

    from aae_np.eval.report import evaluate_variant
    from aae_np.train.presets import resolve
    from aae_np.train.run import new_trainer
    from step import cpu as cpu_model          # not 'cpu': run() counts CPU seconds in that name

    seed = options.get("seed", 0)
    model_cfg, train_cfg = resolve(variant=variant, seed=seed, label_seed=seed, labels=options.get("labels"),
                                   clusters=options.get("clusters"), epochs=options.get("epochs"),
                                   consistency=options.get("consistency"), recipe=options.get("recipe"),
                                   latent_dim=options.get("style"))
    train_cfg = replace(train_cfg, **{k: v for k, v in options.items() if k in TRAIN_KEYS})
    if "encoder" in options:
        model_cfg = replace(model_cfg, encoder_hidden=(options["encoder"],) * len(model_cfg.encoder_hidden))
    if "decay" in options:
        train_cfg = replace(train_cfg, decay_epochs=(options["decay"],))
    if "pseudo" in options:                  # self-training (VariantTrainConfig.pseudo_labels)
        train_cfg = replace(train_cfg, pseudo_labels=options["pseudo"], pseudo_at=options["pseudo_at"])
    wall, cpu = time.perf_counter(), time.process_time()      # with the starts (new_trainer trains them)
    trainer = new_trainer(model_cfg, train_cfg, data, progress=False)
    trainer.fit()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    name = variant + "".join(f"-{k}{v if isinstance(v, str) else format(v, 'g')}" for k, v in sorted(options.items()))
    (MODELS / name).mkdir(parents=True, exist_ok=True)
    trainer.model.save(MODELS / name / "model.npz")              # for figures: aae_np.eval.report.write_figures
    (MODELS / name / "history.json").write_text(json.dumps(trainer.history))
    evaluation = time.perf_counter()           # with k-means at the same k for clustering
    result = evaluate_variant(trainer.model, trainer.x_train, trainer.y_train, data.x_test, data.y_test,
                              parzen=variant == "unsupervised", x_val=trainer.x_val, y_val=trainer.y_val)
    if variant in ("semi-supervised", "supervised") and options.get("dataset", "mnist") == "mnist":   # style vs content
        from aae_np.eval.disentangle import class_agreement
        from aae_np.eval.mnist_score import load_or_train_classifier
        clf = load_or_train_classifier(data.x_train, data.y_train)
        result["class_agreement"] = class_agreement(trainer.model, data.x_test[:10], clf)[0]
    result.update(variant=variant, options=options, resolved=resolved(train_cfg), validation_images=0 if trainer.x_val is None else len(trainer.x_val),
                  eval_wall_s=round(time.perf_counter() - evaluation, 1), n_labels=int(len(trainer.labelled)), n_classes=model_cfg.n_classes,
                  style_dim=model_cfg.style_dim, epochs=train_cfg.epochs, consistency=train_cfg.consistency,
                  train_wall_s=round(wall, 1), history_test_error_paper=trainer.history.get("test_error_paper"),
                  train_cpu_s=round(cpu, 1), history_test_error=trainer.history.get("test_error"),
                  **{k: trainer.history[k] for k in ("start_information", "start_test_error") if k in trainer.history},
                  threads=[p.get("num_threads") for p in threadpool_info()], cpus=os.cpu_count())
    result["cpu"], result["vector_extensions"] = cpu_model()      # wall times differ twofold between machines
    return result


def table(lines: list[dict]) -> str:
    """The Markdown table: a row per setting, the mean over its seeds; a seed run again counts once
    (its latest run), so a repeat checks a number without weighing twice in the mean; a line without
    its options (older than them) counts on its own."""
    groups: dict[tuple, dict[object, dict]] = defaultdict(dict)
    for i, r in enumerate(lines):
        key = r["n_labels"] if r["variant"] == "semi-supervised" else r["n_classes"]
        groups[(r["variant"], key, r.get("consistency", 0.0), setting_of_run(r))][_seed_of(r, i)] = r
    rows = ["| variant | setting | metric | ours (mean ± std, seeds) | k-means on pixels | target | paper (60k) "
            "| train wall / CPU per run |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for (variant, key, consistency, more), by_seed in sorted(groups.items()):
        rs = list(by_seed.values())
        kmeans, extra_value, dataset = "—", "", rs[0].get("options", {}).get("dataset", "mnist")
        extra = (f", + consistency {consistency:g}" if consistency else "") + (f", {more}" if more else "")
        if variant in ("clustering", "reduction"):
            metric, setting = "clustering error, majority / paper protocol", f"{key} clusters{extra}"
            used = [r["clusters_used"] for r in rs if "clusters_used" in r]
            ours = (f"{_percent(rs, 'test_error')} / {_percent(rs, 'test_error_paper')} ({len(rs)}"
                    + (f"; {_span(used)} of {key} used)" if used else ")"))
            kmeans = f"{_percent(rs, 'kmeans_error')} / {_percent(rs, 'kmeans_error_paper')}"
            if key == 10 and any(r.get("hungarian_accuracy") is not None for r in rs):   # one cluster per class
                ours += f"; Hungarian accuracy {_percent(rs, 'hungarian_accuracy')}"
                kmeans += f"; {_percent(rs, 'kmeans_hungarian_accuracy')}"
        elif variant == "semi-supervised":
            metric, value, setting = "test error", [100 * r["test_error"] for r in rs], f"{key} labels{extra}"
            fmt = lambda v: f"{v:.2f} %"   # noqa: E731
            agreement = [r["class_agreement"] for r in rs if r.get("class_agreement") is not None]
            if agreement:
                metric += " (class agreement)"
                extra_value = f" ({100 * np.mean(agreement):.0f} / 100 read as asked)"
        elif variant == "conditioned":
            metric, value, setting = "fraction nearest own mode", [r["nearest_component_fraction"] for r in rs], \
                f"mixture of 10, {rs[0]['n_labels']} labels"
            fmt = lambda v: f"{v:.3f}"     # noqa: E731
        elif variant == "unsupervised":
            metric, value, setting = "Parzen log-likelihood (nats)", [r["parzen_ll"] for r in rs], \
                f"{rs[0]['style_dim']}-D Gaussian"
            fmt = lambda v: f"{v:.0f}"     # noqa: E731
        else:
            metric, value, setting = "test MSE", [r["test_mse"] for r in rs], f"style z {rs[0]['style_dim']}-D"
            fmt = lambda v: f"{v:.4f}"     # noqa: E731
        if variant not in ("clustering", "reduction"):
            v = np.array(value)
            ours = f"{fmt(v.mean())} ± {fmt(v.std(ddof=1))} ({len(v)})" if len(v) > 1 else f"{fmt(v[0])} (1)"
            ours += extra_value
        paper = PAPER.get((variant, key), ("", "—"))[1] if dataset == "mnist" else "—"
        wall = np.mean([r["train_wall_s"] for r in rs]) / 60
        cpu = np.mean([r["train_cpu_s"] for r in rs]) / 60
        target = TARGET.get((variant, key, dataset), "—")
        rows.append(f"| {variant} | {setting} | {metric} | {ours} | {kmeans} | {target} | {paper} "
                    f"| {wall:.1f} / {cpu:.1f} min |")
    return "\n".join(rows)


def _seed_of(r: dict, i: int) -> object:
    """Line ``i``'s seed, or the line itself when it has no options (older than them)."""
    return r["options"].get("seed", 0) if "options" in r else ("line", i)


def _percent(rs: list[dict], key: str) -> str:
    """``12.00 % ± 2.00 %`` over the runs that have ``key`` (no ± when they agree, e.g. k-means
    at one k on one split), ``—`` when none has it (a run from before the number existed)."""
    v = 100 * np.array([r[key] for r in rs if r.get(key) is not None])
    if not len(v):
        return "—"
    return f"{v.mean():.2f} %" + (f" ± {v.std(ddof=1):.2f} %" if len(v) > 1 and v.std() > 0 else "")


def _span(values: list[int]) -> str:
    """``24`` when every run agrees, else ``23–25`` (the fewest to the most)."""
    low, high = min(values), max(values)
    return f"{low}" if low == high else f"{low}–{high}"


def curves(lines: list[dict], path: Path) -> Path:
    """Test error per epoch, one panel per variant: the mean over seeds of every setting run on two
    or more seeds in colour (majority vote solid, the paper's protocol dashed), each single-seed
    trial thin and grey behind them; how the error falls with epochs, and which settings were
    carried to several seeds. Returns the path written."""
    from matplotlib import colormaps, cycler     # cycler as matplotlib exports it: no import of its dependency
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    from aae_np.eval.plots import save_figure

    fig = Figure(figsize=(14, 8), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, variant in zip(axes, ("clustering", "semi-supervised")):
        ax.set_prop_cycle(cycler(ls=["-", "-."]) * cycler(color=colormaps["tab10"].colors))
        groups: dict[str, dict[object, dict]] = {}
        for i, r in enumerate(lines):
            if r["variant"] != variant or not r.get("history_test_error"):
                continue
            setting = f"{r['n_classes']} clusters" if variant == "clustering" else f"{r['n_labels']} labels"
            more = setting_of_run(r)
            label = (f"{setting}{', + consistency ' + format(r['consistency'], 'g') if r.get('consistency') else ''}"
                     f"{', ' + more if more else ''}")
            groups.setdefault(label, {})[_seed_of(r, i)] = r          # a seed run again counts once, as in the table
        for label, by_seed in groups.items():
            runs = list(by_seed.values())
            n = min(len(r["history_test_error"]) for r in runs)
            epochs = np.arange(1, n + 1)
            errors = [100 * np.array(r["history_test_error"][:n]) for r in runs]
            if len(runs) == 1:
                ax.plot(epochs, errors[0], color="0.8", lw=0.6, ls="-", zorder=1)
                continue
            line, = ax.plot(epochs, np.mean(errors, axis=0), lw=1.6, zorder=3,
                            label=f"{label} ({len(runs)} seeds)")
            paper = [r.get("history_test_error_paper") for r in runs]
            if all(p and np.isfinite(p).any() for p in paper):
                ax.plot(epochs, 100 * np.mean([p[:n] for p in paper], axis=0), ls="--", lw=0.9,
                        color=line.get_color(), zorder=2)
        ax.set(title=f"{variant}: mean over seeds{' (dashed: the paper protocol)' if variant == 'clustering' else ''}; "
                     "grey: single-seed trials", xlabel="epoch", ylabel="test error (%)", yscale="log")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.grid(alpha=0.3, which="both")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.09), ncols=1, frameon=False)
    return save_figure(fig, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="*", help="variant[:labels=N,clusters=K,seed=S,epochs=E,consistency=LR]")
    parser.add_argument("--data-dir", help="the MNIST folder (default: the package's search)")
    parser.add_argument("--fashion-dir", default="/usr/share/datasets/fashion-mnist",
                        help="the Fashion-MNIST folder of dataset=fashion-mnist runs (default: the system package's)")
    parser.add_argument("--table", action="store_true", help="print the table of all results so far")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--curves", type=Path, metavar="PNG", help="plot every run's test error per epoch here")
    args = parser.parse_args()
    if args.runs:
        from aae_np.data import load

        args.results.parent.mkdir(parents=True, exist_ok=True)
        for text in args.runs:
            variant, options = parse_run(text)
            name = options.get("dataset", "mnist")
            data = load(name, args.fashion_dir if name == "fashion-mnist" else args.data_dir, download_ok=False)
            result = run(variant, options, data)
            with args.results.open("a") as f:
                f.write(json.dumps(result) + "\n")
            print(json.dumps({k: v for k, v in result.items() if k != "history_test_error"}), flush=True)
    if args.table or args.curves:
        lines = [json.loads(line) for line in args.results.read_text().splitlines() if line.strip()]
        if args.table:
            print(table(lines))
        if args.curves:
            print(f"wrote {curves(lines, args.curves)}")


if __name__ == "__main__":
    main()

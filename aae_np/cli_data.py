"""The command line's side of a run's data: which data a command reads (``--data``,
``--data-dir`` / ``--dataset``, or by default the data the model was trained on), whether a
model and a dataset belong together, what a model file records, and what was skipped.

Kept apart from ``cli.py`` so that file stays a thin list of commands; every error here is a
``ValueError`` that ``cli.main`` prints as one ``aae-np: error:`` line.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from aae_np.user_data import UserData, idx_data, load_user_data, parse_image_shape

__all__ = ["DATA_KEY", "start_loading", "training_data", "fit_model_config", "record_arrays", "read_record",
           "data_for_model", "say_notes", "interrupt_message", "as_images", "write_codes", "check_score", "write_reconstructions"]

DATA_KEY = "__data__"            # the model file's record of its training data (JSON)
NEEDS_LABELS = {"semi-supervised": "to pick its labelled subset", "conditioned": "to pick its labelled subset",
                "supervised": "to train on", "clustering": "to name its clusters and score them"}


def start_loading(args: argparse.Namespace):
    """An IDX dataset loading on a thread (``aae_np.data.start_loading``), or None for ``--data``."""
    from aae_np.data import start_loading as start

    if args.data is not None:
        if args.data_dir is not None:
            raise ValueError("--data and --data-dir both name a dataset; pass one of them")
        return None
    return start(args.dataset or "mnist", args.data_dir)


def _idx(args: argparse.Namespace, loading: Any = None, scaling: dict | None = None) -> UserData:
    from aae_np.data import load, resolve_data_dir

    dataset = args.dataset or "mnist"
    mnist = loading.result() if loading else load(dataset, args.data_dir, download_ok=not args.no_download,
                                                   progress=not args.quiet)
    folder = resolve_data_dir(args.data_dir, dataset, download_ok=False)
    return idx_data(mnist, str(folder.resolve()), args.dataset, parse_image_shape(args.image_shape),
                    args.scale, scaling)


def training_data(args: argparse.Namespace, loading: Any = None) -> UserData:
    """The data ``train`` reads: ``--data PATH``, else the IDX dataset (started by ``start_loading``)."""
    if args.data is not None:
        return load_user_data(args.data, parse_image_shape(args.image_shape), args.scale, dataset=args.dataset)
    return _idx(args, loading)


def fit_model_config(model_cfg: Any, train_cfg: Any, data: UserData, asked_consistency: bool = True) -> tuple[Any, Any]:
    """(``model_cfg`` for rows of ``data.features``, ``train_cfg``), after refusing what would fail
    mid-run: a variant that needs labels on data without them, the (28 x 28) shifted views on other
    data (asked for with --consistency: refused; from our recipe's preset: left out, with a note)."""
    variant = getattr(model_cfg, "variant", None)
    if variant in NEEDS_LABELS and data.y_train is None:
        raise ValueError(f"--variant {variant} needs labels {NEEDS_LABELS[variant]}, and {data.source} has none; "
                         "add an array y to the .npz (or class subfolders of PNGs), or train the plain AAE")
    from aae_np.train.presets import fit_recipe

    train_cfg, dropped = fit_recipe(train_cfg, data.features)
    if dropped and asked_consistency:
        raise ValueError(f"--consistency shifts 28x28 images, but {data.name} has {data.features} features; "
                         "leave --consistency out")
    if dropped:
        data.notes.append(f"our recipe's consistency phase shifts 28x28 images; on {data.features} features it "
                          "is left out (the paper's recipe, as --recipe paper)")
    if variant in ("semi-supervised", "conditioned", "supervised") and data.y_train is not None:
        top = int(data.y_train.max())
        if top >= model_cfg.n_classes:
            raise ValueError(f"{data.source}: labels go up to {top}, but the {variant} variant has "
                             f"{model_cfg.n_classes} classes; renumber the labels 0..{model_cfg.n_classes - 1}")
    return replace(model_cfg, input_dim=data.features), train_cfg


def record_arrays(data: UserData) -> dict[str, np.ndarray]:
    """The extra arrays of ``model.npz`` that record its training data."""
    return {DATA_KEY: np.array(json.dumps(data.record()))}


def read_record(model_path: str | Path) -> dict[str, Any] | None:
    """The training data a model file records, or None (a file from before records, a checkpoint)."""
    from aae_np.models.checkpoint import read_model_arrays

    arrays = read_model_arrays(model_path, only=("__config__", DATA_KEY))
    return json.loads(str(arrays[DATA_KEY])) if DATA_KEY in arrays else None


def data_for_model(args: argparse.Namespace) -> UserData:
    """The data ``encode`` / ``evaluate`` / ``reconstruct`` read, checked against the model's record.

    Without ``--data`` / ``--data-dir`` / ``--dataset``: the data the model was trained on (its
    record), with the scaling it was trained with. A dataset of another width is refused; one of
    another name too, unless ``--other-data``."""
    record = read_record(args.model)
    given = parse_image_shape(args.image_shape)
    shape = None if given == "infer" and record else given     # the record's, once the width is checked
    scaling = record["scaling"] if record else None
    named = args.data is not None or args.data_dir is not None or args.dataset is not None
    if args.data is not None:
        if args.data_dir is not None:
            raise ValueError("--data and --data-dir both name a dataset; pass one of them")
        data = load_user_data(args.data, shape, args.scale, scaling, dataset=args.dataset)
    elif named or record is None:
        data = _idx(args, scaling=scaling)
    elif Path(record["source"]).exists():
        data = load_user_data(record["source"], shape, scaling=scaling)
    else:
        raise ValueError(f"{args.model} was trained on {record['source']}, which is no longer there; "
                         "pass --data PATH (or --data-dir DIR) to name the data")
    if record is None:
        return data
    trained = f"{args.model} was trained on {record['name']} ({record['source']}, {record['features']} features)"
    if data.features != record["features"]:
        raise ValueError(f"{trained}, but {data.source} has {data.features} features per row; it cannot read "
                         "them. Pass data of the same features, or leave out --data to use its own")
    if given == "infer":
        data.image_shape = tuple(record["image_shape"]) if record["image_shape"] else None
    if data.name != record["name"] and not args.other_data:
        raise ValueError(f"{trained}, but {data.source} is {data.name}; leave out the data options to use its "
                         "own, or pass --other-data to use this dataset anyway")
    if data.fingerprint != record["fingerprint"]:
        data.notes.append(f"these are not the rows {args.model} was trained on (another fingerprint)")
    return data


def say_notes(data: UserData, skipped: list[str] = ()) -> None:
    """Print, once, what was done to the data and what was skipped for lack of labels or images."""
    for line in [*data.notes, *(f"skipped {what}" for what in skipped)]:
        print(f"aae-np: note: {line}", file=sys.stderr)


def write_reconstructions(model: Any, data: UserData, n: int, out: Path) -> str:
    """The first ``n`` test rows and their reconstructions: a PNG when the rows are images, else
    (or for an ``.npz`` / ``.npy`` ``--out``) the arrays (``x``, ``x_hat``); returns what was written."""
    from aae_np.eval import plots

    x = data.x_test[:n]
    x_hat = model.reconstruct(x, None if data.y_test is None else data.y_test[:n])
    if out.suffix in (".npz", ".npy"):
        from aae_np.files import atomic_write

        atomic_write(out, (lambda f: np.savez(f, x=x, x_hat=x_hat)) if out.suffix == ".npz"
                     else (lambda f: np.save(f, x_hat)))
        return f"wrote {len(x)} test rows' reconstructions to {out}"
    if data.image_shape is None:
        raise ValueError(f"--out {out}: the rows of {data.name} are not images (pass --image-shape H,W if they "
                         "are); write the reconstructed rows with --out FILE.npz instead")
    shape = (len(x), *data.image_shape)
    plots.reconstructions(x.reshape(shape), x_hat.reshape(shape), out, n=n)
    return f"wrote {len(x)} test images and their reconstructions to {out}"


def write_codes(z: np.ndarray, y: np.ndarray | None, out: Path, what: str) -> str:
    """Codes ``z`` to ``out`` (.npy, or .npz with the labels when there are any); what was written."""
    from aae_np.files import atomic_write

    labels = {} if y is None else {"labels": y}
    atomic_write(out, (lambda f: np.savez(f, z=z, **labels)) if out.suffix == ".npz" else (lambda f: np.save(f, z)))
    return (f"wrote codes of {len(z)} {what}, shape {z.shape}, to {out}"
            + ("" if y is not None else " (no labels: none saved, the plot has one colour)"))


def check_score(args: argparse.Namespace, data: UserData) -> None:
    """``--score`` rates samples with an MNIST digit classifier: labelled MNIST only."""
    if args.score and (data.name != "mnist" or data.y_train is None):
        raise ValueError(f"--score rates samples with an MNIST digit classifier; {data.name} is not labelled MNIST")


def as_images(model_path: str | Path, rows: np.ndarray, out: Path) -> np.ndarray:
    """``rows`` (N, D) as (N, H, W) images of the model's recorded image shape; a model without a
    record draws square rows as before."""
    record = read_record(model_path)
    if record is None:
        return rows
    if not record["image_shape"]:
        raise ValueError(f"--out {out}: {model_path} was trained on {record['name']}, whose rows are not images; "
                         "write the samples with --out FILE.npy instead")
    return rows.reshape(len(rows), *record["image_shape"])


def interrupt_message(args: argparse.Namespace) -> str:
    """What Ctrl-C leaves behind: a train run's checkpoint only if one was written."""
    if getattr(args, "command", None) != "train":
        return "aae-np: interrupted"
    checkpoint = Path(args.out) / "checkpoint.npz"
    if checkpoint.is_file():
        return (f"aae-np: interrupted; the last finished epoch's checkpoint is kept in {checkpoint} "
                f"(aae-np train --out {args.out} --resume continues)")
    return "aae-np: interrupted before the first epoch finished; no checkpoint was written"

"""One way to start or resume training any model of the family from a data set."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Any, Callable

from aae_np.models.aae import AAE
from aae_np.models.checkpoint import model_kind, read_model_arrays
from aae_np.models.reduction import REDUCTION, ReductionAAE, ReductionConfig
from aae_np.models.variants import VariantAAE, VariantConfig
from aae_np.train.reduction import ReductionTrainer
from aae_np.train.resume import read_trainer_state
from aae_np.train.starts import best_start
from aae_np.train.trainer import Trainer
from aae_np.train.variant import VariantTrainer

__all__ = ["new_trainer", "resume_trainer", "saved_train_config", "RunFolder", "OUTPUTS"]


def new_trainer(model_config: Any, train_config: Any, data: Any, out_dir: str | os.PathLike | None = None,
                backend: str | None = None, progress: bool = True,
                report: Callable[[str], None] | None = None) -> Trainer:
    """A fresh model built from ``model_config`` and its trainer on ``data`` (``aae_np.data.MnistData``);
    the configs are what ``aae_np.train.presets.resolve`` returns. With ``train_config.starts > 1``
    the candidates train here (``aae_np.train.starts``; ``report`` hears a line on each) and the
    trainer returned is the kept one, part-trained, writing checkpoints to ``out_dir`` from then on."""
    if isinstance(model_config, VariantConfig):
        cls = ReductionTrainer if isinstance(model_config, ReductionConfig) else VariantTrainer

        def build(model_cfg: Any, train_cfg: Any, out: Any = None) -> Trainer:
            return cls(cls.model_class(model_cfg, backend=backend), train_cfg, data.x_train, data.y_train,
                       data.x_test, data.y_test, out_dir=out, progress=progress)
        if getattr(train_config, "starts", 1) == 1:
            return build(model_config, train_config, out_dir)
        trainer, _ = best_start(build, model_config, train_config, train_config.starts, train_config.start_epochs,
                                report=report)
        if out_dir is not None:               # checkpoints from the kept start on, the first one now
            trainer.out_dir = Path(out_dir)
            trainer.save_checkpoint()
        return trainer
    return Trainer(AAE(model_config, backend=backend), train_config, data.x_train, data.x_test,
                   out_dir=out_dir, progress=progress)


def resume_trainer(checkpoint: str | os.PathLike, data: Any, epochs: int | None = None,
                   backend: str | None = None, progress: bool = True, lr: float | None = None,
                   same: dict[str, Any] | None = None) -> Trainer:
    """The trainer saved in ``checkpoint``, ready to ``fit()`` on as if never stopped.

    ``epochs`` and ``lr`` (every learning rate) may change and are recorded in the history;
    ``same`` holds settings the user named again (``resolve``'s keywords): each must equal the
    checkpoint's, since a resumed run cannot change them."""
    kind = model_kind(checkpoint)
    if kind in (VariantAAE.kind, ReductionAAE.kind):
        cls = ReductionTrainer if kind == ReductionAAE.kind else VariantTrainer
        trainer = cls.resume(checkpoint, data.x_train, data.y_train, data.x_test, data.y_test,
                                        epochs=epochs, progress=progress, backend=backend, lr=lr)
    else:
        trainer = Trainer.resume(checkpoint, data.x_train, data.x_test, epochs=epochs, progress=progress,
                                 backend=backend, lr=lr)
    saved = run_settings(trainer)
    differ = [f"--{k.replace('_', '-')} {v} (the run has {saved.get(k, 'no recorded value')})"
              for k, v in (same or {}).items() if saved.get(k, object()) != v]
    if differ:
        raise ValueError(f"{checkpoint}: a resumed run keeps its settings, but you asked for {'; '.join(differ)}. "
                         "Leave those out (--epochs and --lr may change), or start a new run with another --out")
    return trainer


def run_settings(trainer: Trainer) -> dict[str, Any]:
    """The settings of a run under ``resolve``'s names, to compare with what a user asks for."""
    m, t = trainer.model.config, trainer.config
    out = {"seed": t.seed, "batch_size": t.batch_size, "schedule": t.schedule,
           "encoder_batchnorm": m.encoder_batchnorm, "input_dropout": m.input_dropout}
    if isinstance(m, VariantConfig):
        out.update(variant=REDUCTION if isinstance(m, ReductionConfig) else m.variant, latent_dim=m.style_dim,
                   labels=t.n_labels, label_seed=t.label_seed, clusters=m.n_classes,
                   prior=m.prior.get("name", "gaussian"), consistency=t.consistency, starts=t.starts,
                   neighbours=t.neighbours, split_at=t.split_at)
    else:
        out.update(latent_dim=m.latent_dim)
    return out


def saved_train_config(model_path: str | os.PathLike) -> dict[str, Any] | None:
    """The training settings (``TrainConfig`` as a dict) of the run ``model_path`` came from: the
    file's own trainer state if it is a checkpoint, else that of the ``checkpoint.npz`` beside it
    when it holds the same model config; None when neither does (a model file on its own)."""
    path = Path(model_path)
    config = read_model_arrays(path, only=("__config__",))["__config__"]
    for candidate in (path, path.with_name("checkpoint.npz")):
        if not candidate.is_file():
            continue
        arrays = read_model_arrays(candidate, only=("__config__", "__trainer__"))
        if "__trainer__" in arrays and str(arrays["__config__"]) == str(config):
            return read_trainer_state(candidate, arrays)["train_config"]
    return None


OUTPUTS = ("checkpoint.npz", "model.npz", "history.json", "metrics.json", "reconstructions.png", "samples.png",
           "latent.png", "losses.png", "manifold.png", "styles.png", "clusters.png", "reduction.png",
           "confusion.png")
LOCK_NAME = ".aae-np.lock"


class RunFolder:
    """The ``--out`` folder of one training run, held for the run's length.

    ``with RunFolder(out, resume, overwrite):`` refuses a path that is a file, refuses a folder
    that holds any of a run's outputs unless the run resumes it or ``overwrite`` (which then
    removes them first), and takes an exclusive lock (``fcntl.flock`` on ``.aae-np.lock``, which
    the system releases when the process dies, even by kill -9), so a second run into the same
    folder fails at once. Temp files left by a killed write are removed.
    """

    def __init__(self, out: str | os.PathLike, resume: bool = False, overwrite: bool = False) -> None:
        self.out, self.resume, self.overwrite = Path(out), resume, overwrite
        self._fd: int | None = None

    def __enter__(self) -> "RunFolder":
        out = self.out
        if out.exists() and not out.is_dir():
            raise ValueError(f"--out {out} is a file, not a folder; choose another --out")
        out.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(out / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self._fd, 64, 0).decode(errors="replace").strip() or "another process"
            os.close(self._fd)
            self._fd = None
            raise ValueError(f"{out} is in use by another aae-np run (process {holder}); wait for it to "
                             "finish, or choose another --out") from None
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, str(os.getpid()).encode(), 0)
        for stale in out.glob(".*.tmp"):                  # a killed atomic write's leftovers
            if any(stale.name.startswith(f".{name}.") for name in OUTPUTS):
                stale.unlink(missing_ok=True)
        found = [name for name in OUTPUTS if (out / name).exists() or (out / name).is_symlink()]
        if found and not self.resume:
            if not self.overwrite:
                self.__exit__(None, None, None)
                raise ValueError(f"{out} already holds a run ({', '.join(found[:4])}{', ...' if len(found) > 4 else ''}); "
                                 "pass --resume to continue it, --overwrite to replace it, or another --out")
            for name in found:
                (out / name).unlink()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)                            # releases the lock
            self._fd = None

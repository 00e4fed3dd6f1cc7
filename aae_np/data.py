"""MNIST and Fashion-MNIST: an IDX reader, a loader, a checked downloader, and where to look.

The IDX format and its reader are in ``aae_np/idx.py``; fetching one file over HTTP (overall
deadline, cut transfers, a full disk, part files of killed downloads) in ``aae_np/download.py``.

``resolve_data_dir`` looks for the four files in this order and takes the first hit:

1. the ``data_dir`` argument (the CLI's ``--data-dir``): it must be complete, nothing else is tried;
2. the ``AAE_NP_DATA`` environment variable, if not empty: the same, for MNIST only (Fashion-MNIST's
   files have the same names, and the variable the Makefile sets for MNIST must not feed a
   ``--dataset fashion-mnist`` run MNIST's images without a word);
3. ``REPO_DATA_ROOT / dataset``, i.e. ``<repo>/data/mnist``;
4. ``SHARED_DATA_ROOT / dataset``, i.e. ``<repo>/../shared/data/mnist``: the shared copy beside
   the repository on the project's machines, so a notebook opened directly finds it too;
5. ``SYSTEM_DATA_DIRS[dataset]`` (Debian's ``dataset-fashion-mnist`` package);
6. a download into ``REPO_DATA_ROOT / dataset``.

Steps 3 to 5 take a folder only if it holds all four files.

MD5 checksums are checked only on files ``download`` fetched itself. A folder the user points
at is checked structurally by ``read_idx`` instead, so a subset or a recompressed copy loads.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from aae_np.download import STALE_AFTER, fetch_file, remove_stale_parts
from aae_np.idx import FIX_FILE, DataError, read_idx

__all__ = ["DataError", "DatasetSpec", "MnistData", "DATASETS", "FILE_STEMS", "ENV_VAR",
           "REPO_DATA_ROOT", "SHARED_DATA_ROOT", "SYSTEM_DATA_DIRS", "SIGNATURES", "read_idx", "find_files",
           "labelled_as", "load_mnist",
           "download", "resolve_data_dir", "load", "start_loading"]


# The module-level names below are read at call time, so tests can monkeypatch them.
ENV_VAR = "AAE_NP_DATA"
REPO_DATA_ROOT: Path = Path(__file__).resolve().parent.parent / "data"
SHARED_DATA_ROOT: Path = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
SYSTEM_DATA_DIRS: dict[str, tuple[Path, ...]] = {
    "fashion-mnist": (Path("/usr/share/datasets/fashion-mnist"),),
}
FILE_STEMS: tuple[str, ...] = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                               "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
# The first ten labels of each split of the published files: a subset that starts at row 0 keeps them.
SIGNATURES: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "mnist": ((5, 0, 4, 1, 9, 2, 1, 3, 1, 4), (7, 2, 1, 0, 4, 1, 4, 9, 5, 9)),
    "fashion-mnist": ((9, 0, 0, 3, 0, 2, 7, 2, 5, 5), (9, 2, 1, 1, 6, 1, 4, 6, 5, 7))}


@dataclass(frozen=True)
class DatasetSpec:
    """Where a dataset is published: base URLs tried in order, and the MD5 of each ``.gz`` file."""

    title: str
    mirrors: tuple[str, ...]
    md5: Mapping[str, str]


DATASETS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec("MNIST", (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ), {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    }),
    "fashion-mnist": DatasetSpec("Fashion-MNIST", (
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    ), {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    }),
}


class MnistData(NamedTuple):
    """The four arrays of an MNIST-format dataset (a plain 4-tuple, with names).

    ``x_*``: (N, 784) float32 in [0, 1], rows are 28x28 images flattened row by row.
    ``y_*``: (N,) int64 class labels in 0..9.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def _spec(dataset: str) -> DatasetSpec:
    if dataset not in DATASETS:
        raise DataError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
    return DATASETS[dataset]


def _how_to_fix(dataset: str, folder: Path) -> str:
    names = ", ".join(stem + ".gz" for stem in FILE_STEMS)
    env = f", or set {ENV_VAR}=DIR" if dataset == "mnist" else ""
    hint = (f"Copy the four files {names} (or their uncompressed versions) into {folder}/, "
            f"or pass --data-dir DIR{env}, with DIR a folder holding them")
    return hint + _system_package(dataset)


def _system_package(dataset: str) -> str:
    """Where Debian/Ubuntu provide ``dataset``'s folder, as a parenthesis; "" where they do not."""
    if dataset == "fashion-mnist":
        return " (on Debian/Ubuntu, apt-get install dataset-fashion-mnist provides one)"
    return ""


# ----------------------------------------------------------------------------- loading

def find_files(root: str | os.PathLike[str]) -> dict[str, Path | None]:
    """Map each of ``FILE_STEMS`` to ``root/<stem>.gz`` or ``root/<stem>``, or None if neither is there."""
    root = Path(root)
    found: dict[str, Path | None] = {}
    for stem in FILE_STEMS:
        found[stem] = next((p for p in (root / (stem + ".gz"), root / stem) if p.is_file()), None)
    return found


def _load_split(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``x``: (N, 784) float32 in [0, 1]; ``y``: (N,) int64, after checking both files."""
    images = read_idx(images_path)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise DataError(f"{images_path}: expected ubyte images of shape (N, 28, 28), found "
                        f"{images.dtype} of shape {images.shape}; {FIX_FILE}")
    labels = read_idx(labels_path)
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise DataError(f"{labels_path}: expected ubyte labels of shape (N,), found "
                        f"{labels.dtype} of shape {labels.shape}; {FIX_FILE}")
    if labels.max() > 9:
        raise DataError(f"{labels_path}: labels must lie in 0..9, found {int(labels.max())}; "
                        f"{FIX_FILE}")
    if len(images) != len(labels):
        raise DataError(f"{images_path} holds {len(images)} images but {labels_path} holds "
                        f"{len(labels)} labels; both must come from the same set: {FIX_FILE}")
    x = images.reshape(len(images), 28 * 28).astype(np.float32)
    x /= np.float32(255)                # in place: a second (N, 784) float32 array costs its page faults
    return x, labels.astype(np.int64)


def load_mnist(root: str | os.PathLike[str], dataset: str = "mnist") -> MnistData:
    """Load the four IDX files in ``root`` (``.gz`` or uncompressed names).

    Returns ``(x_train, y_train, x_test, y_test)`` as ``MnistData``: ``x`` (N, 784) float32
    in [0, 1], ``y`` (N,) int64. ``dataset`` ("mnist" or "fashion-mnist", same format) is
    used only in messages. No checksum is checked here; see the module docstring.
    """
    spec, root = _spec(dataset), Path(root)
    found = find_files(root)
    missing = [stem for stem, path in found.items() if path is None]
    if missing:
        raise DataError(f"{spec.title} folder {root} lacks {', '.join(missing)} (.gz or "
                        f"uncompressed). {_how_to_fix(dataset, root)}")
    x_train, y_train = _load_split(found[FILE_STEMS[0]], found[FILE_STEMS[1]])
    x_test, y_test = _load_split(found[FILE_STEMS[2]], found[FILE_STEMS[3]])
    return MnistData(x_train, y_train, x_test, y_test)


# ----------------------------------------------------------------------------- downloading

def download(dataset: str, dest_dir: str | os.PathLike[str], mirrors: Sequence[str] | None = None,
             progress: bool = True, *, checksums: Mapping[str, str] | None = None,
             timeout: float = 30.0, deadline: float = 600.0) -> Path:
    """Download the four official ``.gz`` files of ``dataset`` into ``dest_dir``; return it.

    Each file is tried on ``mirrors`` in order (default: the dataset's official ones), written
    to a temporary file beside its destination, checked against ``checksums[name]`` (default:
    the official MD5s) and only then moved into place with ``os.replace``, so a failed or
    corrupt download leaves nothing behind, and part files left by killed processes are
    removed first. Files already in ``dest_dir`` (``.gz`` or uncompressed) are kept as they
    are. ``timeout`` is in seconds per connect or read, ``deadline`` for a whole file from
    one mirror. Raises ``DataError`` listing what each mirror did when no mirror delivers a
    file, or at once, naming the file, when it cannot be written (a full disk). The HTTP
    side is ``aae_np/download.py``.
    """
    spec, dest = _spec(dataset), Path(dest_dir)
    mirrors = spec.mirrors if mirrors is None else tuple(mirrors)
    checksums = spec.md5 if checksums is None else checksums
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataError(f"cannot create download folder {dest} ({err.strerror or err}); "
                        f"{_how_to_fix(dataset, dest)}") from None
    remove_stale_parts(dest, [stem + ".gz" for stem in FILE_STEMS], max(STALE_AFTER, deadline))
    for stem, path in find_files(dest).items():
        if path is None:
            name = stem + ".gz"
            if name not in checksums:
                raise DataError(f"download: no checksum given for {name}; the checksums "
                                f"mapping needs all four of {', '.join(s + '.gz' for s in FILE_STEMS)}")
            fetch_file(name, dest, mirrors, checksums[name], title=spec.title,
                       fix=_how_to_fix(dataset, dest), timeout=timeout, deadline=deadline,
                       progress=progress)
    return dest


# ----------------------------------------------------------------------------- resolution

def _require_complete(folder: Path, dataset: str, source: str) -> Path:
    """``folder`` if it holds all four files, else a DataError that blames ``source``."""
    if not folder.is_dir():
        raise DataError(f"{source}: {folder} is not a folder. {_how_to_fix(dataset, folder)}")
    missing = [stem for stem, path in find_files(folder).items() if path is None]
    if missing:
        raise DataError(f"{source}: {folder} lacks {', '.join(missing)} (.gz or uncompressed); "
                        f"nothing was downloaded. {_how_to_fix(dataset, folder)}")
    return folder


def resolve_data_dir(data_dir: str | os.PathLike[str] | None = None, dataset: str = "mnist",
                     download_ok: bool = True, progress: bool = True) -> Path:
    """The folder to load ``dataset`` from, searched in the order of the module docstring.

    An explicit ``data_dir`` or a non-empty ``AAE_NP_DATA`` must hold the four files (else
    ``DataError``, and no download elsewhere). Otherwise the repo's ``data/<dataset>``, the
    shared copy beside the repo and the system folders are tried, then a download into
    ``data/<dataset>`` if ``download_ok``.
    """
    _spec(dataset)
    if data_dir is not None:
        return _require_complete(Path(data_dir).expanduser(), dataset, f"--data-dir {data_dir}")
    env = os.environ.get(ENV_VAR, "") if dataset == "mnist" else ""      # MNIST's folder only
    if env:
        return _require_complete(Path(env).expanduser(), dataset, f"{ENV_VAR}={env}")
    target = REPO_DATA_ROOT / dataset
    candidates = [target, SHARED_DATA_ROOT / dataset, *SYSTEM_DATA_DIRS.get(dataset, ())]
    for folder in candidates:
        if all(path is not None for path in find_files(folder).values()):
            return folder
    if not download_ok:
        searched = ", ".join(str(folder) for folder in candidates)
        raise DataError(f"{_spec(dataset).title} not found (searched {searched}) and downloading "
                        f"is turned off. {_how_to_fix(dataset, target)}")
    return download(dataset, target, progress=progress)


def labelled_as(data: MnistData) -> str | None:
    """The published dataset whose first ten labels (of either split) ``data`` starts with, or None."""
    for name, (train, test) in SIGNATURES.items():
        if tuple(data.y_train[:10]) == train or tuple(data.y_test[:10]) == test:
            return name
    return None


def load(dataset: str = "mnist", data_dir: str | os.PathLike[str] | None = None,
         download_ok: bool = True, progress: bool = True) -> MnistData:
    """``load_mnist(resolve_data_dir(...))``: find (or fetch) ``dataset`` and load it.

    DataError if the folder's labels are the other published dataset's (``labelled_as``): both
    have the same file names, and a Fashion-MNIST run fed MNIST would train and score without a word.
    """
    folder = resolve_data_dir(data_dir, dataset, download_ok, progress)
    out = load_mnist(folder, dataset)
    found = labelled_as(out)
    if found not in (None, dataset):
        raise DataError(f"{folder} holds {_spec(found).title}, not {_spec(dataset).title}: its first ten labels "
                        f"are {_spec(found).title}'s. Load dataset {found!r} from it, or pass --data-dir DIR "
                        f"with DIR a {_spec(dataset).title} folder{_system_package(dataset)}")
    return out


class _Loading:
    """``load_mnist(folder, dataset)`` on a daemon thread; ``result()`` waits, then returns the
    data or raises the loader's error on the caller's thread."""

    def __init__(self, folder: Path, dataset: str) -> None:
        self.seconds = 0.0          # how long loading took, on its own thread
        self._outcome: tuple[MnistData | None, BaseException | None] = (None, None)
        self._thread = threading.Thread(target=self._run, args=(folder, dataset), daemon=True)
        self._thread.start()

    def _run(self, folder: Path, dataset: str) -> None:
        clock = time.perf_counter()
        try:
            self._outcome = (load_mnist(folder, dataset), None)
        except BaseException as err:            # re-raised by result()
            self._outcome = (None, err)
        self.seconds = time.perf_counter() - clock

    def result(self) -> MnistData:
        self._thread.join()
        data, err = self._outcome
        if err is not None:
            raise err
        assert data is not None
        return data


def start_loading(dataset: str = "mnist", data_dir: str | os.PathLike[str] | None = None) -> _Loading | None:
    """Start loading ``dataset`` on a thread if it is on disk already; None if it is not.

    ``aae-np train`` loads this way while it imports the model, the trainer and matplotlib
    (~0.7 s): inflating and converting the images release the GIL, so the two overlap on two
    cores. A daemon thread, so a usage error found meanwhile still exits at once. None when the
    data must be fetched: a download stays in the foreground (``load``), after the run's
    arguments are checked.
    """
    try:
        folder = resolve_data_dir(data_dir, dataset, download_ok=False)
    except DataError:
        return None
    return _Loading(folder, dataset)

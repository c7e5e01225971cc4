"""Datasets: MNIST, Fashion-MNIST and CIFAR-10 (their files are read by ``bench.data_files``), the
search path, the embedded default.

``load(name)`` looks in ``--data-dir`` / ``$BENCH_DATA_DIR``, ``~/.cache/denoise-bench``,
``/usr/share/datasets`` (Debian's dataset packages), and downloads with torchvision only when
``download=True``. The embedded default ``digits`` needs no files: scikit-learn's 1,797 8x8
digits, upscaled to 28x28 so that every model built for MNIST-sized input runs on it.
Folders of images (the literature's test sets and ``folder:PATH``) are read by
``bench.folders``; ``training_split`` gives a set without one the training split it names.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from bench import folders
from bench.data_files import CIFAR_FILES, IDX_FILES, DataError, find_file, read_cifar_batch, read_idx_split
from bench.folders import IMAGE_SUFFIXES, NATURAL_SETS, parse_spec, read_folder
from bench.images import ImageList, Images, common_crop
from bench.registry import DATASETS

__all__ = [
    "Dataset",
    "DataError",
    "load",
    "find",
    "search_path",
    "check_spec",
    "labelled",
    "networks_train_on",
    "display_name",
    "training_split",
]


@dataclass(frozen=True)
class Dataset:
    """Images as uint8 N x C x H x W tensors (or an ``ImageList`` when sizes differ) and int64 labels.

    A folder dataset has no labels (``None``, no classes) and may have no training split
    (``train_images`` None): ``train_from`` then names the dataset whose training split it fits on.
    ``display`` is the name tables show (e.g. "Kodak24 (crops)").
    """

    name: str
    train_images: Images | None
    train_labels: Tensor | None
    test_images: Images
    test_labels: Tensor | None
    classes: tuple[str, ...]
    source: str = ""
    train_from: str | None = None
    display: str = ""

    def __post_init__(self) -> None:
        for split in ("train", "test"):
            images, labels = getattr(self, f"{split}_images"), getattr(self, f"{split}_labels")
            if images is None and split == "train":
                continue
            if images.dtype != torch.uint8 or (isinstance(images, Tensor) and images.ndim != 4):
                shape = tuple(images.shape) if isinstance(images, Tensor) else "of several sizes"
                raise DataError(f"{self.name} {split} images must be uint8 N x C x H x W; got {images.dtype} {shape}")
            if labels is not None and len(images) != len(labels):
                raise DataError(f"{self.name} {split}: {len(images)} images but {len(labels)} labels")
        if self.train_images is None and not self.train_from:
            raise DataError(f"{self.name} has no training split; expected the name of one to train on")

    @property
    def shape(self) -> tuple[int, int, int]:
        """C, H, W of one image (of a dataset whose images share one size)."""
        images = self.train_images if isinstance(self.train_images, Tensor) else self.test_images
        if not isinstance(images, Tensor):
            raise DataError(f"{self.name} holds images of several sizes; it has no single shape")
        return tuple(images.shape[1:])

    @property
    def labelled(self) -> bool:
        """Whether the test images have class labels (classifiers score only labelled sets)."""
        return self.test_labels is not None


def search_path(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """The folders searched for data files, first match wins."""
    roots = [
        data_dir or os.environ.get("BENCH_DATA_DIR"),
        Path.home() / ".cache" / "denoise-bench",
        "/usr/share/datasets",
    ]
    return [Path(root).expanduser() for root in roots if root]


_LAYOUTS = {
    "mnist": ("mnist", "MNIST/raw"),
    "fashion-mnist": ("fashion-mnist", "FashionMNIST/raw", "fashion_mnist"),
    "cifar10": ("cifar-10-batches-py", "cifar10/cifar-10-batches-py", "cifar10"),
}


def _complete(name: str, folder: Path) -> bool:
    if name == "cifar10":
        return all((folder / f).is_file() for f in CIFAR_FILES)
    return all(find_file(folder, stem) for pair in IDX_FILES.values() for stem in pair)


def find(name: str, data_dir: str | os.PathLike | None = None) -> Path | None:
    """The folder holding ``name``'s files on the search path, or None."""
    if name in NATURAL_SETS:
        return next((root / name for root in search_path(data_dir) if _has_images(root / name)), None)
    for root in search_path(data_dir):
        for layout in _LAYOUTS[name]:
            if _complete(name, root / layout):
                return root / layout
    return None


def _download(name: str) -> Path:
    import torchvision.datasets as tvd

    root = Path.home() / ".cache" / "denoise-bench"
    cls = {"mnist": tvd.MNIST, "fashion-mnist": tvd.FashionMNIST, "cifar10": tvd.CIFAR10}[name]
    for train in (True, False):
        cls(root=str(root if name != "cifar10" else root / "cifar10"), train=train, download=True)
    folder = find(name, root)
    if folder is None:
        raise DataError(f"download of {name} into {root} did not produce the expected files")
    return folder


def _has_images(folder: Path) -> bool:
    return folder.is_dir() and any(p.suffix.lower() in IMAGE_SUFFIXES for p in folder.iterdir())


def _locate(name: str, data_dir, download: bool) -> Path:
    folder = find(name, data_dir)
    if folder is not None:
        return folder
    if download and name in NATURAL_SETS:
        root = Path(data_dir) if data_dir else Path.home() / ".cache" / "denoise-bench"
        return folders.download_set(NATURAL_SETS[name], root)
    if download:
        return _download(name)
    searched = ", ".join(str(p) for p in search_path(data_dir))
    raise DataError(f"dataset {name!r} not found in {searched}; pass --data-dir DIR or --download")


@lru_cache(maxsize=8)
def _load_idx(name: str, folder: Path, classes: tuple[str, ...]) -> Dataset:
    train, test = read_idx_split(folder, "train"), read_idx_split(folder, "test")
    return Dataset(name, *train, *test, classes=classes, source=str(folder))


@lru_cache(maxsize=2)
def _load_cifar(folder: Path) -> Dataset:
    parts = [read_cifar_batch(folder / f) for f in CIFAR_FILES]
    train_x = np.concatenate([p[0] for p in parts[:5]])
    train_y = np.concatenate([p[1] for p in parts[:5]])
    test_x, test_y = parts[5]
    tensors = [torch.from_numpy(a.copy()) for a in (train_x, train_y, test_x, test_y)]
    return Dataset("cifar10", *tensors, classes=CIFAR_CLASSES, source=str(folder))


DIGIT_CLASSES = tuple(str(i) for i in range(10))
FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


@DATASETS.register("mnist", source="LeCun et al. 1998 (IDX files)", description="70,000 28x28 grey handwritten digits")
def mnist(*, data_dir=None, download: bool = False) -> Dataset:
    return _load_idx("mnist", _locate("mnist", data_dir, download), DIGIT_CLASSES)


@DATASETS.register(
    "fashion-mnist", source="Xiao et al. 2017 (IDX files)", description="70,000 28x28 grey clothing images"
)
def fashion_mnist(*, data_dir=None, download: bool = False) -> Dataset:
    return _load_idx("fashion-mnist", _locate("fashion-mnist", data_dir, download), FASHION_CLASSES)


@DATASETS.register(
    "cifar10", source="Krizhevsky 2009 (python batches)", description="60,000 32x32 colour images, 10 classes"
)
def cifar10(*, data_dir=None, download: bool = False) -> Dataset:
    return _load_cifar(_locate("cifar10", data_dir, download))


@DATASETS.register(
    "digits",
    source="scikit-learn load_digits (UCI optdigits)",
    description="embedded default: 1,797 8x8 digits upscaled to 28x28 (1,297 train / 500 test); needs no files",
)
@lru_cache(maxsize=1)
def digits(*, data_dir=None, download: bool = False) -> Dataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    small = torch.from_numpy(bunch.images).float().div(16.0).unsqueeze(1)
    # 28x28 lets every model built for MNIST-sized input run on the embedded default.
    big = torch.nn.functional.interpolate(small, size=(28, 28), mode="bilinear", align_corners=False)
    images = big.clamp(0, 1).mul(255).round().to(torch.uint8)
    labels = torch.from_numpy(bunch.target.astype(np.int64))
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))
    train, test = order[:1297], order[1297:]
    return Dataset(
        "digits", images[train], labels[train], images[test], labels[test], DIGIT_CLASSES, source="scikit-learn"
    )


@lru_cache(maxsize=16)
def _load_folder(name: str, folder: Path, train_from: str | None, display: str) -> Dataset:
    """A folder's images; ``train/`` and ``test/`` subfolders are its splits, else all are test
    images (and, with ``train_from`` None, the training split too: Train400 is one)."""
    if (folder / "test").is_dir():
        test = read_folder(folder / "test")
        train = read_folder(folder / "train") if (folder / "train").is_dir() else None
    else:
        test = read_folder(folder)
        train = None if train_from else test
    return Dataset(name, train, None, test, None, (), source=str(folder), train_from=train_from, display=display)


def _register_natural(natural) -> None:
    def loader(*, data_dir=None, download: bool = False) -> Dataset:
        folder = _locate(natural.name, data_dir, download)
        return _load_folder(natural.name, folder, natural.train_from, natural.display)

    DATASETS.register(natural.name, source=natural.source, description=natural.description)(loader)


for _natural in NATURAL_SETS.values():
    _register_natural(_natural)


def load(name: str, *, data_dir: str | os.PathLike | None = None, download: bool = False) -> Dataset:
    """Load a dataset by spec: a registered name (see ``python -m bench list``), ``folder:PATH``,
    ``LABEL=folder:PATH``, each optionally followed by ``?train=SPEC`` (see ``bench.folders``)."""
    spec = parse_spec(name)
    if spec.path is not None:
        return _load_folder(name, spec.path.resolve(), spec.train or "train400", spec.label)
    if spec.train is None:
        return DATASETS.create(name, data_dir=data_dir, download=download)
    dataset = DATASETS.create(spec.name, data_dir=data_dir, download=download)
    return replace(dataset, name=name, train_images=None, train_labels=None, train_from=spec.train)


def check_spec(name: str) -> None:
    """Raise ValueError unless ``name`` is a valid dataset spec naming registered datasets."""
    spec = parse_spec(name)
    for part in (spec.name, spec.train):
        if part is not None and parse_spec(part).path is None and parse_spec(part).name not in DATASETS:
            raise ValueError(DATASETS.unknown_message(parse_spec(part).name))


def labelled(name: str) -> bool:
    """Whether a dataset spec's images carry class labels, known without loading it: folders
    (registered or not) have none, so classifiers do not run on them."""
    spec = parse_spec(name)
    return spec.path is None and spec.name not in NATURAL_SETS


def networks_train_on(name: str) -> bool:
    """Whether networks can train for a dataset spec, known without loading it: not on a
    registered colour set (CBSD68, Kodak24) unless a colour training set is named with ?train=."""
    spec = parse_spec(name)
    natural = NATURAL_SETS.get(spec.name or "")
    return natural is None or not natural.colour or spec.train is not None


def display_name(name: str) -> str:
    """How tables show a dataset spec: "Kodak24 (crops)" for kodak24, a folder's label, else the name."""
    spec = parse_spec(name)
    natural = NATURAL_SETS.get(spec.name or "")
    return natural.display if natural is not None and spec.train is None else spec.label


def training_split(
    dataset: Dataset, *, data_dir: str | os.PathLike | None = None, download: bool = False
) -> tuple[Tensor, Tensor | None, bool]:
    """(uint8 training images, labels or None, whether networks may train on them) for ``dataset``.

    A set without a training split borrows ``train_from``'s (and a ``train_from`` without one of
    its own lends its images: the folder a ``?train=`` names). A grey split borrowed by a colour
    set is repeated to three channels and serves the classical filters only. Images of several
    sizes are cut to their common centre crop: fits take one batch (networks train on patches,
    the filters tune on a few images); test images are never cropped.
    """
    if dataset.train_images is not None:
        images, labels, networks = dataset.train_images, dataset.train_labels, True
    else:
        source = load(dataset.train_from, data_dir=data_dir, download=download)
        if source.train_images is None:
            # A set named to train on (``?train=folder:PATH``, ``?train=bsd68``) without a
            # training split of its own trains on its images, not on the set it would borrow.
            source = replace(source, train_images=source.test_images, train_labels=source.test_labels)
        images, labels, networks = training_split(source, data_dir=data_dir, download=download)
    if isinstance(images, ImageList):
        images = common_crop(images)
    want, have = _channels(dataset.test_images), int(images.shape[1])
    if want == have:
        return images, labels, networks
    if have == 1 and want == 3:
        return images.repeat(1, 3, 1, 1), labels, False
    raise DataError(
        f"{dataset.name}: {want}-channel test images cannot train on {have}-channel images from {dataset.train_from}"
    )


def _channels(images: Images) -> int:
    return images.channels if isinstance(images, ImageList) else int(images.shape[1])
